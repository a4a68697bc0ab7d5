"""Mosaic GPU's blocking: a population flattened to (rows, 128) tiles, padded to whole blocks.

Its TMA pipeline stages whole ``(time_chunk, rows, 128)`` blocks in shared memory,
so ragged N and T are padded here and sliced back (on a GPU a reshape is free;
the pad and slice are not, which is why only Mosaic GPU uses this).
"""
from __future__ import annotations

import dataclasses
import math

import jax.numpy as jnp

from .blocks import LANES, MOSAIC_SMEM_BUDGET, BlockSizes

PIPELINE_DEPTH = 3  # time chunks in flight per operand: one computing, two loading (TMA)


@dataclasses.dataclass(frozen=True)
class MosaicPlan:
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


def make_mosaic_plan(n: int, T: int, bytes_per_step: int, block_sizes: BlockSizes | None) -> MosaicPlan:
    rows0 = max(1, -(-n // LANES))
    bs = block_sizes or BlockSizes()
    br, tc = bs.block_rows or 8, bs.time_chunk or min(max(T, 1), 4)
    if br % 8:
        raise ValueError(f"block_sizes.block_rows: must be a multiple of 8 for Mosaic GPU, got {br}")
    tc = max(1, min(tc, max(T, 1)))
    smem = lambda tc: PIPELINE_DEPTH * tc * br * LANES * bytes_per_step
    if bs.time_chunk is None:  # the default chunk shrinks to fit a kernel with many operands
        while tc > 1 and smem(tc) > MOSAIC_SMEM_BUDGET:
            tc //= 2
    block_bytes = smem(tc)
    if block_bytes > MOSAIC_SMEM_BUDGET:
        raise ValueError(f"block_sizes: block_rows={br}, time_chunk={tc} need {block_bytes // 1024} KiB of "
                         f"shared memory, more than the {MOSAIC_SMEM_BUDGET // 1024} KiB Mosaic GPU budget; "
                         "make them smaller")
    return MosaicPlan(rows=_round_up(rows0, br), block_rows=br, time_chunk=tc, t_pad=_round_up(max(T, 1), tc))


def to_tiles(x, plan: MosaicPlan, time_major: bool):
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
