"""Neuron models for network simulation: current-based (``cuba``) and conductance-based (``coba``)
LIF neurons with exponential synapses and a refractory period, as Brian2 integrates them.

Units: mV for voltages, ms for times; COBA's conductances are dimensionless (relative to the leak).
State: ``v`` (CUBA: ``u = v - v_rest``), the synaptic variables ``ge`` and ``gi`` (what projections target), and ``ref``, the
steps of refractoriness left.  One step, as Brian2 2.9 computes it:

1. **Update.** ``ge`` and ``gi`` always decay; ``v`` updates only where the neuron is not refractory.
   ``exact`` is the closed form of the linear system over one step (CUBA); ``euler`` takes every
   derivative at the old values and adds ``dt`` times it.
2. **Threshold.** A neuron spikes where ``v > v_threshold`` and it is not refractory.
3. **Propagation** (the network's projections), in the same step: each spike adds its weight to its
   targets' ``ge`` or ``gi``, before the next update.
4. **Reset.** ``v = v_reset``; the neuron is refractory for the next ``round(refractory/dt) - 1`` steps,
   so that it updates again ``round(refractory/dt)`` steps after its spike, as in Brian2.

Each is a ``NeuronParams`` of a ``Neuron`` (``surrogate_pallas.Neuron``), so it runs wherever a neuron
runs (``lif_step``, ``lif_sequence``, the network simulator).  An external current ``j`` (mV) enters
``dv/dt`` as ``+ j / tau_m``.
"""
from __future__ import annotations

import functools
import math

import jax.numpy as jnp
import numpy as np

from ..neuron import Neuron, NeuronParams
from ..surrogates import get_surrogate

METHODS = ("exact", "euler")
INF = float("inf")


def _positive(name, value):
    value = float(value)
    if not value > 0 or not math.isfinite(value):
        raise ValueError(f"{name}: must be a finite time > 0 ms, got {value!r}")
    return value


def _steps(name, refractory, dt):
    refractory = float(refractory)
    if not refractory >= 0 or not math.isfinite(refractory):
        raise ValueError(f"{name}: must be a finite time >= 0 ms, got {refractory!r}")
    return int(round(refractory / dt))


def _threshold(m):
    def threshold(p, h):  # refractory: no threshold can be crossed
        return jnp.where(h.active > 0.0, p[f"{m}_threshold"], INF)
    return threshold


def _reset(m, n_ref):
    """The membrane ``m`` to ``{m}_reset`` where the neuron fired, and ``n_ref - 1`` refractory steps."""
    after = float(max(n_ref - 1, 0))

    def reset(p, h, s, thr):
        return {m: jnp.where(s > 0.0, p[f"{m}_reset"], h[m]), "ge": h.ge, "gi": h.gi,
                "ref": jnp.where(s > 0.0, after, h.ref)}
    return reset


@functools.lru_cache(maxsize=None)
def _cuba_neuron(method, dt, tau_m, tau_e, tau_i, n_ref):
    a_m, a_e, a_i = math.exp(-dt / tau_m), math.exp(-dt / tau_e), math.exp(-dt / tau_i)
    c_e = tau_e / (tau_e - tau_m) * (a_e - a_m)
    c_i = tau_i / (tau_i - tau_m) * (a_i - a_m)

    def charge(p, s, j):
        active = (s.ref <= 0.0).astype(jnp.float32)
        if method == "exact":  # the closed form, in u = v - v_rest: no constant term to round
            u = s.ge * c_e + s.gi * c_i + s.u * a_m + j * (1.0 - a_m)
            ge, gi = s.ge * a_e, s.gi * a_i
        else:
            u = dt * (s.ge + s.gi + j - s.u) / tau_m + s.u
            ge, gi = -dt * s.ge / tau_e + s.ge, -dt * s.gi / tau_i + s.gi
        return {"u": jnp.where(active > 0.0, u, s.u), "ge": ge, "gi": gi,
                "ref": jnp.maximum(s.ref - 1.0, 0.0), "active": active}

    return Neuron(f"cuba_{method}", ("u", "ge", "gi", "ref"), ("u_threshold", "u_reset"), charge, _threshold("u"),
                  _reset("u", n_ref), get_surrogate("fast_sigmoid"), membrane="u", init=lambda p: {"u": p["u_reset"]})


