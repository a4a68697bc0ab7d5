"""The one kernel body, shared by every target.

``run_chunk`` streams ``n`` steps of a ``Spec`` through refs holding a time
chunk, with the state carried as values (registers / vregs).  ``pallas_body``
wraps it for ``pallas_call`` targets:

* one chunk (Triton): each program loops over all T with its state in registers;
* several (TPU, interpret): time is the last, sequential grid axis, the state
  is kept in VMEM scratch between chunks, and within a chunk the steps run
  over one strip of lanes at a time, so the carried state of a strip stays in
  vector registers however large the block is.

The Mosaic GPU launcher calls ``run_chunk`` from its pipeline body.
"""
from __future__ import annotations

import jax.numpy as jnp
from jax import lax
from jax.experimental import pallas as pl

from . import f16_bits

F32 = jnp.float32


def to_f32(x):
    """A loaded value as f32 (int16 operands carry float16 bits on TPU: ``f16_bits``)."""
    return f16_bits.decode(x) if x.dtype == f16_bits.BITS else x.astype(F32)


def from_f32(x, dtype):
    """An f32 value in the storage ``dtype`` of the ref it goes to."""
    return f16_bits.encode(x) if jnp.dtype(dtype) == f16_bits.BITS else x.astype(dtype)


def _advance(spec, per_neuron, scalars, carry, vals, t_index, T):
    """One step: (the new carry, the outputs to store).  A step at or past ``T`` (the partial last
    chunk) leaves the carry unchanged; its stores fall past the array's edge, where Pallas drops them."""
    new, outs = spec.step(per_neuron, scalars, carry, vals, t_index)
    if spec.finalize is not None:
        outs = spec.finalize(outs)
    if T is not None:
        valid = t_index < T  # a scalar, broadcast explicitly: Mosaic GPU (JAX >= 0.12) broadcasts nothing implicitly
        new = tuple(jnp.where(jnp.broadcast_to(valid, a.shape), a, b) for a, b in zip(new, carry))
    return tuple(new), outs


def run_chunk(spec, per_neuron, scalars, carry, seq_in, seq_out, n, t_offset, T, at=lambda k: k, load=None,
              prefetch=False):
    """Run ``n`` steps over chunk refs (time on their leading axis); returns the carry.

    ``at(k)`` is the index of step k in a chunk ref; ``T`` masks the partial last chunk
    (``_advance``).  ``load(ref, idx)`` reads as f32 (Mosaic GPU
    passes one that fixes the register layout).  ``prefetch`` issues the loads of the next
    step before the maths of this one, so that on a GPU they are in flight while it computes.
    """
    load = load or (lambda ref, idx: to_f32(ref[idx]))
    order = (lambda i: n - 1 - i) if spec.reverse else (lambda i: i)
    fetch = lambda k: tuple(load(r, at(k)) for r in seq_in)

    def compute(i, carry, vals):
        k = order(i)
        carry, outs = _advance(spec, per_neuron, scalars, carry, vals, t_offset + k, T)
        for r, o in zip(seq_out, outs):
            r[at(k)] = from_f32(o, r.dtype)
        return carry

    if not prefetch:
        return lax.fori_loop(0, n, lambda i, c: compute(i, c, fetch(order(i))), tuple(carry))

    def step(i, state):
        carry, vals = state
        ahead = fetch(order(jnp.minimum(i + 1, n - 1)))  # the last step re-reads itself: harmless
        return compute(i, carry, vals), ahead

    carry, _ = lax.fori_loop(0, n, step, (tuple(carry), fetch(order(0))))
    return carry


def run_chunk_rows(spec, per_neuron, scalars, carry, seq_in, seq_out, n, t_offset, T, lanes, group):
    """``run_chunk`` for time on sublanes (a 1-D population on TPU): the steps of a group move as one
    aligned ``(group, lanes)`` tile per operand, and the group's steps are unrolled over its rows."""
    n_groups = n // group

    def body(gi, carry):
        g = (n_groups - 1 - gi) if spec.reverse else gi
        base = 0 if n_groups == 1 else pl.multiple_of(g * group, group)
        rows = (pl.ds(base, group), lanes)
        rows_in = [to_f32(r[rows]) for r in seq_in]
        out_rows = [[None] * group for _ in seq_out]
        for k in (range(group - 1, -1, -1) if spec.reverse else range(group)):
            carry, outs = _advance(spec, per_neuron, scalars, carry, tuple(a[k:k + 1] for a in rows_in),
                                   t_offset + base + k, T)
            for rows_k, o in zip(out_rows, outs):
                rows_k[k] = o.astype(F32)  # exact: the stored value was already rounded
        for r, rows_k in zip(seq_out, out_rows):
            r[rows] = from_f32(jnp.concatenate(rows_k, axis=0), r.dtype)
        return carry

    return lax.fori_loop(0, n_groups, body, tuple(carry))


def split_refs(spec, refs):
    counts = (spec.n_seq_in, spec.n_state, spec.n_per_neuron, spec.n_scalars, spec.n_seq_out, spec.n_state)
    out, i = [], 0
    for c in counts:
        out.append(refs[i:i + c])
        i += c
    out.append(refs[i:])  # scratch
    return out


def pallas_body(spec, plan, T, *refs):
    seq_in, state_in, per_neuron, scalars, seq_out, state_out, scratch = split_refs(spec, refs)
    tc, nc = plan.time_chunk, plan.n_chunks
    T_mask = T if tc * nc != T else None
    if nc == 1 and not scratch:  # Triton: the state lives in registers for the whole sequence
        carry = tuple(to_f32(r[...]) for r in state_in)
        carry = run_chunk(spec, tuple(to_f32(r[...]) for r in per_neuron), tuple(to_f32(r[...]) for r in scalars),
                          carry, seq_in, seq_out, tc, 0, T_mask, prefetch=True)
        for r, v in zip(state_out, carry):
            r[...] = from_f32(v, r.dtype)
        return
    c = pl.program_id(len(plan.grid) - 1)
    chunk = (nc - 1 - c) if spec.reverse else c

    @pl.when(c == 0)
    def _():
        for s, r in zip(scratch, state_in):
            s[...] = to_f32(r[...])

    for lo in range(0, plan.block_lanes, plan.strip):
        lanes = pl.ds(lo, plan.strip)
        row = (slice(None), lanes)
        carry = tuple(s[row] for s in scratch)
        cvals, tvals = tuple(to_f32(r[row]) for r in per_neuron), tuple(to_f32(r[row]) for r in scalars)
        if plan.time_on_sublanes:
            carry = run_chunk_rows(spec, cvals, tvals, carry, seq_in, seq_out, tc, chunk * tc, T_mask, lanes,
                                   plan.group)
        else:
            carry = run_chunk(spec, cvals, tvals, carry, seq_in, seq_out, tc, chunk * tc, T_mask,
                              lambda k: (k, slice(None), lanes))
        for s, v in zip(scratch, carry):
            s[row] = v

    @pl.when(c == nc - 1)
    def _():
        for r, s in zip(state_out, scratch):
            r[...] = from_f32(s[...], r.dtype)
