"""A batch of independent networks of one structure, simulated together in one vmapped program.

    sims = BatchSimulator([benchmark.build("cuba", 4000, seed=s) for s in range(8)], seeds=range(8))
    results = sims.run(1000.0)            # one Result per network, as its own Simulator would give

The networks share their structure (populations, projections, inputs and recorded traces, by name,
size and kind) and may differ in everything else: connectivity, weights, initial state, input
currents and seed.  Their row tables are padded to a common shape and stacked; every step of every
network is one program, ``jax.vmap`` of the single network's chunk.  Each network keeps its own
``Simulator`` (``members``), with its own records, so a member can be saved, restored, or run on
alone; a batch run gives the spikes that member alone would give.

The batch runs the vector formulation (``propagation="lists"``): under ``vmap`` the loops'
per-network trip counts and element writes would become masked loops and scatters.
"""
from __future__ import annotations

import math
import time

import jax
from jax import lax
import jax.numpy as jnp
import numpy as np

from .network import Network, Result, Simulator, steps_of


def _params(params):
    return params.kind, params.neuron.state, sorted((k, np.asarray(v).tobytes()) for k, v in params.step_values().items())


def _structure(net: Network):
    """What one compiled program fixes: everything but connectivity, initial state, currents and seed."""
    return (net.dt,
            [(p.name, p.n, _params(p.params)) for p in net.populations.values()],
            [(pr.pre, pr.post, pr.target, pr.conn.max_delay > 0) for pr in net.projections],
            [(s.post, s.rate_hz, s.weight, s.target, s.n_sources) for s in net.poisson],
            sorted(net.currents), [(pop, var, idx.tobytes()) for pop, var, idx in net.traces])


def _stack_tables(tables):
    """Stack one route's tables ``(targets, weights, delays)`` across the networks, padding the rows to
    the longest (targets with each table's own padding index, weights and delays with 0)."""
    width = max(t[0].shape[1] for t in tables)
    padded = []
    for targets, w, d in tables:
        pad = ((0, 0), (0, width - targets.shape[1]))
        full = lambda a, dtype: jnp.pad(jnp.broadcast_to(jnp.asarray(a, dtype), targets.shape), pad)  # noqa: E731
        padded.append((jnp.pad(targets, pad, constant_values=targets[-1, 0]), full(w, jnp.float32),
                       full(d, jnp.int32)))
    if all(jnp.ndim(t[1]) == 0 for t in tables):  # shared weights stay shared (one per network)
        padded = [(a, jnp.asarray(t[1], jnp.float32), c) for (a, _, c), t in zip(padded, tables)]
    if all(jnp.ndim(t[2]) == 0 for t in tables):
        padded = [(a, b, jnp.asarray(t[2], jnp.int32)) for (a, b, _), t in zip(padded, tables)]
    return tuple(jnp.stack(leaves) for leaves in zip(*padded))


class BatchSimulator:
    """Independent networks of one structure, simulated together (see the module's docstring)."""

    def __init__(self, nets, seeds, backend: str = "auto", spikes_per_pass: int | None = None):
        nets, seeds = list(nets), list(seeds)
        if not nets:
            raise ValueError("nets: expected at least one network")
        if len(seeds) != len(nets):
            raise ValueError(f"seeds: expected one seed per network ({len(nets)}), got {len(seeds)}")
        want = _structure(nets[0])
        for k, net in enumerate(nets[1:], 1):
            if _structure(net) != want:
                raise ValueError(f"nets: network {k} differs from network 0 in its structure (populations and "
                                 "their neuron parameters, projections and whether they delay, Poisson inputs, "
                                 "which populations get currents, recorded traces); a batch shares one")
        if spikes_per_pass is None:  # one list size for all: what the largest would choose
            per_step = max(p.n for p in nets[0].populations.values()) * 15.0 * nets[0].dt / 1000.0
            spikes_per_pass = min(2048, max(8, math.ceil(per_step)))
        self.members = [Simulator(net, seed, backend, spikes_per_pass, propagation="lists")
                        for net, seed in zip(nets, seeds)]
        lead = self.members[0]
        for m in self.members[1:]:
            if jax.tree.map(jnp.shape, m.state) != jax.tree.map(jnp.shape, lead.state):
                raise ValueError("nets: the networks' delays differ in length; a batch shares its ring buffers' "
                                 "shapes (give every network the same longest delay per projection)")
        if lead.propagation == "kernel":  # the fused kernel's operands: the same shapes in every member
            self._consts = jax.tree.map(lambda *a: jnp.stack(a), *[m.constants for m in self.members])
        else:
            tables = {name: [_stack_tables([m.constants["tables"][name][r] for m in self.members])
                             for r in range(len(lead.constants["tables"][name]))] for name in lead.constants["tables"]}
            self._consts = dict(tables=tables, seed=jnp.stack([m.constants["seed"] for m in self.members]),
                                currents={k: jnp.stack([m.constants["currents"][k] for m in self.members])
                                          for k in lead.constants["currents"]})
        self._compiled = {}
        self.compile_s = 0.0
        self.wall_s = 0.0

    @property
    def step(self) -> int:
        return self.members[0].step

    def _state(self):
        return jax.tree.map(lambda *a: jnp.stack(a), *[m.state for m in self.members])

    def batched_chunk(self, n, capacity):
        """The members' chunk over a leading batch axis of the state and the constants: vmapped (on a
        GPU, a grid axis of the kernel: the networks run side by side), except for the TPU network
        kernel, whose weights stay in HBM unblocked: there the members run one after another."""
        fn = self.members[0].chunk_function(n, capacity)
        if self.members[0].target in ("tpu", "interpret_tpu"):
            return lambda state, t0, consts: lax.map(lambda sc: fn(sc[0], t0, sc[1]), (state, consts))
        return jax.vmap(fn, in_axes=(0, None, 0))

    def _chunk_fn(self, n, capacity, state):
        key = (n, capacity)
        if key not in self._compiled:
            t = time.perf_counter()
            batched = self.batched_chunk(n, capacity)
            self._compiled[key] = jax.jit(batched).lower(state, jnp.int32(self.step), self._consts).compile()
            self.compile_s += time.perf_counter() - t
        return self._compiled[key]

    def run(self, duration_ms: float | None = None, *, steps: int | None = None, chunk: int = 1000,
            progress=None) -> list[Result]:
        """Advance every network by ``duration_ms`` (or ``steps``) in chunks of ``chunk`` steps; one
        ``Result`` per network.  ``progress(done, total)`` is called after every chunk."""
        steps = steps_of(duration_ms, steps, chunk, self.members[0].net.dt)
        done = 0
        while done < steps:
            n = int(min(chunk, steps - done))
            self._advance(n)
            done += n
            if progress:
                progress(done, steps)
        return [m.result() for m in self.members]

    def _advance(self, n):
        capacity = max(m.capacity_for(n) for m in self.members)
        state = self._state()
        while True:
            fn = self._chunk_fn(n, capacity, state)
            t = time.perf_counter()
            out = fn(state, jnp.int32(self.step), self._consts)
            jax.block_until_ready(out[2])
            self.wall_s += time.perf_counter() - t
            parts = [jax.tree.map(lambda a, k=k: a[k], out) for k in range(len(self.members))]
            need = max(m.capacity_needed(o[2]) for m, o in zip(self.members, parts))
            if need <= capacity:
                break
            capacity = 2 * need
        for m, o in zip(self.members, parts):
            m.record(n, *o)
