"""The jnp oracles: a ``lax.scan`` over the same derived step (``kernels/derive.py``) the kernels run.

Every array keeps its natural shape and the state is carried in f32.  The maths
is the kernels' own; the only thing added here is how values are stored around
the loop on CPU (``run``'s docstring), which changes no value.
"""
from __future__ import annotations

import jax.numpy as jnp
from jax import lax

F32 = jnp.float32


def _narrow_float(dtype):
    return jnp.issubdtype(dtype, jnp.floating) and jnp.dtype(dtype).itemsize < 4


def _widen(a):
    """Exact f32 value of a step's input.  bf16 is widened by a 16-bit shift of its bits,
    which XLA:CPU vectorises inside the loop (its bf16 convert there is several times slower)."""
    if a.dtype == jnp.bfloat16:
        return lax.bitcast_convert_type(lax.bitcast_convert_type(a, jnp.uint16).astype(jnp.uint32) << 16, F32)
    return a.astype(F32)


_ONE_BITS = {jnp.dtype(jnp.bfloat16): 0x3F80, jnp.dtype(jnp.float16): 0x3C00}


def _from_binary(s8, dtype):
    """0/1 int8 values in ``dtype``; for 16-bit floats by their bit pattern (1.0 is 0x3F80 in
    bf16, 0x3C00 in f16), exact and vectorised where XLA:CPU's narrow-float convert is not."""
    dtype = jnp.dtype(dtype)
    if dtype in _ONE_BITS:
        return lax.bitcast_convert_type(s8.astype(jnp.uint16) * jnp.uint16(_ONE_BITS[dtype]), dtype)
    return s8.astype(dtype)


def run(spec, seq_in, state_in, consts, tiles, seq_out_dtypes, state_out_dtypes):
    """Run ``spec`` over the leading (time) axis of ``seq_in``; returns (seq_outs, state_outs).

    Speed on CPU without changing a value: XLA:CPU converts to and from bf16/f16
    slowly inside loop bodies, so bf16 inputs are widened bit-wise in the loop,
    f16 inputs before it, and narrow-float outputs are encoded after it (the
    encodings are elementwise); binary outputs (spikes) are written as int8 in the
    loop and widened after it; other f32 outputs are written in the loop.
    """
    T = seq_in[0].shape[0]
    consts = tuple(c.astype(F32) for c in consts)
    # scalars reach the step at the population's shape, as in a kernel's tile: a derivative with respect
    # to one (a learned scalar parameter) is then per neuron, as the kernels accumulate it
    tiles = tuple(jnp.broadcast_to(jnp.asarray(t, F32), state_in[0].shape) for t in tiles)
    seq_in = tuple(a.astype(F32) if a.dtype == jnp.float16 else a for a in seq_in)
    loop_dtypes = tuple(jnp.int8 if i in spec.binary_outputs else F32 if _narrow_float(d) or spec.finalize else d
                        for i, d in enumerate(seq_out_dtypes))

    def body(carry, xs):
        t_index, seq = xs
        carry, outs = spec.step(consts, tiles, carry, tuple(_widen(a) for a in seq), t_index)
        return carry, tuple(o.astype(d) for o, d in zip(outs, loop_dtypes))

    carry0 = tuple(s.astype(F32) for s in state_in)
    carry, outs = lax.scan(body, carry0, (jnp.arange(T, dtype=jnp.int32), seq_in), reverse=spec.reverse)
    if spec.finalize is not None:
        outs = spec.finalize(outs)
    outs = tuple(_from_binary(o, d) if i in spec.binary_outputs else o for i, (o, d) in
                 enumerate(zip(outs, seq_out_dtypes)))
    return (tuple(o.astype(d) for o, d in zip(outs, seq_out_dtypes)),
            tuple(c.astype(d) for c, d in zip(carry, state_out_dtypes)))
