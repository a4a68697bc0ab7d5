"""``run``: a ``KernelSpec`` on one kernel target, over arrays in their natural shapes."""
from __future__ import annotations

import math

import jax.numpy as jnp

from . import f16_bits, mosaic_tiling
from .blocks import BlockSizes, make_block_plan

TPU_TARGETS = ("tpu", "interpret_tpu")
F32 = jnp.float32


def run(spec, target, seq_in, state_in, per_neuron, scalars, seq_out_dtypes, state_out_dtypes,
        block_sizes: BlockSizes | None = None):
    """Run ``spec`` on ``target`` over natural-shape arrays: seq [T, *pop], state and per-neuron operands [*pop], scalars 0-d.

    Returns (seq_outs [T, *pop], state_outs [*pop]) in the requested dtypes.
    """
    T = seq_in[0].shape[0]
    pop = tuple(state_in[0].shape)
    per_neuron = [jnp.broadcast_to(c, pop).astype(F32) for c in per_neuron]
    if target == "mosaic":
        return _run_mosaic(spec, T, pop, seq_in, state_in, per_neuron, scalars, seq_out_dtypes, state_out_dtypes,
                           block_sizes)
    bits = target in TPU_TARGETS  # float16 crosses a TPU kernel boundary as int16 bits (f16_bits)
    if bits:
        seq_in = [f16_bits.to_bits(a) for a in seq_in]
        state_in = [f16_bits.to_bits(a) for a in state_in]
        seq_out_dtypes = [f16_bits.carrier(d) for d in seq_out_dtypes]
        state_out_dtypes = [f16_bits.carrier(d) for d in state_out_dtypes]
    seq_sizes = [a.dtype.itemsize for a in seq_in] + [jnp.dtype(d).itemsize for d in seq_out_dtypes]
    state_sizes = [a.dtype.itemsize for a in (*state_in, *per_neuron)] + [jnp.dtype(d).itemsize for d in state_out_dtypes]
    plan = make_block_plan(target, pop, T, seq_sizes, state_sizes, block_sizes,
                     _gpu_kind() if target == "triton" else None)
    from .pallas_call import launch
    seq_o, state_o = launch(spec, plan, target, T, [a.reshape(plan.seq_shape) for a in seq_in],
                            [a.reshape(plan.state_shape) for a in state_in],
                            [c.reshape(plan.state_shape) for c in per_neuron], scalars,
                            tuple(seq_out_dtypes), tuple(state_out_dtypes))
    seq_o = tuple(y.reshape((T, *pop)) for y in seq_o)
    state_o = tuple(y.reshape(pop) for y in state_o)
    if bits:
        back = lambda y: f16_bits.from_bits(y) if y.dtype == f16_bits.BITS else y
        seq_o, state_o = tuple(map(back, seq_o)), tuple(map(back, state_o))
    return seq_o, state_o


def _gpu_kind():
    """The local GPU's kind, or None when lowering for CUDA without one."""
    import jax
    try:
        return jax.devices("gpu")[0].device_kind
    except RuntimeError:
        return None


def _run_mosaic(spec, T, pop, seq_in, state_in, per_neuron, scalars, seq_out_dtypes, state_out_dtypes, block_sizes):
    from .mosaic_gpu import launch
    bytes_per_step = sum(a.dtype.itemsize for a in seq_in) + sum(jnp.dtype(d).itemsize for d in seq_out_dtypes)
    plan = mosaic_tiling.make_mosaic_plan(math.prod(pop), T, bytes_per_step, block_sizes)
    to = mosaic_tiling.to_tiles
    scalar_blocks = [jnp.full((plan.block_rows, mosaic_tiling.LANES), t, F32) for t in scalars]
    seq_o, state_o = launch(spec, plan, "mosaic", T, [to(a, plan, True) for a in seq_in],
                            [to(a, plan, False) for a in state_in], [to(c, plan, False) for c in per_neuron], scalar_blocks,
                            tuple(seq_out_dtypes), tuple(state_out_dtypes))
    return (tuple(mosaic_tiling.from_tiles(y, pop, T) for y in seq_o),
            tuple(mosaic_tiling.from_tiles(y, pop) for y in state_o))
