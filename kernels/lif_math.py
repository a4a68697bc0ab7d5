"""How a residual is stored.

Every neuron's maths is its ``Neuron`` step (``surrogate_pallas/models.py``: the peers' training
neurons and ngclearn's cell), from which ``derive.py`` builds the kernels' steps.  Every Pallas kernel
body and every jnp reference (a loop over time) runs those steps, so a kernel can only differ from its
oracle in how it moves data.
"""
from __future__ import annotations

import jax.numpy as jnp

F32 = jnp.float32


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
