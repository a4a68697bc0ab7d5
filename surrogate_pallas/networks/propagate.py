"""Event-driven spike propagation: the cost is the spikes times their fan-out, never the synapses.

Each step, the neurons that fired are gathered into fixed-size lists of ``K`` indices (padded with the
all-padding row ``n_pre``), and each list's rows of targets are scatter-added into the postsynaptic
accumulator.  One list is enough when at most ``K`` neurons fire; a burst takes more passes, as many
as it needs, so no spike is ever dropped.  ``dense_oracle`` is the plain dense transcription the
tests compare with.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax


def spike_lists(fired, K: int, body, carry, M: int | None = None):
    """``body(idx, n_valid, carry)`` for every list of up to ``K`` fired neurons (in index order).

    ``fired``: bool ``[n]``.  ``idx``: int32 ``[K]``, its first ``n_valid`` entries the fired neurons,
    the rest ``n`` (the padding row).  The fired neurons are listed once, up to ``M`` of them (one pass
    over the population), and handed over ``K`` at a time, as many lists as there are spikes; a burst of
    more than ``M`` takes further passes over the population, in a ``while_loop``, until none is left."""
    n = fired.shape[0]
    K = min(K, n)
    M = max(K, min(M or K, n))
    M = -(-M // K) * K
    count = jnp.sum(fired, dtype=jnp.int32)
    listed = jnp.nonzero(fired, size=M, fill_value=n)[0].astype(jnp.int32)

    def one(c):
        p, carry = c
        idx = lax.dynamic_slice(listed, (p * K,), (K,))
        return p + 1, body(idx, jnp.clip(count - p * K, 0, K), carry)

    if M == K:
        carry = body(listed, jnp.minimum(count, K), carry)
    else:
        carry = lax.while_loop(lambda c: (c[0] == 0) | (c[0] * K < jnp.minimum(count, M)), one,
                               (jnp.int32(0), carry))[1]

    def more(carry):  # a burst beyond the list: the rest, K at a time
        def step(c):
            p, left, carry = c
            idx = jnp.nonzero(left, size=K, fill_value=n)[0].astype(jnp.int32)
            return p + 1, left.at[idx].set(False, mode="drop"), body(idx, jnp.minimum(count - p * K, K), carry)

        left = fired.at[listed].set(False, mode="drop")
        return lax.while_loop(lambda c: c[0] * K < count, step, (jnp.int32(M // K), left, carry))[2]

    return lax.cond(count > M, more, lambda c: c, carry)


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
