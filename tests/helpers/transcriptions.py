"""Independent transcriptions of the peers' equations (docs/numerics.md), not the library's code.

They do not call the library's maths (only its ``spike`` for the surrogate
derivative, as the issue asks), so they check it rather than restate it.
"""
import math

import jax
import jax.numpy as jnp
import numpy as np

import surrogate_pallas as sp


def ngclearn_step(v, rfr, theta, tols, j_in, t, *, tau_m, resist_m=1.0, thr=-52.0, v_rest=-65.0, v_reset=-60.0,
                  g_l=1.0, tau_theta=1e7, theta_plus=0.05, refract_time=5.0, v_min=None, midpoint=False, dt=1.0,
                  alpha=0.2, differentiable=False):
    """ngclearn LIFCell.advance_state, as docs/numerics.md states it, in plain jnp."""
    j = j_in * resist_m
    v_thr = thr + theta
    mask = (rfr >= refract_time) * 1.0

    def dvdt(vv):
        return ((v_rest - vv) * g_l + j * mask) * (1.0 / tau_m)

    if midpoint:
        v1 = v + dvdt(v + dvdt(v) * (dt * 0.5)) * dt
    else:
        v1 = v + dvdt(v) * dt
    if differentiable:
        s = sp.spike(v1, v_thr, "arctan", alpha=alpha)
    else:
        s = (v1 > v_thr) * 1.0
    new_rfr = (rfr + dt) * (1.0 - s)
    surrogate = (1.0 / (1.0 + jnp.square((v1 - v_thr) * math.pi * (alpha / 2.0)))) * (1.0 / math.pi) \
        * (resist_m * dt / tau_m)
    v_new = v1 * (1.0 - s) + s * v_reset
    if tau_theta > 0:
        theta = theta * math.exp(-dt / tau_theta) + s * theta_plus
    tols = (1.0 - s) * tols + s * t
    if v_min is not None:
        v_new = jnp.maximum(v_new, v_min)
    return v_new, new_rfr, theta, tols, s, surrogate


def snntorch_leaky(x, mem0, beta, thr, mechanism, reset_delay, alpha=2.0, rounded=False):
    """snnTorch Leaky over time (docs/numerics.md, snnTorch): spikes, the returned membranes, final mem, and the
    membranes before the spike and reset (what the surrogate is evaluated on).

    ``rounded``: derivatives taken at the bf16-rounded residual, as ``residuals="bf16"`` promises."""
    mem = mem0
    spk_all, mem_all, m_all = [], [], []
    for t in range(x.shape[0]):
        r = jax_stop((mem - thr > 0) * 1.0)
        if mechanism == "subtract":
            m = beta * mem + x[t] - r * thr
        elif mechanism == "zero":
            m = beta * ((1 - r) * mem) + x[t]
        else:
            m = beta * mem + x[t]

        def fire_and_reset(m, r=r):
            spk = sp.spike(m, thr, "atan", alpha=alpha)
            if reset_delay:
                return spk, m
            do_reset = spk - r
            if mechanism == "subtract":
                return spk, m - do_reset * thr
            if mechanism == "zero":
                return spk, m - do_reset * m
            return spk, m

        spk, mem = at_rounded(fire_and_reset, m, thr, False) if rounded else fire_and_reset(m)
        spk_all.append(spk)
        mem_all.append(mem)
        m_all.append(m)
    return jnp.stack(spk_all), jnp.stack(mem_all), mem, jnp.stack(m_all)


def spikingjelly_lif(x, v0, tau, v_th, v_reset, decay_input, detach_reset, surrogate="atan", rounded=False,
                     **sp_params):
    """SpikingJelly LIFNode multi-step (docs/numerics.md, SpikingJelly): spikes, post-reset v per step, final v, and
    the charged h per step (what the surrogate is evaluated on).

    ``rounded``: derivatives taken at the bf16-rounded residual, as ``residuals="bf16"`` promises."""
    v = v0
    vr = 0.0 if v_reset is None else v_reset
    s_all, v_all, h_all = [], [], []
    for t in range(x.shape[0]):
        if decay_input:
            h = v + (x[t] - (v - vr)) / tau
        else:
            h = v - (v - vr) / tau + x[t]

        def fire_and_reset(h):
            s = sp.spike(h, v_th, surrogate, fire_on_equal=True, **sp_params)
            s_r = jax_stop(s) if detach_reset else s
            if v_reset is None:
                return s, h - s_r * v_th
            return s, s_r * v_reset + (1 - s_r) * h

        s, v = at_rounded(fire_and_reset, h, v_th, True) if rounded else fire_and_reset(h)
        s_all.append(s)
        v_all.append(v)
        h_all.append(h)
    return jnp.stack(s_all), jnp.stack(v_all), v, jnp.stack(h_all)


def bf16_residual(x, fire_on_equal):
    """x = h - thr as ``residuals="bf16"`` keeps it: rounded once to bf16, after its sign class is made
    safe (a spike's x at least bf16's smallest normal; with ``>=``, a silent one's at most minus it)."""
    tiny = float(jnp.finfo(jnp.bfloat16).tiny)
    fired = x >= 0 if fire_on_equal else x > 0
    x = jnp.where(fired, jnp.maximum(x, tiny), jnp.minimum(x, -tiny) if fire_on_equal else x)
    return x.astype(jnp.bfloat16).astype(jnp.float32)


def at_rounded(fn, h, thr, fire_on_equal):
    """``fn(h)`` with its exact value, and its derivative (forward and reverse) taken at
    ``h~ = thr + bf16_residual(h - thr)``."""
    @jax.custom_jvp
    def f(h):
        return fn(h)

    @f.defjvp
    def f_jvp(primals, tangents):
        (h,), (dh,) = primals, tangents
        h_r = thr + bf16_residual(h - thr, fire_on_equal)
        return fn(h), jax.jvp(fn, (h_r,), (dh,))[1]

    return f(h)


def jax_stop(x):
    return jax.lax.stop_gradient(x)


def away_from_threshold(key, shape, scale=1.0):
    """Currents as multiples of 1/64 plus a random offset: random, and no exact ties in practice."""
    return jax.random.normal(key, shape, jnp.float32) * scale


def assert_state_close(a, b, rtol=1e-6, atol=1e-6):
    for f in ("v", "rfr", "thr_theta", "tols"):
        x, y = getattr(a, f), getattr(b, f)
        if x is None:
            assert y is None
            continue
        x, y = np.asarray(x, np.float32), np.asarray(y, np.float32)
        if f == "rfr":
            np.testing.assert_array_equal(x, y)
        else:
            np.testing.assert_allclose(x, y, rtol=rtol, atol=atol, err_msg=f)
