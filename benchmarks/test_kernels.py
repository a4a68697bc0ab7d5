"""pytest-benchmark suite: ``python -m pytest benchmarks/ --benchmark-only``.

The cases come from ``surrogate_pallas.tooling.bench.matrix`` (quick by default; set
SP_BENCH_FULL=1 for the full matrix, or SP_BENCH_SIZES / SP_BENCH_STEPS, e.g.
"4096,2**20").  Every case records neuron-steps/s, the bytes moved per
neuron-step (docs/numerics.md section 4), the achieved bandwidth and its
fraction of a same-run device copy of the same bytes in ``extra_info``.
Compilation and warm-up are excluded; every round blocks on its result.
"""
import os

import jax
import pytest

from surrogate_pallas.tooling import bench


def _env_ints(name):
    text = os.environ.get(name)
    return bench.positive_ints(text) if text else None


CASES = bench.matrix(full=bool(os.environ.get("SP_BENCH_FULL")), sizes=_env_ints("SP_BENCH_SIZES"),
                     steps=_env_ints("SP_BENCH_STEPS"))


@pytest.mark.parametrize("case", CASES, ids=[c.key for c in CASES])
def test_kernel(benchmark, case):
    fn, args = bench.build(case)
    jax.block_until_ready(fn(*args))  # compile and warm up outside the timed rounds
    benchmark.group = case.id
    benchmark.pedantic(lambda: jax.block_until_ready(fn(*args)), rounds=10, warmup_rounds=2, iterations=1)
    t = benchmark.stats.stats.median
    bpns = bench.bytes_per_neuron_step(case)
    total = bpns * case.n * case.T
    t_copy = bench.copy_seconds(int(total))  # same run, right after the case
    benchmark.extra_info.update(
        neuron_steps_per_s=case.n * case.T / t, bytes_per_neuron_step=bpns, achieved_GBps=total / t / 1e9,
        copy_GBps=total / t_copy / 1e9, roofline_fraction=t_copy / t)
