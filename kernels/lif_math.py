"""ngclearn's cell step, on values (not refs), and how a residual is stored.

The training neurons' maths is each ``Neuron``'s step (``surrogate_pallas/models.py``), from which
``derive.py`` builds the kernels' steps.  Every Pallas kernel body and every jnp reference
(``lax.scan``) calls these functions, so a kernel can only differ from its oracle in how it moves data.
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
