"""The public programs that the compile tests and ``surrogate-pallas inspect`` compile.

A ``Program`` names one model, one program kind, one population shape, T and
the dtypes; ``build()`` gives the function and its abstract arguments
(``jax.ShapeDtypeStruct``), so nothing is allocated, and ``ideal_bytes()``
gives the bytes the fused kernels must move at the least: every time-major
operand read or written once, every per-neuron one once.
"""
from __future__ import annotations

import dataclasses
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np

from ... import presets
from ...api import RESIDUAL_DTYPES, lif_sequence, lif_step
from ...neuron import NeuronParams
from ...derivation import residuals
from ...derivation.placement import place


def _cell(pop):
    n = math.prod(pop)
    tau = np.linspace(5.0, 20.0, n, dtype=np.float32).reshape(pop)
    thr = np.linspace(-53.0, -51.0, n, dtype=np.float32).reshape(pop)
    return presets.ngclearn(tau_m=tau, thr=thr, integration_type="midpoint", v_min=-70.0)


# every model the library has; a new preset is added here and is compiled from then on
MODELS = {
    "ngclearn": _cell,
    "snntorch_subtract": lambda pop: presets.snntorch_leaky(0.9, reset_mechanism="subtract"),
    "snntorch_zero": lambda pop: presets.snntorch_leaky(0.9, reset_mechanism="zero"),
    "snntorch_none": lambda pop: presets.snntorch_leaky(0.9, reset_mechanism="none"),
    "snntorch_subtract_nodelay": lambda pop: presets.snntorch_leaky(0.9, reset_delay=False),
    "spikingjelly_hard": lambda pop: presets.spikingjelly(tau=2.0),
    "spikingjelly_soft": lambda pop: presets.spikingjelly(tau=2.0, v_reset=None, decay_input=False,
                                                            detach_reset=True, surrogate="sigmoid"),
    "spikingjelly_if": lambda pop: presets.spikingjelly_if(),
    "snntorch_synaptic": lambda pop: presets.snntorch_synaptic(0.8, 0.9),
    # learned parameters (arrays): their grad programs differentiate the parameters too
    "spikingjelly_plif": lambda pop: presets.spikingjelly_plif(),
    "snntorch_learned": lambda pop: presets.snntorch_leaky(np.full(pop, 0.9, np.float32), np.float32(1.0)),
    "synaptic_learned": lambda pop: presets.snntorch_synaptic(np.float32(0.8), np.full(pop, 0.9, np.float32),
                                                                np.float32(1.0), reset_mechanism="zero"),
}


def learned(p) -> bool:
    """A model whose parameters are arrays: its programs take them as arguments and learn them."""
    return not p.is_cell and any(not isinstance(v, float) for v in p.values.values())
# step: lif_step; fwd: lif_sequence; fwd_sg: with the surrogate; grad: a vjp with cotangents for the
# spikes and the final state (what a training step runs); jvp: the tangent kernel; vmap: a batch axis;
# layer (inspect only): a dense layer in f32 feeding the neurons in ``dtype``, whose spikes are counted,
# the way a network uses them (the currents come from an XLA op and the spikes go to one)
WHATS = ("step", "fwd", "fwd_sg", "grad", "jvp", "vmap")
LAYER_INPUTS = 256
DTYPES = ("float32", "bfloat16", "float16")
POPS = ((4096,), (1000,), (8, 512), (3, 5, 77))  # aligned and ragged, 1 to 3 dims


