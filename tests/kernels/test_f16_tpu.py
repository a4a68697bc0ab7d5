"""float16 on TPU: the operands cross the Mosaic kernel boundary as int16 bits, and the kernel
body converts them exactly (Mosaic TPU has no f16 vector loads or stores).  The codec is checked
exhaustively against XLA's own conversions, inside an interpreted Pallas kernel too, and the TPU
kernels with f16 data equal the oracle in the race-detecting TPU interpreter."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.experimental import pallas as pl

import surrogate_pallas as sp
from surrogate_pallas.kernels import body, f16_bits

ALL_BITS = np.arange(-32768, 32768, dtype=np.int32).astype(np.int16)


def f32_sweep():
    """Every f16 value, every midpoint between neighbours (the ties) and their f32 neighbours,
    random magnitudes over the whole f32 range, and the specials."""
    rng = np.random.default_rng(0)
    h = ALL_BITS[(ALL_BITS & 0x7C00) != 0x7C00].view(np.float16).astype(np.float64)
    h = np.sort(h)
    mids = ((h[1:] + h[:-1]) / 2).astype(np.float32)
    wide = (rng.standard_normal(1 << 18) * 10.0 ** rng.integers(-12, 8, 1 << 18)).astype(np.float32)
    specials = np.array([0.0, -0.0, 65504, 65519.996, 65520, 1e6, np.inf, -np.inf, np.nan, -np.nan,
                         2**-24, 2**-25, 3 * 2**-25, 2**-14, 1e-40, -1e-40], np.float32)
    return np.concatenate([h.astype(np.float32), mids, np.nextafter(mids, -np.inf), np.nextafter(mids, np.inf),
                           wide, specials])


def same_bits_or_both_nan(got_f32, want_f32):
    got, want = np.asarray(got_f32, np.float32), np.asarray(want_f32, np.float32)
    nan = np.isnan(want)
    assert np.array_equal(np.isnan(got), nan)
    np.testing.assert_array_equal(got[~nan].view(np.uint32), want[~nan].view(np.uint32))


def test_decode_is_exact_for_every_bit_pattern():
    same_bits_or_both_nan(jax.jit(f16_bits.decode)(ALL_BITS), ALL_BITS.view(np.float16).astype(np.float32))


def test_encode_rounds_like_xla_convert():
    x = f32_sweep()
    got = np.asarray(jax.jit(f16_bits.encode)(x)).view(np.float16).astype(np.float32)
    same_bits_or_both_nan(got, np.asarray(jnp.asarray(x).astype(jnp.float16)).astype(np.float32))


def test_codec_inside_an_interpreted_pallas_kernel():
    x = f32_sweep()
    x = x[: len(x) // 1024 * 1024].reshape(-1, 1024)

    def kernel(bits_ref, x_ref, dec_ref, enc_ref):
        dec_ref[...] = body.to_f32(bits_ref[...])
        enc_ref[...] = body.from_f32(x_ref[...], enc_ref.dtype)

    bits = ALL_BITS.reshape(-1, 1024)
    dec, enc = pl.pallas_call(kernel, interpret=True, out_shape=(
        jax.ShapeDtypeStruct(bits.shape, jnp.float32), jax.ShapeDtypeStruct(x.shape, jnp.int16)))(bits, x)
    same_bits_or_both_nan(dec, bits.view(np.float16).astype(np.float32))
    same_bits_or_both_nan(np.asarray(enc).view(np.float16).astype(np.float32),
                          np.asarray(jnp.asarray(x).astype(jnp.float16)).astype(np.float32))


MODELS = {
    "ngclearn": sp.presets.ngclearn(tau_m=np.linspace(8, 12, 300).astype(np.float32), integration_type="midpoint"),
    "snntorch_zero": sp.presets.snntorch_leaky(0.9, reset_mechanism="zero"),
    "spikingjelly_soft": sp.presets.spikingjelly(v_reset=None),
}


@pytest.mark.parametrize("model", MODELS)
def test_f16_tpu_kernels_equal_the_oracle_in_the_tpu_interpreter(model):
    p = MODELS[model]
    key = jax.random.PRNGKey(3)
    T, pop = 40, (300,)
    scale = 40.0 if p.is_cell else 1.0
    j = (0.6 * scale + scale * jax.random.normal(key, (T, *pop))).astype(jnp.float16)
    j = j.at[3, :5].set(jnp.array([jnp.nan, jnp.inf, -jnp.inf, 65504, 6e-8], jnp.float16))  # specials flow through
    st = p.init_state(pop, jnp.float16)
    # 3 lane blocks (the last one partial) x 2 time chunks (the last one partial)
    kw = dict(with_surrogate=True, block_sizes=sp.BlockSizes(block_lanes=128, time_chunk=32))
    got = sp.lif_sequence(j, st, p, backend="interpret_tpu", **kw)
    want = sp.lif_sequence(j, st, p, backend="xla", **kw)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        assert a.dtype == jnp.float16
        same_bits_or_both_nan(np.asarray(a, np.float32), np.asarray(b, np.float32))
