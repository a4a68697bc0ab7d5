"""Launch a ``Spec`` with ``pl.pallas_call``: Pallas TPU (Mosaic), Pallas Triton, and both interpreters."""
from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl

from . import launches
from .body import pallas_body
from .layout import LANES, Plan

F32 = jnp.float32
TRITON_PARAMS = dict(num_warps=4, num_stages=1)


def _compiler(target):
    if target == "tpu":
        from jax.experimental.pallas import tpu as pltpu
        return dict(compiler_params=pltpu.CompilerParams(dimension_semantics=("parallel", "arbitrary")))
    if target == "triton":
        from jax.experimental.pallas import triton as pltriton
        return dict(compiler_params=pltriton.CompilerParams(**TRITON_PARAMS))
    if target == "interpret_tpu":
        from jax.experimental.pallas import tpu as pltpu
        return dict(interpret=pltpu.InterpretParams(detect_races=True))
    return dict(interpret=True)


def launch(spec, plan: Plan, target, T, seq_in, state_in, consts, tiles, seq_out_dtypes, state_out_dtypes):
    """All operands already tiled: seq (t_pad, rows, 128), state/consts (rows, 128), tiles (block_rows, 128)."""
    br, tc = plan.block_rows, plan.time_chunk
    one_chunk = target == "triton"  # Triton programs run in parallel: no sequential grid axis
    if one_chunk:
        grid, tc, nc = (plan.n_blocks,), plan.t_pad, 1
        seq_spec = pl.BlockSpec((tc, br, LANES), lambda i: (0, i, 0))
        row_spec = pl.BlockSpec((br, LANES), lambda i: (i, 0))
        tile_spec = pl.BlockSpec((br, LANES), lambda i: (0, 0))
        scratch = ()
    else:
        nc = plan.n_chunks
        grid = (plan.n_blocks, nc)
        time_block = (lambda c: nc - 1 - c) if spec.reverse else (lambda c: c)
        seq_spec = pl.BlockSpec((tc, br, LANES), lambda i, c: (time_block(c), i, 0))
        row_spec = pl.BlockSpec((br, LANES), lambda i, c: (i, 0))
        tile_spec = pl.BlockSpec((br, LANES), lambda i, c: (0, 0))
        from jax.experimental.pallas import tpu as pltpu
        scratch = tuple(pltpu.VMEM((br, LANES), F32) for _ in range(spec.n_state))
    out_shape = tuple(jax.ShapeDtypeStruct((plan.t_pad, plan.rows, LANES), d) for d in seq_out_dtypes) + tuple(
        jax.ShapeDtypeStruct((plan.rows, LANES), d) for d in state_out_dtypes)
    kernel = functools.partial(pallas_body, spec, nc, tc, T, plan.t_pad != T)
    call = pl.pallas_call(
        kernel, out_shape=out_shape, grid=grid,
        in_specs=[seq_spec] * len(seq_in) + [row_spec] * (len(state_in) + len(consts)) + [tile_spec] * len(tiles),
        out_specs=tuple([seq_spec] * len(seq_out_dtypes) + [row_spec] * len(state_out_dtypes)),
        scratch_shapes=scratch, name=spec.name, **_compiler(target))
    operands = (*seq_in, *state_in, *consts, *tiles)
    blocks = [(tc, br, LANES)] * (len(seq_in) + len(seq_out_dtypes)) + [(br, LANES)] * (
        len(operands) - len(seq_in) + len(state_out_dtypes))
    dtypes = [a.dtype for a in operands[:len(seq_in)]] + [jnp.dtype(d) for d in seq_out_dtypes] + [
        a.dtype for a in operands[len(seq_in):]] + [jnp.dtype(d) for d in state_out_dtypes]
    launches.record(name=spec.name, target=target, grid=grid,
                    # Pallas double-buffers every blocked operand; the carried state is scratch
                    vmem_bytes=2 * sum(math.prod(b) * d.itemsize for b, d in zip(blocks, dtypes))
                    + len(scratch) * br * LANES * 4,
                    **(TRITON_PARAMS if target == "triton" else {}))
    outs = call(*operands)
    return outs[:len(seq_out_dtypes)], outs[len(seq_out_dtypes):]
