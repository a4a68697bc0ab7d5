"""Refresh this GPU's Triton block sizes in ``kernels/block_table.json`` (needs an NVIDIA GPU).

For each population size, every candidate ``block_lanes`` is timed on the training forward +
backward (SpikingJelly preset, f32, T=64), round-robin in one run; the fastest is written under
the GPU's device kind, keyed by the power of two at or below N, where ``lif_sequence`` finds it.

    python benchmarks/autotune_blocks.py [--sizes 65536,1048576,16777216] [--dry-run]
"""
from __future__ import annotations

import argparse
import json
import sys

import jax
import jax.numpy as jnp

import surrogate_pallas as sp
from surrogate_pallas.bench import measure_interleaved
from surrogate_pallas.kernels import layout

CANDIDATES = (256, 512, 1024, 2048, 4096)


def program(n, block_lanes, T=64):
    p = sp.LIFParams.spikingjelly()
    bs = sp.BlockSizes(block_lanes=block_lanes)

    def loss(j, v):
        st, out = sp.lif_sequence(j, sp.LIFState(v), p, backend="triton", block_sizes=bs)
        return jnp.sum(out.s) + jnp.sum(st.v)
    j = 0.6 + jax.random.normal(jax.random.PRNGKey(0), (T, n))
    return jax.jit(jax.grad(loss, (0, 1))), (j, jnp.zeros((n,)))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="65536,1048576,16777216", help="comma-separated population sizes")
    ap.add_argument("--dry-run", action="store_true", help="print the tuned table, do not write it")
    args = ap.parse_args(argv)
    try:
        kind = jax.devices("gpu")[0].device_kind
    except RuntimeError:
        print("error: autotuning Triton blocks needs an NVIDIA GPU; none is visible to JAX", file=sys.stderr)
        return 2
    table = json.loads(layout.BLOCK_TABLE.read_text())
    entry = table.setdefault(kind, dict(table["default"]))
    tuned = entry.setdefault("triton_block_lanes", {})
    for n in (int(x) for x in args.sizes.split(",")):
        cands = [b for b in CANDIDATES if b <= max(256, n)]
        times = measure_interleaved([program(n, b) for b in cands], min_time=0.2)
        best = cands[min(range(len(cands)), key=times.__getitem__)]
        tuned[str(1 << (n.bit_length() - 1))] = best
        print(f"{kind}: N={n}: " + ", ".join(f"{b}: {t * 1e3:.3f} ms" for b, t in zip(cands, times)) + f" -> {best}")
    if args.dry_run:
        print(json.dumps({kind: entry}, indent=1))
    else:
        layout.BLOCK_TABLE.write_text(json.dumps(table, indent=2) + "\n")
        print(f"wrote {layout.BLOCK_TABLE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
