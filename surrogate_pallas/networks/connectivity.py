"""Connectivity between two populations: who projects to whom, with what weight and delay.

A ``Connectivity`` is stored as padded rows (fixed fan-out, "ELL"): row ``i`` lists the targets of
presynaptic neuron ``i``, padded to the longest row with the index ``n_post`` (which every scatter
drops), with a weight per synapse or one shared weight, and an integer delay in steps per synapse
or one shared delay.  A spike of neuron ``i`` then costs its own row: propagation reads the rows
of the neurons that fired, never the whole matrix.  An extra all-padding row (index ``n_pre``)
lets a fixed-size list of spiking neurons be padded with ``n_pre``.

Builders take explicit edge lists (``from_edges``) or rules (``fixed_probability``,
``fixed_in_degree``, ``fixed_out_degree``, ``one_to_one``, ``all_to_all``); no rule builds an
``n_pre x n_post`` intermediate except ``all_to_all``, whose result is that size.
"""
from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True, eq=False)
class Connectivity:
    n_pre: int
    n_post: int
    targets: np.ndarray        # [n_pre + 1, fan_out] int32; padding is n_post; row n_pre is all padding
    weights: np.ndarray | float  # [n_pre + 1, fan_out] float32, or one shared weight
    delays: np.ndarray | int = 0  # [n_pre + 1, fan_out] int32 steps, or one shared delay

    @property
    def fan_out(self) -> int:
        return self.targets.shape[1]

    @property
    def n_synapses(self) -> int:
        return int(np.count_nonzero(self.targets[:self.n_pre] < self.n_post))

    @property
    def max_delay(self) -> int:
        if np.ndim(self.delays) == 0:
            return int(self.delays)
        real = self.targets < self.n_post
        return int(self.delays[real].max()) if real.any() else 0

    def edges(self):
        """(pre, post, weight, delay) arrays, one entry per synapse, ordered by pre then row position."""
        real = self.targets[:self.n_pre] < self.n_post
        pre = np.nonzero(real)[0].astype(np.int32)
        post = self.targets[:self.n_pre][real]
        w = np.broadcast_to(self.weights, self.targets.shape)[:self.n_pre][real] if np.ndim(self.weights) \
            else np.full(len(pre), self.weights, np.float32)
        d = np.broadcast_to(self.delays, self.targets.shape)[:self.n_pre][real] if np.ndim(self.delays) \
            else np.full(len(pre), self.delays, np.int32)
        return pre, post, np.asarray(w, np.float32), np.asarray(d, np.int32)

    def csr(self):
        """The rows as compressed sparse rows: ``(row_ptr [n_pre + 1], post [m], weight, delay)``, the
        targets of neuron ``i`` at ``row_ptr[i]:row_ptr[i + 1]`` in row order; ``weight`` and ``delay``
        per synapse, or the shared value."""
        pre, post, w, d = self.edges()
        row_ptr = np.concatenate([[0], np.cumsum(np.bincount(pre, minlength=self.n_pre))]).astype(np.int32)
        w = w if np.ndim(self.weights) else float(self.weights)
        d = d if np.ndim(self.delays) else int(self.delays)
        return row_ptr, post.astype(np.int32), w, d

    def dense(self) -> np.ndarray:
        """The ``[n_pre, n_post]`` weight matrix (synapses between the same pair add up): the oracle's."""
        pre, post, w, _ = self.edges()
        W = np.zeros((self.n_pre, self.n_post), np.float64)
        np.add.at(W, (pre, post), w)
        return W.astype(np.float32)

    def bytes(self) -> int:
        return sum(np.asarray(a).nbytes for a in (self.targets, self.weights, self.delays))


def _count(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name}: expected a non-negative whole number, got {value!r}")
    return int(value)


