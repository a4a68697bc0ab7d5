"""The peer libraries' neuron steps, each one ``Neuron`` (one step; every kernel derives from it).

Each follows the peer's operation order exactly (docs/numerics.md section 3), so spikes agree bit for
bit.  The factories are cached: the same configuration is the same ``Neuron`` object, so a jitted
program is compiled once per configuration.
"""
from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp

from .neuron import Neuron, clip
from .surrogates import fire


def _snntorch_bits(p, s):
    return {"r": fire(s.v - p.threshold, False)}  # from the incoming membrane, detached


def _snntorch_prepare(p):
    """snnTorch clamps its decays to [0, 1] on every forward."""
    return {k: clip(v, 0.0, 1.0) if k in ("alpha", "beta") else v for k, v in p.items()}


def _snntorch_reset(mechanism, delay):
    def reset(p, h, s, thr):
        new = dict(h)  # the step keeps only the state's fields
        if delay or mechanism == "none":
            return new
        if mechanism == "subtract":
            new["v"] = h.v - (s - h.r) * thr
        else:
            new["v"] = h.v - (s - h.r) * h.v
        return new
    return reset


@functools.lru_cache(maxsize=None)
def snntorch_leaky(mechanism: str, delay: bool, surrogate) -> Neuron:
    """snnTorch ``Leaky``: mem = beta*mem + x - r*thr (subtract), beta*((1-r)*mem) + x (zero)."""
    def charge(p, s, j):
        if mechanism == "subtract":
            h = p.beta * s.v + j - s.r * p.threshold
        elif mechanism == "zero":
            h = p.beta * ((1.0 - s.r) * s.v) + j
        else:
            h = p.beta * s.v + j
        return {"v": h}

    return Neuron(f"snntorch_leaky_{mechanism}", ("v",), ("beta", "threshold"), charge,
                  lambda p, h: p.threshold, _snntorch_reset(mechanism, delay), surrogate,
                  bits=_snntorch_bits, prepare=_snntorch_prepare)


@functools.lru_cache(maxsize=None)
def snntorch_synaptic(mechanism: str, delay: bool, surrogate) -> Neuron:
    """snnTorch ``Synaptic``: syn = alpha*syn + x; mem = beta*mem + syn; then the reset (zero: mem - r*mem)."""
    def charge(p, s, j):
        syn = p.alpha * s.syn + j
        m = p.beta * s.v + syn
        if mechanism == "subtract":
            m = m - s.r * p.threshold
        elif mechanism == "zero":
            m = m - m * s.r
        return {"syn": syn, "v": m}

    return Neuron(f"snntorch_synaptic_{mechanism}", ("syn", "v"), ("alpha", "beta", "threshold"), charge,
                  lambda p, h: p.threshold, _snntorch_reset(mechanism, delay), surrogate,
                  bits=_snntorch_bits, prepare=_snntorch_prepare)


def _plif_prepare(p):
    """PLIF's decay sigmoid(w), computed once per call (jnp's sigmoid has torch's bits here)."""
    p = dict(p)
    p["q"] = jax.nn.sigmoid(jnp.asarray(p.pop("w"), jnp.float32))
    return p


@functools.lru_cache(maxsize=None)
def spikingjelly(charge_kind: str, decay_input: bool, hard: bool, detach: bool, surrogate) -> Neuron:
    """SpikingJelly ``LIFNode`` (``lif``), ``IFNode`` (``if``) and ``ParametricLIFNode`` (``plif``)."""
    def charge(p, s, j):
        vr = p.v_reset if hard else 0.0
        if charge_kind == "if":
            return {"v": s.v + j}
        if charge_kind == "lif":
            h = s.v + (j - (s.v - vr)) / p.tau if decay_input else s.v - (s.v - vr) / p.tau + j
        else:
            h = s.v + (j - (s.v - vr)) * p.q if decay_input else s.v - (s.v - vr) * p.q + j
        return {"v": h}

    def reset(p, h, s, thr):
        s = jax.lax.stop_gradient(s) if detach else s
        return {"v": s * p.v_reset + (1.0 - s) * h.v if hard else h.v - s * thr}

    params = {"lif": ("tau",), "if": (), "plif": ("w",)}[charge_kind] + ("v_threshold",) + (("v_reset",) if hard else ())
    return Neuron(f"spikingjelly_{charge_kind}", ("v",), params, charge, lambda p, h: p.v_threshold, reset,
                  surrogate, fire_on_equal=True, prepare=_plif_prepare if charge_kind == "plif" else None,
                  init=(lambda p: {"v": p["v_reset"]}) if hard else None)


@functools.lru_cache(maxsize=None)
def ngclearn_cell(integration_type: str, dt: float, tau_theta: float, v_min: bool, surrogate) -> Neuron:
    """ngclearn ``LIFCell.advance_state``: refractory mask, Euler or midpoint voltage, adaptive threshold,
    hard reset to ``v_reset``, time of last spike, optional floor ``v_min``.  State (v, rfr, thr_theta, tols).

    ``p.t0`` (the first step's time) and ``p.step`` (the step's index) give the clock ``t``; the surrogate
    output is ngclearn's ``d_spike * resist_m*dt/tau_m`` (of the current, for ``secant_lif``)."""
    decay = math.exp(-dt / tau_theta) if tau_theta > 0 else None

    def bits(p, s):
        return {"m": s.rfr >= p.refract_time}  # not refractory: the current gets through

    def charge(p, s, j):
        j = j * p.resist_m
        inv_tau = 1.0 / p.tau_m
        f = lambda v: ((p.v_rest - v) * p.conduct_leak + j * s.m) * inv_tau
        v1 = s.v + f(s.v + f(s.v) * (dt * 0.5)) * dt if integration_type == "midpoint" else s.v + f(s.v) * dt
        return {"v": v1, "rfr": s.rfr, "thr_theta": s.thr_theta, "tols": s.tols, "j": j}

    def reset(p, h, s, thr):
        v = h.v * (1.0 - s) + s * p.v_reset
        new = {"v": jnp.maximum(v, p.v_min) if v_min else v, "rfr": (h.rfr + dt) * (1.0 - s),
               "thr_theta": h.thr_theta * decay + s * p.theta_plus if decay is not None else h.thr_theta,
               "tols": (1.0 - s) * h.tols + s * (p.t0 + p.step * dt)}
        return new

    def surrogate_output(p, h, x):
        return surrogate.grad(h.j if surrogate.on_current else x) * ((p.resist_m * dt) / p.tau_m)

    params = ("tau_m", "resist_m", "thr", "v_rest", "v_reset", "conduct_leak", "theta_plus", "refract_time",
              "t0") + (("v_min",) if v_min else ())
    return Neuron(f"ngclearn_lif_{integration_type}", ("v", "rfr", "thr_theta", "tols"), params, charge,
                  lambda p, h: h.thr_theta + p.thr, reset, surrogate, bits=bits, surrogate_output=surrogate_output)
