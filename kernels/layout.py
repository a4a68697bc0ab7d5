"""Block sizes per target, and the (rows, 128) tiling of a population.

A population of any shape is flattened to N neurons, padded up to a whole
number of blocks and viewed as ``(rows, 128)``; sequences as ``(T, rows, 128)``.
Ragged N is normal input: the pad is sliced off again.
"""
from __future__ import annotations

import dataclasses
import math

import jax.numpy as jnp

LANES = 128
TARGETS = ("interpret", "interpret_tpu", "tpu", "triton", "mosaic")
TPU_VMEM_BUDGET = 16 * 2**20  # the default scoped-VMEM limit on v5e and later
MOSAIC_SMEM_BUDGET = 200 * 2**10  # Hopper: ~227 KiB per block, minus headroom


@dataclasses.dataclass(frozen=True)
class BlockSizes:
    """Optional overrides of the per-target defaults.

    block_rows: rows of 128 neurons per program (TPU: a multiple of 8, or 32
      with narrow dtypes; Triton: a power of two; Mosaic GPU: a multiple of 8).
    time_chunk: steps per pipelined block (TPU, Mosaic GPU, interpret); Triton
      programs loop over all T with the state in registers and ignore it.
    """

    block_rows: int | None = None
    time_chunk: int | None = None


@dataclasses.dataclass(frozen=True)
class Plan:
    rows: int  # padded rows
    block_rows: int
    time_chunk: int
    t_pad: int

    @property
    def n_blocks(self):
        return self.rows // self.block_rows

    @property
    def n_chunks(self):
        return self.t_pad // self.time_chunk


def _round_up(x, m):
    return -(-x // m) * m


def _pow2(x):
    return 1 << max(0, (x - 1).bit_length())


def _defaults(target, rows0, T, narrow):
    if target in ("tpu", "interpret_tpu"):
        unit = 32 if narrow else 8
        return min(128, _round_up(rows0, unit)), min(T, 8)
    if target == "triton":
        return min(16, _pow2(rows0)), T
    if target == "mosaic":
        return 8, min(T, 4)
    return min(512, _round_up(rows0, 8)), min(T, 32)  # interpret: big blocks run fastest on CPU


def make_plan(target: str, n: int, T: int, bytes_per_step: int, narrow: bool,
              block_sizes: BlockSizes | None) -> Plan:
    """Choose block sizes for ``target``; validate user overrides with errors that say what fits.

    bytes_per_step: bytes of all time-major operands for one neuron and one step.
    """
    if target not in TARGETS:
        raise ValueError(f"target: expected one of {TARGETS}, got {target!r}")
    rows0 = max(1, -(-n // LANES))
    br, tc = _defaults(target, rows0, max(T, 1), narrow)
    bs = block_sizes or BlockSizes()
    if bs.block_rows is not None:
        br = bs.block_rows
        if not isinstance(br, int) or br <= 0:
            raise ValueError(f"block_sizes.block_rows: expected a positive int, got {br!r}")
        unit = 32 if narrow else 8
        if target in ("tpu", "interpret_tpu") and br % unit:
            raise ValueError(f"block_sizes.block_rows: must be a multiple of {unit} on TPU "
                             f"(its ({unit}, 128) tiling for these dtypes), got {br}")
        if target == "triton" and br & (br - 1):
            raise ValueError(f"block_sizes.block_rows: must be a power of two for Triton, got {br}")
        if target == "mosaic" and br % 8:
            raise ValueError(f"block_sizes.block_rows: must be a multiple of 8 for Mosaic GPU, got {br}")
    if bs.time_chunk is not None:
        if not isinstance(bs.time_chunk, int) or bs.time_chunk <= 0:
            raise ValueError(f"block_sizes.time_chunk: expected a positive int, got {bs.time_chunk!r}")
        if target != "triton":
            tc = bs.time_chunk
    tc = max(1, min(tc, max(T, 1)))
    block_bytes = 2 * tc * br * LANES * bytes_per_step  # double-buffered time-major blocks
    if target in ("tpu", "interpret_tpu") and block_bytes > TPU_VMEM_BUDGET:
        raise ValueError(f"block_sizes: block_rows={br}, time_chunk={tc} need {block_bytes / 2**20:.1f} MiB of "
                         f"VMEM, more than the {TPU_VMEM_BUDGET // 2**20} MiB budget; make them smaller")
    if target == "mosaic" and block_bytes > MOSAIC_SMEM_BUDGET:
        raise ValueError(f"block_sizes: block_rows={br}, time_chunk={tc} need {block_bytes // 1024} KiB of "
                         f"shared memory, more than the {MOSAIC_SMEM_BUDGET // 1024} KiB Mosaic GPU budget; "
                         "make them smaller")
    return Plan(rows=_round_up(rows0, br), block_rows=br, time_chunk=tc, t_pad=_round_up(max(T, 1), tc))


def to_tiles(x, plan: Plan, time_major: bool):
    """[T, *pop] -> (t_pad, rows, 128) or [*pop] -> (rows, 128), zero padded."""
    if time_major:
        T = x.shape[0]
        flat = x.reshape(T, -1)
        flat = jnp.pad(flat, ((0, plan.t_pad - T), (0, plan.rows * LANES - flat.shape[1])))
        return flat.reshape(plan.t_pad, plan.rows, LANES)
    flat = x.reshape(-1)
    return jnp.pad(flat, (0, plan.rows * LANES - flat.shape[0])).reshape(plan.rows, LANES)


def from_tiles(y, pop_shape, T=None):
    n = math.prod(pop_shape)
    if T is not None:
        return y.reshape(y.shape[0], -1)[:T, :n].reshape((T, *pop_shape))
    return y.reshape(-1)[:n].reshape(pop_shape)
