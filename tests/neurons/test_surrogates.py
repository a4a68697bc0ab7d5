"""The surrogate registry, spike / spike_and_grad, numerics."""
import dataclasses
import math

import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import assume, given

import surrogate_pallas as sp
from helpers.surrogate_formulas import sg as sg_formula

NAMES = sp.SURROGATES
WITH_FN = [n for n in NAMES if sp.get_surrogate(n).fn is not None]
# points where a derivative is not defined (kinks and jumps), per surrogate, with default params
KINKS = {"triangular": [0.5, -0.5, 0], "explicit_triangular": [5, -5, 0], "boxcar": [5, -5],
         "piecewise_quadratic": [1, -1, 0], "rect": [0.5, -0.5], "piecewise_leaky_relu": [1, -1],
         "s2nn": [0], "secant_lif": [0], "piecewise_exp": [0], "nonzero_sign_log": [0]}


def grid():
    g = np.concatenate([np.linspace(-6, 6, 2401), np.geomspace(1e-6, 1e4, 400), -np.geomspace(1e-6, 1e4, 400)])
    return g.astype(np.float32)


def away_from_kinks(name, x, eps=1e-3):
    keep = np.ones(x.shape, bool)
    for k in KINKS.get(name, []):
        keep &= np.abs(x - k) > eps
    return x[keep]


def test_at_least_twenty_surrogates_in_stable_order():
    assert len(NAMES) >= 20 and isinstance(sp.SURROGATES, tuple) and len(set(NAMES)) == len(NAMES)
    # the registry's order is its registration order, the same in every process
    assert NAMES[:6] == ("straight_through", "triangular", "explicit_triangular", "arctan", "boxcar", "secant_lif"), NAMES[:6]
    for must in ["straight_through", "triangular", "explicit_triangular", "arctan", "boxcar", "secant_lif",
                 "atan", "sigmoid", "fast_sigmoid", "erf", "piecewise_quadratic", "piecewise_exp", "soft_sign",
                 "rect", "piecewise_leaky_relu", "s2nn", "q_pseudo_spike", "log_tailed_relu", "slayer"]:
        assert must in NAMES


def test_surrogate_objects_are_immutable_and_hashable():
    a, b = sp.get_surrogate("atan"), sp.get_surrogate("atan", alpha=2.0)
    assert a == b and hash(a) == hash(b) and a.params["alpha"] == 2.0
    assert sp.get_surrogate("atan", alpha=3.0) != a
    with pytest.raises(TypeError):
        a.params["alpha"] = 1.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.name = "x"
    assert dict(sp.get_surrogate("sigmoid").params) == {"alpha": 4.0}


