"""Flax NNX layers over ``lif_sequence`` (``pip install surrogate-pallas[nnx]``).

A layer runs a whole time-major sequence ``[T, *population]`` through one fused forward kernel, and
``jax.grad`` / ``nnx.grad`` through the fused reverse-time backward, which also accumulates the
gradients of the neuron parameters the layer learns.  Learned parameters are ``nnx.Param``, scalar or
per neuron, chosen per layer; the others are constants of the kernel::

    layer = Leaky(128, beta=0.9, learn=("beta", "threshold"), per_neuron=("beta",))
    state, out = layer(j_seq)            # out.s: [T, ..., 128] spikes; layer.beta: nnx.Param [128]

``Spiking(params, ...)`` wraps any ``LIFParams``: a preset or a user's ``Neuron.with_params(...)``.
"""
from __future__ import annotations

import jax.numpy as jnp
from flax import nnx

from .api import lif_sequence
from .params import LIFParams


class _Frozen:
    """Holds the layer's ``LIFParams`` skeleton as static data (not a pytree for NNX to walk)."""

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

    def __init__(self, n: int, params: LIFParams, *, learn=(), per_neuron=(), **lif_kw):
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
    def params(self) -> LIFParams:
        """The model with this layer's current parameter values."""
        p = self._params.params
        if not self.learned:
            return p
        values = dict(p.values, **{n: getattr(self, n)[...] for n in self.learned})
        return LIFParams(**{**p.__dict__, "values": values})

    def init_state(self, batch_shape=(), dtype=jnp.float32):
        return self.params.init_state((*batch_shape, self.n), dtype)

    def __call__(self, j_seq, state=None):
        """``j_seq`` [T, *batch, n] -> ``(final LIFState, LIFOut)``."""
        p = self.params
        if state is None:
            state = p.init_state(j_seq.shape[1:], j_seq.dtype)
        return lif_sequence(j_seq, state, p, **self._kw)


def _names(x):
    return (x,) if isinstance(x, str) else tuple(x)


def _preset(factory, doc):
    def make(n, *args, learn=(), per_neuron=(), lif_kw=None, **kwargs):
        return Spiking(n, factory(*args, **kwargs), learn=learn, per_neuron=per_neuron, **(lif_kw or {}))
    make.__doc__ = doc
    return make


Leaky = _preset(LIFParams.snntorch_leaky, "snnTorch ``Leaky`` (``LIFParams.snntorch_leaky``'s arguments).")
Synaptic = _preset(LIFParams.snntorch_synaptic, "snnTorch ``Synaptic`` (``LIFParams.snntorch_synaptic``'s arguments).")
LIF = _preset(LIFParams.spikingjelly, "SpikingJelly ``LIFNode`` (``LIFParams.spikingjelly``'s arguments).")
IF = _preset(LIFParams.spikingjelly_if, "SpikingJelly ``IFNode`` (``LIFParams.spikingjelly_if``'s arguments).")
PLIF = _preset(LIFParams.spikingjelly_plif, "SpikingJelly ``ParametricLIFNode`` (learn ``w``).")


def custom(n, neuron, *, learn=(), per_neuron=(), lif_kw=None, **values):
    """A layer of a user's ``Neuron`` with these parameter values."""
    return Spiking(n, neuron.with_params(**values), learn=learn, per_neuron=per_neuron, **(lif_kw or {}))
