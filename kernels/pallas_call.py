"""Launch a ``Spec`` with ``pl.pallas_call``: Pallas TPU (Mosaic), Pallas Triton, and both interpreters.

Operands arrive in the plan's shapes (``blocks.make_block_plan``); partial edge blocks and the partial
last time chunk are Pallas's masked edges and the body's ``t < T`` mask, never padding.
"""
from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl

from . import launches
from .body import pallas_body
from .blocks import TRITON_TARGETS, BlockPlan

F32 = jnp.float32
TRITON_PARAMS = dict(num_warps=4, num_stages=1)


def _compiler(target, n_grid):
    if target == "tpu":
        from jax.experimental.pallas import tpu as pltpu
        return dict(compiler_params=pltpu.CompilerParams(
            dimension_semantics=("parallel",) * (n_grid - 1) + ("arbitrary",)))
    if target == "triton":
        from jax.experimental.pallas import triton as pltriton
        return dict(compiler_params=pltriton.CompilerParams(**TRITON_PARAMS))
    if target == "interpret_tpu":
        from jax.experimental.pallas import tpu as pltpu
        return dict(interpret=pltpu.InterpretParams(detect_races=True))
    return dict(interpret=True)


def _squeezed(d):
    return d is None or not isinstance(d, int)


def _dense(block):
    """The block's shape as the kernel sees it (squeezed dims dropped)."""
    return tuple(d for d in block if not _squeezed(d))


def launch(spec, plan: BlockPlan, target, T, seq_in, state_in, per_neuron, scalars, seq_out_dtypes, state_out_dtypes):
    """seq operands in ``plan.seq_shape``, state and per-neuron operands in ``plan.state_shape``; scalars are 0-d."""
    nc = plan.n_chunks
    chunked = target not in TRITON_TARGETS
    if chunked:
        time_block = (lambda c: nc - 1 - c) if spec.reverse else (lambda c: c)
        seq_index = lambda *g: (time_block(g[-1]), *g[:-1])
        row_index = (lambda i, c: (0, i)) if plan.time_on_sublanes else (lambda *g: g[:-1])
    else:
        seq_index = lambda i: (0, i)
        row_index = lambda i: (i,)
    seq_spec = pl.BlockSpec(plan.seq_block, seq_index)
    row_spec = pl.BlockSpec(plan.state_block, row_index)
    scalar_shape = tuple(1 if _squeezed(d) else d for d in plan.state_block)
    scalar_spec = pl.BlockSpec(plan.state_block, lambda *g: (0,) * len(scalar_shape))
    scalar_blocks = tuple(jnp.full(scalar_shape, t, F32) for t in scalars)
    scratch = ()
    if chunked:
        from jax.experimental.pallas import tpu as pltpu
        scratch = tuple(pltpu.VMEM(_dense(plan.state_block), F32) for _ in range(spec.n_state))
    out_shape = tuple(jax.ShapeDtypeStruct(plan.seq_shape, d) for d in seq_out_dtypes) + tuple(
        jax.ShapeDtypeStruct(plan.state_shape, d) for d in state_out_dtypes)
    operands = (*seq_in, *state_in, *per_neuron, *scalar_blocks)
    call = pl.pallas_call(
        functools.partial(pallas_body, spec, plan, T), out_shape=out_shape, grid=plan.grid,
        in_specs=[seq_spec] * len(seq_in) + [row_spec] * (len(state_in) + len(per_neuron)) + [scalar_spec] * len(scalars),
        out_specs=tuple([seq_spec] * len(seq_out_dtypes) + [row_spec] * len(state_out_dtypes)),
        scratch_shapes=scratch, name=spec.name, **_compiler(target, len(plan.grid)))
    seq_bytes = sum(jnp.dtype(a.dtype).itemsize for a in seq_in) + sum(jnp.dtype(d).itemsize for d in seq_out_dtypes)
    row_bytes = sum(jnp.dtype(a.dtype).itemsize for a in operands[len(seq_in):]) + sum(
        jnp.dtype(d).itemsize for d in state_out_dtypes)
    launches.record(name=spec.name, target=target, grid=plan.grid,
                    # Pallas double-buffers every blocked operand; the carried state is f32 scratch
                    vmem_bytes=2 * (math.prod(_dense(plan.seq_block)) * seq_bytes
                                    + math.prod(_dense(plan.state_block)) * row_bytes)
                    + len(scratch) * math.prod(_dense(plan.state_block)) * 4,
                    **(TRITON_PARAMS if target == "triton" else {}))
    outs = call(*operands)
    return outs[:len(seq_out_dtypes)], outs[len(seq_out_dtypes):]
