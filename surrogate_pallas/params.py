"""``LIFParams``: one immutable, hashable description of a LIF neuron model.

Three families, each with the peer library's names and defaults:

* ``LIFParams.ngclearn(...)``: ngclearn's ``LIFCell`` (docs/numerics.md section 2): refractory
  period, adaptive threshold, time of last spike, euler or midpoint.
* ``LIFParams.snntorch_leaky(...)``: snnTorch ``Leaky`` with its delayed,
  detached reset (docs/numerics.md section 3).
* ``LIFParams.spikingjelly(...)``: SpikingJelly ``LIFNode`` (docs/numerics.md section 3).

The object is a static pytree (no leaves), so it can be passed to ``jit`` as a
normal argument or as a static one.  ngclearn parameters may be per-neuron
arrays (broadcastable to the population); they are stored as read-only
float32 numpy arrays and hashed by value.  Parameters are not differentiated.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .surrogates import Surrogate, get_surrogate

# ngclearn fields that may be per-neuron arrays
PER_NEURON = ("tau_m", "resist_m", "thr", "v_rest", "v_reset", "conduct_leak", "theta_plus",
              "refract_time", "v_min")


class LIFState(NamedTuple):
    """Neuron state. Training presets carry only ``v``; the ngclearn cell carries all four."""

    v: Any
    rfr: Any = None
    thr_theta: Any = None
    tols: Any = None


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


def _key(v):
    if isinstance(v, np.ndarray):
        return ("array", v.shape, v.tobytes())
    return v


@dataclasses.dataclass(frozen=True, eq=False)
class LIFParams:
    kind: str
    surrogate: Surrogate
    fire_on_equal: bool = False
    dt: float = 1.0
    thr: Any = 1.0
    v_reset: Any = 0.0
    reset: str = "hard"
    # ngclearn
    tau_m: Any = None
    resist_m: Any = 1.0
    v_rest: Any = 0.0
    conduct_leak: Any = 1.0
    tau_theta: float = 0.0
    theta_plus: Any = 0.0
    refract_time: Any = 0.0
    v_min: Any = None
    integration_type: str = "euler"
    # spikingjelly
    tau: float = 2.0
    decay_input: bool = True
    detach_reset: bool = False
    # snntorch
    beta: float = 0.9
    reset_delay: bool = True

    def _fields(self):
        return tuple((f.name, _key(getattr(self, f.name))) for f in dataclasses.fields(self))

    def __hash__(self):
        return hash(self._fields())

    def __eq__(self, other):
        return isinstance(other, LIFParams) and self._fields() == other._fields()

    @property
    def is_cell(self) -> bool:
        """True for ngclearn's cell (four state fields, simulation semantics)."""
        return self.kind == "ngclearn"

    def array_params(self) -> dict[str, np.ndarray]:
        """The per-neuron parameters, by name."""
        return {k: getattr(self, k) for k in PER_NEURON if isinstance(getattr(self, k), np.ndarray)}

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
        return cls(
            kind="ngclearn", surrogate=get_surrogate(surrogate, **surrogate_params), fire_on_equal=False,
            dt=_scalar("dt", dt, positive=True), tau_m=_param("tau_m", tau_m, positive=True),
            resist_m=_param("resist_m", resist_m, positive=True), thr=_param("thr", thr),
            v_rest=_param("v_rest", v_rest), v_reset=_param("v_reset", v_reset),
            conduct_leak=_param("conduct_leak", conduct_leak), tau_theta=_scalar("tau_theta", tau_theta),
            theta_plus=_param("theta_plus", theta_plus), refract_time=_param("refract_time", refract_time),
            v_min=None if v_min is None else _param("v_min", v_min), integration_type=integration_type,
            reset="hard")

    @classmethod
    def snntorch_leaky(cls, beta, threshold=1.0, reset_mechanism="subtract", reset_delay=True,
                       surrogate="atan", **surrogate_params) -> "LIFParams":
        """snnTorch ``Leaky`` (fires on ``>``; the reset comes from the previous membrane, detached)."""
        beta = _scalar("beta", beta)
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"beta: must be in [0, 1], got {beta!r}")
        if reset_mechanism not in ("subtract", "zero", "none"):
            raise ValueError(f"reset_mechanism: expected 'subtract', 'zero' or 'none', got {reset_mechanism!r}")
        if "alpha" not in surrogate_params and surrogate == "atan":
            surrogate_params["alpha"] = 2.0
        return cls(kind="snntorch", surrogate=_train_surrogate(surrogate, surrogate_params), fire_on_equal=False,
                   beta=beta, thr=_scalar("threshold", threshold), reset=reset_mechanism,
                   reset_delay=bool(reset_delay), v_reset=0.0)

    @classmethod
    def spikingjelly(cls, tau=2.0, decay_input=True, v_threshold=1.0, v_reset=0.0, detach_reset=False,
                     surrogate="atan", **surrogate_params) -> "LIFParams":
        """SpikingJelly ``LIFNode`` (fires on ``>=``; ``v_reset=None`` is the soft reset)."""
        tau = _scalar("tau", tau)
        if not tau > 1.0:
            raise ValueError(f"tau: must be > 1 (SpikingJelly's decay 1 - 1/tau), got {tau!r}")
        return cls(kind="spikingjelly", surrogate=_train_surrogate(surrogate, surrogate_params), fire_on_equal=True,
                   tau=tau, decay_input=bool(decay_input), thr=_scalar("v_threshold", v_threshold),
                   v_reset=0.0 if v_reset is None else _scalar("v_reset", v_reset),
                   reset="soft" if v_reset is None else "hard", detach_reset=bool(detach_reset))

    # ------------------------------------------------------------------ state
    def init_state(self, shape, dtype=jnp.float32) -> LIFState:
        """The library's initial state for a population of ``shape``."""
        shape = tuple(shape) if not isinstance(shape, int) else (shape,)
        dtype = jnp.dtype(dtype)
        if not jnp.issubdtype(dtype, jnp.floating):
            raise TypeError(f"dtype: expected a floating dtype, got {dtype}")
        full = lambda value: jnp.broadcast_to(jnp.asarray(value, jnp.float32), shape).astype(dtype)
        if self.kind == "ngclearn":
            return LIFState(v=full(self.v_rest), rfr=full(self.refract_time), thr_theta=full(0.0), tols=full(0.0))
        if self.kind == "spikingjelly":
            return LIFState(v=full(self.v_reset if self.reset == "hard" else 0.0))
        return LIFState(v=full(0.0))


def _train_surrogate(name, params):
    sur = get_surrogate(name, **params)
    if sur.on_current:
        raise ValueError("surrogate: 'secant_lif' is a function of the input current; "
                         "only LIFParams.ngclearn supports it")
    return sur


jax.tree_util.register_static(LIFParams)
