"""Every op partitions across 8 simulated CPU devices, with automatic mesh axes (a classic ``Mesh``
under plain ``jit``) and with explicit ones, on the xla and interpret backends (run in a
subprocess, so the rest of the suite keeps one device)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("sharded_checks.py")


@pytest.fixture(scope="module")
def report():
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(SCRIPT.parent))
    proc = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, env=env, timeout=1200)
    return proc


def test_all_sharding_checks_pass(report):
    passed = [line[5:] for line in report.stdout.splitlines() if line.startswith("PASS ")]
    assert report.returncode == 0 and "ALL DONE" in report.stdout, report.stdout[-3000:] + report.stderr[-3000:]
    # 3 models x 2 backends x 2 axis kinds x (fwd, grad on 4 layouts; step, jvp, vmap on one) x 3 checks
    assert len(passed) >= 330, len(passed)
    for kind in ("no collectives", "equals one device", "output shardings"):
        for axes in ("auto", "explicit"):
            for what in ("fwd", "grad", "jvp", "step", "vmap"):
                assert any(p.startswith(kind) and f" {axes} {what} " in p for p in passed), (kind, axes, what)
    assert {"per-device memory ~1/8, auto axes", "per-device memory ~1/8, explicit axes"} <= set(passed)
    assert "time-sharded input, automatic axes, gives the same result" in passed
