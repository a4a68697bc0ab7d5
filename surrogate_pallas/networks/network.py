"""Networks: populations of neurons, projections between them, external inputs and monitors, simulated
in time-fused chunks with event-driven propagation, checkpointed and resumable.

    net = Network(dt=0.1)                                   # ms
    net.add_population("P", cuba(), 4000, v=v0)             # any NeuronParams: a preset, a user Neuron
    net.connect("P", "P", fixed_probability(...), "ge")     # a projection onto P's variable ge
    sim = net.simulator(seed=0)
    result = sim.run(1000.0)                                # ms; result.spikes["P"].i, .step, .t

One step, for every population at once (Brian2's schedule): the neurons update and cross threshold;
external inputs and every projection's spikes add to their target variables (or, for the target
``"input"``, to the next step's input current); then the neurons reset.  A projection with delays
writes into a ring buffer of ``max_delay + 1`` steps, read back when the delay has passed.

Spikes are recorded as events (neuron, step), never as a dense ``[T, N]`` array; the event buffer of
a chunk grows (the chunk is run again from its start, bit for bit the same) when a chunk has more
spikes than it holds, so no event is lost.  Randomness is keyed by (seed, step), so a run resumed
from a checkpoint is the run that was never interrupted, spike for spike.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .. import _native_loops as native_loops, backends
from ..derivation.steps import Values, bits_of, charge_of, reset_of, threshold_value
from ..neuron import NeuronParams
from ..surrogates import fire
from .connectivity import Connectivity, from_edges
from .propagate import add_row, add_rows, record_fired, spike_lists

INPUT = "input"  # a projection's target: the postsynaptic neurons' next input current
PROPAGATIONS = ("auto", "loops", "lists")
F32 = jnp.float32


@dataclasses.dataclass(frozen=True)
class Population:
    name: str
    params: NeuronParams
    n: int
    initial: dict


@dataclasses.dataclass(frozen=True)
class Projection:
    pre: str
    post: str
    conn: Connectivity
    target: str


@dataclasses.dataclass(frozen=True)
class _Route:
    """Where one row table of a population's spikes adds: the state variables ``keys`` (``(post, var)``,
    one accumulator: their concatenation, of ``sizes``), the ring buffer of projection ``ring``, or the
    next input current of ``post``."""
    keys: tuple = ()
    sizes: tuple = ()
    ring: int | None = None
    post: str | None = None


@dataclasses.dataclass(frozen=True)
class PoissonInput:
    post: str
    rate_hz: float
    weight: float
    target: str
    n_sources: int


def _name(kind, name, have):
    if not isinstance(name, str) or name not in have:
        raise ValueError(f"{kind}: no population named {name!r}; the network has {sorted(have)}")
    return name


class Network:
    """A network under construction; ``simulator(...)`` compiles it.  ``dt`` is in ms."""

    def __init__(self, dt: float = 0.1):
        dt = float(dt)
        if not dt > 0 or not math.isfinite(dt):
            raise ValueError(f"dt: must be a finite time step > 0 ms, got {dt!r}")
        self.dt = dt
        self.populations: dict[str, Population] = {}
        self.projections: list[Projection] = []
        self.poisson: list[PoissonInput] = []
        self.currents: dict[str, np.ndarray] = {}
        self.traces: list[tuple[str, str, np.ndarray]] = []

    # ------------------------------------------------------------------ building
    def add_population(self, name: str, params: NeuronParams, n: int, **initial) -> str:
        """``n`` neurons of ``params``; ``initial`` overrides the initial state per field (scalar or [n])."""
        if not isinstance(name, str) or not name or name in self.populations:
            raise ValueError(f"name: expected a new, non-empty population name, got {name!r}")
        if not isinstance(params, NeuronParams):
            raise TypeError(f"params: expected a NeuronParams (a preset such as networks.cuba()), got "
                            f"{type(params).__name__}")
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
            raise ValueError(f"n: expected a positive number of neurons, got {n!r}")
        init = {}
        for field, value in initial.items():
            if field not in params.neuron.state:
                raise ValueError(f"{field}: not a state field of {params.kind}; its fields are "
                                 f"{params.neuron.state}")
            a = np.asarray(value, np.float32)
            if a.shape not in ((), (int(n),)):
                raise ValueError(f"{field}: expected a scalar or one value per neuron ({n}), got shape {a.shape}")
            init[field] = np.broadcast_to(a, (int(n),)).copy()
        self.populations[name] = Population(name, params, int(n), init)
        return name

    def connect(self, pre: str, post: str, conn: Connectivity, target: str) -> Projection:
        """Spikes of ``pre`` add their synapses' weights to ``post``'s state variable ``target`` (or to its
        next input current, ``target="input"``)."""
        pre = _name("pre", pre, self.populations)
        post = _name("post", post, self.populations)
        if not isinstance(conn, Connectivity):
            raise TypeError(f"conn: expected a Connectivity (networks.connectivity.*), got {type(conn).__name__}")
        if conn.n_pre != self.populations[pre].n or conn.n_post != self.populations[post].n:
            raise ValueError(f"conn: connects {conn.n_pre} -> {conn.n_post} neurons, but {pre!r} has "
                             f"{self.populations[pre].n} and {post!r} {self.populations[post].n}")
        self._check_target(post, target)
        proj = Projection(pre, post, conn, target)
        self.projections.append(proj)
        return proj

    def _check_target(self, post, target):
        fields = self.populations[post].params.neuron.state
        if target != INPUT and target not in fields:
            raise ValueError(f"target: {post!r} ({self.populations[post].params.kind}) has no variable "
                             f"{target!r}; expected one of {fields} or {INPUT!r}")

    def add_poisson(self, post: str, rate_hz: float, weight: float, target: str, n_sources: int = 1):
        """``n_sources`` independent Poisson trains per neuron at ``rate_hz``, each spike adding ``weight``
        to ``target`` (Brian2's ``PoissonInput``)."""
        post = _name("post", post, self.populations)
        self._check_target(post, target)
        rate_hz, weight = float(rate_hz), float(weight)
        if not rate_hz >= 0 or not math.isfinite(rate_hz) or rate_hz * self.dt / 1000.0 > 1.0:
            raise ValueError(f"rate_hz: expected a rate >= 0 with at most one spike per step, got {rate_hz!r}")
        if isinstance(n_sources, bool) or not isinstance(n_sources, (int, np.integer)) or n_sources <= 0:
            raise ValueError(f"n_sources: expected a positive whole number, got {n_sources!r}")
        self.poisson.append(PoissonInput(post, rate_hz, weight, target, int(n_sources)))

    def add_current(self, post: str, amplitude):
        """A constant input current ``j`` for every step (scalar or one per neuron)."""
        post = _name("post", post, self.populations)
        a = np.asarray(amplitude, np.float32)
        if a.shape not in ((), (self.populations[post].n,)):
            raise ValueError(f"amplitude: expected a scalar or one value per neuron, got shape {a.shape}")
        if not np.all(np.isfinite(a)):
            raise ValueError("amplitude: must be finite")
        self.currents[post] = np.broadcast_to(a, (self.populations[post].n,)) + self.currents.get(post, 0.0)

    def record_state(self, pop: str, var: str, indices) -> None:
        """Record ``var`` of the neurons ``indices`` of ``pop`` after every step."""
        pop = _name("pop", pop, self.populations)
        if var not in self.populations[pop].params.neuron.state:
            raise ValueError(f"var: {pop!r} has no state variable {var!r}; it has "
                             f"{self.populations[pop].params.neuron.state}")
        idx = np.asarray(indices, np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= self.populations[pop].n):
            raise ValueError(f"indices: out of range for {pop!r} ({self.populations[pop].n} neurons)")
        self.traces.append((pop, var, idx.astype(np.int32)))

    def simulator(self, seed: int = 0, backend: str = "auto", spikes_per_pass: int | None = None,
                  propagation: str = "auto", gpu_backend: str = "triton") -> "Simulator":
        """Compile the network.

        ``propagation``: how spikes reach their targets (the same sums in the same order, so the same
        spikes).  ``"loops"`` walks the fired neurons and their synapses one by one, which the CPU
        compiler turns into native loops; ``"lists"`` gathers fixed-size lists of fired neurons and
        scatter-adds their rows, in vector ops.  ``"auto"`` takes the loops on a CPU when they compile
        natively (see docs/networks.md), the lists otherwise.  ``spikes_per_pass``: the lists' size
        (default: enough for the largest population at 15 Hz, 8 to 2048); more spikes take more
        lists, so it does not bound the spikes a step can have.

        ``backend``: ``"auto"`` runs the fused network kernel (``kernels/network.py``) on a GPU or TPU
        and the XLA path on a CPU; ``"xla"`` the XLA path; ``"pallas"`` the kernel (on a CPU, in the
        Pallas interpreter); ``"interpret"`` the kernel in the interpreter, ``"interpret_tpu"`` the TPU
        kernel in the TPU interpreter with race detection.  ``gpu_backend``: the GPU kernel's
        (``"triton"``)."""
        return Simulator(self, seed, backend, spikes_per_pass, propagation, gpu_backend)

    @property
    def n_neurons(self) -> int:
        return sum(p.n for p in self.populations.values())

    @property
    def n_synapses(self) -> int:
        return sum(p.conn.n_synapses for p in self.projections)


@dataclasses.dataclass
class SpikeEvents:
    """A population's spikes: neuron indices ``i`` and step indices ``step`` (ordered by step, then i)."""

    i: np.ndarray
    step: np.ndarray
    dt: float

    @property
    def t(self) -> np.ndarray:
        """Spike times in seconds (float64)."""
        return self.step.astype(np.float64) * (self.dt / 1000.0)


@dataclasses.dataclass
class Result:
    spikes: dict          # population -> SpikeEvents
    counts: dict          # population -> spikes per step [steps] (the population rate)
    traces: list          # (population, variable, indices, values [steps, len(indices)])
    steps: int
    dt: float
    sizes: dict           # population -> neurons

    def rate_hz(self, pop: str) -> float:
        """The population's mean firing rate over the run."""
        n = len(self.spikes[pop].i)
        return n / (self.sizes[pop] * self.steps * self.dt / 1000.0) if self.steps else 0.0


def steps_of(duration_ms, steps, chunk, dt) -> int:
    """The steps a ``run(duration_ms | steps=, chunk=)`` asks for, its arguments checked."""
    if (duration_ms is None) == (steps is None):
        raise ValueError("run: give exactly one of duration_ms and steps")
    if steps is None:
        duration_ms = float(duration_ms)
        if not duration_ms >= 0 or not math.isfinite(duration_ms):
            raise ValueError(f"duration_ms: expected a finite duration >= 0, got {duration_ms!r}")
        steps = int(round(duration_ms / dt))
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"steps: expected a whole number >= 0, got {steps!r}")
    if isinstance(chunk, bool) or not isinstance(chunk, (int, np.integer)) or chunk <= 0:
        raise ValueError(f"chunk: expected a positive number of steps, got {chunk!r}")
    return int(steps)


