"""Across processes: two processes on localhost, 4 CPU devices each, one global 8-device mesh through
``jax.distributed.initialize``: a sharded forward and an optax training step equal one process.
Each check of each process is its own test."""
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.multiprocess_cases import CASES
from helpers.subprocess_cases import parse, run_once, verdict

# one worker runs this module (pytest-xdist --dist loadgroup), so no other worker waits for its subprocess
pytestmark = pytest.mark.xdist_group("multiprocess")
TESTS = Path(__file__).resolve().parents[1]
WORKER = TESTS / "helpers" / "multiprocess_worker.py"
BACKENDS = ("xla", "interpret")


def _free_port():
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _run_pair(backend):
    port = _free_port()
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(TESTS))
    procs = [subprocess.Popen([sys.executable, str(WORKER), str(port), str(i), backend], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    try:
        outs = [p.communicate(timeout=600) for p in procs]
    finally:
        for p in procs:
            p.kill()
    return [dict(returncode=p.returncode, stdout=out, stderr=err, results=parse(out))
            for p, (out, err) in zip(procs, outs)]


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    return {b: run_once(tmp_path_factory, f"multiprocess_{b}", lambda b=b: _run_pair(b)) for b in BACKENDS}


@pytest.mark.parametrize("process", [0, 1])
@pytest.mark.parametrize("backend", BACKENDS)
def test_the_process_ran_to_the_end(reports, backend, process):
    r = reports[backend][process]
    assert r["returncode"] == 0 and "ALL DONE" in r["stdout"], f"{r['stdout'][-2000:]}\n{r['stderr'][-3000:]}"


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("process", [0, 1])
@pytest.mark.parametrize("backend", BACKENDS)
def test_two_processes_share_one_mesh(reports, backend, process, case):
    r = reports[backend][process]
    assert verdict(r, case) == "PASS", verdict(r, case)
