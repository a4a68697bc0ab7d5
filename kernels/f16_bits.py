"""float16 as 16-bit integers, for TPU kernels.

Mosaic TPU has no float16 vector loads or stores ("Invalid vector type for
load"), but it moves 16-bit integers fine.  A float16 operand therefore crosses
a TPU kernel boundary as its bit pattern (``lax.bitcast_convert_type`` to
int16, which XLA does in place: no pass over HBM), and the kernel body converts
between those bits and float32 with integer arithmetic.  Both conversions are
exact and match XLA's own ``convert`` (round to nearest even, subnormals,
infinities and NaN), so the kernel's results equal the oracle's.
"""
from __future__ import annotations

import jax.numpy as jnp
from jax import lax

F16 = jnp.dtype(jnp.float16)
BITS = jnp.dtype(jnp.int16)  # the carrier dtype of float16 values inside TPU kernels
F32, I32 = jnp.float32, jnp.int32


def to_bits(x):
    """float16 array -> its int16 bit pattern (a bitcast; other dtypes pass through)."""
    return lax.bitcast_convert_type(x, BITS) if x.dtype == F16 else x


def from_bits(x):
    """int16 bit pattern -> float16 (a bitcast)."""
    return lax.bitcast_convert_type(x, F16)


def carrier(dtype):
    """The dtype a TPU kernel stores for a requested output ``dtype``."""
    return BITS if jnp.dtype(dtype) == F16 else jnp.dtype(dtype)


def decode(bits):
    """int16 float16 bits -> the exact float32 value."""
    h = bits.astype(I32)
    sign = (h & 0x8000) << 16
    mag = h & 0x7FFF
    exp = mag >> 10
    normal = (mag << 13) + 0x38000000                     # rebias the exponent by 127 - 15
    special = (mag << 13) + 0x70000000                    # exponent 31 -> 255: inf and NaN
    sub = lax.bitcast_convert_type(mag.astype(F32) * (2.0 ** -24), I32)  # subnormals and zero, exact
    out = jnp.where(exp == 0, sub, jnp.where(exp == 31, special, normal))
    return lax.bitcast_convert_type(out | sign, F32)


def encode(x):
    """float32 -> int16 float16 bits, rounded to nearest even like XLA's convert."""
    b = lax.bitcast_convert_type(x.astype(F32), I32)
    sign = (b >> 16) & 0x8000
    a = b & 0x7FFFFFFF
    normal = (a - 0x38000000 + 0xFFF + ((a >> 13) & 1)) >> 13
    # below 2^-14: a multiple of 2^-24; adding 2^23 makes the float adder round it to an integer
    # (nearest even) in the low mantissa bits
    sub = lax.bitcast_convert_type(jnp.abs(x.astype(F32)) * (2.0 ** 24) + 8388608.0, I32) - 0x4B000000
    nan = 0x7E00 | ((a >> 13) & 0x3FF)
    h = jnp.where(a >= 0x38800000, normal, sub)
    h = jnp.where(a >= 0x477FF000, 0x7C00, h)             # rounds past 65504: infinity
    h = jnp.where(a > 0x7F800000, nan, h)
    return (h | sign).astype(BITS)
