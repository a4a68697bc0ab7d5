"""Time the Triton block sizes on this GPU and print the best ``BlockSizes`` per population size
(needs an NVIDIA GPU).

For each population size, every candidate ``block_lanes`` is timed on the training forward +
backward (SpikingJelly preset, f32, T=64), round-robin in one run, against the library's default
(two programs per streaming multiprocessor, ``kernels/blocks.py``).  Where a candidate beats the
default, pass it as ``lif_sequence(..., block_sizes=sp.BlockSizes(block_lanes=B))``.

    python benchmarks/autotune_blocks.py [--sizes 65536,1048576,16777216] [--json FILE]
"""
from __future__ import annotations

import argparse
import json
import sys

import jax
import jax.numpy as jnp

import surrogate_pallas as sp
from surrogate_pallas.kernels import blocks
from surrogate_pallas.tooling.bench import measure_interleaved

CANDIDATES = (256, 512, 1024, 2048, 4096)


def program(n, block_lanes, T=64):
    p = sp.presets.spikingjelly()
    bs = None if block_lanes is None else sp.BlockSizes(block_lanes=block_lanes)

    def loss(j, v):
        st, out = sp.lif_sequence(j, sp.NeuronState(v), p, backend="triton", block_sizes=bs)
        return jnp.sum(out.s) + jnp.sum(st.v)
    j = 0.6 + jax.random.normal(jax.random.PRNGKey(0), (T, n))
    return jax.jit(jax.grad(loss, (0, 1))), (j, jnp.zeros((n,)))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="65536,1048576,16777216", help="comma-separated population sizes")
    ap.add_argument("--json", help="also write the timings and the choice per size to this file")
    args = ap.parse_args(argv)
    try:
        kind = jax.devices("gpu")[0].device_kind
    except RuntimeError:
        print("error: autotuning Triton blocks needs an NVIDIA GPU; none is visible to JAX", file=sys.stderr)
        return 2
    sms = blocks.GPU_SMS.get(kind, blocks.DEFAULT_SMS)
    report = {"device": kind, "sms": sms, "sizes": {}}
    for n in (int(x) for x in args.sizes.split(",")):
        default = blocks.make_block_plan("triton", (n,), 64, [4, 4], [4, 4], None, kind).block_lanes
        cands = [b for b in CANDIDATES if b <= max(256, n)]
        times = measure_interleaved([program(n, b) for b in cands], min_time=0.2)
        best = cands[min(range(len(cands)), key=times.__getitem__)]
        report["sizes"][n] = dict(default=default, best=best, ms={b: t * 1e3 for b, t in zip(cands, times)})
        print(f"{kind}: N={n}: " + ", ".join(f"{b}: {t * 1e3:.3f} ms" for b, t in zip(cands, times))
              + f" -> best {best} (default {default})"
              + ("" if best == default else f"; pass sp.BlockSizes(block_lanes={best})"))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
