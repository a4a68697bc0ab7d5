"""The jnp oracles: a ``lax.scan`` over the same ``lif_math`` step the kernels run.

Nothing clever: every array keeps its natural shape, state is carried in f32,
and outputs are cast to their storage dtypes as they are written.
"""
from __future__ import annotations

import jax.numpy as jnp
from jax import lax

F32 = jnp.float32


def run(spec, seq_in, state_in, consts, tiles, seq_out_dtypes, state_out_dtypes):
    """Run ``spec`` over the leading (time) axis of ``seq_in``; returns (seq_outs, state_outs)."""
    T = seq_in[0].shape[0]
    consts = tuple(c.astype(F32) for c in consts)
    tiles = tuple(jnp.asarray(t, F32) for t in tiles)

    def body(carry, xs):
        t_index, seq = xs
        carry, outs = spec.step(consts, tiles, carry, tuple(a.astype(F32) for a in seq), t_index)
        return carry, tuple(o.astype(d) for o, d in zip(outs, seq_out_dtypes))

    carry0 = tuple(s.astype(F32) for s in state_in)
    carry, outs = lax.scan(body, carry0, (jnp.arange(T, dtype=jnp.int32), tuple(seq_in)), reverse=spec.reverse)
    return tuple(outs), tuple(c.astype(d) for c, d in zip(carry, state_out_dtypes))