def _indices(name, x, n, what):
    a = np.asarray(x)
    if a.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array of neuron indices, got shape {a.shape}")
    if a.size and not np.issubdtype(a.dtype, np.integer):
        if not np.all(np.equal(np.mod(a, 1), 0)):
            raise ValueError(f"{name}: expected integer neuron indices, got dtype {a.dtype}")
    a = a.astype(np.int64)
    if a.size and (a.min() < 0 or a.max() >= n):
        bad = a[(a < 0) | (a >= n)][0]
        raise ValueError(f"{name}: index {bad} is out of range for the {what} population of {n} neurons "
                         f"(expected 0 <= index < {n})")
    return a


def _per_synapse(name, x, m, kind):
    if np.ndim(x) == 0:
        v = np.asarray(x).item()
        if kind == "delay":
            if isinstance(v, float) and not float(v).is_integer():
                raise ValueError(f"{name}: expected whole steps, got {x!r}")
            if v < 0:
                raise ValueError(f"{name}: delays must be >= 0 steps, got {x!r}")
            return int(v)
        if not np.isfinite(v):
            raise ValueError(f"{name}: must be finite, got {x!r}")
        return float(v)
    a = np.asarray(x)
    if a.shape != (m,):
        raise ValueError(f"{name}: expected one value per synapse ({m}), got shape {a.shape} "
                         "(pre, post and this must have the same length)")
    if kind == "delay":
        if not np.all(np.equal(np.mod(a, 1), 0)):
            raise ValueError(f"{name}: expected whole steps")
        if a.size and a.min() < 0:
            raise ValueError(f"{name}: delays must be >= 0 steps, got {a.min()}")
        return a.astype(np.int32)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name}: must be finite everywhere")
    return a.astype(np.float32)


def from_edges(pre, post, weight=1.0, delay=0, *, n_pre: int, n_post: int) -> Connectivity:
    """Synapses ``pre[k] -> post[k]`` with ``weight`` and ``delay`` (steps), each one value per synapse
    or one for all.  Duplicate pairs are separate synapses (their weights add)."""
    n_pre, n_post = _count("n_pre", n_pre), _count("n_post", n_post)
    pre = _indices("pre", pre, n_pre, "presynaptic")
    post = _indices("post", post, n_post, "postsynaptic")
    if len(pre) != len(post):
        raise ValueError(f"pre and post: expected the same length, got {len(pre)} and {len(post)}")
    w = _per_synapse("weight", weight, len(pre), "weight")
    d = _per_synapse("delay", delay, len(pre), "delay")
    order = np.argsort(pre, kind="stable")
    pre, post = pre[order], post[order]
    counts = np.bincount(pre, minlength=n_pre)
    fan_out = max(int(counts.max()) if len(counts) else 0, 1)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    slot = np.arange(len(pre)) - starts[pre]
    targets = np.full((n_pre + 1, fan_out), n_post, np.int32)
    targets[pre, slot] = post
    out = dict(targets=targets, weights=w, delays=d)
    for key, val, dtype in (("weights", w, np.float32), ("delays", d, np.int32)):
        if np.ndim(val):
            full = np.zeros((n_pre + 1, fan_out), dtype)
            full[pre, slot] = val[order]
            out[key] = full
    return Connectivity(n_pre, n_post, **out)


def _rng(seed):
    return np.random.default_rng(seed)


