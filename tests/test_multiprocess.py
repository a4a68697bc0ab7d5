"""Across processes: two processes on localhost, 4 CPU devices each, one global 8-device mesh through
``jax.distributed.initialize``: a sharded forward and an optax training step equal one process."""
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

WORKER = Path(__file__).with_name("multiprocess_worker.py")


def _free_port():
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("backend", ["xla", "interpret"])
def test_two_processes_share_one_mesh(backend):
    port = _free_port()
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(WORKER.parent))
    procs = [subprocess.Popen([sys.executable, str(WORKER), str(port), str(i), backend], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    try:
        outs = [p.communicate(timeout=600) for p in procs]
    finally:
        for p in procs:
            p.kill()
    for i, (p, (out, err)) in enumerate(zip(procs, outs)):
        assert p.returncode == 0 and "ALL DONE" in out, f"process {i}:\n{out[-2000:]}\n{err[-3000:]}"
        assert sum(line.startswith("PASS ") for line in out.splitlines()) == 8