@dataclasses.dataclass(frozen=True)
class Program:
    model: str
    what: str
    pop: tuple[int, ...]
    T: int = 16
    dtype: str = "float32"
    spike_dtype: str | None = None

    @property
    def id(self) -> str:
        pop = "x".join(map(str, self.pop))
        s = f"{self.model}/{self.what}/T={self.T}/pop={pop}/{self.dtype}"
        return s + (f"/s={self.spike_dtype}" if self.spike_dtype else "")

    @property
    def params(self) -> NeuronParams:
        return MODELS[self.model](self.pop)

    def build(self, gpu_backend: str = "triton"):
        """(function, abstract arguments): the program as a user writes it, on the Pallas kernels."""
        p, dt = self.params, jnp.dtype(self.dtype)
        seq = jax.ShapeDtypeStruct((self.T, *self.pop), dt)
        row = jax.ShapeDtypeStruct(self.pop, dt)
        kw = dict(backend="pallas", gpu_backend=gpu_backend, spike_dtype=self.spike_dtype)  # bf16 residuals
        state = jax.tree.map(lambda _: row, p.init_state((1,)))  # the model's fields, abstract

        if self.what == "step":
            return (lambda st, j: lif_step(st, j, p, t=3.0, **kw)), (state, row)
        if learned(p) and self.what == "grad":  # the parameters are arguments, and differentiated
            abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(np.shape(x), jnp.float32), p)

            def grad_params(j, st, params, g_s, g_st):
                def primal(j, st, params):
                    st, out = lif_sequence(j, st, params, **kw)
                    return out.s, st
                out, vjp = jax.vjp(primal, j, st, params)
                return out, vjp((g_s, g_st))
            return grad_params, (seq, state, abstract, seq, state)

        def fwd(j, st):
            st, out = lif_sequence(j, st, p, with_surrogate=self.what == "fwd_sg", **kw)
            return st, out

        if self.what in ("fwd", "fwd_sg"):
            return fwd, (seq, state)
        if self.what == "layer":
            def layer(x, w, st):
                st, out = fwd(jnp.einsum("tbd,dn->tbn", x, w).astype(dt), st)
                return out.s.astype(jnp.float32).sum(0), st
            f32 = jnp.float32
            *b, n = self.pop
            return layer, (jax.ShapeDtypeStruct((self.T, *b, LAYER_INPUTS), f32),
                           jax.ShapeDtypeStruct((LAYER_INPUTS, n), f32), state)
        if self.what == "vmap":
            batched = lambda a: jax.ShapeDtypeStruct((2, *a.shape), a.dtype)
            return jax.vmap(fwd), jax.tree.map(batched, (seq, state))

        def primal(j, st):
            st, out = fwd(j, st)
            return out.s, st
        if self.what == "grad":
            def grad(j, st, g_s, g_st):
                out, vjp = jax.vjp(primal, j, st)
                return out, vjp((g_s, g_st))
            return grad, (seq, state, seq, state)
        return (lambda j, st, dj, dst: jax.jvp(primal, (j, st), (dj, dst))), (seq, state, seq, state)

    def ideal_bytes(self) -> int | None:
        """Least HBM bytes of the fused kernels."""
        p = self.params
        it = jnp.dtype(self.dtype).itemsize
        s_it = jnp.dtype(self.spike_dtype or self.dtype).itemsize
        n, T = math.prod(self.pop), self.T
        n_state = len(p.state_fields)
        per_neuron_params = {k: v for k, v in p.values.items() if np.ndim(v)}  # the cell's v_min=None: 0-d
        consts = 4 * len(per_neuron_params)  # per-neuron parameters, read once as f32
        if self.what == "layer":  # x and w read, j written and read, s written and read, counts written
            *b, n_out = self.pop
            dense = 4 * (T * math.prod(b) * LAYER_INPUTS + LAYER_INPUTS * n_out)
            return dense + n * (T * (2 * it + 2 * s_it) + 2 * n_state * it + 4)
        if self.what in ("step", "fwd", "fwd_sg", "vmap"):
            T = 1 if self.what == "step" else T
            sg = it if self.what in ("step", "fwd_sg") else 0
            per_neuron = 2 * n_state * it + consts
            total = n * (T * (it + s_it + sg) + per_neuron)
            return total * (2 if self.what == "vmap" else 1)
        placement, _, _ = place(p, self.pop)
        learn = placement.per_neuron + placement.scalars if self.what == "grad" and learned(p) else ()
        placement = dataclasses.replace(placement, learn=learn)
        plan = residuals.residual_plan(p.neuron, placement)
        res = sum(d.itemsize for d in residuals.residual_dtypes(p.neuron, placement, RESIDUAL_DTYPES["bf16"]))
        fwd = T * (it + s_it + res) + 2 * n_state * it + consts
        # grad: read g_s, the residuals (and the input, if re-read), write g_j; jvp: read dj, the residuals,
        # write ds; both carry the state (and the parameters' gradients, 4 B each, written once)
        derivative = T * (s_it + res + it + it * plan.input) + 2 * n_state * it + consts + 4 * len(learn)
        # a scalar parameter's per-neuron gradients are then summed: one more read of them
        return n * (fwd + derivative + 4 * len(placement.scalars if learn else ()))


def core_matrix() -> list[Program]:
    """Every model x every program, float32, on a ragged 2-D population."""
    return [Program(m, w, (3, 77), T=10) for m in MODELS for w in WHATS]


def ci_matrix() -> list[Program]:
    """A representative matrix: the core one, then every dtype and spike dtype over every
    population shape, each model in turn."""
    out = core_matrix()
    shapes = itertools.cycle(POPS)
    for m in MODELS:
        for dt, sdt in itertools.product(DTYPES, (None, "int8")):
            out.append(Program(m, "fwd", next(shapes), dtype=dt, spike_dtype=sdt))
        for dt in DTYPES[1:]:
            out.append(Program(m, "grad", next(shapes), dtype=dt))
    return out


def full_matrix() -> list[Program]:
    """Every model x program x dtype x spike dtype x shape (int8 spikes carry no gradient)."""
    out = []
    for m, w, dt, sdt, pop in itertools.product(MODELS, WHATS, DTYPES, (None, "int8"), POPS):
        if sdt and w in ("grad", "jvp"):
            continue
        out.append(Program(m, w, pop, T=10, dtype=dt, spike_dtype=sdt))
    return out


def inspect_matrix() -> list[Program]:
    """The programs whose static figures are tracked: aligned, ragged N, ragged T, a 2-D
    population and a large one, for the training forward and forward+backward and the cell
    (forward, and forward+backward aligned and ragged)."""
    shapes = [(64, (65536,)), (64, (100000,)), (100, (65536,)), (64, (32, 1000)), (64, (4_000_000,))]
    out = []
    for T, pop in shapes:
        for m in ("spikingjelly_hard", "snntorch_subtract"):
            out += [Program(m, "fwd", pop, T=T), Program(m, "grad", pop, T=T)]
        out.append(Program("ngclearn", "fwd_sg", pop, T=T))
    # the other neurons, and learned parameters (scalar and per neuron), aligned and ragged
    for pop in ((65536,), (100000,)):
        out += [Program("snntorch_synaptic", "fwd", pop, T=64), Program("snntorch_synaptic", "grad", pop, T=64)]
        out += [Program(m, "grad", pop, T=64) for m in ("snntorch_learned", "synaptic_learned", "spikingjelly_plif",
                                                         "ngclearn")]
    # narrow dtypes as a network uses them: f16 crosses a TPU kernel boundary as int16 bits, and that
    # bitcast must fuse into the ops around the kernel rather than cost a pass of its own
    out += [Program("spikingjelly_hard", "layer", (32, 2048), T=64, dtype=d) for d in DTYPES]
    return out
