"""``Neuron``: a spiking neuron model as its one-step update, from which every fused kernel is derived.

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
and ``jax.jvp`` inside the kernel, parameter gradients included (``kernels/derive.py``).  The
parameters' values live in ``LIFParams`` (``neuron.params(...)`` or a preset), a pytree whose numeric
parameters are its leaves.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from .surrogates import Surrogate, get_surrogate


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
                             "LIFParams.ngclearn supports it")
        object.__setattr__(self, "state", tuple(self.state))
        object.__setattr__(self, "params", tuple(self.params))
        if "step" in self.params:
            raise ValueError(f"{self.name}: 'step' is the step index every step reads (p.step); name the "
                             "parameter otherwise")
        if self.membrane not in self.state:
            raise ValueError(f"membrane: {self.membrane!r} is not one of the state fields {self.state}")

    def with_params(self, **values):
        """This neuron with these parameter values: a ``LIFParams``, ready for ``lif_sequence``."""
        from .params import LIFParams
        missing = [n for n in self.params if n not in values]
        extra = [n for n in values if n not in self.params]
        if missing or extra:
            raise ValueError(f"{self.name}: parameters are {self.params}; "
                             + (f"missing {missing}" if missing else f"unknown {extra}"))
        return LIFParams.from_neuron(self, **values)


def clip(x, lo, hi):
    """``x`` clamped to [lo, hi] the way torch's ``clamp`` is: the derivative is 1 inside, the bounds
    included, and 0 outside.  A Python float stays a Python float (a constant of the kernel)."""
    if isinstance(x, (int, float)):
        return float(min(max(x, lo), hi))
    return jnp.where((x >= lo) & (x <= hi), x, jax.lax.stop_gradient(jnp.clip(x, lo, hi)))


def is_concrete(x) -> bool:
    """True when ``x`` has a value now (not a tracer)."""
    return not isinstance(x, jax.core.Tracer)


def check_value(name, x, *, above=None, finite=True):
    """Validate a parameter's value where it is concrete (a traced value is checked by nobody)."""
    if not is_concrete(x):
        return
    a = np.asarray(x, dtype=np.float64)
    if finite and not np.all(np.isfinite(a)):
        raise ValueError(f"{name}: must be finite, got {x!r}")
    if above is not None and not np.all(a > above):
        raise ValueError(f"{name}: must be > {above:g}, got {x!r}")
