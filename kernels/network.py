"""The fused network step: every population's update and threshold, the propagation of this step's
spikes through every projection, and the reset, in one kernel that runs a chunk of steps per launch.

The kernel knows no neuron: a ``NetworkSpec`` brings the update (state to charged values and spikes)
and the finish (charged values, after propagation, to the next state) as functions, built by
``surrogate_pallas.networks``; this module moves the arrays and propagates the spikes.

**Propagation** is event-driven over the fired neurons, in ascending order, one row of weights per
spike and projection: ``acc += W[i]``.  The rows are dense over the postsynaptic population, so a
spike costs its population's size (not its fan-out) and the weights cost ``n_pre x n_post``; in
exchange each target receives its increments in the order the CPU path adds them (a target a spike
does not reach gets ``+ 0``, which changes nothing), so the spikes are the same, bit for bit.  A
projection with delays has a pending buffer of ``L`` rows (``L - 1`` the largest delay): a spike
adds its delay-``d`` weights to row ``d``; row 0 is what arrives now, and the rows move down by one
each step.

**Targets.**

* ``tpu`` (Mosaic) and ``interpret_tpu``: the grid is the chunk's steps, run in order; the carried
  state stays in VMEM (output blocks whose index never changes) from the first step to the last;
  the weights stay in HBM and each spike's rows are copied in by DMA.  Populations are laid out
  ``[rows, 128]``.
* ``triton`` and ``interpret``: one program loops over the chunk's steps with the state in
  registers (the network must fit one block: ``fits_one_block``) and loads each spike's rows from
  global memory.  Populations are laid out ``[2^k]``.

Outputs per step: every population's spikes (int8) and the traced arrays the spec names.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from typing import Callable

import jax
import jax.numpy as jnp
from jax import lax
from jax.experimental import pallas as pl

from . import launches

F32 = jnp.float32
LANES = 128
TARGETS = ("tpu", "interpret_tpu", "triton", "interpret")
TPU = ("tpu", "interpret_tpu")
# one Triton program holds every carried array of the network in registers, 16 elements of each per
# thread.  Measured (XLA:GPU's Triton and the pip one, sm_80-sm_100, COBA): 4096 neurons in 8 warps
# take 167 registers and spill nothing; 16 warps at 4096 are capped below what they need and spill,
# and so do 32 warps at 16384.  So one block holds at most 4096 neurons.
ONE_BLOCK_MAX = 4096
PER_THREAD = 16


def triton_warps(shapes) -> int:
    """The warps of the one Triton program: 16 elements of the populations together per thread, and no
    more threads than the smallest population has neurons (measured: a thread with less than one
    element of an array makes XLA's build spill)."""
    sizes = [math.prod(s) for s in shapes]
    return max(1, min(32, sum(sizes) // (32 * PER_THREAD), min(sizes) // 32))


@dataclasses.dataclass(frozen=True)
class Projection:
    pre: int            # the presynaptic population's index
    acc: str            # the accumulator (a name update returns) its rows add to
    slots: int = 0      # 0: straight into acc; L: acc is a pending buffer of L rows (delays 0..L-1)


@dataclasses.dataclass(frozen=True)
class NetworkSpec:
    """``update(t, carry, seq, consts) -> (accs, fired, ctx)``: ``fired`` one bool array per population;
    ``accs`` the arrays projections add to (a pending buffer: a list of ``slots`` arrays).
    ``finish(t, accs, ctx, fired) -> (carry, traced)``: the next carry (same names, shapes) and the
    per-step outputs ``traced`` names (``(population index, name)`` each, in that population's
    layout).  ``t`` is the step's index (int32).  Carry entries listed in ``buffers`` (name -> L) are
    lists of L arrays."""
    name: str
    shapes: tuple                  # each population's kernel layout
    sizes: tuple                   # each population's real size (neurons past it never fire)
    projections: tuple
    update: Callable
    finish: Callable
    traced: tuple = ()
    buffers: tuple = ()            # ((carry name, L), ...)


def layout(target: str, n: int) -> tuple:
    """The kernel layout of a population of ``n`` neurons on ``target``."""
    if target in TPU:
        return (-(-n // (8 * LANES)) * 8, LANES)
    return (max(16, 1 << (n - 1).bit_length()),)


def block_size(target: str, sizes) -> int:
    """The neurons one program holds: every population's layout together."""
    return sum(math.prod(layout(target, n)) for n in sizes)


def fits_one_block(target: str, sizes) -> bool:
    """Whether populations of these sizes fit the kernel on ``target`` (a TPU's grid holds any)."""
    return target in TPU or block_size(target, sizes) <= ONE_BLOCK_MAX


def _flat_iota(shape):
    if len(shape) == 1:
        return lax.broadcasted_iota(jnp.int32, shape, 0)
    return lax.broadcasted_iota(jnp.int32, shape, 0) * shape[1] + lax.broadcasted_iota(jnp.int32, shape, 1)


def _propagate(spec, p, fired, accs, row):
    """Add, for each fired neuron of population ``p`` in ascending order, its rows of every
    projection leaving ``p``."""
    outgoing = [(k, pr) for k, pr in enumerate(spec.projections) if pr.pre == p]
    if not outgoing:
        return accs
    shape = spec.shapes[p]
    iota = _flat_iota(shape)
    big = math.prod(shape)
    count = jnp.sum(fired.astype(jnp.int32))
    names = sorted({pr.acc for _, pr in outgoing})

    def spike(c):  # the next fired neuron after the last one done (no mask carried: Mosaic carries no i1 vector)
        n_done, last, vals = c
        i = jnp.min(jnp.where(fired & (iota > last), iota, big))
        vals = dict(zip(names, vals))
        for k, pr in outgoing:
            if pr.slots:
                vals[pr.acc] = [a + row(k, d, i) for d, a in enumerate(vals[pr.acc])]
            else:
                vals[pr.acc] = vals[pr.acc] + row(k, 0, i)
        return n_done + 1, i, [vals[nm] for nm in names]

    _, _, vals = lax.while_loop(lambda c: c[0] < count, spike, (jnp.int32(0), jnp.int32(-1), [accs[nm] for nm in names]))
    return {**accs, **dict(zip(names, vals))}


def step(spec, t, carry, seq, consts, row):
    """One network step on values: (next carry, spikes per population, traced outputs)."""
    accs, fired, ctx = spec.update(t, carry, seq, consts)
    valid = [_flat_iota(s) < n for s, n in zip(spec.shapes, spec.sizes)]
    fired = [f & v for f, v in zip(fired, valid)]
    for p, f in enumerate(fired):
        accs = _propagate(spec, p, f, accs, row)
    carry, traced = spec.finish(t, accs, ctx, fired)
    return carry, [f.astype(F32).astype(jnp.int8) for f in fired], traced  # via f32: v4 has no i8 compare


def _load(ref, slots):
    return [ref[d] for d in range(slots)] if slots else ref[...]


def _store(ref, value, slots):
    if slots:
        for d in range(slots):
            ref[d] = value[d]
    else:
        ref[...] = value


def _tpu_body(spec, names, slots, seq_names, const_names, n_w, t0_ref, *refs):
    nc, ns, nk = len(names), len(seq_names), len(const_names)
    carry_in, seq_in, const_in, w_hbm = (refs[:nc], refs[nc:nc + ns], refs[nc + ns:nc + ns + nk],
                                          refs[nc + ns + nk:nc + ns + nk + n_w])
    outs = refs[nc + ns + nk + n_w:]
    n_pop, n_tr = len(spec.shapes), len(spec.traced)
    carry_out, spikes_out, traced_out = outs[:nc], outs[nc:nc + n_pop], outs[nc + n_pop:nc + n_pop + n_tr]
    rows, sem = outs[nc + n_pop + n_tr:nc + n_pop + n_tr + n_w], outs[-1]
    from jax.experimental.pallas import tpu as pltpu
    g = pl.program_id(0)

    @pl.when(g == 0)
    def _():
        for a, b in zip(carry_in, carry_out):
            b[...] = a[...]

    def row(k, d, i):
        cp = pltpu.make_async_copy(w_hbm[k].at[d, i], rows[k], sem)
        cp.start()
        cp.wait()
        return rows[k][...]

    carry = {nm: _load(r, slots[nm]) for nm, r in zip(names, carry_out)}
    seq = {nm: r[0] for nm, r in zip(seq_names, seq_in)}
    consts = {nm: r[...] for nm, r in zip(const_names, const_in)}
    carry, spikes, traced = step(spec, t0_ref[0] + g, carry, seq, consts, row)
    for nm, r in zip(names, carry_out):
        _store(r, carry[nm], slots[nm])
    for r, s in zip(spikes_out, spikes):
        r[0] = s
    for r, v in zip(traced_out, traced):
        r[0] = v


def _loop_body(spec, names, slots, seq_names, const_names, n_w, T, t0_ref, *refs):
    nc, ns, nk = len(names), len(seq_names), len(const_names)
    carry_in, seq_in, const_in, w = (refs[:nc], refs[nc:nc + ns], refs[nc + ns:nc + ns + nk],
                                      refs[nc + ns + nk:nc + ns + nk + n_w])
    outs = refs[nc + ns + nk + n_w:]
    n_pop = len(spec.shapes)
    carry_out, spikes_out, traced_out = outs[:nc], outs[nc:nc + n_pop], outs[nc + n_pop:]
    t0 = jnp.sum(t0_ref[...])
    consts = {nm: r[...] for nm, r in zip(const_names, const_in)}

    def row(k, d, i):
        return w[k][d, i]

    def one(t, carry):
        seq = {nm: r[t] for nm, r in zip(seq_names, seq_in)}
        carry, spikes, traced = step(spec, t0 + t, dict(zip(names, carry)), seq, consts, row)
        for r, s in zip(spikes_out, spikes):
            r[t] = s
        for r, v in zip(traced_out, traced):
            r[t] = v
        return [carry[nm] for nm in names]

    carry = lax.fori_loop(0, T, one, [_load(r, slots[nm]) for nm, r in zip(names, carry_in)])
    for nm, r, v in zip(names, carry_out, carry):
        _store(r, v, slots[nm])


def launch(spec: NetworkSpec, target: str, T: int, t0, carry: dict, seq: dict, consts: dict, weights: list):
    """Run ``T`` steps from step ``t0``.  ``carry``: name -> array in the kernel layout (a buffer:
    ``[L, *layout]``); ``seq``: name -> ``[T, *layout]`` per-step inputs; ``consts``: name -> array;
    ``weights[k]``: projection k's rows ``[L or 1, n_pre layout size, *post layout]``.

    Returns (carry, spikes per population ``[T, *layout]`` int8, traced ``[T, *layout]``)."""
    if target not in TARGETS:
        raise ValueError(f"target: the network kernel runs on {TARGETS}, got {target!r}")
    names, seq_names, const_names = tuple(carry), tuple(seq), tuple(consts)
    slots = {nm: dict(spec.buffers).get(nm, 0) for nm in names}
    t0 = jnp.asarray(t0, jnp.int32).reshape(1)
    out_shape = ([jax.ShapeDtypeStruct(a.shape, a.dtype) for a in carry.values()]
                 + [jax.ShapeDtypeStruct((T, *s), jnp.int8) for s in spec.shapes]
                 + [jax.ShapeDtypeStruct((T, *spec.shapes[p]), F32) for p, _ in spec.traced])
    operands = (t0, *carry.values(), *seq.values(), *consts.values(), *weights)
    n_w = len(weights)
    if target in TPU:
        from jax.experimental.pallas import tpu as pltpu
        whole = lambda a: pl.BlockSpec(a.shape, lambda g: (0,) * len(a.shape))  # noqa: E731
        per_step = lambda shape: pl.BlockSpec((1, *shape[1:]), lambda g: (g,) + (0,) * (len(shape) - 1))  # noqa: E731
        in_specs = ([pl.BlockSpec(memory_space=pltpu.SMEM)] + [whole(a) for a in carry.values()]
                    + [per_step(a.shape) for a in seq.values()] + [whole(a) for a in consts.values()]
                    + [pl.BlockSpec(memory_space=pl.ANY)] * n_w)
        out_specs = [whole(a) for a in carry.values()] + [per_step(o.shape) for o in out_shape[len(carry):]]
        scratch = [pltpu.VMEM(w.shape[2:], F32) for w in weights] + [pltpu.SemaphoreType.DMA]
        kw = (dict(interpret=pltpu.InterpretParams(detect_races=True)) if target == "interpret_tpu" else
              dict(compiler_params=pltpu.CompilerParams(dimension_semantics=("arbitrary",))))
        body = functools.partial(_tpu_body, spec, names, slots, seq_names, const_names, n_w)
        call = pl.pallas_call(body, grid=(T,), in_specs=in_specs, out_specs=out_specs, out_shape=out_shape,
                              scratch_shapes=scratch, name=spec.name, **kw)
        vmem = 2 * sum(a.size * a.dtype.itemsize for a in (*carry.values(), *consts.values())) + sum(
            math.prod(w.shape[2:]) * 4 for w in weights)
    else:
        if target == "triton":
            from jax.experimental.pallas import triton as pltriton
            warps = triton_warps(spec.shapes)
            kw = dict(compiler_params=pltriton.CompilerParams(num_warps=warps, num_stages=1))
        else:
            kw = dict(interpret=True)
        body = functools.partial(_loop_body, spec, names, slots, seq_names, const_names, n_w, T)
        call = pl.pallas_call(body, grid=(1,), out_shape=out_shape, name=spec.name, **kw)
        vmem = 0
    launches.record(name=spec.name, target=target, grid=(T,) if target in TPU else (1,), vmem_bytes=vmem,
                    **(dict(num_warps=warps) if target == "triton" else {}))
    outs = call(*operands)
    nc, n_pop = len(names), len(spec.shapes)
    return dict(zip(names, outs[:nc])), list(outs[nc:nc + n_pop]), list(outs[nc + n_pop:])
