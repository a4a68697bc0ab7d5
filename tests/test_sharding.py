"""Issue 6: every op partitions across 8 simulated devices (run in a subprocess, so the rest
of the suite keeps one device)."""
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
    # 3 models x 2 backends x 4 layouts x (fwd [+ grad]) x 3 checks, + memory, time axis, spike ops, step
    assert len(passed) >= 5 * 4 * 3 + 1 + 1 + 9 + 1
    for kind in ("no collectives", "equals one device", "output shardings"):
        assert any(p.startswith(kind) for p in passed)
    assert "per-device memory ~1/8" in passed
