"""``LIFParams``: a neuron model and its parameter values.

Each family has the peer library's names and defaults:

* ``LIFParams.ngclearn(...)``: ngclearn's ``LIFCell`` (docs/numerics.md section 2): refractory
  period, adaptive threshold, time of last spike, euler or midpoint.  Its step is a ``Neuron`` too
  (``models.ngclearn_cell``), so its kernels and their derivatives are derived like the others'.
  Static: its per-neuron arrays are stored as read-only float32 numpy arrays and hashed by value.
* training neurons, each a ``Neuron`` (``neuron.py``) with its values: snnTorch ``Leaky`` and
  ``Synaptic``, SpikingJelly ``LIFNode``, ``IFNode`` and ``ParametricLIFNode``, and any neuron a
  user defines (``Neuron.with_params``).  These are pytrees whose numeric parameters are the
  leaves, so ``jax.grad`` of a loss with respect to a ``LIFParams`` returns a ``LIFParams`` of
  gradients.  A value may be a Python float (a constant of the kernel), or a JAX or NumPy array,
  scalar or broadcasting to the population (per-neuron).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import models
from .neuron import Neuron, check_value
from .surrogates import Surrogate, get_surrogate

# ngclearn fields that may be per-neuron arrays
PER_NEURON = ("tau_m", "resist_m", "thr", "v_rest", "v_reset", "conduct_leak", "theta_plus",
              "refract_time", "v_min")
# names that mean the firing threshold in each family
_THRESHOLD = ("thr", "threshold", "v_threshold")


class LIFState(NamedTuple):
    """Neuron state.  snnTorch's ``Leaky`` and SpikingJelly's neurons carry ``v``; snnTorch's
    ``Synaptic`` adds ``syn``; ngclearn's cell carries ``v, rfr, thr_theta, tols``.  A user's neuron
    keeps its other fields in ``extra`` (a dict), also readable as attributes (``state.a``)."""

    v: Any
    rfr: Any = None
    thr_theta: Any = None
    tols: Any = None
    syn: Any = None
    extra: Any = None

    def __getattr__(self, name):
        extra = tuple.__getitem__(self, 5)
        if extra is not None and name in extra:
            return extra[name]
        raise AttributeError(f"LIFState has no field {name!r}")

    def field(self, name):
        return getattr(self, name) if name in LIFState._fields else (self.extra or {}).get(name)

    @classmethod
    def of(cls, fields: dict) -> "LIFState":
        """A state from named fields (those that are not ``LIFState``'s own go to ``extra``)."""
        own = {k: v for k, v in fields.items() if k in cls._fields}
        extra = {k: v for k, v in fields.items() if k not in cls._fields}
        return cls(**own, extra=extra or None)


class LIFOut(NamedTuple):
    """Per-step outputs: spikes ``s`` and (when asked for) the surrogate value."""

    s: Any
    surrogate: Any = None


def _scalar(name, value, *, positive=False, finite=True):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise ValueError(f"{name}: expected a Python number, got {value!r}")
    value = float(value)
    if finite and not math.isfinite(value):
        raise ValueError(f"{name}: must be finite, got {value!r}")
    if positive and not value > 0:
        raise ValueError(f"{name}: must be > 0, got {value!r}")
    return value


def _param(name, value, *, positive=False):
    """A scalar, or a per-neuron array stored as a read-only float32 numpy array."""
    if isinstance(value, jax.core.Tracer):
        raise ValueError(f"{name}: LIFParams are static; pass a concrete value, not a traced one")
    if np.ndim(value) == 0:
        return _scalar(name, np.asarray(value).item() if hasattr(value, "shape") else value, positive=positive)
    arr = np.array(value, dtype=np.float32)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: must be finite everywhere")
    if positive and not np.all(arr > 0):
        raise ValueError(f"{name}: must be > 0 everywhere, got min {arr.min()!r}")
    arr.flags.writeable = False
    return arr


def _value(name, value, *, above=None):
    """A training neuron's parameter: a Python float stays one; anything else becomes an array."""
    if isinstance(value, bool) or isinstance(value, str) or value is None:
        raise ValueError(f"{name}: expected a number or an array, got {value!r}")
    if isinstance(value, (int, float, np.floating, np.integer)):
        value = float(value)
    elif isinstance(value, np.ndarray) or not hasattr(value, "dtype"):
        value = np.asarray(value, np.float32)
        if value.ndim == 0:
            value = float(value)
    elif not jnp.issubdtype(value.dtype, jnp.floating):
        raise TypeError(f"{name}: expected a floating dtype, got {value.dtype}")
    check_value(name, value, above=above)
    return value


def _key(v):
    if isinstance(v, np.ndarray):
        return ("array", v.shape, v.tobytes())
    if isinstance(v, dict):
        return tuple((k, _key(x)) for k, x in v.items())
    if isinstance(v, jax.core.Tracer):
        raise TypeError("LIFParams holding traced values cannot be hashed; pass it as a normal (not a static) "
                        "argument of jit")
    if hasattr(v, "dtype"):
        return _key(np.asarray(v))
    return v


@dataclasses.dataclass(frozen=True, eq=False)
class LIFParams:
    kind: str
    surrogate: Surrogate
    values: Any = None  # name -> value; the pytree leaves of a training neuron
    neuron: Neuron | None = None
    fire_on_equal: bool = False
    dt: float = 1.0
    reset: str = "hard"
    # ngclearn
    tau_theta: float = 0.0
    integration_type: str = "euler"
    # spikingjelly
    decay_input: bool = True
    detach_reset: bool = False
    # snntorch
    reset_delay: bool = True

    def __getattr__(self, name):
        values = self.__dict__.get("values") or {}
        if name in values:
            return values[name]
        if name in _THRESHOLD:
            for alias in _THRESHOLD:
                if alias in values:
                    return values[alias]
        if name == "v_reset" and self.__dict__.get("kind", "").startswith("spikingjelly"):
            return 0.0  # the soft reset's reference level
        raise AttributeError(f"{self.__dict__.get('kind')} LIFParams has no parameter {name!r}")

    def _fields(self):
        return tuple((f.name, _key(getattr(self, f.name))) for f in dataclasses.fields(self))

    def __hash__(self):
        return hash(self._fields())

    def __eq__(self, other):
        return isinstance(other, LIFParams) and self._fields() == other._fields()

    def __repr__(self):
        vals = ", ".join(f"{k}={v!r}" for k, v in (self.values or {}).items())
        return f"LIFParams.{self.kind}({vals})"

    @property
    def is_cell(self) -> bool:
        """True for ngclearn's cell (four state fields, simulation semantics)."""
        return self.kind == "ngclearn"

    @property
    def state_fields(self) -> tuple:
        return self.neuron.state

    def array_params(self) -> dict[str, np.ndarray]:
        """The ngclearn cell's per-neuron parameters, by name."""
        return {k: v for k, v in (self.values or {}).items() if isinstance(v, np.ndarray)}

    def step_values(self) -> dict:
        """The values the neuron's step reads (``Neuron.prepare`` applied)."""
        v = {k: x for k, x in self.values.items() if x is not None}  # the cell's v_min=None: no floor
        return dict(self.neuron.prepare(v)) if self.neuron.prepare is not None else v

    # ------------------------------------------------------------------ presets
    @classmethod
    def ngclearn(cls, tau_m, resist_m=1.0, thr=-52.0, v_rest=-65.0, v_reset=-60.0, conduct_leak=1.0,
                 tau_theta=1e7, theta_plus=0.05, refract_time=5.0, v_min=None, integration_type="euler",
                 *, dt=1.0, surrogate="arctan", **surrogate_params) -> "LIFParams":
        """ngclearn ``LIFCell`` (same names and defaults).  ``surrogate`` defaults to
        ngclearn's scaled arctan with ``alpha=0.2``, which LIFCell always uses."""
        if integration_type in ("rk2",):
            integration_type = "midpoint"
        if integration_type not in ("euler", "midpoint"):
            raise ValueError(f"integration_type: expected 'euler' or 'midpoint', got {integration_type!r}")
        if surrogate == "arctan" and not surrogate_params:
            surrogate_params = {"alpha": 0.2}
        values = dict(tau_m=_param("tau_m", tau_m, positive=True), resist_m=_param("resist_m", resist_m, positive=True),
                      thr=_param("thr", thr), v_rest=_param("v_rest", v_rest), v_reset=_param("v_reset", v_reset),
                      conduct_leak=_param("conduct_leak", conduct_leak), theta_plus=_param("theta_plus", theta_plus),
                      refract_time=_param("refract_time", refract_time),
                      v_min=None if v_min is None else _param("v_min", v_min))
        sur, dt, tau_theta = get_surrogate(surrogate, **surrogate_params), _scalar("dt", dt, positive=True), \
            _scalar("tau_theta", tau_theta)
        return cls(kind="ngclearn", surrogate=sur, values=values, fire_on_equal=False, dt=dt, tau_theta=tau_theta,
                   integration_type=integration_type, reset="hard",
                   neuron=models.ngclearn_cell(integration_type, dt, tau_theta, v_min is not None, sur))

    @classmethod
    def from_neuron(cls, neuron: Neuron, kind="custom", **values) -> "LIFParams":
        """A ``Neuron`` with its parameter values (prefer ``neuron.with_params(...)``)."""
        return cls(kind=kind, surrogate=neuron.surrogate, neuron=neuron, fire_on_equal=neuron.fire_on_equal,
                   values={n: _value(n, values[n]) for n in neuron.params})

    @classmethod
    def snntorch_leaky(cls, beta, threshold=1.0, reset_mechanism="subtract", reset_delay=True,
                       surrogate="atan", **surrogate_params) -> "LIFParams":
        """snnTorch ``Leaky`` (fires on ``>``; the reset comes from the previous membrane, detached).
        ``beta`` is clamped to [0, 1] on every call, as snnTorch does (its gradient is 0 outside)."""
        _mechanism(reset_mechanism)
        neuron = models.snntorch_leaky(reset_mechanism, bool(reset_delay), _snntorch_surrogate(surrogate, surrogate_params))
        return dataclasses.replace(cls.from_neuron(neuron, "snntorch", beta=beta, threshold=threshold),
                                   reset=reset_mechanism, reset_delay=bool(reset_delay))

    @classmethod
    def snntorch_synaptic(cls, alpha, beta, threshold=1.0, reset_mechanism="subtract", reset_delay=True,
                          surrogate="atan", **surrogate_params) -> "LIFParams":
        """snnTorch ``Synaptic``: syn = alpha*syn + x, then mem = beta*mem + syn (``alpha`` and ``beta``
        clamped to [0, 1]).  The zero reset zeroes the whole new membrane and leaves ``syn``.  Pass a
        surrogate's own parameters with a ``get_surrogate(...)`` object (``alpha`` here is the decay)."""
        _mechanism(reset_mechanism)
        neuron = models.snntorch_synaptic(reset_mechanism, bool(reset_delay),
                                          _snntorch_surrogate(surrogate, surrogate_params))
        return dataclasses.replace(cls.from_neuron(neuron, "snntorch_synaptic", alpha=alpha, beta=beta,
                                                   threshold=threshold),
                                   reset=reset_mechanism, reset_delay=bool(reset_delay))

    @classmethod
    def spikingjelly(cls, tau=2.0, decay_input=True, v_threshold=1.0, v_reset=0.0, detach_reset=False,
                     surrogate="atan", **surrogate_params) -> "LIFParams":
        """SpikingJelly ``LIFNode`` (fires on ``>=``; ``v_reset=None`` is the soft reset)."""
        _value("tau", tau, above=1.0)  # SpikingJelly's decay is 1 - 1/tau
        return cls._spikingjelly("spikingjelly", "lif", dict(tau=tau), decay_input, v_threshold, v_reset,
                                 detach_reset, surrogate, surrogate_params)

    @classmethod
    def spikingjelly_if(cls, v_threshold=1.0, v_reset=0.0, detach_reset=False, surrogate="sigmoid",
                        **surrogate_params) -> "LIFParams":
        """SpikingJelly ``IFNode``: h = v + x, no leak.  Default surrogate ``Sigmoid(alpha=4)``."""
        surrogate_params.setdefault("alpha", 4.0) if surrogate == "sigmoid" else None
        return cls._spikingjelly("spikingjelly_if", "if", {}, True, v_threshold, v_reset, detach_reset,
                                 surrogate, surrogate_params)

    @classmethod
    def spikingjelly_plif(cls, init_tau=2.0, decay_input=True, v_threshold=1.0, v_reset=0.0, detach_reset=False,
                          surrogate="sigmoid", **surrogate_params) -> "LIFParams":
        """SpikingJelly ``ParametricLIFNode``.  Its learnable leaf is ``w``, a 0-d f32 array with
        w = -log(init_tau - 1); the decay is sigmoid(w), and ``.w`` of a gradient is ``node.w.grad``."""
        init_tau = _scalar("init_tau", init_tau)
        if not init_tau > 1.0:
            raise ValueError(f"init_tau: must be > 1 (w = -log(init_tau - 1)), got {init_tau!r}")
        surrogate_params.setdefault("alpha", 4.0) if surrogate == "sigmoid" else None
        w = jnp.asarray(np.float32(-math.log(init_tau - 1.0)))
        return cls._spikingjelly("spikingjelly_plif", "plif", dict(w=w), decay_input, v_threshold, v_reset,
                                 detach_reset, surrogate, surrogate_params)

    @classmethod
    def _spikingjelly(cls, kind, charge, values, decay_input, v_threshold, v_reset, detach_reset, surrogate,
                      surrogate_params):
        hard = v_reset is not None
        sur = surrogate if isinstance(surrogate, Surrogate) else get_surrogate(surrogate, **surrogate_params)
        neuron = models.spikingjelly(charge, bool(decay_input), hard, bool(detach_reset), sur)
        values = dict(values, v_threshold=v_threshold, **(dict(v_reset=v_reset) if hard else {}))
        return dataclasses.replace(cls.from_neuron(neuron, kind, **values), decay_input=bool(decay_input),
                                   reset="hard" if hard else "soft", detach_reset=bool(detach_reset))

    # ------------------------------------------------------------------ state
    def init_state(self, shape, dtype=jnp.float32) -> LIFState:
        """The library's initial state for a population of ``shape``."""
        shape = tuple(shape) if not isinstance(shape, int) else (shape,)
        dtype = jnp.dtype(dtype)
        if not jnp.issubdtype(dtype, jnp.floating):
            raise TypeError(f"dtype: expected a floating dtype, got {dtype}")
        full = lambda value: jnp.broadcast_to(jnp.asarray(value, jnp.float32), shape).astype(dtype)
        if self.is_cell:
            return LIFState(v=full(self.v_rest), rfr=full(self.refract_time), thr_theta=full(0.0), tols=full(0.0))
        init = self.neuron.init(self.values) if self.neuron.init is not None else {}
        return LIFState.of({k: full(jax.lax.stop_gradient(init.get(k, 0.0))) for k in self.neuron.state})


def _mechanism(reset_mechanism):
    if reset_mechanism not in ("subtract", "zero", "none"):
        raise ValueError(f"reset_mechanism: expected 'subtract', 'zero' or 'none', got {reset_mechanism!r}")


def _snntorch_surrogate(surrogate, params):
    if isinstance(surrogate, Surrogate):
        return surrogate
    if surrogate == "atan" and "alpha" not in params:
        params = dict(params, alpha=2.0)
    return get_surrogate(surrogate, **params)


def _flatten(p):
    if p.is_cell:
        return (), (p, ())
    names = tuple(p.values)
    return tuple(p.values[n] for n in names), (dataclasses.replace(p, values=None), names)


def _unflatten(aux, leaves):
    skeleton, names = aux
    if skeleton.is_cell:
        return skeleton
    return dataclasses.replace(skeleton, values=dict(zip(names, leaves)))


jax.tree_util.register_pytree_node(LIFParams, _flatten, _unflatten)
