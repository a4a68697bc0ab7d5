"""CPU: the library's default path against a plain ``lax.scan`` a JAX user writes, side by side.

SpikingJelly preset (tau=10, decay_input=False, soft reset), T=64, 32 x 4096 neurons, f32:
forward and forward + backward, each timed round-robin with its plain-scan twin in one run
(``bench.measure_interleaved``), repeated; prints the ratios (> 1: the library is faster): their
median over the rounds, range, and a bootstrap 95% interval of that median.

    python benchmarks/cpu_vs_scan.py [--rounds 5]
"""
from __future__ import annotations

import argparse
import math
import os
import random
from statistics import median

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import surrogate_pallas as sp  # noqa: E402  (first: JAX imports without the CUDA plugin's start-up lines)
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from jax import lax  # noqa: E402
from surrogate_pallas.tooling.baselines import atan_spike  # noqa: E402
from surrogate_pallas.tooling.bench import measure_interleaved  # noqa: E402

TAU, T, SHAPE = 10.0, 64, (32, 4096)


def plain(j, v0):
    """SpikingJelly LIFNode(tau, decay_input=False, v_reset=None) as a user writes it."""
    def step(v, x):
        h = v - v / TAU + x
        s = atan_spike(h - 1.0)
        return h - s, s
    v, s = lax.scan(step, v0, j)
    return s, v


def library(residuals):
    p = sp.presets.spikingjelly(tau=TAU, decay_input=False, v_reset=None)

    def f(j, v0):
        st, out = sp.lif_sequence(j, sp.NeuronState(v0), p, **({} if residuals is None else dict(residuals=residuals)))
        return out.s, st.v
    return f


def fwdbwd(f):
    """The gradient of a readout of the spikes and the final membrane, as a training step takes it."""
    def loss(j, v, w):
        s, v_T = f(j, v)
        return jnp.sum(s * w) + jnp.sum(v_T)
    return jax.jit(jax.grad(loss, (0, 1)))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5, help="repeats of the interleaved measurement")
    args = ap.parse_args(argv)
    key = jax.random.PRNGKey(0)
    j = 0.3 + 0.5 * jax.random.normal(key, (T, *SHAPE))
    v0 = jnp.zeros(SHAPE)
    modes = {"default": None, "bf16": "bf16", "exact": "exact"}
    w = jnp.cos(jnp.arange(j.size, dtype=jnp.float32)).reshape(j.shape)
    for what, wrap, args_ in (("forward", jax.jit, (j, v0)), ("forward+backward", fwdbwd, (j, v0, w))):
        fns = [(wrap(plain), args_)] + [(wrap(library(r)), args_) for r in modes.values()]
        ratios = {m: [] for m in modes}
        for _ in range(args.rounds):
            t = measure_interleaved(fns, min_time=0.2)
            for m, tm in zip(modes, t[1:]):
                ratios[m].append(t[0] / tm)
        ns = t[0] / (T * math.prod(SHAPE)) * 1e9
        print(f"{what}: plain scan {ns:.2f} ns/neuron-step; library speed vs plain scan (median, range):")
        for m, r in ratios.items():
            lo, hi = median_interval(r)
            r = sorted(r)
            print(f"  residuals={m:<8} {median(r):.2f}x  (range {r[0]:.2f}-{r[-1]:.2f}; 95% interval of the median "
                  f"{lo:.2f}-{hi:.2f})")


def median_interval(xs, level=0.95, resamples=4000):
    """A bootstrap interval of the median of ``xs`` (rounds resampled with replacement)."""
    rng = random.Random(0)
    meds = sorted(median(rng.choices(xs, k=len(xs))) for _ in range(resamples))
    cut = int((1 - level) / 2 * resamples)
    return meds[cut], meds[-cut - 1]


if __name__ == "__main__":
    main()
