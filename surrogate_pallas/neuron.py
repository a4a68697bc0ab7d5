"""The neuron types: ``Neuron`` (a model as its one-step update), ``NeuronParams`` (a model with its
parameter values), ``NeuronState`` and ``NeuronOut``.  The peers' presets are in ``presets.py``.

A step is three plain jnp functions on float32 values, with the spike between them::

    h   = charge(p, s, j)              # the charged values, a dict holding the membrane
    thr = threshold(p, h)              # must not read the membrane itself
    x   = h[membrane] - thr;  spike = H(x), with derivative surrogate.grad(x)
    s'  = reset(p, h, spike, thr)      # the new state, a dict with every field of ``state``

``p`` holds the neuron's parameters, ``s`` the state (and ``bits``), ``h`` the charged values (and
``bits``), all with attribute access.  ``p.step`` is the index of the step in the sequence (a float),
for a neuron whose step reads the clock (ngclearn's time of last spike).  ``bits(p, s)``, when given,
returns detached 0/1 values the step uses (snnTorch's reset bit ``[v_prev > thr]``); they are stored
exactly (int8) for the backward.

The forward kernel runs the step; the reverse-time backward and the tangent kernel run its ``jax.vjp``
and ``jax.jvp`` inside the kernel, parameter gradients included (``derivation/steps.py``).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .surrogates import Surrogate, get_surrogate

# names that mean the firing threshold in each family
_THRESHOLD = ("thr", "threshold", "v_threshold")


@dataclasses.dataclass(frozen=True, eq=False)
class Neuron:
    """A neuron model (compared and hashed by identity: build it once, at module level).

    ``prepare(p)``, when given, maps the user's parameters to the step's (snnTorch's clamp of beta,
    PLIF's ``sigmoid(w)``) once per call, outside the kernel; JAX differentiates it as usual.
    ``init(p, shape)`` gives the initial state (default: zeros).  ``surrogate_output(p, h, x)``, when
    given, is what ``with_surrogate=True`` returns per step instead of ``surrogate.grad(x)`` (ngclearn's
    scaled derivative); the backward still differentiates the spike as ``surrogate.grad(x)``.
    """

    name: str
    state: tuple
    params: tuple
    charge: Callable
    threshold: Callable
    reset: Callable
    surrogate: Surrogate
    fire_on_equal: bool = False
    membrane: str = "v"
    bits: Callable | None = None
    prepare: Callable | None = None
    init: Callable | None = None
    surrogate_output: Callable | None = None

    def __post_init__(self):
        if isinstance(self.surrogate, str):
            object.__setattr__(self, "surrogate", get_surrogate(self.surrogate))
        if not isinstance(self.surrogate, Surrogate):
            raise TypeError(f"surrogate: expected a name or a Surrogate, got {type(self.surrogate).__name__}")
        if self.surrogate.on_current and self.surrogate_output is None:
            raise ValueError("surrogate: 'secant_lif' is a function of the input current; only "
                             "presets.ngclearn supports it")
        object.__setattr__(self, "state", tuple(self.state))
        object.__setattr__(self, "params", tuple(self.params))
        if "step" in self.params:
            raise ValueError(f"{self.name}: 'step' is the step index every step reads (p.step); name the "
                             "parameter otherwise")
        if self.membrane not in self.state:
            raise ValueError(f"membrane: {self.membrane!r} is not one of the state fields {self.state}")

    def with_params(self, **values) -> "NeuronParams":
        """This neuron with these parameter values, ready for ``lif_sequence``."""
        missing = [n for n in self.params if n not in values]
        extra = [n for n in values if n not in self.params]
        if missing or extra:
            raise ValueError(f"{self.name}: parameters are {self.params}; "
                             + (f"missing {missing}" if missing else f"unknown {extra}"))
        return NeuronParams.from_neuron(self, **values)


def clip(x, lo, hi):
    """``x`` clamped to [lo, hi] the way torch's ``clamp`` is: the derivative is 1 inside, the bounds
    included, and 0 outside.  A Python float stays a Python float (a constant of the kernel)."""
    if isinstance(x, (int, float)):
        return float(min(max(x, lo), hi))
    return jnp.where((x >= lo) & (x <= hi), x, jax.lax.stop_gradient(jnp.clip(x, lo, hi)))


def is_concrete(x) -> bool:
    """True when ``x`` has a value now (not a tracer)."""
    return not isinstance(x, jax.core.Tracer)


def check_value(name, x, *, above=None, at_least=None, finite=True):
    """Validate a parameter's value where it is concrete (a traced value is checked by nobody)."""
    if not is_concrete(x):
        return
    a = np.asarray(x, dtype=np.float64)
    if finite and not np.all(np.isfinite(a)):
        raise ValueError(f"{name}: must be finite, got {x!r}")
    if above is not None and not np.all(a > above):
        raise ValueError(f"{name}: must be > {above:g}, got {x!r}")
    if at_least is not None and not np.all(a >= at_least):
        raise ValueError(f"{name}: must be >= {at_least:g}, got {x!r}")


class NeuronState(NamedTuple):
    """Neuron state.  snnTorch's ``Leaky`` and SpikingJelly's neurons carry ``v``; snnTorch's
    ``Synaptic`` adds ``syn``; ngclearn's cell carries ``v, rfr, thr_theta, tols``.  A user's neuron
    keeps its other fields in ``extra`` (a dict), also readable as attributes (``state.a``)."""

    v: Any = None
    rfr: Any = None
    thr_theta: Any = None
    tols: Any = None
    syn: Any = None
    extra: Any = None

    def __getattr__(self, name):
        extra = tuple.__getitem__(self, 5)
        if extra is not None and name in extra:
            return extra[name]
        raise AttributeError(f"NeuronState has no field {name!r}")

    def field(self, name):
        return getattr(self, name) if name in NeuronState._fields else (self.extra or {}).get(name)

    @classmethod
    def of(cls, fields: dict) -> "NeuronState":
        """A state from named fields (those that are not ``NeuronState``'s own go to ``extra``)."""
        own = {k: v for k, v in fields.items() if k in cls._fields}
        extra = {k: v for k, v in fields.items() if k not in cls._fields}
        return cls(**own, extra=extra or None)


class NeuronOut(NamedTuple):
    """Per-step outputs: spikes ``s`` and (when asked for) the surrogate value."""

    s: Any
    surrogate: Any = None


def parameter_value(name, value, *, above=None, at_least=None):
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
    check_value(name, value, above=above, at_least=at_least)
    return value


def _key(v):
    if isinstance(v, np.ndarray):
        return ("array", v.shape, v.tobytes())
    if isinstance(v, dict):
        return tuple((k, _key(x)) for k, x in v.items())
    if isinstance(v, jax.core.Tracer):
        raise TypeError("NeuronParams holding traced values cannot be hashed; pass it as a normal (not a "
                        "static) argument of jit")
    if hasattr(v, "dtype"):
        return _key(np.asarray(v))
    return v


@dataclasses.dataclass(frozen=True, eq=False)
class NeuronParams:
    """A ``Neuron`` and its parameter values: what ``lif_step`` and ``lif_sequence`` run.

    Build one with a preset (``presets.snntorch_leaky(beta=0.9)``, ...) or ``neuron.with_params(...)``.
    A training neuron's ``NeuronParams`` is a pytree whose numeric parameters are its leaves, so
    ``jax.grad`` with respect to it returns a ``NeuronParams`` of gradients.  A value may be a Python
    float (a constant of the kernel), or a JAX or NumPy array, scalar or broadcasting to the
    population (per-neuron).  ngclearn's cell is static: its per-neuron arrays are read-only float32
    numpy arrays, hashed by value.
    """

    kind: str
    neuron: Neuron
    values: Any = None  # name -> value; the pytree leaves of a training neuron

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
        raise AttributeError(f"{self.__dict__.get('kind')} NeuronParams has no parameter {name!r}")

    def _fields(self):
        return tuple((f.name, _key(getattr(self, f.name))) for f in dataclasses.fields(self))

    def __hash__(self):
        return hash(self._fields())

    def __eq__(self, other):
        return isinstance(other, NeuronParams) and self._fields() == other._fields()

    def __repr__(self):
        vals = ", ".join(f"{k}={v!r}" for k, v in (self.values or {}).items())
        return f"NeuronParams.{self.kind}({vals})"

    @classmethod
    def from_neuron(cls, neuron: Neuron, kind="custom", **values) -> "NeuronParams":
        """A ``Neuron`` with its parameter values (prefer ``neuron.with_params(...)``)."""
        return cls(kind=kind, neuron=neuron, values={n: parameter_value(n, values[n]) for n in neuron.params})

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

    def init_state(self, shape, dtype=jnp.float32) -> NeuronState:
        """The library's initial state for a population of ``shape``."""
        shape = tuple(shape) if not isinstance(shape, int) else (shape,)
        dtype = jnp.dtype(dtype)
        if not jnp.issubdtype(dtype, jnp.floating):
            raise TypeError(f"dtype: expected a floating dtype, got {dtype}")
        full = lambda value: jnp.broadcast_to(jnp.asarray(value, jnp.float32), shape).astype(dtype)
        if self.is_cell:
            return NeuronState(v=full(self.v_rest), rfr=full(self.refract_time), thr_theta=full(0.0),
                               tols=full(0.0))
        init = self.neuron.init(self.values) if self.neuron.init is not None else {}
        return NeuronState.of({k: full(jax.lax.stop_gradient(init.get(k, 0.0))) for k in self.neuron.state})


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


jax.tree_util.register_pytree_node(NeuronParams, _flatten, _unflatten)