@functools.lru_cache(maxsize=None)
def _coba_neuron(dt, tau_m, tau_e, tau_i, n_ref):
    def charge(p, s, j):
        active = (s.ref <= 0.0).astype(jnp.float32)
        # the terms in the order of Brian2's generated code
        v = dt * ((p.v_rest + p.i_ext) + s.ge * (p.e_exc - s.v) + s.gi * (p.e_inh - s.v) - s.v + j) / tau_m + s.v
        return {"v": jnp.where(active > 0.0, v, s.v), "ge": -dt * s.ge / tau_e + s.ge,
                "gi": -dt * s.gi / tau_i + s.gi, "ref": jnp.maximum(s.ref - 1.0, 0.0), "active": active}

    return Neuron("coba_euler", ("v", "ge", "gi", "ref"),
                  ("v_rest", "v_threshold", "v_reset", "e_exc", "e_inh", "i_ext"), charge, _threshold("v"),
                  _reset("v", n_ref), get_surrogate("fast_sigmoid"), init=lambda p: {"v": p["v_reset"]})


def cuba(*, dt=0.1, tau_m=20.0, tau_e=5.0, tau_i=10.0, v_rest=-49.0, v_threshold=-50.0, v_reset=-60.0,
         refractory=5.0, method="exact") -> NeuronParams:
    """Current-based LIF (Brian2's ``examples/CUBA.py``): ``dv/dt = (ge + gi - (v - v_rest)) / tau_m``,
    ``dge/dt = -ge / tau_e``, ``dgi/dt = -gi / tau_i``; ``ge`` and ``gi`` in mV.

    The membrane is kept as ``u = v - v_rest`` (state field ``u``; ``v = v_rest + u``): near threshold
    ``|u|`` is about 1 mV where ``|v|`` is 50, so float32 resolves it 30 times more finely, and the
    closed form has no constant term to round.  ``cuba_v(u)`` and ``cuba_u(v)`` convert."""
    if method not in METHODS:
        raise ValueError(f"method: expected one of {METHODS}, got {method!r}")
    dt, tau_m, tau_e, tau_i = (_positive(n, v) for n, v in (("dt", dt), ("tau_m", tau_m), ("tau_e", tau_e),
                                                             ("tau_i", tau_i)))
    if method == "exact" and (tau_e == tau_m or tau_i == tau_m):
        raise ValueError("tau_e, tau_i: the exact method needs synaptic time constants other than tau_m")
    neuron = _cuba_neuron(method, dt, tau_m, tau_e, tau_i, _steps("refractory", refractory, dt))
    return NeuronParams.from_neuron(neuron, "cuba", u_threshold=float(v_threshold) - float(v_rest),
                                    u_reset=float(v_reset) - float(v_rest))


def cuba_u(v, v_rest=-49.0):
    """CUBA's state ``u`` for membrane potentials ``v`` (mV)."""
    return (np.asarray(v, np.float64) - v_rest).astype(np.float32)


def cuba_v(u, v_rest=-49.0):
    """Membrane potentials (mV) of CUBA's state ``u``."""
    return np.asarray(u, np.float64) + v_rest


def coba(*, dt=0.1, tau_m=20.0, tau_e=5.0, tau_i=10.0, v_rest=-60.0, v_threshold=-50.0, v_reset=-60.0,
         e_exc=0.0, e_inh=-80.0, i_ext=20.0, refractory=5.0, method="euler") -> NeuronParams:
    """Conductance-based LIF (the COBA benchmark): ``dv/dt = (ge*(e_exc - v) + gi*(e_inh - v) + (v_rest - v)
    + i_ext) / tau_m`` with decaying ``ge``, ``gi``.  Only ``euler``: the system is not linear in v."""
    if method != "euler":
        raise ValueError(f"method: COBA integrates with 'euler' only (ge*v makes it nonlinear, so there is no "
                         f"exact linear form), got {method!r}")
    dt, tau_m, tau_e, tau_i = (_positive(n, v) for n, v in (("dt", dt), ("tau_m", tau_m), ("tau_e", tau_e),
                                                             ("tau_i", tau_i)))
    neuron = _coba_neuron(dt, tau_m, tau_e, tau_i, _steps("refractory", refractory, dt))
    return NeuronParams.from_neuron(neuron, "coba", v_rest=v_rest, v_threshold=v_threshold, v_reset=v_reset,
                                    e_exc=e_exc, e_inh=e_inh, i_ext=i_ext)
