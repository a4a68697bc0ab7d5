"""Event-driven spike propagation: the cost is the spikes times their fan-out, never the synapses.

Each step, the neurons that fired are gathered into fixed-size lists of ``K`` indices (padded with the
all-padding row ``n_pre``), and each list's rows of targets are scatter-added into the postsynaptic
accumulator.  One list is enough when at most ``K`` neurons fire; a burst takes more lists, as many
as it needs, so no spike is ever dropped.  ``dense_oracle`` is the plain dense transcription the
tests compare with.
"""
from __future__ import annotations

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


def dense_oracle(spikes, W):
    """The increments of one step as a dense product: ``spikes [n_pre] @ W [n_pre, n_post]``."""
    return jnp.dot(spikes.astype(jnp.float32), W, precision=jax.lax.Precision.HIGHEST)
