"""Checks that must run in a subprocess of their own (8 simulated devices, two cooperating
processes), reported one test id per check.

The subprocess prints ``PASS <name>`` or ``FAIL <name>: <detail>`` per check, then ``ALL DONE``.
``run_once`` runs it once per test session, also under pytest-xdist: the first worker to ask runs
it, the others wait for its result file (the workers share their session's temporary folder)."""
import fcntl
import json
import os


def parse(stdout: str) -> dict:
    """name -> "PASS" or the failure's detail."""
    out = {}
    for line in stdout.splitlines():
        if line.startswith("PASS "):
            out[line[5:]] = "PASS"
        elif line.startswith("FAIL "):
            name, _, detail = line[5:].partition(": ")
            out[name] = f"FAIL: {detail}"
    return out


def run_once(tmp_path_factory, key: str, run):
    """``run()`` (a dict that json can store) once per session; the stored result for every other caller."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return run()
    shared = tmp_path_factory.getbasetemp().parent  # one folder per session, shared by its workers
    result = shared / f"{key}.json"
    with open(shared / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not result.exists():
            result.write_text(json.dumps(run()))
        return json.loads(result.read_text())


def verdict(report: dict, name: str) -> str:
    """An assertion message for one check: its failure, or why it did not run."""
    got = report["results"].get(name)
    if got == "PASS":
        return "PASS"
    if got is not None:
        return got
    return (f"did not run (exit status {report['returncode']}); the subprocess's last output:\n"
            f"{report['stdout'][-2000:]}\n{report['stderr'][-3000:]}")
