"""The timing gate, live: ``python -m pytest benchmarks/test_gate.py -s``.

Times the quick matrix as a baseline, then again with unchanged code (the gate must pass),
then with every library case made twice as slow (each call runs twice; the gate must fail on
them).  This is timing, so it lives here and not in tests/; tests/tooling/test_bench.py checks the
same rule deterministically on recorded real runs.
"""
import jax
import pytest

from surrogate_pallas.tooling import bench

MIN_TIME = 0.05


@pytest.fixture(scope="module")
def cases():
    return [c for c in bench.matrix(sizes=[2**12, 2**17]) if c.op != "spike_and_grad"]


def _gate(cases, baseline, results):
    bad = bench.compare(baseline, dict(results=results), 0.10)
    return bench.confirmed(cases, baseline, bad, 0.10, bench.GATED, 2, MIN_TIME)


def test_unchanged_code_passes_and_a_planted_2x_slowdown_is_caught(cases, monkeypatch):
    baseline = dict(results=bench.run(cases, MIN_TIME, progress=False))
    assert _gate(cases, baseline, bench.run(cases, MIN_TIME, progress=False)) == []

    build = bench.build

    def twice_as_slow(case):
        fn, args = build(case)
        if case.backend == bench.BASELINE:
            return fn, args
        return (lambda *a: jax.block_until_ready(fn(*a)) and fn(*a)), args

    monkeypatch.setattr(bench, "build", twice_as_slow)
    bad = _gate(cases, baseline, bench.run(cases, MIN_TIME, progress=False))
    slowed = {c.key for c in cases if c.backend != bench.BASELINE}
    caught = {key for key, metric, _, _ in bad}
    print(f"planted 2x: {len(caught)} of {len(slowed)} library cases caught")
    assert caught and len(caught) >= 0.9 * len(slowed), sorted(slowed - caught)
