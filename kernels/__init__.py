"""Pallas kernel bodies and their per-target launch code (installed as ``surrogate_pallas.kernels``)."""
from __future__ import annotations

import math

import jax.numpy as jnp

from . import f16_bits, layout
from .layout import BlockSizes, make_plan

TPU_TARGETS = ("tpu", "interpret_tpu")


def run(spec, target, seq_in, state_in, consts, tiles, seq_out_dtypes, state_out_dtypes,
        block_sizes: BlockSizes | None = None):
    """Run ``spec`` on ``target`` over natural-shape arrays: seq [T, *pop], state/consts [*pop], tiles scalars.

    Returns (seq_outs [T, *pop], state_outs [*pop]) in the requested dtypes.
    """
    T = seq_in[0].shape[0]
    pop = tuple(state_in[0].shape)
    n = math.prod(pop)
    seq_dtypes = [a.dtype for a in seq_in] + [jnp.dtype(d) for d in seq_out_dtypes]
    bytes_per_step = sum(jnp.dtype(d).itemsize for d in seq_dtypes)
    narrow = any(jnp.dtype(d).itemsize < 4 for d in seq_dtypes + [a.dtype for a in state_in])
    plan = make_plan(target, n, T, bytes_per_step, narrow, block_sizes)
    bits = target in TPU_TARGETS  # float16 crosses a TPU kernel boundary as int16 bits (f16_bits)
    if bits:
        seq_in = [f16_bits.to_bits(a) for a in seq_in]
        state_in = [f16_bits.to_bits(a) for a in state_in]
        seq_out_dtypes = [f16_bits.carrier(d) for d in seq_out_dtypes]
        state_out_dtypes = [f16_bits.carrier(d) for d in state_out_dtypes]
    seq_t = [layout.to_tiles(a, plan, True) for a in seq_in]
    state_t = [layout.to_tiles(a, plan, False) for a in state_in]
    const_t = [layout.to_tiles(jnp.broadcast_to(c, pop).astype(jnp.float32), plan, False) for c in consts]
    tile_t = [jnp.full((plan.block_rows, layout.LANES), t, jnp.float32) for t in tiles]
    if target == "mosaic":
        from .mosaic_gpu import launch
    else:
        from .pallas_call import launch
    seq_o, state_o = launch(spec, plan, target, T, seq_t, state_t, const_t, tile_t,
                            tuple(seq_out_dtypes), tuple(state_out_dtypes))
    seq_o = tuple(layout.from_tiles(y, pop, T) for y in seq_o)
    state_o = tuple(layout.from_tiles(y, pop) for y in state_o)
    if bits:
        back = lambda y: f16_bits.from_bits(y) if y.dtype == f16_bits.BITS else y
        seq_o, state_o = tuple(map(back, seq_o)), tuple(map(back, state_o))
    return seq_o, state_o