def fixed_probability(n_pre: int, n_post: int, p: float, *, seed: int, weight=1.0, delay=0,
                      allow_self: bool = True) -> Connectivity:
    """Each pair connected independently with probability ``p`` (Brian2's ``connect(p=...)``).  Drawn
    as the gaps between successes of one Bernoulli sequence over all pairs, so the cost is the
    number of synapses, not ``n_pre x n_post``.  ``allow_self=False`` drops i -> i (same population)."""
    n_pre, n_post = _count("n_pre", n_pre), _count("n_post", n_post)
    if not 0.0 <= float(p) <= 1.0:
        raise ValueError(f"p: expected a probability in [0, 1], got {p!r}")
    rng, total = _rng(seed), n_pre * n_post
    if p == 0.0 or total == 0:
        pre = post = np.zeros(0, np.int64)
    else:
        expected = int(total * p + 10 * np.sqrt(total * p) + 16)
        gaps = rng.geometric(p, size=expected)
        pos = np.cumsum(gaps) - 1
        while pos[-1] < total - 1:  # rare: more successes than drawn; draw on
            more = np.cumsum(rng.geometric(p, size=expected // 4 + 16)) + pos[-1]
            pos = np.concatenate([pos, more])
        pos = pos[pos < total]
        pre, post = pos // n_post, pos % n_post
    if not allow_self:
        keep = pre != post
        pre, post = pre[keep], post[keep]
    m = len(pre)
    return from_edges(pre, post, _drawn(weight, m, rng), _drawn(delay, m, rng), n_pre=n_pre, n_post=n_post)


def _drawn(value, m, rng):
    """A value, or a callable ``f(rng, m)`` drawing one per synapse."""
    return value(rng, m) if callable(value) else value


def _distinct_rows(rng, rows, k, n):
    """``rows`` rows of ``k`` distinct integers in [0, n), each row uniformly random."""
    if k > n:
        raise ValueError(f"expected a degree <= {n} (the other population's size), got {k}")
    if 2 * k > n:  # dense: a random permutation per row
        return np.argsort(rng.random((rows, n)), axis=1)[:, :k]
    out = rng.integers(0, n, size=(rows, k))
    while True:
        s = np.sort(out, axis=1)
        bad = np.nonzero((s[:, 1:] == s[:, :-1]).any(axis=1))[0] if k > 1 else np.zeros(0, int)
        if not len(bad):
            return out
        out[bad] = rng.integers(0, n, size=(len(bad), k))


def _fixed_degree(n_pre, n_post, k, seed, weight, delay, incoming):
    n_pre, n_post, k = _count("n_pre", n_pre), _count("n_post", n_post), _count("k", k)
    rng = _rng(seed)
    rows, others = (n_post, n_pre) if incoming else (n_pre, n_post)
    partners = _distinct_rows(rng, rows, k, others).ravel()
    own = np.repeat(np.arange(rows), k)
    pre, post = (partners, own) if incoming else (own, partners)
    m = len(pre)
    return from_edges(pre, post, _drawn(weight, m, rng), _drawn(delay, m, rng), n_pre=n_pre, n_post=n_post)


def fixed_in_degree(n_pre: int, n_post: int, k: int, *, seed: int, weight=1.0, delay=0) -> Connectivity:
    """Every postsynaptic neuron gets exactly ``k`` distinct presynaptic partners."""
    return _fixed_degree(n_pre, n_post, k, seed, weight, delay, incoming=True)


def fixed_out_degree(n_pre: int, n_post: int, k: int, *, seed: int, weight=1.0, delay=0) -> Connectivity:
    """Every presynaptic neuron projects to exactly ``k`` distinct targets."""
    return _fixed_degree(n_pre, n_post, k, seed, weight, delay, incoming=False)


def one_to_one(n: int, *, weight=1.0, delay=0) -> Connectivity:
    n = _count("n", n)
    idx = np.arange(n)
    return from_edges(idx, idx, weight, delay, n_pre=n, n_post=n)


def all_to_all(n_pre: int, n_post: int, *, weight=1.0, delay=0, allow_self: bool = True) -> Connectivity:
    n_pre, n_post = _count("n_pre", n_pre), _count("n_post", n_post)
    pre = np.repeat(np.arange(n_pre), n_post)
    post = np.tile(np.arange(n_post), n_pre)
    if not allow_self:
        keep = pre != post
        pre, post = pre[keep], post[keep]
    return from_edges(pre, post, weight, delay, n_pre=n_pre, n_post=n_post)


def dense(W) -> Connectivity:
    """A weight matrix ``[n_pre, n_post]``: one synapse per nonzero entry."""
    W = np.asarray(W, np.float32)
    if W.ndim != 2:
        raise ValueError(f"W: expected a 2-D weight matrix [n_pre, n_post], got shape {W.shape}")
    pre, post = np.nonzero(W)
    return from_edges(pre, post, W[pre, post], n_pre=W.shape[0], n_post=W.shape[1])
