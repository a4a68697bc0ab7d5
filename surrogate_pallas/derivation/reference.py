"""The jnp oracles: a loop over T steps of the same derived step (``steps.py``) the kernels run.

Every array keeps its natural shape and the state is carried in f32.  The maths
is the kernels' own; the only thing added here is how values are stored around
the loop on CPU (``run``'s docstring), which changes no value.
"""
from __future__ import annotations

import jax
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


def run(spec, seq_in, state_in, per_neuron, scalars, seq_out_dtypes, state_out_dtypes):
    """Run ``spec`` over the leading (time) axis of ``seq_in``; returns (seq_outs, state_outs).

    Speed on CPU without changing a value: XLA:CPU converts to and from bf16/f16
    slowly inside loop bodies, so bf16 inputs are widened bit-wise in the loop,
    f16 inputs before it, and narrow-float outputs are encoded after it (the
    encodings are elementwise); binary outputs (spikes) are written as int8 in the
    loop and widened after it; other f32 outputs are written in the loop.

    On this memory-bound path the sequence buffers are the cost, so the loop owns them
    (``_loop``): a derivative kernel writes its output over a residual it has read.
    """
    T = seq_in[0].shape[0]
    per_neuron = tuple(c.astype(F32) for c in per_neuron)
    # scalars reach the step at the population's shape, as in a kernel's shared scalar block: a derivative with respect
    # to one (a learned scalar parameter) is then per neuron, as the kernels accumulate it
    scalars = tuple(jnp.broadcast_to(jnp.asarray(t, F32), state_in[0].shape) for t in scalars)
    seq_in = tuple(a.astype(F32) if a.dtype == jnp.float16 else a for a in seq_in)
    loop_dtypes = tuple(jnp.int8 if i in spec.binary_outputs else F32 if _narrow_float(d) or spec.finalize else d
                        for i, d in enumerate(seq_out_dtypes))

    def step(carry, seq, t_index):
        carry, outs = spec.step(per_neuron, scalars, carry, tuple(_widen(a) for a in seq), t_index)
        return carry, tuple(o.astype(d) for o, d in zip(outs, loop_dtypes))

    carry0 = tuple(s.astype(F32) for s in state_in)
    outs = tuple(jax.ShapeDtypeStruct((T, *state_in[0].shape), d) for d in loop_dtypes)
    carry, outs = _loop(step, T, spec.reverse, seq_in, carry0, outs, _overwritable(spec, seq_in, outs))
    if spec.finalize is not None:
        outs = spec.finalize(outs)
    outs = tuple(_from_binary(o, d) if i in spec.binary_outputs else o for i, (o, d) in
                 enumerate(zip(outs, seq_out_dtypes)))
    return (tuple(o.astype(d) for o, d in zip(outs, seq_out_dtypes)),
            tuple(c.astype(d) for c, d in zip(carry, state_out_dtypes)))


def _overwritable(spec, seq_in, outs):
    """{output: residual input} pairs of equal shape and dtype, each residual used once."""
    free = list(spec.overwritable)
    pairs = {}
    for i, o in enumerate(outs):
        k = next((k for k in free if (seq_in[k].shape, seq_in[k].dtype) == (o.shape, o.dtype)), None)
        if k is not None:
            pairs[i] = k
            free.remove(k)
    return pairs


def _loop(step, T, reverse, seq_in, carry0, outs, over):
    """A loop over the T steps that writes each step's outputs into sequence buffers it owns.

    XLA:CPU moves sequence-sized buffers at memory speed, so two ways of making one cost time:
    ``lax.scan`` zero-fills a fresh buffer for each stacked output, and XLA merges equal zero
    buffers and then copies them apart.  Here an output in ``over`` is written over the residual
    input that maps to it: step t writes slot t once it has read it, and the next step's slot is
    read from the updated buffer, so XLA sees no other reader and updates it in place (a read
    fused next to the update would make it copy the whole buffer).  Every other output gets a
    buffer of its own, filled with its index, which no merge can share.
    """
    if T == 0:
        return carry0, tuple(jnp.zeros(o.shape, o.dtype) for o in outs)
    read = lambda a, t: lax.dynamic_index_in_dim(a, t, keepdims=False)
    at = (lambda i: T - 1 - i) if reverse else (lambda i: i)
    bufs0 = tuple(seq_in[over[i]] if i in over else jnp.full(o.shape, i, o.dtype) for i, o in enumerate(outs))

    def body(i, c):
        carry, bufs, ahead = c
        t = at(i).astype(jnp.int32)
        ahead = dict(zip(over.values(), ahead))
        carry, ys = step(carry, tuple(ahead[k] if k in ahead else read(a, t) for k, a in enumerate(seq_in)), t)
        bufs = tuple(lax.dynamic_update_index_in_dim(b, y, t, 0) for b, y in zip(bufs, ys))
        t_next = jnp.clip(t + (-1 if reverse else 1), 0, T - 1)
        return carry, bufs, tuple(read(bufs[i], t_next) for i in over)

    ahead0 = tuple(read(seq_in[k], at(0)) for k in over.values())
    carry, bufs, _ = lax.fori_loop(0, T, body, (carry0, bufs0, ahead0))
    return carry, bufs
