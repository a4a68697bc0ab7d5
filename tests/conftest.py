import os

# CPU only: the CUDA plugin (installed for cross-lowering) must not try to start.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import hypothesis  # noqa: E402

import surrogate_pallas  # noqa: E402,F401  (first: JAX imports without the CUDA plugin's start-up lines)

hypothesis.settings.register_profile("ci", max_examples=60, deadline=None, derandomize=True)
hypothesis.settings.load_profile("ci")


def pytest_sessionfinish(session, exitstatus):
    """Under CI, a skipped test is a failure: CI must never skip its way to green."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if os.environ.get("CI") and reporter is not None and reporter.stats.get("skipped"):
        reporter.write_line(f"CI: {len(reporter.stats['skipped'])} test(s) skipped; failing the run", red=True)
        session.exitstatus = 1
