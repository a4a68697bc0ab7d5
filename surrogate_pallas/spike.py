"""Heaviside spikes whose derivative is a surrogate.

These are elementwise jnp functions with a ``custom_jvp``: XLA fuses them into
their neighbours and partitions them under any sharding, so a Pallas kernel
would add nothing here.  ``jax.grad`` and ``jax.jvp`` both use the rule; the
tangent is linear, so reverse mode is its transpose.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from ._checks import as_float_array
from .surrogates import Surrogate, fire, get_surrogate


@functools.partial(jax.custom_jvp, nondiff_argnums=(2, 3))
def _spike(v, thr, sur: Surrogate, fire_on_equal: bool):
    x = v.astype(jnp.float32) - thr.astype(jnp.float32)
    return fire(x, fire_on_equal).astype(v.dtype)


@_spike.defjvp
def _spike_jvp(sur, fire_on_equal, primals, tangents):
    v, thr = primals
    dv, dthr = tangents
    out = _spike(v, thr, sur, fire_on_equal)
    sg = sur.grad(v.astype(jnp.float32) - thr.astype(jnp.float32))
    dx = jnp.broadcast_to(dv, out.shape).astype(jnp.float32) - jnp.broadcast_to(dthr, out.shape).astype(jnp.float32)
    return out, (sg * dx).astype(out.dtype)


def _prepare(v, thr, surrogate, params):
    sur = get_surrogate(surrogate, **params)
    v = as_float_array(v, "v")
    thr = jnp.asarray(as_float_array(thr, "thr"), dtype=v.dtype)
    try:
        shape = jnp.broadcast_shapes(v.shape, thr.shape)
    except ValueError:
        raise ValueError(f"thr: shape {thr.shape} does not broadcast against v's shape {v.shape}") from None
    return sur, jnp.broadcast_to(v, shape), jnp.broadcast_to(thr, shape)


def spike(v, thr=0.0, surrogate: str | Surrogate = "atan", *, fire_on_equal: bool = False, **params):
    """H(v - thr) in v's dtype; d/dv = sg(v - thr), d/dthr = -sg(v - thr).

    v and thr broadcast like numpy.  ``fire_on_equal`` selects ``>=`` instead of ``>``.
    """
    sur, v, thr = _prepare(v, thr, surrogate, params)
    return _spike(v, thr, sur, bool(fire_on_equal))


def spike_and_grad(v, thr=0.0, surrogate: str | Surrogate = "atan", *, fire_on_equal: bool = False, **params):
    """``(H(v - thr), sg(v - thr))`` in one call, both in v's dtype (the values local rules consume)."""
    sur, v, thr = _prepare(v, thr, surrogate, params)
    x = v.astype(jnp.float32) - thr.astype(jnp.float32)
    return _spike(v, thr, sur, bool(fire_on_equal)), sur.grad(x).astype(v.dtype)