def _atomic_savez(path: Path, **arrays):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class Simulator:
    """A compiled network with its state, clock and records.  ``run`` advances it; ``save`` and
    ``restore`` checkpoint it (state, step, seed and everything recorded)."""

    def __init__(self, net: Network, seed: int = 0, backend: str = "auto", spikes_per_pass: int | None = None,
                 propagation: str = "auto", gpu_backend: str = "triton", target: str | None = None):
        if not net.populations:
            raise ValueError("net: the network has no population")
        backends.check(backend, gpu_backend)
        self.target = backends.kernel_target(backend, gpu_backend, jax.default_backend()) if target is None else target
        if self.target == "mosaic":
            raise ValueError("gpu_backend: the fused network kernel is built for Pallas Triton on NVIDIA GPUs; "
                             "Mosaic GPU's is not built yet (use gpu_backend='triton')")
        self.net, self.seed, self.backend = net, int(seed), backend
        # auto on a GPU or TPU: the fused kernel where it can hold the network, else the XLA path (why: fallback)
        self.fallback = None
        if self.target is not None and backend == "auto" and target is None:
            from .fused import unsupported
            self.fallback = unsupported(net, self.target)
            self.target = None if self.fallback else self.target
        if spikes_per_pass is not None and (isinstance(spikes_per_pass, bool) or spikes_per_pass <= 0
                                            or not isinstance(spikes_per_pass, (int, np.integer))):
            raise ValueError(f"spikes_per_pass: expected a positive whole number, got {spikes_per_pass!r}")
        # propagated per list: the spikes of a step at 15 Hz (more take more lists)
        per_step = max(p.n for p in net.populations.values()) * 15.0 * net.dt / 1000.0
        self.K = int(spikes_per_pass or min(2048, max(8, math.ceil(per_step))))
        self.pops = list(net.populations.values())
        if propagation not in PROPAGATIONS:
            raise ValueError(f"propagation: expected one of {PROPAGATIONS}, got {propagation!r}")
        # auto: the loops where the CPU compiler makes the chunk one native function (checked when it
        # compiles: if it did not, the lists instead)
        self._auto = propagation == "auto" and self.target is None
        self.propagation = ("loops" if native_loops.available() else "lists") if self._auto else propagation
        self._fused = None
        if self.target is not None:  # the fused network kernel (kernels/network.py)
            from .fused import Fused
            self._fused = Fused(self, self.target)
            self.propagation = "kernel"
        self._consts = self._constants()
        self.step = 0
        self.state = self._initial_state()
        self._events = {p.name: [] for p in self.pops}
        self._counts = {p.name: [] for p in self.pops}
        self._trace_rows = [[] for _ in net.traces]
        self._capacity = {}
        self._compiled = {}
        self.compile_s = 0.0
        self.wall_s = 0.0

    # ------------------------------------------------------------------ state
    def _initial_state(self):
        state = {}
        for p in self.pops:
            init = p.params.init_state((p.n,))
            fields = {f: jnp.asarray(p.initial.get(f, init.field(f)), F32) for f in p.params.neuron.state}
            state[p.name] = fields
        rings = {k: jnp.zeros((proj.conn.max_delay + 1, proj.conn.n_post), F32)
                 for k, proj in enumerate(self.net.projections) if proj.conn.max_delay > 0}
        inputs = {p.name: jnp.zeros((p.n,), F32) for p in self.pops}
        return dict(neurons=state, rings=rings, inputs=inputs)

    def _constants(self):
        """Every population's routes (static) and their row tables (an argument of the compiled chunk).

        Lists: the direct projections leaving one population (no delay, onto state variables) share
        one route, a row table over the concatenation of their targets, so a spike gathers one row
        instead of one per projection (the benchmark networks' excitatory and inhibitory rows are
        disjoint: a padded row per projection would be half padding).  Loops: compressed rows have
        no padding to save, so every projection is its own route, straight into its target."""
        if self._fused is not None:
            return dict(seed=jnp.int32(self.seed), kernel=self._fused.constants(),
                        weights=[jnp.asarray(w) for w in self._fused.weights()])
        routes, tables = {}, {}
        for p in self.pops:
            out = [k for k, pr in enumerate(self.net.projections) if pr.pre == p.name]
            direct = [k for k in out if self.net.projections[k].target != INPUT
                      and self.net.projections[k].conn.max_delay == 0]
            merge = direct if self.propagation == "lists" and len(direct) > 1 else []
            groups = [self._merged_route(p, merge)] if merge else []
            for k in out:
                if k in merge:
                    continue
                pr = self.net.projections[k]
                if k in direct:
                    route = _Route(keys=((pr.post, pr.target),), sizes=(self.net.populations[pr.post].n,))
                else:
                    route = _Route(ring=k) if pr.conn.max_delay > 0 else _Route(post=pr.post)
                groups.append((route, pr.conn))
            routes[p.name] = tuple(r for r, _ in groups)
            tables[p.name] = [self._table(conn) for _, conn in groups]
        self._routes = routes
        currents = {name: jnp.asarray(a, F32) for name, a in self.net.currents.items()}
        return dict(tables=tables, seed=jnp.int32(self.seed), currents=currents)

    def _merged_route(self, p, ks):
        """One route for the direct projections ``ks`` of ``p``: their rows over their targets' concatenation."""
        projs = [self.net.projections[k] for k in ks]
        keys = tuple(dict.fromkeys((pr.post, pr.target) for pr in projs))
        sizes = tuple(self.net.populations[post].n for post, _ in keys)
        offsets = dict(zip(keys, np.cumsum((0,) + sizes[:-1]).tolist()))
        pre, dest, w = [], [], []
        for pr in projs:
            a, b, c, _ = pr.conn.edges()
            pre.append(a)
            dest.append(b.astype(np.int64) + offsets[(pr.post, pr.target)])
            w.append(c)
        conn = from_edges(np.concatenate(pre), np.concatenate(dest), np.concatenate(w), n_pre=p.n,
                          n_post=int(sum(sizes)))
        return _Route(keys=keys, sizes=sizes), conn

    def _table(self, c):
        arr = lambda a, dtype: jnp.asarray(a, dtype) if np.ndim(a) else a  # noqa: E731  (shared: a scalar)
        if self.propagation == "loops":
            row_ptr, cols, w, d = c.csr()
            return jnp.asarray(row_ptr), jnp.asarray(cols), arr(w, F32), arr(d, jnp.int32)
        return jnp.asarray(c.targets), arr(c.weights, F32), arr(c.delays, jnp.int32)

    # ------------------------------------------------------------------ one step
    def _values(self, p, t, arrays=None):
        """The step's parameter values: floats, per-neuron arrays (``arrays`` overrides them: the kernel
        path's, in its layout) and the step index."""
        values = dict(p.params.step_values())
        if p.params.is_cell:
            values["t0"] = 0.0
        P = Values({k: v if isinstance(v, float) else
                    (arrays[k] if arrays is not None else jnp.broadcast_to(jnp.asarray(v, F32), (p.n,)))
                    for k, v in values.items()})
        P["step"] = t.astype(F32)
        return P

    def array_params(self, p) -> tuple:
        """The names of ``p``'s parameters that are arrays (not floats)."""
        values = dict(p.params.step_values())
        return tuple(k for k, v in values.items() if not isinstance(v, float))

    @property
    def fed(self) -> set:
        """The populations whose next step's input current something targets (only theirs is kept)."""
        return {pr.post for pr in self.net.projections if pr.target == INPUT} | \
            {src.post for src in self.net.poisson if src.target == INPUT}

    def poisson_adds(self, seed, t) -> list:
        """Every Poisson input's increments of step ``t``: one ``[n]`` array per input, keyed by (seed, t)."""
        if not self.net.poisson:
            return []
        key = jax.random.fold_in(jax.random.PRNGKey(seed), t)
        adds = []
        for k, src in enumerate(self.net.poisson):
            n = self.net.populations[src.post].n
            prob = src.rate_hz * self.net.dt / 1000.0
            u = jax.random.uniform(jax.random.fold_in(key, k), (src.n_sources, n))
            adds.append(jnp.sum(u < prob, axis=0, dtype=jnp.int32).astype(F32) * src.weight)
        return adds

    def charge(self, t, neurons, inputs, currents, adds, arrays=None):
        """Every population's update and threshold, then the external inputs' increments:
        ``(parts, H, nxt)``: per population its (values, bits, fired), its charged values, and the next
        step's input current.  Shape-agnostic: the CPU path's ``[n]`` arrays or a kernel's layout."""
        fed = self.fed
        parts, H_all = {}, {}
        nxt = {p.name: jnp.zeros_like(inputs[p.name]) if p.name in fed else inputs[p.name] for p in self.pops}
        for p in self.pops:
            neuron = p.params.neuron
            P = self._values(p, t, None if arrays is None else arrays[p.name])
            S = Values(neurons[p.name])
            j = inputs[p.name] if p.name in fed else jnp.float32(0.0)
            if p.name in currents:
                j = j + currents[p.name]
            B = bits_of(neuron, P, S)
            H = dict(charge_of(neuron, P, S, B, j))
            thr = threshold_value(neuron, P, Values(H), B)
            parts[p.name] = (P, B, fire(H[neuron.membrane] - thr, neuron.fire_on_equal))
            H_all[p.name] = H
        for src, add in zip(self.net.poisson, adds):
            if src.target == INPUT:
                nxt[src.post] = nxt[src.post] + add
            else:
                H_all[src.post][src.target] = H_all[src.post][src.target] + add
        return parts, H_all, nxt

    def arrive(self, H_all, nxt, k, row):
        """Projection ``k``'s delayed increments arriving now (``row``) into their target."""
        proj = self.net.projections[k]
        if proj.target == INPUT:
            nxt[proj.post] = nxt[proj.post] + row
        else:
            H_all[proj.post][proj.target] = H_all[proj.post][proj.target] + row

    def reset(self, parts, H_all) -> dict:
        """Every population's next state from its charged values (after propagation) and its spikes."""
        new = {}
        for p in self.pops:
            P, B, fired = parts[p.name]
            S_new = reset_of(p.params.neuron, P, Values(H_all[p.name]), B, fired.astype(F32))
            new[p.name] = {f: S_new[f].astype(F32) for f in p.params.neuron.state}
        return new

    def _step(self, carry, t, capacity, consts):
        state, ev, ptr = carry
        neurons, rings, inputs = state["neurons"], dict(state["rings"]), state["inputs"]
        adds = self.poisson_adds(consts["seed"], t)
        parts, H_all, nxt = self.charge(t, neurons, inputs, consts["currents"], adds)
        ev, ptr, before = dict(ev), dict(ptr), {}
        for p in self.pops:
            routes, tables = self._routes[p.name], consts["tables"][p.name]
            accs = [jnp.concatenate([H_all[post][var] for post, var in r.keys]) if r.keys
                    else rings[r.ring] if r.ring is not None else nxt[r.post] for r in routes]
            c = ((ev[p.name], ptr[p.name]), accs)
            before[p.name] = ptr[p.name]
            propagate = self._loops if self.propagation == "loops" else self._lists
            (ev[p.name], ptr[p.name]), accs = propagate(parts[p.name][2], routes, tables, c, t, capacity)
            for r, acc in zip(routes, accs):
                if r.keys:
                    for (post, var), part in zip(r.keys, jnp.split(acc, np.cumsum(r.sizes)[:-1].tolist())):
                        H_all[post][var] = part
                elif r.ring is not None:
                    rings[r.ring] = acc
                else:
                    nxt[r.post] = acc
        for k in rings:
            L = rings[k].shape[0]
            self.arrive(H_all, nxt, k, rings[k][t % L])
            rings[k] = rings[k].at[t % L].set(0.0)
        new_neurons = self.reset(parts, H_all)
        counts = {p.name: ptr[p.name] - before[p.name] for p in self.pops}  # the spikes recorded (no reduction)
        traces = tuple(new_neurons[pop][var][jnp.asarray(idx)] for pop, var, idx in self.net.traces)
        new_state = dict(neurons=new_neurons, rings=rings, inputs=nxt)
        return (new_state, ev, ptr), (counts, traces)

    def _lists(self, fired, routes, tables, carry, t, capacity):
        """Propagate through fixed-size lists of fired neurons (vector ops)."""
        def body(idx, n_valid, c):
            (ev_i, at), accs = c
            ev_i = lax.dynamic_update_slice(ev_i, idx, (jnp.minimum(at, capacity - self.K),))
            new = []
            for r, (targets, w, d), acc in zip(routes, tables, accs):
                slot = (t + (d[idx] if jnp.ndim(d) else d)) % acc.shape[0] if r.ring is not None else None
                new.append(add_rows(acc, idx, targets, w, slot=slot))
            return (ev_i, at + n_valid), new
        return spike_lists(fired, self.K, body, carry)

    def _loops(self, fired, routes, tables, carry, t, capacity):
        """Record the fired neurons, then add their rows, in loops (one native loop nest on a CPU)."""
        (ev_i, at0), accs = carry
        ev_i, at = record_fired(fired, ev_i, at0)
        slots = []
        for r, (_, _, _, d), acc in zip(routes, tables, accs):
            if r.ring is None:
                slots.append(None)
            elif jnp.ndim(d):
                slots.append(lambda s, d=d, L=acc.shape[0]: (t + lax.dynamic_index_in_dim(d, s, keepdims=False)) % L)
            else:
                slots.append(lambda s, d=d, L=acc.shape[0]: (t + d) % L)

        def spike(k, accs):
            i = lax.dynamic_index_in_dim(ev_i, k, keepdims=False)
            return [add_row(acc, i, row_ptr, cols, w, slot_of)
                    for (row_ptr, cols, w, _), acc, slot_of in zip(tables, accs, slots)]

        return (ev_i, at), lax.fori_loop(at0, jnp.minimum(at, capacity), spike, accs)

    def chunk_function(self, n_steps: int, capacity: int):
        """The chunk of ``n_steps`` steps with an event buffer of ``capacity`` per population, as a
        function ``(state, t0, constants) -> (state, events, pointers, (counts, traces))`` to jit (or
        vmap, as ``BatchSimulator`` does).  The connectivity is in ``constants``, an argument: no
        constant of the program."""
        if self._fused is not None:
            return self._fused.chunk_function(n_steps, capacity)

        def chunk(state, t0, consts):
            ev = {p.name: jnp.full((capacity,), p.n, jnp.int32) for p in self.pops}  # neuron indices
            ptr = {p.name: jnp.int32(0) for p in self.pops}
            ts = t0 + jnp.arange(n_steps, dtype=jnp.int32)
            (state, ev, ptr), outs = lax.scan(lambda c, t: self._step(c, t, capacity, consts), (state, ev, ptr), ts)
            return state, ev, ptr, outs
        return chunk

    @property
    def constants(self):
        """The compiled chunk's constant arguments: the row tables, the seed and the input currents."""
        return self._consts

    def _compile(self, n_steps, capacity, args):
        lowered = jax.jit(self.chunk_function(n_steps, capacity)).lower(*args, self._consts)
        if jax.default_backend() == "cpu":
            try:  # copy insertion that follows the loop's regions: fewer copies of the state (5-8% here)
                return lowered.compile(compiler_options={"xla_cpu_copy_insertion_use_region_analysis": True})
            except Exception as e:  # noqa: BLE001  (an XLA without the option: its default)
                if "xla_cpu_copy_insertion_use_region_analysis" not in str(e):
                    raise  # a real compile error: not worth compiling twice
        return lowered.compile()

    def _chunk_fn(self, n_steps, capacity):
        """The chunk compiled ahead of time, once per shape (the time it takes is ``compile_s``)."""
        key = (n_steps, capacity)
        if key not in self._compiled:
            t = time.perf_counter()
            args = (self.state, jnp.int32(self.step))
            compiled = self._compile(n_steps, capacity, args)
            if self._auto and self.propagation == "loops" and not native_loops.compiled_native(compiled):
                # the compiler kept the loops as separate calls (the option came too late, or a neuron
                # holds an op it cannot inline): the loops would be slow, the lists are not
                self.propagation = "lists"
                self._consts = self._constants()
                compiled = self._compile(n_steps, capacity, args)
            self._compiled[key] = compiled
            self.compile_s += time.perf_counter() - t
        return self._compiled[key]

    # ------------------------------------------------------------------ running
    def run(self, duration_ms: float | None = None, *, steps: int | None = None, chunk: int = 1000,
            progress=None, checkpoint: str | os.PathLike | None = None, checkpoint_every: int = 1) -> Result:
        """Advance by ``duration_ms`` (or ``steps``) in chunks of ``chunk`` steps.  ``progress(done, total)``
        is called after every chunk.  With ``checkpoint``, the state and every record are saved there
        after every ``checkpoint_every`` chunks, and when the run is interrupted (Ctrl-C, an error)."""
        steps = steps_of(duration_ms, steps, chunk, self.net.dt)
        done, since_save = 0, 0
        try:
            while done < steps:
                n = int(min(chunk, steps - done))
                self._advance(n)
                done += n
                since_save += 1
                if checkpoint is not None and since_save >= checkpoint_every:
                    self.save(checkpoint)
                    since_save = 0
                if progress:
                    progress(done, steps)
        except BaseException:
            if checkpoint is not None:
                self.save(checkpoint)  # every completed chunk is kept
            raise
        if checkpoint is not None and since_save:
            self.save(checkpoint)
        return self.result()

    def capacity_for(self, n: int) -> int:
        """The event buffer a chunk of ``n`` steps starts with: what earlier chunks needed, or a guess."""
        guess = {p.name: self._capacity.get(p.name, 4 * self.K + n * max(1, p.n // 50)) for p in self.pops}
        return max(guess.values()) + self.K

    def capacity_needed(self, ptr) -> int:
        """The event buffer a chunk's events need (its pointers, plus a list's worth of slack)."""
        return max(int(v) for v in ptr.values()) + self.K

    def _advance(self, n):
        capacity = self.capacity_for(n)
        while True:
            fn = self._chunk_fn(n, capacity)
            t = time.perf_counter()
            out = fn(self.state, jnp.int32(self.step), self._consts)
            jax.block_until_ready(out[2])
            self.wall_s += time.perf_counter() - t
            need = self.capacity_needed(out[2])
            if need <= capacity:
                break
            capacity = 2 * need  # more events than the buffer holds: run the chunk again, larger
        self.record(n, *out)

    def record(self, n: int, state, ev, ptr, outs) -> None:
        """Keep what a chunk of ``n`` steps recorded, and continue from its state."""
        counts, traces = outs
        for p in self.pops:
            k = int(ptr[p.name])
            c = np.asarray(counts[p.name])  # events are written in step order: their steps are the counts'
            steps = np.repeat(np.arange(self.step, self.step + n, dtype=np.int32), c)
            self._events[p.name].append((np.asarray(ev[p.name][:k]), steps))
            self._counts[p.name].append(c)
            self._capacity[p.name] = max(self._capacity.get(p.name, 0), 2 * k + self.K)
        for rows, tr in zip(self._trace_rows, traces):
            rows.append(np.asarray(tr))
        self.state = state
        self.step += n

    def result(self) -> Result:
        spikes, counts = {}, {}
        for p in self.pops:
            evs = self._events[p.name]
            i = np.concatenate([e[0] for e in evs]) if evs else np.zeros(0, np.int32)
            st = np.concatenate([e[1] for e in evs]) if evs else np.zeros(0, np.int32)
            spikes[p.name] = SpikeEvents(i.astype(np.int32), st.astype(np.int32), self.net.dt)
            counts[p.name] = np.concatenate(self._counts[p.name]) if self._counts[p.name] else np.zeros(0, np.int32)
        traces = [(pop, var, idx, np.concatenate(rows) if rows else np.zeros((0, len(idx)), np.float32))
                  for (pop, var, idx), rows in zip(self.net.traces, self._trace_rows)]
        return Result(spikes, counts, traces, self.step, self.net.dt, {p.name: p.n for p in self.pops})

    # ------------------------------------------------------------------ checkpoints
    def save(self, path) -> None:
        """Write the state, the clock, the seed and every record so far to ``path`` (atomically: an
        interrupted save leaves the previous checkpoint)."""
        r = self.result()
        arrays = dict(meta=np.asarray(json.dumps(dict(step=self.step, seed=self.seed, dt=self.net.dt,
                                                      populations=[p.name for p in self.pops],
                                                      n=[p.n for p in self.pops]))))
        for p in self.pops:
            for f, a in self.state["neurons"][p.name].items():
                arrays[f"state/{p.name}/{f}"] = np.asarray(a)
            arrays[f"input/{p.name}"] = np.asarray(self.state["inputs"][p.name])
            arrays[f"spikes/{p.name}/i"] = r.spikes[p.name].i
            arrays[f"spikes/{p.name}/step"] = r.spikes[p.name].step
            arrays[f"counts/{p.name}"] = r.counts[p.name]
        for k, ring in self.state["rings"].items():
            arrays[f"ring/{k}"] = np.asarray(ring)
        for k, (_, _, _, values) in enumerate(r.traces):
            arrays[f"trace/{k}"] = values
        _atomic_savez(Path(path), **arrays)

    def restore(self, path) -> "Simulator":
        """Continue from a checkpoint written by ``save`` for this network."""
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            names = [p.name for p in self.pops]
            if meta["populations"] != names or meta["n"] != [p.n for p in self.pops] or meta["dt"] != self.net.dt:
                raise ValueError(f"path: the checkpoint {path} is of another network (populations "
                                 f"{meta['populations']} of {meta['n']} neurons, dt {meta['dt']} ms)")
            if meta["seed"] != self.seed:
                raise ValueError(f"seed: the checkpoint was written with seed {meta['seed']}, this simulator has "
                                 f"{self.seed}; a resumed run must keep its seed")
            self.step = int(meta["step"])
            neurons = {p.name: {f: jnp.asarray(z[f"state/{p.name}/{f}"]) for f in p.params.neuron.state}
                       for p in self.pops}
            inputs = {p.name: jnp.asarray(z[f"input/{p.name}"]) for p in self.pops}
            rings = {k: jnp.asarray(z[f"ring/{k}"]) for k in self.state["rings"]}
            self.state = dict(neurons=neurons, rings=rings, inputs=inputs)
            self._events = {p.name: [(z[f"spikes/{p.name}/i"], z[f"spikes/{p.name}/step"])] for p in self.pops}
            self._counts = {p.name: [z[f"counts/{p.name}"]] for p in self.pops}
            self._trace_rows = [[z[f"trace/{k}"]] for k in range(len(self.net.traces))]
        return self
