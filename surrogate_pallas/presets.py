"""The peer libraries' neurons with their names and defaults, each a function returning ``NeuronParams``.

* ``ngclearn(...)``: ngclearn's ``LIFCell`` (refractory period, adaptive threshold, time of last spike,
  euler or midpoint); static, its per-neuron arrays stored as read-only float32 numpy arrays;
* ``snntorch_leaky`` and ``snntorch_synaptic``: snnTorch ``Leaky`` and ``Synaptic``;
* ``spikingjelly``, ``spikingjelly_if`` and ``spikingjelly_plif``: SpikingJelly ``LIFNode``, ``IFNode``
  and ``ParametricLIFNode``.

Each model's step is a ``Neuron`` (``models.py``), so its kernels and their derivatives are derived
like a user's neuron's.  A user's own neuron: ``Neuron(...).with_params(...)``.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from . import models
from .neuron import NeuronParams, is_concrete, parameter_value
from .surrogates import Surrogate, get_surrogate


def _scalar(name, value, *, positive=False, at_least=None):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise ValueError(f"{name}: expected a Python number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name}: must be finite, got {value!r}")
    if positive and not value > 0:
        raise ValueError(f"{name}: must be > 0, got {value!r}")
    if at_least is not None and not value >= at_least:
        raise ValueError(f"{name}: must be >= {at_least:g}, got {value!r}")
    return value


def _cell_param(name, value, *, positive=False, at_least=None):
    """A scalar, or a per-neuron array stored as a read-only float32 numpy array."""
    if isinstance(value, jax.core.Tracer):
        raise ValueError(f"{name}: the ngclearn cell's parameters are static; pass a concrete value, not a "
                         "traced one")
    if np.ndim(value) == 0:
        return _scalar(name, np.asarray(value).item() if hasattr(value, "shape") else value, positive=positive,
                       at_least=at_least)
    arr = np.array(value, dtype=np.float32)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: must be finite everywhere")
    if positive and not np.all(arr > 0):
        raise ValueError(f"{name}: must be > 0 everywhere, got min {arr.min()!r}")
    if at_least is not None and not np.all(arr >= at_least):
        raise ValueError(f"{name}: must be >= {at_least:g} everywhere, got min {arr.min()!r}")
    arr.flags.writeable = False
    return arr


def ngclearn(tau_m, resist_m=1.0, thr=-52.0, v_rest=-65.0, v_reset=-60.0, conduct_leak=1.0, tau_theta=1e7,
             theta_plus=0.05, refract_time=5.0, v_min=None, integration_type="euler", *, dt=1.0,
             surrogate="arctan", **surrogate_params) -> NeuronParams:
    """ngclearn ``LIFCell`` (same names and defaults).  ``surrogate`` defaults to ngclearn's scaled
    arctan with ``alpha=0.2``, which LIFCell always uses."""
    if integration_type in ("rk2",):
        integration_type = "midpoint"
    if integration_type not in ("euler", "midpoint"):
        raise ValueError(f"integration_type: expected 'euler' or 'midpoint', got {integration_type!r}")
    if surrogate == "arctan" and not surrogate_params:
        surrogate_params = {"alpha": 0.2}
    values = dict(tau_m=_cell_param("tau_m", tau_m, positive=True),
                  resist_m=_cell_param("resist_m", resist_m, positive=True),
                  thr=_cell_param("thr", thr), v_rest=_cell_param("v_rest", v_rest),
                  v_reset=_cell_param("v_reset", v_reset), conduct_leak=_cell_param("conduct_leak", conduct_leak),
                  theta_plus=_cell_param("theta_plus", theta_plus),
                  refract_time=_cell_param("refract_time", refract_time, at_least=0.0),
                  v_min=None if v_min is None else _cell_param("v_min", v_min))
    sur = get_surrogate(surrogate, **surrogate_params)
    dt, tau_theta = _scalar("dt", dt, positive=True), _scalar("tau_theta", tau_theta)
    return NeuronParams(kind="ngclearn", values=values,
                        neuron=models.ngclearn_cell(integration_type, dt, tau_theta, v_min is not None, sur))


def _unit_interval(name, value):
    """snnTorch clamps its decays to [0, 1] on every call; a value given outside is an error here."""
    value = parameter_value(name, value, at_least=0.0)
    if is_concrete(value) and np.any(np.asarray(value) > 1.0):
        raise ValueError(f"{name}: must be in [0, 1] (snnTorch clamps it to that range), got {value!r}")
    return value


def snntorch_leaky(beta, threshold=1.0, reset_mechanism="subtract", reset_delay=True, surrogate="atan",
                   **surrogate_params) -> NeuronParams:
    """snnTorch ``Leaky`` (fires on ``>``; the reset comes from the previous membrane, detached).
    ``beta`` is in [0, 1]; snnTorch clamps it there on every call, and so does the model, so a learned
    beta that drifts past a bound acts as the bound (its gradient is 0 outside)."""
    _mechanism(reset_mechanism)
    neuron = models.snntorch_leaky(reset_mechanism, bool(reset_delay), _snntorch_surrogate(surrogate, surrogate_params))
    return NeuronParams.from_neuron(neuron, "snntorch", beta=_unit_interval("beta", beta), threshold=threshold)


def snntorch_synaptic(alpha, beta, threshold=1.0, reset_mechanism="subtract", reset_delay=True, surrogate="atan",
                      **surrogate_params) -> NeuronParams:
    """snnTorch ``Synaptic``: syn = alpha*syn + x, then mem = beta*mem + syn (``alpha`` and ``beta``
    in [0, 1], clamped there on every call).  The zero reset zeroes the whole new membrane and leaves
    ``syn``.  Pass a surrogate's own parameters with a ``get_surrogate(...)`` object (``alpha`` here is
    the decay)."""
    _mechanism(reset_mechanism)
    neuron = models.snntorch_synaptic(reset_mechanism, bool(reset_delay),
                                      _snntorch_surrogate(surrogate, surrogate_params))
    return NeuronParams.from_neuron(neuron, "snntorch_synaptic", alpha=_unit_interval("alpha", alpha),
                                    beta=_unit_interval("beta", beta), threshold=threshold)


def spikingjelly(tau=2.0, decay_input=True, v_threshold=1.0, v_reset=0.0, detach_reset=False, surrogate="atan",
                 **surrogate_params) -> NeuronParams:
    """SpikingJelly ``LIFNode`` (fires on ``>=``; ``v_reset=None`` is the soft reset)."""
    parameter_value("tau", tau, above=1.0)  # SpikingJelly's decay is 1 - 1/tau
    return _spikingjelly("spikingjelly", "lif", dict(tau=tau), decay_input, v_threshold, v_reset, detach_reset,
                         surrogate, surrogate_params)


def spikingjelly_if(v_threshold=1.0, v_reset=0.0, detach_reset=False, surrogate="sigmoid",
                    **surrogate_params) -> NeuronParams:
    """SpikingJelly ``IFNode``: h = v + x, no leak.  Default surrogate ``Sigmoid(alpha=4)``."""
    surrogate_params.setdefault("alpha", 4.0) if surrogate == "sigmoid" else None
    return _spikingjelly("spikingjelly_if", "if", {}, True, v_threshold, v_reset, detach_reset, surrogate,
                         surrogate_params)


def spikingjelly_plif(init_tau=2.0, decay_input=True, v_threshold=1.0, v_reset=0.0, detach_reset=False,
                      surrogate="sigmoid", **surrogate_params) -> NeuronParams:
    """SpikingJelly ``ParametricLIFNode``.  Its learnable leaf is ``w``, a 0-d f32 array with
    w = -log(init_tau - 1); the decay is sigmoid(w), and ``.w`` of a gradient is ``node.w.grad``."""
    init_tau = _scalar("init_tau", init_tau)
    if not init_tau > 1.0:
        raise ValueError(f"init_tau: must be > 1 (w = -log(init_tau - 1)), got {init_tau!r}")
    surrogate_params.setdefault("alpha", 4.0) if surrogate == "sigmoid" else None
    w = jnp.asarray(np.float32(-math.log(init_tau - 1.0)))
    return _spikingjelly("spikingjelly_plif", "plif", dict(w=w), decay_input, v_threshold, v_reset, detach_reset,
                         surrogate, surrogate_params)


def _spikingjelly(kind, charge, values, decay_input, v_threshold, v_reset, detach_reset, surrogate,
                  surrogate_params):
    hard = v_reset is not None
    sur = surrogate if isinstance(surrogate, Surrogate) else get_surrogate(surrogate, **surrogate_params)
    neuron = models.spikingjelly(charge, bool(decay_input), hard, bool(detach_reset), sur)
    values = dict(values, v_threshold=v_threshold, **(dict(v_reset=v_reset) if hard else {}))
    return NeuronParams.from_neuron(neuron, kind, **values)


def _mechanism(reset_mechanism):
    if reset_mechanism not in ("subtract", "zero", "none"):
        raise ValueError(f"reset_mechanism: expected 'subtract', 'zero' or 'none', got {reset_mechanism!r}")


def _snntorch_surrogate(surrogate, params):
    if isinstance(surrogate, Surrogate):
        return surrogate
    if surrogate == "atan" and "alpha" not in params:
        params = dict(params, alpha=2.0)
    return get_surrogate(surrogate, **params)
