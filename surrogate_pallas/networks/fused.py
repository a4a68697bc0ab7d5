"""The network step as one fused kernel (``kernels/network.py``), built from a ``Simulator``'s own
step parts (``charge``, ``arrive``, ``reset``): the same neuron code as the CPU path, so the same
floats and the same spikes.

A chunk runs in one launch.  Around it, XLA only converts the state to the kernel's layout and back
(once per chunk, population-sized), draws the Poisson inputs of the chunk's steps (the same draws as
the CPU path: keyed by seed and step), and turns the kernel's per-step spike flags into events.

The weights are dense rows over the postsynaptic population (``W[d, i]``: presynaptic neuron ``i``'s
increments at delay ``d``): a spike costs its target population's size, and the weights
``n_pre x n_post`` floats per projection and delay, so these kernels serve networks up to some tens
of thousands of neurons (``MAX_WEIGHT_BYTES``); larger ones run on the XLA path.  Several synapses
between one pair at one delay are summed into one weight, which can round differently from adding
them one by one.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from ..kernels import network as kernel

F32 = jnp.float32
MAX_WEIGHT_BYTES = 16 << 30


def _pad(a, shape, fill=0.0):
    flat = a.reshape(-1)
    size = math.prod(shape)
    return jnp.concatenate([flat, jnp.full((size - flat.shape[0],), fill, flat.dtype)]).reshape(shape)


def _unpad(a, n, lead=()):
    return a.reshape(*lead, -1)[..., :n]


def weight_bytes(net, target: str) -> int:
    """The dense weight rows of every projection on ``target``."""
    total = 0
    for pr in net.projections:
        pre, post = net.populations[pr.pre].n, net.populations[pr.post].n
        total += (pr.conn.max_delay + 1) * math.prod(kernel.layout(target, pre)) * math.prod(kernel.layout(target, post)) * 4
    return total


def unsupported(net, target: str) -> str | None:
    """Why the fused kernel cannot run ``net`` on ``target``, or None."""
    sizes = [p.n for p in net.populations.values()]
    if not kernel.fits_one_block(target, sizes):
        return (f"the {target} network kernel holds the whole network in one block of at most {kernel.ONE_BLOCK_MAX} "
                f"neurons (more spill registers); this one lays out {kernel.block_size(target, sizes)}")
    total = weight_bytes(net, target)
    if total > MAX_WEIGHT_BYTES:
        return (f"the fused network kernels hold dense weight rows, {total / 2**30:.1f} GiB for this network "
                f"(at most {MAX_WEIGHT_BYTES / 2**30:.0f})")
    return None


def _key(post, var):
    return f"{post}/{var}"


class Fused:
    """The fused kernel of a simulator's network on ``target`` (a ``kernels.network`` target)."""

    def __init__(self, sim, target: str):
        self.sim, self.target = sim, target
        net = sim.net
        self.pops = sim.pops
        self.index = {p.name: k for k, p in enumerate(self.pops)}
        self.shapes = {p.name: kernel.layout(target, p.n) for p in self.pops}
        reason = unsupported(net, target)
        if reason:
            raise ValueError(f"backend: {reason}; use backend='xla'")
        self.arrays = {p.name: sim.array_params(p) for p in self.pops}
        # the neurons past a population's end (never firing) start from its initial state
        self.fills = {}
        for p in self.pops:
            init = p.params.init_state((1,))
            self.fills[p.name] = {f: float(np.asarray(init.field(f))[0]) for f in p.params.neuron.state}
        # accumulators: targeted state variables, next input currents, pending buffers of delays
        projections = []
        for k, pr in enumerate(net.projections):
            slots = pr.conn.max_delay + 1 if pr.conn.max_delay > 0 else 0
            acc = f"pending/{k}" if slots else _key(pr.post, pr.target)
            projections.append(kernel.Projection(self.index[pr.pre], acc, slots))
        self.targets = sorted({(pr.post, pr.target) for pr in net.projections
                               if pr.conn.max_delay == 0})
        self.buffers = tuple((f"pending/{k}", pr.conn.max_delay + 1) for k, pr in enumerate(net.projections)
                             if pr.conn.max_delay > 0)
        traced = tuple(dict.fromkeys((pop, var) for pop, var, _ in net.traces))
        self.traced = traced
        self.spec = kernel.NetworkSpec(
            name=f"network_{target}", shapes=tuple(self.shapes[p.name] for p in self.pops),
            sizes=tuple(p.n for p in self.pops), projections=tuple(projections), update=self._update,
            finish=self._finish, traced=tuple((self.index[pop], _key(pop, var)) for pop, var in traced),
            buffers=self.buffers)

    # ------------------------------------------------------------------ the step, on kernel values
    def _split(self, carry):
        neurons = {p.name: {f: carry[_key(p.name, f)] for f in p.params.neuron.state} for p in self.pops}
        inputs = {p.name: carry[_key(p.name, "input")] for p in self.pops}
        return neurons, inputs

    def _update(self, t, carry, seq, consts):
        neurons, inputs = self._split(carry)
        adds = [seq[f"poisson/{k}"] for k in range(len(self.sim.net.poisson))]
        currents = {name: consts[f"current/{name}"] for name in self.sim.net.currents}
        arrays = {p.name: {a: consts[f"param/{p.name}/{a}"] for a in self.arrays[p.name]} for p in self.pops}
        parts, H_all, nxt = self.sim.charge(t, neurons, inputs, currents, adds, arrays)
        accs = {_key(post, var): (nxt[post] if var == "input" else H_all[post][var]) for post, var in self.targets}
        accs.update({nm: carry[nm] for nm, _ in self.buffers})
        return accs, [parts[p.name][2] for p in self.pops], (parts, H_all, nxt)

    def _finish(self, t, accs, ctx, fired):
        parts, H_all, nxt = ctx
        parts = {name: (P, B, f) for (name, (P, B, _)), f in zip(parts.items(), fired)}
        for post, var in self.targets:
            if var == "input":
                nxt[post] = accs[_key(post, var)]
            else:
                H_all[post][var] = accs[_key(post, var)]
        carry = {}
        for nm, L in self.buffers:
            k = int(nm.split("/")[1])
            pending = accs[nm]
            self.sim.arrive(H_all, nxt, k, pending[0])
            carry[nm] = list(pending[1:]) + [jnp.zeros_like(pending[0])]
        new = self.sim.reset(parts, H_all)
        for p in self.pops:
            for f in p.params.neuron.state:
                carry[_key(p.name, f)] = new[p.name][f]
            carry[_key(p.name, "input")] = nxt[p.name]
        return carry, [new[pop][var] for pop, var in self.traced]

    # ------------------------------------------------------------------ operands
    def weights(self) -> list:
        """Every projection's dense rows ``[L, n_pre layout, *post layout]`` (numpy, f32)."""
        out = []
        for pr in self.sim.net.projections:
            pre, post, w, d = pr.conn.edges()
            L = pr.conn.max_delay + 1
            W = np.zeros((L, math.prod(self.shapes[pr.pre]), math.prod(self.shapes[pr.post])), np.float32)
            w = np.broadcast_to(np.asarray(w, np.float32), pre.shape)
            d = np.broadcast_to(np.asarray(d, np.int64), pre.shape)
            np.add.at(W, (d, pre, post), w)
            out.append(W.reshape(L, W.shape[1], *self.shapes[pr.post]))
        return out

    def constants(self) -> dict:
        consts = {}
        for name, a in self.sim.net.currents.items():
            consts[f"current/{name}"] = _pad(jnp.asarray(a, F32), self.shapes[name])
        for p in self.pops:
            values = p.params.step_values()
            for a in self.arrays[p.name]:
                v = jnp.broadcast_to(jnp.asarray(values[a], F32), (p.n,))
                consts[f"param/{p.name}/{a}"] = _pad(v, self.shapes[p.name])
        return consts

    # ------------------------------------------------------------------ a chunk
    def chunk_function(self, n_steps: int, capacity: int):
        """The chunk as the CPU path's ``chunk_function`` returns it (same arguments, same results)."""
        sim = self.sim

        def chunk(state, t0, consts):
            carry = {}
            for p in self.pops:
                for f in p.params.neuron.state:
                    carry[_key(p.name, f)] = _pad(state["neurons"][p.name][f], self.shapes[p.name],
                                                  self.fills[p.name][f])
                carry[_key(p.name, "input")] = _pad(state["inputs"][p.name], self.shapes[p.name])
            for nm, L in self.buffers:
                k = int(nm.split("/")[1])
                post = sim.net.projections[k].post
                ring = jnp.roll(state["rings"][k], -(t0 % L), axis=0)  # row d: what arrives in d steps
                carry[nm] = jax.vmap(lambda r: _pad(r, self.shapes[post]))(ring)
            ts = t0 + jnp.arange(n_steps, dtype=jnp.int32)
            seq = {}
            for k, src in enumerate(sim.net.poisson):
                adds = jax.vmap(lambda t: sim.poisson_adds(consts["seed"], t)[k])(ts)
                seq[f"poisson/{k}"] = jax.vmap(lambda a: _pad(a, self.shapes[src.post]))(adds)
            carry, spikes, traced = kernel.launch(self.spec, self.target, n_steps, t0, carry, seq,
                                                  consts["kernel"], consts["weights"])
            t1 = t0 + n_steps
            neurons = {p.name: {f: _unpad(carry[_key(p.name, f)], p.n) for f in p.params.neuron.state}
                       for p in self.pops}
            inputs = {p.name: _unpad(carry[_key(p.name, "input")], p.n) for p in self.pops}
            rings = {}
            for nm, L in self.buffers:
                k = int(nm.split("/")[1])
                n_post = sim.net.populations[sim.net.projections[k].post].n
                rings[k] = jnp.roll(_unpad(carry[nm], n_post, (L,)), t1 % L, axis=0)
            ev, ptr, counts = {}, {}, {}
            for p, s in zip(self.pops, spikes):
                # listed in the kernel's layout, as it wrote them (no copy): the neurons past n never fire
                s = s.reshape(n_steps, -1)
                size = s.shape[1]
                counts[p.name] = jnp.sum(s, axis=1, dtype=jnp.int32)
                ptr[p.name] = jnp.sum(counts[p.name])
                (flat,) = jnp.nonzero(s.reshape(-1), size=capacity, fill_value=n_steps * size)
                ev[p.name] = jnp.where(flat < n_steps * size, flat % size, p.n).astype(jnp.int32)
            values = {pv: _unpad(v, sim.net.populations[pv[0]].n, (n_steps,)) for pv, v in zip(self.traced, traced)}
            traces = tuple(values[(pop, var)][:, jnp.asarray(idx)] for pop, var, idx in sim.net.traces)
            new_state = dict(neurons=neurons, rings=rings, inputs=inputs)
            return new_state, ev, ptr, (counts, traces)
        return chunk