@pytest.mark.parametrize("name", NAMES)
def test_grad_matches_independent_float64_formula(name):
    sur = sp.get_surrogate(name)
    x = np.concatenate([grid(), np.float32([0.0, 1e-30, -1e-30, 3e38, -3e38, 1e20, -1e20])])
    got = np.asarray(sur.grad(jnp.asarray(x)), np.float64)
    want = np.array([sg_formula(name, float(v), dict(sur.params)) for v in x])
    keep = np.ones(x.shape, bool)
    for k in KINKS.get(name, []):
        keep &= np.abs(x - k) > 1e-5  # exactly at a jump either side is a valid convention
    np.testing.assert_allclose(got[keep], want[keep], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", WITH_FN)
def test_autodiff_of_fn_equals_grad_on_grid(name):
    sur = sp.get_surrogate(name)
    x = away_from_kinks(name, grid())
    auto = jax.vmap(jax.grad(lambda v: sur.fn(v)))(jnp.asarray(x))
    np.testing.assert_allclose(np.asarray(auto), np.asarray(sur.grad(x)), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", WITH_FN)
@given(x=st.floats(-50, 50, width=32))
def test_autodiff_of_fn_equals_grad_hypothesis(name, x):
    sur = sp.get_surrogate(name)
    assume(all(abs(x - k) >= 1e-3 for k in KINKS.get(name, [])))
    auto = float(jax.grad(sur.fn)(jnp.float32(x)))
    np.testing.assert_allclose(auto, float(sur.grad(jnp.float32(x))), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, jnp.float16])
def test_no_nan_or_inf_for_finite_input_of_any_magnitude(name, dtype):
    info = jnp.finfo(dtype)
    mags = np.geomspace(float(info.tiny), float(info.max), 300)
    x = jnp.asarray(np.concatenate([mags, -mags, [0.0, float(info.max), -float(info.max)]]), dtype)
    sur = sp.get_surrogate(name)
    g = sur.grad(x)
    assert g.dtype == jnp.float32 and bool(jnp.all(jnp.isfinite(g)))
    s, d = sp.spike_and_grad(x, 0.0, name)
    assert s.dtype == dtype and d.dtype == dtype and bool(jnp.all(jnp.isfinite(d.astype(jnp.float32))))
    if sur.fn is not None:
        assert bool(jnp.all(jnp.isfinite(sur.fn(x))))


@pytest.mark.parametrize("name", NAMES)
def test_nan_propagates_and_never_spikes(name):
    s, d = sp.spike_and_grad(jnp.float32([jnp.nan]), 0.0, name)
    assert float(s[0]) == 0.0
    assert bool(jnp.isnan(d[0]))


def test_spike_values_strict_and_fire_on_equal():
    v = jnp.float32([-1.0, 0.5, 1.0, 1.5])
    np.testing.assert_array_equal(sp.spike(v, 1.0), [0, 0, 0, 1])
    np.testing.assert_array_equal(sp.spike(v, 1.0, fire_on_equal=True), [0, 0, 1, 1])
    assert sp.spike(v.astype(jnp.bfloat16), 1.0).dtype == jnp.bfloat16


def test_spike_broadcasts_like_numpy():
    v = jnp.zeros((3, 1, 5)) + jnp.arange(5.0)
    thr = jnp.array([[1.0], [2.0], [3.0], [4.0]])
    assert sp.spike(v, thr).shape == (3, 4, 5)
    with pytest.raises(ValueError, match="thr"):
        sp.spike(jnp.zeros(3), jnp.zeros(4))


@pytest.mark.parametrize("name", ["atan", "sigmoid", "fast_sigmoid", "triangular", "erf", "s2nn"])
def test_spike_vjp_and_jvp_equal_grad_under_jit_and_vmap(name):
    sur = sp.get_surrogate(name)
    v = jnp.linspace(-2.1, 2.3, 37, dtype=jnp.float32)
    thr = jnp.float32(0.3)
    want = sur.grad(v - thr)
    f = lambda v, thr: sp.spike(v, thr, name)
    gv = jax.jit(jax.vmap(jax.grad(f), in_axes=(0, None)))(v, thr)
    gthr = jax.jit(jax.vmap(jax.grad(f, argnums=1), in_axes=(0, None)))(v, thr)
    np.testing.assert_allclose(gv, want, rtol=1e-6)
    np.testing.assert_allclose(gthr, -want, rtol=1e-6)
    _, tang = jax.jit(lambda v, t: jax.jvp(lambda v: f(v, thr), (v,), (t,)))(v, jnp.ones_like(v) * 2)
    np.testing.assert_allclose(tang, 2 * want, rtol=1e-6)
    _, tthr = jax.jvp(lambda t: f(v, t), (thr,), (jnp.float32(1.0),))
    np.testing.assert_allclose(tthr, -want, rtol=1e-6)


def test_spike_and_grad_pair():
    v = jnp.float32([-0.5, 0.2, 1.7])
    s, d = sp.spike_and_grad(v, 0.1, "sigmoid", alpha=5.0)
    np.testing.assert_array_equal(s, [0, 1, 1])
    np.testing.assert_allclose(d, sp.get_surrogate("sigmoid", alpha=5.0).grad(v - 0.1), rtol=1e-7)


def test_bad_input():
    with pytest.raises(ValueError, match="unknown surrogate 'nope'.*atan"):
        sp.get_surrogate("nope")
    with pytest.raises(ValueError, match="unknown parameter 'beta'"):
        sp.get_surrogate("atan", beta=1.0)
    with pytest.raises(ValueError, match="'alpha' must be > 0"):
        sp.get_surrogate("atan", alpha=-1.0)
    with pytest.raises(ValueError, match="'window' must be > 0"):
        sp.get_surrogate("boxcar", window=0.0)
    with pytest.raises(ValueError, match="'alpha' must be > 1"):
        sp.get_surrogate("q_pseudo_spike", alpha=1.0)
    with pytest.raises(ValueError, match="'alpha' must be finite"):
        sp.get_surrogate("atan", alpha=math.inf)
    with pytest.raises(ValueError, match="'alpha' must be a Python number"):
        sp.get_surrogate("atan", alpha="big")
    with pytest.raises(ValueError, match="unknown surrogate"):
        sp.spike(jnp.zeros(3), 0.0, "nope")
    with pytest.raises(TypeError, match="v: expected a floating-point array"):
        sp.spike(jnp.zeros(3, jnp.int32), 0)
