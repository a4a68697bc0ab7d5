"""Flax NNX layers over ``lif_sequence`` (``pip install surrogate-pallas[nnx]``).

A layer runs a whole time-major sequence ``[T, *population]`` through one fused forward kernel, and
``jax.grad`` / ``nnx.grad`` through the fused reverse-time backward, which also accumulates the
gradients of the neuron parameters the layer learns.  Learned parameters are ``nnx.Param``, scalar or
per neuron, chosen per layer; the others are constants of the kernel::

    layer = Leaky(128, beta=0.9, learn=("beta", "threshold"), per_neuron=("beta",))
    state, out = layer(j_seq)            # out.s: [T, ..., 128] spikes; layer.beta: nnx.Param [128]

``Spiking(n, params, ...)`` wraps any ``NeuronParams``: a preset or a user's ``Neuron.with_params(...)``.
"""
from __future__ import annotations

import jax.numpy as jnp
from flax import nnx

from . import presets
from .api import lif_sequence
from .neuron import NeuronParams


class _Frozen:
    """Holds the layer's ``NeuronParams`` skeleton as static data (not a pytree for NNX to walk)."""

    def __init__(self, params):
        self.params = params

    def __eq__(self, other):
        return isinstance(other, _Frozen) and other.params is self.params

    def __hash__(self):
        return id(self.params)


class Spiking(nnx.Module):
    """A population of ``n`` neurons (the last axis of the input) with the model ``params``.

    ``learn``: the parameter names to make ``nnx.Param`` (trainable); ``per_neuron``: which of those
    have one value per neuron (shape ``(n,)``) rather than one for the layer.  ``lif_kw`` go to
    ``lif_sequence`` (``backend``, ``residuals``, ``spike_dtype``, ...).
    """

    def __init__(self, n: int, params: NeuronParams, *, learn=(), per_neuron=(), **lif_kw):
        learn, per_neuron = _names(learn), _names(per_neuron)
        if params.is_cell and learn:
            raise ValueError("learn: the ngclearn cell's parameters are static; learn a training neuron's")
        for name in (*learn, *per_neuron):
            if name not in (params.values or {}):
                raise ValueError(f"learn: {params.kind} has no parameter {name!r}; it has {sorted(params.values)}")
        if not set(per_neuron) <= set(learn):
            raise ValueError(f"per_neuron: {sorted(set(per_neuron) - set(learn))} are not learned (add them to learn)")
        self.n = int(n)
        self.learned = tuple(learn)
        self._params = _Frozen(params)
        self._kw = dict(lif_kw)
        for name in learn:
            value = jnp.asarray(params.values[name], jnp.float32)
            if name in per_neuron:
                value = jnp.broadcast_to(value, (self.n,)) + 0.0
            setattr(self, name, nnx.Param(value))

    @property
    def params(self) -> NeuronParams:
        """The model with this layer's current parameter values."""
        p = self._params.params
        if not self.learned:
            return p
        values = dict(p.values, **{n: getattr(self, n)[...] for n in self.learned})
        return NeuronParams(**{**p.__dict__, "values": values})

    def init_state(self, batch_shape=(), dtype=jnp.float32):
        return self.params.init_state((*batch_shape, self.n), dtype)

    def __call__(self, j_seq, state=None):
        """``j_seq`` [T, *batch, n] -> ``(final NeuronState, NeuronOut)``."""
        shape = getattr(j_seq, "shape", None)
        if shape is None or len(shape) < 2 or shape[-1] != self.n:
            raise ValueError(f"j_seq: expected a time-major array [T, *batch, {self.n}] (this layer has {self.n} "
                             f"neurons), got shape {None if shape is None else tuple(shape)}")
        p = self.params
        if state is None:
            state = p.init_state(j_seq.shape[1:], j_seq.dtype)
        return lif_sequence(j_seq, state, p, **self._kw)


def _names(x):
    return (x,) if isinstance(x, str) else tuple(x)


def _preset(factory, name):
    def make(n: int, *args, learn=(), per_neuron=(), lif_kw=None, **kwargs) -> Spiking:
        return Spiking(n, factory(*args, **kwargs), learn=learn, per_neuron=per_neuron, **(lif_kw or {}))
    make.__name__ = make.__qualname__ = name
    make.__doc__ = (f"A layer of ``n`` {factory.__doc__.split(chr(10))[0].rstrip('.')}.\n\n"
                    f"``{name}(n, ...)`` takes ``presets.{factory.__name__}``'s arguments after ``n``, and "
                    "``learn``, ``per_neuron`` and ``lif_kw`` as ``Spiking`` does; it returns a ``Spiking``.")
    make.__signature__ = _signature(factory)
    return make


def _signature(factory):
    import inspect
    head = [inspect.Parameter("n", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=int)]
    body = [p for p in inspect.signature(factory).parameters.values() if p.kind != p.VAR_KEYWORD]
    tail = [inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, default=d)
            for k, d in (("learn", ()), ("per_neuron", ()), ("lif_kw", None))]
    tail = [p for p in tail if p.name not in {b.name for b in body}]
    var_kw = [p for p in inspect.signature(factory).parameters.values() if p.kind == p.VAR_KEYWORD]
    ordered = head + [p for p in body if p.kind != p.KEYWORD_ONLY] + [p for p in body if p.kind == p.KEYWORD_ONLY]
    return inspect.Signature(ordered + tail + var_kw, return_annotation="Spiking")


Leaky = _preset(presets.snntorch_leaky, "Leaky")
Synaptic = _preset(presets.snntorch_synaptic, "Synaptic")
LIF = _preset(presets.spikingjelly, "LIF")
IF = _preset(presets.spikingjelly_if, "IF")
PLIF = _preset(presets.spikingjelly_plif, "PLIF")


def custom(n, neuron, *, learn=(), per_neuron=(), lif_kw=None, **values):
    """A layer of a user's ``Neuron`` with these parameter values."""
    return Spiking(n, neuron.with_params(**values), learn=learn, per_neuron=per_neuron, **(lif_kw or {}))
