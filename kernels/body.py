"""The one kernel body, shared by every target.

``run_chunk`` streams ``n`` steps of a ``Spec`` through refs holding a time
chunk, with the state carried as values (registers / vregs).  ``pallas_body``
wraps it for ``pallas_call`` targets: with one chunk (Triton) the state lives
in registers for the whole sequence; with several (TPU, interpret) time is the
sequential grid axis and the state is kept in VMEM scratch between chunks.
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


def _load(ref, k):
    return to_f32(ref[k])


def run_chunk(spec, consts, tiles, carry, seq_in, seq_out, n, t_offset, T, load=_load):
    """Run ``n`` steps over chunk refs (time on their leading axis); returns the carry.

    Steps at or past ``T`` (the pad of the last chunk) leave the carry unchanged.
    ``load(ref, k)`` reads step k as f32 (Mosaic GPU passes one that fixes the register layout).
    """
    padded = T is not None

    def step(i, carry):
        k = (n - 1 - i) if spec.reverse else i
        t_index = t_offset + k
        vals = tuple(load(r, k) for r in seq_in)
        new, outs = spec.step(consts, tiles, carry, vals, t_index)
        if spec.finalize is not None:
            outs = spec.finalize(outs)
        for r, o in zip(seq_out, outs):
            r[k] = from_f32(o, r.dtype)
        if padded:
            valid = t_index < T
            new = tuple(jnp.where(valid, a, b) for a, b in zip(new, carry))
        return tuple(new)

    return lax.fori_loop(0, n, step, tuple(carry))


def split_refs(spec, refs):
    counts = (spec.n_seq_in, spec.n_state, spec.n_consts, spec.n_tiles, spec.n_seq_out, spec.n_state)
    out, i = [], 0
    for c in counts:
        out.append(refs[i:i + c])
        i += c
    out.append(refs[i:])  # scratch
    return out


def pallas_body(spec, n_chunks, time_chunk, T, padded, *refs):
    seq_in, state_in, consts, tiles, seq_out, state_out, scratch = split_refs(spec, refs)
    consts = tuple(to_f32(r[...]) for r in consts)
    tiles = tuple(to_f32(r[...]) for r in tiles)
    T_mask = T if padded else None
    if n_chunks == 1:
        carry = tuple(to_f32(r[...]) for r in state_in)
        carry = run_chunk(spec, consts, tiles, carry, seq_in, seq_out, time_chunk, 0, T_mask)
        for r, v in zip(state_out, carry):
            r[...] = from_f32(v, r.dtype)
        return
    c = pl.program_id(1)
    chunk = (n_chunks - 1 - c) if spec.reverse else c

    @pl.when(c == 0)
    def _():
        for s, r in zip(scratch, state_in):
            s[...] = to_f32(r[...])

    carry = tuple(s[...] for s in scratch)
    carry = run_chunk(spec, consts, tiles, carry, seq_in, seq_out, time_chunk, chunk * time_chunk, T_mask)
    for s, v in zip(scratch, carry):
        s[...] = v

    @pl.when(c == n_chunks - 1)
    def _():
        for r, v in zip(state_out, carry):
            r[...] = from_f32(v, r.dtype)
