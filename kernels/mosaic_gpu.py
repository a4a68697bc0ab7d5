"""Launch a ``Spec`` on Mosaic GPU with ``plgpu.kernel`` (``pallas_call`` is deprecated there).

One CTA per block of rows: the state is read from global memory into
registers, time chunks stream through shared memory with ``emit_pipeline``
(TMA copies, overlapped with compute), the state is the pipeline's carry, and
it is written back once at the end.  (JAX's interpreter has no rules for the
TMA copies, so on CPU this path is checked by lowering; its numerics are
checked on a GPU by benchmarks/gpu_check.sh.)
"""
from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
from jax import lax
from jax.experimental import pallas as pl
from jax.experimental.pallas import mosaic_gpu as plgpu

from .body import run_chunk, split_refs
from .mosaic_tiling import LANES, PIPELINE_DEPTH, MosaicPlan

F32 = jnp.float32
VEC = 2  # elements per thread per access: 8 B of f32, 4 B of bf16


def _load(ref, idx, registers):
    """``plgpu.load`` at ``idx``: JAX <= 0.11 takes the index, newer JAX an indexed ref."""
    if _LOAD_TAKES_IDX:
        return plgpu.load(ref, idx, layout=registers)
    return plgpu.load(ref.at[idx], layout=registers)


_LOAD_TAKES_IDX = "idx" in inspect.signature(plgpu.load).parameters


def launch(spec, plan: MosaicPlan, target, T, seq_in, state_in, per_neuron, scalars, seq_out_dtypes, state_out_dtypes):
    br, tc, nc = plan.block_rows, plan.time_chunk, plan.n_chunks
    T_mask = T if plan.t_pad != T else None
    # one register layout for every operand, whatever its storage dtype, so they combine pointwise
    registers = plgpu.Layout.WG_STRIDED((br, LANES), vec_size=VEC)

    def load(ref, idx):
        return _load(ref, idx, registers).astype(F32)

    def body(*refs):
        seq_in_g, state_in_g, per_neuron_g, scalars_g, seq_out_g, state_out_g, _ = split_refs(spec, refs)
        b = lax.axis_index("blocks")
        rows = pl.ds(b * br, br)
        cvals = tuple(load(r, (rows, slice(None))) for r in per_neuron_g)
        tvals = tuple(load(r, (slice(None), slice(None))) for r in scalars_g)
        carry = tuple(load(r, (rows, slice(None))) for r in state_in_g)
        time_block = (lambda c: nc - 1 - c) if spec.reverse else (lambda c: c)

        def pipe(idx, *smem_and_carry):
            *smem, carry = smem_and_carry
            s_in, s_out = smem[:len(seq_in_g)], smem[len(seq_in_g):]
            return run_chunk(spec, cvals, tvals, carry, s_in, s_out, tc, time_block(idx[0]) * tc, T_mask, load=load)

        block = plgpu.BlockSpec((tc, br, LANES), lambda c: (time_block(c), b, 0))
        carry = plgpu.emit_pipeline(pipe, grid=(nc,), in_specs=[block] * len(seq_in_g),
                                    out_specs=[block] * len(seq_out_g), max_concurrent_steps=PIPELINE_DEPTH,
                                    init_carry=carry)(*seq_in_g, *seq_out_g)
        for r, v in zip(state_out_g, carry):
            r[rows, :] = v.astype(r.dtype)

    out_type = tuple(jax.ShapeDtypeStruct((plan.t_pad, plan.rows, LANES), d) for d in seq_out_dtypes) + tuple(
        jax.ShapeDtypeStruct((plan.rows, LANES), d) for d in state_out_dtypes)
    outs = plgpu.kernel(body, out_type=out_type, grid=(plan.n_blocks,), grid_names=("blocks",))(
        *seq_in, *state_in, *per_neuron, *scalars)
    return outs[:len(seq_out_dtypes)], outs[len(seq_out_dtypes):]
