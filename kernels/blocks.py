"""How each target blocks the arrays as they are: no copy, pad or slice of a sequence.

A kernel streams time-major operands ``[T, *pop]`` and reads or writes
per-neuron operands ``[*pop]``.  Every target blocks these arrays in a layout
that costs nothing to reach, and handles ragged sizes with partial edge blocks
(``pl.cdiv`` grids: loads past the edge are unspecified, stores past it are
dropped) and the last, partial time chunk with the kernel's ``t < T`` mask:

* **TPU** (``tpu``, ``interpret_tpu``): HBM arrays are tiled over their last two
  dims, so a reshape that changes those dims is a copy.  A 1-D population keeps
  ``[T, N]`` (time on sublanes) and blocks ``(time_chunk, lanes)``; its
  per-neuron operands are viewed as ``[1, N]`` (a copy of one state, not of a
  sequence).  A population of 2 or more dims keeps ``[T, *pop]`` and blocks
  ``(time_chunk, 1.., rows, lanes)`` over its own last two dims.  The step loop
  runs over strips of lanes, so the carried state stays within the vector
  registers.
* **Triton** (``triton``): a reshape is free on GPUs, so ``[T, N]`` with
  ``(T, lanes)`` blocks; each program loops over all T with its state in
  registers.
* **interpret**: the TPU layout of a flattened population, chunked in time.
* **Mosaic GPU** (``mosaic``): its TMA pipeline wants whole ``(rows, 128)``
  tiles, so it pads to them (``mosaic_tiling.py``); it is the one target that does.
"""
from __future__ import annotations

import dataclasses
import math

from jax.experimental import pallas as pl

LANES = 128
TARGETS = ("interpret", "interpret_tpu", "interpret_triton", "tpu", "triton", "mosaic")
TRITON_TARGETS = ("triton", "interpret_triton")  # interpret_triton: the Triton launch, interpreted (tests)
TPU_VMEM_BUDGET = 16 * 2**20  # the default scoped-VMEM limit on v5e and later
TPU_BLOCK_TARGET = 4 * 2**20  # double-buffered blocks aimed at: big DMAs, room to spare
MOSAIC_SMEM_BUDGET = 200 * 2**10  # Hopper: ~227 KiB per block, minus headroom
STRIP_ELEMENTS = 8 * 1024  # one strip of the step loop: 8 f32 vregs of (8, 128)
# streaming multiprocessors per GPU kind: the default Triton block gives each two programs.  A kind
# not listed (or lowering with no GPU) uses DEFAULT_SMS; ``benchmarks/autotune_blocks.py`` times the
# candidate blocks on a real GPU and prints the ``BlockSizes`` to pass where the default is not best.
GPU_SMS = {"NVIDIA H200": 132, "NVIDIA H100 80GB HBM3": 132, "NVIDIA H100 PCIe": 114,
           "NVIDIA A100-SXM4-80GB": 108, "NVIDIA A100-SXM4-40GB": 108, "NVIDIA L4": 58,
           "NVIDIA GeForce RTX 4090": 128}
DEFAULT_SMS = 132


@dataclasses.dataclass(frozen=True)
class BlockSizes:
    """Optional overrides of the per-target defaults.

    block_lanes: neurons per block along the population's last dim (TPU and
      interpret: a multiple of 128 or the whole dim; Triton: a power of two).
    block_rows: rows per block along the second-to-last population dim (TPU, 2-D
      and larger populations: a multiple of the dtype's sublane tile, 8/16/32,
      or the whole dim); Mosaic GPU: rows of 128 neurons, a multiple of 8.
    time_chunk: steps per pipelined block (TPU, Mosaic GPU, interpret; a 1-D
      population on TPU keeps time on sublanes: a multiple of 32 or all of T).
      Triton programs loop over all T with the state in registers and ignore it.
    """

    block_lanes: int | None = None
    block_rows: int | None = None
    time_chunk: int | None = None


@dataclasses.dataclass(frozen=True)
class BlockPlan:
    """Shapes the kernel sees and how it blocks them."""

    seq_shape: tuple[int, ...]      # time-major operands, as passed
    state_shape: tuple[int, ...]    # per-neuron operands, as passed
    seq_block: tuple               # block of a time-major operand (None: squeezed dim)
    state_block: tuple
    grid: tuple[int, ...]          # population blocks, then time chunks (if chunked)
    time_chunk: int
    n_chunks: int
    strip: int                     # lanes per strip of the step loop
    time_on_sublanes: bool         # 1-D population on TPU: step k is row k of the block
    group: int = 1                 # time on sublanes: steps loaded and stored as one aligned tile

    @property
    def block_lanes(self):
        return self.seq_block[-1]


def _pow2_floor(x):
    return 1 << max(0, int(x).bit_length() - 1)


def _sublane_unit(itemsizes):
    """Rows of one TPU tile for the narrowest dtype: (8, 128) f32, (16, 128) 16-bit, (32, 128) 8-bit."""
    return 32 // min(itemsizes) if itemsizes else 8


def _check_positive(name, v):
    if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v <= 0):
        raise ValueError(f"block_sizes.{name}: expected a positive int, got {v!r}")


def _fit(requested, dim, unit, name, why):
    """A block dim: the whole dim, or a multiple of ``unit``; a request is checked, not adjusted."""
    if requested is None:
        return None
    if requested >= dim:
        return dim
    if requested % unit:
        raise ValueError(f"block_sizes.{name}: must be a multiple of {unit} {why} (or cover the whole "
                         f"dim of {dim}), got {requested}")
    return requested


