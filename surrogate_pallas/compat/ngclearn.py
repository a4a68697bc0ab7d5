"""Drop-in replacement for ``ngclearn.utils.surrogate_fx`` (ngclearn 3.2).

Replace ``from ngclearn.utils.surrogate_fx import X`` with
``from surrogate_pallas.compat.ngclearn import X``.  Every builder has
ngclearn's signature, returns ngclearn's tuple (``(spike_fx, d_spike_fx)``, or
``(spike_fx, surr_fx, d_spike_fx)`` with ``get_surr_fx=True``), takes the same
keyword parameters with the same defaults, and is jitted the way ngclearn jits
it, so float32 outputs are bit-identical on CPU.

ngclearn's quirks are kept on purpose (see docs/numerics.md section 1):

* ``arctan``: ``d_spike_fx`` is ``(1/pi)/(1 + (pi*alpha/2*(v-thr))^2)``, which
  is *not* the derivative of its ``surr_fx`` (``(1/pi)*arctan(pi*alpha/2*v)``,
  off by ``pi*alpha/2`` and not centred on ``thr``).  ngclearn's LIFCell calls
  it with ``alpha=0.2``.  The registry's ``get_surrogate("arctan").fn`` is the
  true antiderivative instead.
* ``secant_lif``: the docstring says ``sech^2``; the code computes ``sech``
  (as ``1/((exp(c2 j) + exp(-c2 j))/2)``) of the *input current* ``j``, zero
  for ``j <= 0``, times ``c1*c2`` only when ``omit_scale=False``.
* ``straight_through``, ``triangular``, ``explicit_triangular`` and ``boxcar``
  return ``spike_fx`` itself as their ``surr_fx``.
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

__all__ = [
    "straight_through_estimator", "triangular_estimator", "explicit_triangular_estimator",
    "arctan_estimator", "boxcar_estimator", "secant_lif_estimator",
]


@jax.jit
def _spike_fx(v, thr):
    return (v > thr).astype(jnp.float32)


def _builder(name, doc, d_spike_fx, surr_fx=_spike_fx):
    def build(get_surr_fx=False):
        return (_spike_fx, surr_fx, d_spike_fx) if get_surr_fx else (_spike_fx, d_spike_fx)
    build.__name__ = build.__qualname__ = name
    build.__doc__ = doc + "\n\nReturns (spike_fx, d_spike_fx), or (spike_fx, surr_fx, d_spike_fx) with get_surr_fx=True."
    return build


@jax.jit
def _ste_d(v, thr):
    return v * 0 + 1.0


@jax.jit
def _triangular_d(v, thr=0.0, alpha=2.0):
    return jnp.maximum(0.0, 1.0 - alpha * jnp.abs(v - thr))


@jax.jit
def _explicit_triangular_d(v, thr=0.0, window=5.0):
    return jnp.maximum(0.0, 1.0 - (jnp.abs(v - thr) / window))


@jax.jit
def _arctan_surr(v, alpha=2.0):
    return jnp.arctan(v * (alpha / 2.0) * jnp.pi) * (1.0 / jnp.pi)


@jax.jit
def _arctan_d(v, thr=0.0, alpha=2.0):
    z = jnp.square((v - thr) * jnp.pi * (alpha / 2.0))
    return (1.0 / (1.0 + z)) * (1.0 / jnp.pi)


@jax.jit
def _boxcar_d(v, thr=0.0, window=5.0):
    return jnp.where(jnp.abs(v - thr) <= window, 1.0, 0.0)


@partial(jax.jit, static_argnums=[4])
def _secant_surr(j, thr=0.0, c1=0.82, c2=0.08, omit_scale=False):
    return jnp.maximum(0, jnp.tanh(j * c2) * c1)


@partial(jax.jit, static_argnums=[4])
def _secant_d(j, thr=0.0, c1=0.82, c2=0.08, omit_scale=True):
    gate = (j > 0.0).astype(jnp.float32)
    u = j * c2
    d = 1.0 / ((jnp.exp(u) + jnp.exp(-u)) / 2.0)
    if omit_scale == False:  # noqa: E712 -- ngclearn's test, kept for identical tracing
        d = d * (c1 * c2)
    return d * gate


straight_through_estimator = _builder(
    "straight_through_estimator", "STE: d_spike_fx(v, thr) = 1 everywhere; surr_fx is spike_fx.", _ste_d)
triangular_estimator = _builder(
    "triangular_estimator",
    "d_spike_fx(v, thr=0, alpha=2) = max(0, 1 - alpha|v - thr|); surr_fx is spike_fx.", _triangular_d)
explicit_triangular_estimator = _builder(
    "explicit_triangular_estimator",
    "d_spike_fx(v, thr=0, window=5) = max(0, 1 - |v - thr|/window); surr_fx is spike_fx.", _explicit_triangular_d)
arctan_estimator = _builder(
    "arctan_estimator",
    "d_spike_fx(v, thr=0, alpha=2) = (1/pi)/(1+(pi alpha/2 (v-thr))^2); surr_fx(v, alpha=2) = "
    "arctan(pi alpha/2 v)/pi, which is not its antiderivative (see the module docstring).", _arctan_d, _arctan_surr)
boxcar_estimator = _builder(
    "boxcar_estimator", "d_spike_fx(v, thr=0, window=5) = 1 if |v - thr| <= window else 0; surr_fx is spike_fx.",
    _boxcar_d)
secant_lif_estimator = _builder(
    "secant_lif_estimator",
    "d_spike_fx(j, thr=0, c1=0.82, c2=0.08, omit_scale=True) = sech(c2 j)[j > 0] (times c1 c2 unless "
    "omit_scale; ngclearn's docstring says sech^2); surr_fx(j, ...) = max(0, c1 tanh(c2 j)).", _secant_d, _secant_surr)
