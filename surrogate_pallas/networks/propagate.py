"""Event-driven spike propagation: the cost is the spikes times their fan-out, never the synapses.

Two formulations of the same sums, in the same order (so the same floats):

- **Lists** (vector ops, for XLA on any device).  Each step, the neurons that fired are gathered
  into fixed-size lists of ``K`` indices (padded with the all-padding row ``n_pre``), and each
  list's rows of targets are scatter-added into the postsynaptic accumulator.  One list is enough
  when at most ``K`` neurons fire; a burst takes more lists, as many as it needs, so no spike is
  ever dropped.
- **Loops** (``record_fired``, ``add_row``): plain loops, which the CPU compiler turns into one
  native loop nest when the whole chunk is compiled as one function (see ``_native_loops``).  The
  fired neurons are written straight to the event record, skipping silent groups of neurons; then
  each one's row of compressed sparse rows is added, synapse by synapse.  No list size, no padding.

``dense_oracle`` is the plain dense transcription the tests compare with.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax import lax


def _prefix(x, axis_len):
    """Inclusive prefix sums along the last axis: a product with a triangular matrix while it is small
    (one op on a CPU, exact for counts below 2^24), ``cumsum`` beyond."""
    if axis_len <= 256:
        tri = jnp.triu(jnp.ones((axis_len, axis_len), jnp.float32))
        return jnp.dot(x, tri, precision=lax.Precision.HIGHEST)
    return jnp.cumsum(x, axis=-1)


def first_fired(fired, K: int, block: int = 64):
    """The indices of the first ``K`` fired neurons, ascending, padded with ``n`` (what
    ``jnp.nonzero(fired, size=K, fill_value=n)`` gives, in a handful of small ops instead of a prefix
    sum and a scatter over the whole population).  The population is cut into blocks of ``block``
    neurons: the k-th fired neuron is in the block where the blocks' running count passes k, at the
    position where the running count inside that block (of the K blocks found, only) does."""
    n = fired.shape[0]
    nb = -(-n // block)
    x = jnp.pad(fired, (0, nb * block - n)).reshape(nb, block)
    per_block = jnp.sum(x, axis=1, dtype=jnp.int32).astype(jnp.float32)
    upto = _prefix(per_block, nb)                           # [nb]: running count over the blocks
    k = jnp.arange(K, dtype=jnp.float32)
    if K * nb <= 1 << 16:  # the block of the k-th fired neuron: #{blocks whose running count <= k}
        b = jnp.sum(upto[None, :] <= k[:, None], axis=1)
    else:  # a binary search, unrolled, when comparing every pair would cost more than the population
        b = jnp.searchsorted(upto, k, side="right", method="scan_unrolled")
    bc = jnp.clip(b, 0, nb - 1)
    rank = k - (upto[bc] - per_block[bc])                   # its rank inside that block
    within = _prefix(x[bc].astype(jnp.float32), block)      # [K, block]: running counts of those blocks
    j = jnp.sum(within <= rank[:, None], axis=1)            # its position inside that block
    return jnp.where(b < nb, bc * block + j, n).astype(jnp.int32)


def spike_lists(fired, K: int, body, carry):
    """``body(idx, n_valid, carry)`` for every list of up to ``K`` fired neurons (in index order).

    ``fired``: bool ``[n]``.  ``idx``: int32 ``[K]``, its first ``n_valid`` entries the fired neurons,
    the rest ``n`` (the padding row).  The first ``K`` fired neurons are one list, the common case;
    more (a burst) take further lists, the next ``K`` each, in a ``while_loop`` until none is left."""
    n = fired.shape[0]
    K = min(K, n)
    count = jnp.sum(fired, dtype=jnp.int32)
    idx = first_fired(fired, K)
    carry = body(idx, jnp.minimum(count, K), carry)

    def more(carry):
        def step(c):
            p, left, carry = c
            idx = first_fired(left, K)
            return p + 1, left.at[idx].set(False, mode="drop"), body(idx, jnp.minimum(count - p * K, K), carry)

        left = fired.at[idx].set(False, mode="drop")
        return lax.while_loop(lambda c: c[0] * K < count, step, (jnp.int32(1), left, carry))[2]

    return lax.cond(count > K, more, lambda c: c, carry)


def add_rows(acc, idx, targets, weights, slot=None):
    """``acc[targets[idx]] += weights[idx]`` (a shared weight: ``weights`` is a scalar); padding targets
    (``>= acc``'s length) are dropped.  ``slot``: the ring-buffer row per synapse (delays) or None."""
    rows = targets[idx]
    w = weights[idx] if jnp.ndim(weights) else jnp.broadcast_to(jnp.asarray(weights, acc.dtype), rows.shape)
    if slot is None:
        return acc.at[rows].add(w, mode="drop")
    return acc.at[slot, rows].add(w, mode="drop")


def _any_of_groups(x, fan):
    """``x.reshape(-1, fan).any(axis=1)`` as halving ORs (``fan`` a power of two): elementwise ops, as
    XLA:CPU compiles a reduction inside a loop compiled whole into a call per element."""
    y = x.reshape(-1, fan)
    while y.shape[1] > 1:
        half = y.shape[1] // 2
        y = y[:, :half] | y[:, half:]
    return y[:, 0]


def record_fired(fired, ev, at, fan: int = 8, top: int = 2048):
    """Write the indices of the fired neurons, ascending, to ``ev[at:]`` (the writes past the end of
    ``ev`` land on its last entry) and return ``(ev, at + the number fired)``.

    The neurons are grouped in a tree of ``fan`` children per node (levels added until at most
    ``top`` nodes remain at the top); a node is entered only if one of its neurons fired, and the
    ``fan`` neurons of an entered leaf are written without a branch (each write moves ``at`` on by
    whether the neuron fired).  A step costs the top level plus ``fan`` iterations per level per
    spike, where a test per neuron would cost the population."""
    if fan < 2 or fan & (fan - 1):
        raise ValueError(f"fan: expected a power of two >= 2, got {fan}")
    n, cap = fired.shape[0], ev.shape[0]
    levels = max(1, math.ceil(math.log(max(n / top, 1.0), fan)))
    width = fan ** levels
    x = jnp.pad(fired, (0, -(-n // width) * width - n))
    flags = [x]
    for _ in range(levels):
        flags.append(_any_of_groups(flags[-1], fan))
    get = lambda a, k: lax.dynamic_index_in_dim(a, k, keepdims=False)  # noqa: E731

    def neuron(i, c):
        ev, at = c
        ev = lax.dynamic_update_index_in_dim(ev, i, jnp.minimum(at, cap - 1), 0)
        return ev, at + get(x, i).astype(jnp.int32)

    def visit(level):
        inner = neuron if level == 1 else visit(level - 1)
        return lambda i, c: lax.cond(get(flags[level], i), lambda c: lax.fori_loop(i * fan, (i + 1) * fan, inner, c),
                                     lambda c: c, c)

    return lax.fori_loop(0, flags[-1].shape[0], visit(levels), (ev, at))


def add_row(acc, i, row_ptr, cols, weights, slot_of=None):
    """``acc[cols[s]] += weights[s]`` for the synapses ``s`` of row ``i`` (``row_ptr[i]:row_ptr[i + 1]``),
    in order, one element at a time; ``weights`` per synapse or a scalar.  ``slot_of(s)``: the ring-buffer
    row of synapse ``s`` (``acc`` is then ``[slots, n]``), or None."""
    at = lambda a, k: lax.dynamic_index_in_dim(a, k, keepdims=False)  # noqa: E731

    def synapse(s, acc):
        w = at(weights, s) if jnp.ndim(weights) else jnp.asarray(weights, acc.dtype)
        where = (at(cols, s),) if slot_of is None else (slot_of(s), at(cols, s))
        old = lax.dynamic_slice(acc, where, (1,) * acc.ndim)
        return lax.dynamic_update_slice(acc, old + w, where)

    return lax.fori_loop(at(row_ptr, i), at(row_ptr, i + 1), synapse, acc)


def dense_oracle(spikes, W):
    """The increments of one step as a dense product: ``spikes [n_pre] @ W [n_pre, n_post]``."""
    return jnp.dot(spikes.astype(jnp.float32), W, precision=jax.lax.Precision.HIGHEST)
