"""Plain-JAX implementations, written the way a JAX user would: ``lax.scan`` + a ``custom_vjp`` spike,
and a spike with its surrogate derivative in jnp.

The benchmarks' yardstick ("speed-up over the plain lax.scan baseline"), and the
per-step loop that ``surrogate-pallas simulate`` compares against.  They use
no part of this library.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax import lax


@jax.custom_vjp
def atan_spike(x):
    return (x > 0).astype(x.dtype)


def _fwd(x):
    return atan_spike(x), x


def _bwd(x, g):
    return (g / (1.0 + jnp.square(math.pi * x)),)  # snnTorch/SpikingJelly atan, alpha = 2


atan_spike.defvjp(_fwd, _bwd)


def spike_and_surrogate(v, thr, surrogate):
    """A spike and its surrogate derivative in plain jnp (the registry's default parameters)."""
    x = v - thr
    sg = {"atan": lambda: 1.0 / (1.0 + jnp.square(math.pi * x)),
          "sigmoid": lambda: 4.0 * jax.nn.sigmoid(4.0 * x) * (1.0 - jax.nn.sigmoid(4.0 * x)),
          "fast_sigmoid": lambda: 1.0 / jnp.square(25.0 * jnp.abs(x) + 1.0)}[surrogate]()
    return (x > 0).astype(v.dtype), sg.astype(v.dtype)


def spikingjelly_scan(j_seq, v0, tau=2.0, v_th=1.0, v_reset=0.0):
    """SpikingJelly LIFNode (decay_input, hard reset) as a user writes it."""

    def step(v, j):
        h = v + (j - (v - v_reset)) / tau
        s = atan_spike(h - v_th)
        return h * (1.0 - s) + v_reset * s, s

    v, s = lax.scan(step, v0, j_seq)
    return s, v


def snntorch_scan(j_seq, mem0, beta=0.9, thr=1.0):
    """snnTorch Leaky (subtract, delayed detached reset) as a user writes it."""

    def step(mem, x):
        r = lax.stop_gradient((mem > thr).astype(mem.dtype))
        m = beta * mem + x - r * thr
        return m, atan_spike(m - thr)

    mem, s = lax.scan(step, mem0, j_seq)
    return s, mem


def ngclearn_scan(j_seq, state, tau_m=10.0, thr=-52.0, v_rest=-65.0, v_reset=-60.0, refract=5.0,
                  tau_theta=1e7, theta_plus=0.05, dt=1.0, t0=0.0):
    """ngclearn LIFCell stepped in a scan: one jnp step per time step, state through memory.
    ``state``: a ``LIFState`` or the tuple (v, rfr, thr_theta, tols) this returns."""

    def step(carry, xs):
        v, rfr, theta, tols = carry
        j, t = xs
        mask = (rfr >= refract).astype(v.dtype)
        v1 = v + ((v_rest - v) + j * mask) * (1.0 / tau_m) * dt
        v_thr = thr + theta
        s = (v1 > v_thr).astype(v.dtype)
        surr = (1.0 / (1.0 + jnp.square((v1 - v_thr) * math.pi * 0.1))) * (1.0 / math.pi) * (dt / tau_m)
        carry = (v1 * (1 - s) + s * v_reset, (rfr + dt) * (1 - s), theta * math.exp(-dt / tau_theta) + s * theta_plus,
                 (1 - s) * tols + s * t)
        return carry, (s, surr)

    ts = t0 + dt * jnp.arange(j_seq.shape[0], dtype=jnp.float32)
    carry = tuple(state[:4])  # a LIFState's first four fields are the cell's
    return lax.scan(step, carry, (j_seq, ts))