def make_block_plan(target: str, pop: tuple[int, ...], T: int, seq_itemsizes, state_itemsizes,
              block_sizes: BlockSizes | None, device_kind: str | None = None) -> BlockPlan:
    """Choose block sizes for ``target``; validate user overrides with errors that say what fits.

    seq_itemsizes: bytes per element of every time-major operand (inputs and outputs);
    state_itemsizes: the same for the per-neuron operands; device_kind: the GPU's, for Triton.
    """
    if target not in TARGETS:
        raise ValueError(f"target: expected one of {TARGETS}, got {target!r}")
    bs = block_sizes or BlockSizes()
    for name in ("block_lanes", "block_rows", "time_chunk"):
        _check_positive(name, getattr(bs, name))
    T = max(T, 1)
    n = max(math.prod(pop), 1)
    step_bytes = sum(seq_itemsizes)  # per neuron and step, all time-major operands
    if target in TRITON_TARGETS:
        return _triton_plan(pop, T, n, bs, GPU_SMS.get(device_kind, DEFAULT_SMS))
    if target == "interpret" or len(pop) < 2:
        return _tpu_flat_plan(target, T, n, step_bytes, seq_itemsizes, bs)
    return _tpu_nd_plan(pop, T, step_bytes, seq_itemsizes + state_itemsizes, bs)


def _chunks(T, tc):
    return tc, -(-T // tc)


def _tpu_flat_plan(target, T, n, step_bytes, seq_itemsizes, bs):
    unit_t = 32  # time on sublanes: a multiple of every dtype's tile rows (f32 8, 16-bit 16, int8 32)
    if target == "interpret":
        tc = min(bs.time_chunk or 32, T)  # the interpreter has no tiling rules
    elif bs.time_chunk is not None:
        tc = _fit(bs.time_chunk, T, unit_t, "time_chunk",
                  "for a 1-D population on TPU (time is the sublane axis of [T, N])")
    else:  # all of T when short; else chunks of 32 (a ragged T then unrolls 32 steps, not T)
        tc = T if T <= 32 or (T <= 64 and T % 32 == 0) else 32
    # steps move as whole (rows, lanes) tiles of the narrowest dtype: a packed dtype cannot be
    # addressed one row at an unaligned offset
    group = _sublane_unit(seq_itemsizes)
    group = group if tc % group == 0 else tc
    strip = max(LANES, STRIP_ELEMENTS // group // LANES * LANES)  # a group's tile of one input: 8 vregs
    if bs.block_lanes is not None:
        bn = _fit(bs.block_lanes, n, LANES, "block_lanes", "on TPU (its 128-lane tiles)")
    else:
        bn = 4 * strip  # four strips: the unrolled group loop stays small
        bn = n if bn >= n else bn
    _check_vmem(2 * tc * bn * step_bytes, bs)
    # the interpreter has no vector registers to spare and runs each unrolled step slowly: one strip
    strip = strip if bn % strip == 0 and target != "interpret" else bn
    tc, nc = _chunks(T, tc)
    return BlockPlan(seq_shape=(T, n), state_shape=(1, n), seq_block=(tc, bn), state_block=(1, bn),
                grid=(-(-n // bn), nc), time_chunk=tc, n_chunks=nc, strip=strip, time_on_sublanes=True, group=group)


def _tpu_nd_plan(pop, T, step_bytes, itemsizes, bs):
    *lead, M, L = pop
    unit = _sublane_unit(itemsizes)
    tc = bs.time_chunk or 8
    tc = min(tc, T)
    if bs.block_lanes is not None:
        bl = _fit(bs.block_lanes, L, LANES, "block_lanes", "on TPU (its 128-lane tiles)")
    else:
        bl = L if L <= 2048 else 2048
    if bs.block_rows is not None:
        bm = _fit(bs.block_rows, M, unit, "block_rows", f"on TPU (its ({unit}, 128) tiles for these dtypes)")
    else:
        rows = TPU_BLOCK_TARGET // (2 * tc * bl * max(step_bytes, 1))
        bm = M if rows >= M else max(unit, rows // unit * unit)
    _check_vmem(2 * tc * bm * bl * step_bytes, bs)
    strip = bl
    if bl % LANES == 0:
        strip = max(LANES, min(bl, STRIP_ELEMENTS // bm // LANES * LANES))
        while bl % strip:
            strip -= LANES
    tc, nc = _chunks(T, tc)
    squeezed = (pl.Squeezed(),) * len(lead) if hasattr(pl, "Squeezed") else (None,) * len(lead)
    return BlockPlan(seq_shape=(T, *pop), state_shape=tuple(pop), seq_block=(tc, *squeezed, bm, bl),
                state_block=(*squeezed, bm, bl), grid=(*lead, -(-M // bm), -(-L // bl), nc), time_chunk=tc,
                n_chunks=nc, strip=strip, time_on_sublanes=False)


def _triton_plan(pop, T, n, bs, sms):
    if bs.block_lanes is not None:
        bn = bs.block_lanes
        if bn & (bn - 1):
            raise ValueError(f"block_sizes.block_lanes: must be a power of two for Triton, got {bn}")
    else:
        # enough programs to fill the GPU (two per SM), each 256..2048 neurons
        bn = max(256, min(2048, _pow2_floor(max(n // (2 * sms), 1))))
        bn = min(bn, 1 << max(0, (n - 1).bit_length()))
    return BlockPlan(seq_shape=(T, n), state_shape=(n,), seq_block=(T, bn), state_block=(bn,),
                grid=(-(-n // bn),), time_chunk=T, n_chunks=1, strip=bn, time_on_sublanes=False)


def _check_vmem(block_bytes, bs):
    if block_bytes > TPU_VMEM_BUDGET:
        raise ValueError(f"block_sizes: {bs} needs {block_bytes / 2**20:.1f} MiB of double-buffered VMEM, "
                         f"more than the {TPU_VMEM_BUDGET // 2**20} MiB budget; make the blocks smaller")
