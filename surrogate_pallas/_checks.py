"""Argument validation shared by the public ops: errors name the argument."""
from __future__ import annotations

import jax
import jax.numpy as jnp

def as_float_array(x, name: str):
    """An array of a floating dtype (f32/bf16/f16; f64 when x64 is on)."""
    if not hasattr(x, "dtype"):
        x = jnp.asarray(x, dtype=jnp.result_type(float))
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"{name}: expected a floating-point array (float32, bfloat16 or float16), got dtype {x.dtype}")
    dtype = jax.dtypes.canonicalize_dtype(x.dtype)
    if dtype != x.dtype:  # a NumPy float64 array without x64 mode is float32 to JAX, as under jit
        x = jnp.asarray(x, dtype)
    return x


def check_shape(x, shape, name: str, expected_from: str):
    if tuple(x.shape) != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)} (from {expected_from}), got {tuple(x.shape)}")


def spike_dtype(name, default):
    if name is None:
        return jnp.dtype(default)
    dt = jnp.dtype(name)
    if dt not in (jnp.dtype(jnp.float32), jnp.dtype(jnp.bfloat16), jnp.dtype(jnp.float16), jnp.dtype(jnp.int8)):
        raise ValueError(f"spike_dtype: expected one of float32, bfloat16, float16, int8, got {dt}")
    return dt
