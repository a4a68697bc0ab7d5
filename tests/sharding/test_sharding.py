"""Every op partitions across 8 simulated CPU devices, with automatic mesh axes (a classic ``Mesh``
under plain ``jit``) and with explicit ones, on the xla and interpret backends.  The checks run in
one subprocess (so the rest of the suite keeps one device); each is its own test."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.sharded_programs import case_names
from helpers.subprocess_cases import parse, run_once, verdict

# one worker runs this module (pytest-xdist --dist loadgroup), so no other worker waits for its subprocess
pytestmark = pytest.mark.xdist_group("sharded_checks")
TESTS = Path(__file__).resolve().parents[1]
SCRIPT = TESTS / "helpers" / "sharded_checks.py"
CASES = case_names()


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    def run():
        env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(TESTS))
        proc = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, env=env, timeout=1200)
        return dict(returncode=proc.returncode, stdout=proc.stdout, stderr=proc.stderr, results=parse(proc.stdout))
    return run_once(tmp_path_factory, "sharded_checks", run)


def test_the_checks_ran_to_the_end(report):
    assert report["returncode"] == 0 and "ALL DONE" in report["stdout"], \
        report["stdout"][-3000:] + report["stderr"][-3000:]
    assert set(report["results"]) == set(CASES), sorted(set(report["results"]) ^ set(CASES))


@pytest.mark.parametrize("case", CASES)
def test_sharded(report, case):
    assert verdict(report, case) == "PASS", verdict(report, case)
