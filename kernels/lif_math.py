"""One step of the neuron maths, on values (not refs).

Every Pallas kernel body and every jnp reference (``lax.scan``) calls these
functions, so a kernel can only differ from its oracle in how it moves data.
All arithmetic is float32 and follows the peer libraries' operation order
(docs/numerics.md sections 2-3), so spikes agree bit
for bit.

``p`` is a ``LIFParams`` (static, hashable); ``P`` maps the names of
per-neuron parameters to their (f32) values and overrides ``p``'s scalars.
"""
from __future__ import annotations

import math

import jax.numpy as jnp

from ..surrogates import fire

F32 = jnp.float32


def _get(p, P, name):
    return P[name] if name in P else getattr(p, name)


# --------------------------------------------------------------------------- ngclearn LIFCell
def cell_step(p, P, carry, j, t, spike=None):
    """ngclearn ``LIFCell.advance_state`` (docs/numerics.md 2). carry = (v, rfr, thr_theta, tols).

    Returns (new carry, (s, surrogate)).  ``spike(v, thr)``, when given, replaces
    the plain comparison (the autodiff path passes ``spike`` with its surrogate
    derivative; the value is the same).
    """
    v, rfr, theta, tols = carry
    g = lambda k: _get(p, P, k)
    tau_m, resist_m, dt = g("tau_m"), g("resist_m"), p.dt
    j = j * resist_m
    v_thr = theta + g("thr")
    mask = (rfr >= g("refract_time")).astype(F32)
    inv_tau = 1.0 / tau_m
    v_rest, g_l = g("v_rest"), g("conduct_leak")

    def f(v_):
        return ((v_rest - v_) * g_l + j * mask) * inv_tau

    if p.integration_type == "midpoint":
        v1 = v + f(v + f(v) * (dt * 0.5)) * dt
    else:
        v1 = v + f(v) * dt
    x = v1 - v_thr
    s = fire(x, p.fire_on_equal).astype(F32) if spike is None else spike(v1, v_thr)
    rfr = (rfr + dt) * (1.0 - s)
    sg = p.surrogate.grad(j if p.surrogate.on_current else x)
    surr = sg * ((resist_m * dt) / tau_m)
    v = v1 * (1.0 - s) + s * g("v_reset")
    if p.tau_theta > 0:
        theta = theta * math.exp(-dt / p.tau_theta) + s * g("theta_plus")
    tols = (1.0 - s) * tols + s * t
    if p.v_min is not None:
        v = jnp.maximum(v, g("v_min"))
    return (v, rfr, theta, tols), (s, surr)


# --------------------------------------------------------------------------- training presets
def train_forward(p, v_prev, j):
    """One step of a training preset (SpikingJelly LIFNode / snnTorch Leaky / docs/numerics.md 3).

    Returns (v_new, s, x, r): x = h - thr (the residual the backward needs),
    r = the delayed-reset bit (snnTorch; 0 elsewhere).
    """
    thr = p.thr
    r = 0.0
    if p.kind == "snntorch":
        r = fire(v_prev - thr, False).astype(F32)  # from the incoming membrane, detached
        if p.reset == "subtract":
            h = p.beta * v_prev + j - r * thr
        elif p.reset == "zero":
            h = p.beta * ((1.0 - r) * v_prev) + j
        else:
            h = p.beta * v_prev + j
    else:  # spikingjelly charge, in its own operation order
        vr = p.v_reset if p.reset == "hard" else 0.0
        if p.decay_input:
            h = v_prev + (j - (v_prev - vr)) / p.tau
        else:
            h = v_prev - (v_prev - vr) / p.tau + j
    x = h - thr
    s = fire(x, p.fire_on_equal).astype(F32)
    if p.kind == "snntorch":
        if p.reset_delay or p.reset == "none":
            v = h
        elif p.reset == "subtract":
            v = h - (s - r) * thr
        else:
            v = h - (s - r) * h
    elif p.reset == "hard":
        v = s * p.v_reset + (1.0 - s) * h
    elif p.reset == "soft":
        v = h - s * thr
    else:
        v = h
    return v, s, x, r


def train_coeffs(p, x, r):
    """Local derivatives of one step at residual x (= h - thr) and reset bit r.

    Returns (s, sg, dv/dh, dh/dv_prev, dh/dj).
    """
    s = fire(x, p.fire_on_equal).astype(F32)
    sg = p.surrogate.grad(x)
    thr = p.thr
    if p.kind == "snntorch":
        a = p.beta * (1.0 - r) if p.reset == "zero" else p.beta
        c = 1.0
        if p.reset_delay or p.reset == "none":
            dvdh = 1.0
        elif p.reset == "subtract":
            dvdh = 1.0 - thr * sg
        else:
            dvdh = (1.0 - s + r) - (x + thr) * sg
    else:
        a = 1.0 - 1.0 / p.tau
        c = 1.0 / p.tau if p.decay_input else 1.0
        if p.reset == "hard":
            dvdh = (1.0 - s) if p.detach_reset else (1.0 - s) + (p.v_reset - (x + thr)) * sg
        elif p.reset == "soft":
            dvdh = 1.0 if p.detach_reset else 1.0 - thr * sg
        else:
            dvdh = 1.0
    return s, sg, dvdh, a, c


def train_backward(p, g_v, g_s, x, r):
    """Reverse-time step (docs/numerics.md 3): from dL/dv_t (carried) and dL/ds_t to (dL/dj_t, dL/dv_{t-1})."""
    _, sg, dvdh, a, c = train_coeffs(p, x, r)
    g_h = g_s * sg + g_v * dvdh
    return c * g_h, a * g_h


def train_tangent(p, dv_prev, dj, x, r):
    """Forward-mode step: from (dv_{t-1}, dj_t) to (ds_t, dv_t)."""
    _, sg, dvdh, a, c = train_coeffs(p, x, r)
    dh = a * dv_prev + c * dj
    return sg * dh, dvdh * dh


def encode_residual(x, s, dtype, fire_on_equal):
    """Store x = h - thr in ``dtype`` so that its sign class (the spike) survives rounding.

    The clamp is applied in f32 before the one conversion: rounding is monotone and the
    smallest normal of ``dtype`` is representable, so a spike's residual stays > 0 (and, for
    ``>=``, a non-spike's stays < 0).
    """
    if jnp.dtype(dtype) == jnp.dtype(F32):
        return x
    tiny = float(jnp.finfo(dtype).tiny)  # a Python float: kernels take no array constants
    x = jnp.where(s > 0, jnp.maximum(x, tiny), x)
    if fire_on_equal:
        x = jnp.where(s > 0, x, jnp.minimum(x, -tiny))
    return x.astype(dtype)
