"""surrogate_pallas.compat.ngclearn is bit-identical to ngclearn 3.2.1's surrogate_fx."""
import inspect

import numpy as np
import pytest
from ngclearn.utils import surrogate_fx as upstream

from surrogate_pallas.compat import ngclearn as compat

BUILDERS = compat.__all__


def f32_sweep():
    rng = np.random.default_rng(0)
    bits = rng.integers(0, 2**32, 20000, dtype=np.uint64).astype(np.uint32).view(np.float32)
    bits = bits[np.isfinite(bits)]
    return np.concatenate([bits, rng.standard_normal(20000).astype(np.float32) * 30,
                           np.float32([0.0, -0.0, 3.4e38, -3.4e38, 1e-45, -1e-45, -52.0, 5.0, -5.0])])


@pytest.mark.parametrize("name", BUILDERS)
def test_same_signature_and_tuple(name):
    assert inspect.signature(getattr(compat, name)) == inspect.signature(getattr(upstream, name))
    mine, theirs = getattr(compat, name)(), getattr(upstream, name)()
    assert len(mine) == len(theirs) == 2
    mine3, theirs3 = getattr(compat, name)(get_surr_fx=True), getattr(upstream, name)(get_surr_fx=True)
    assert len(mine3) == len(theirs3) == 3
    for a, b in zip(mine3, theirs3):
        assert inspect.signature(a) == inspect.signature(b)
    assert "ngclearn" in (compat.__doc__ or "") and getattr(compat, name).__doc__


@pytest.mark.parametrize("name", BUILDERS)
@pytest.mark.parametrize("thr", [0.0, -52.0, 0.3])
def test_bit_identical_over_the_f32_range(name, thr):
    x = f32_sweep()
    thr = np.float32(thr)
    mine, theirs = getattr(compat, name)(get_surr_fx=True), getattr(upstream, name)(get_surr_fx=True)
    for i, (a, b) in enumerate(zip(mine, theirs)):
        if i == 1 and name in ("arctan_estimator", "secant_lif_estimator"):
            got, want = a(x), b(x)
        else:
            got, want = a(x, thr), b(x, thr)
        assert np.array_equal(np.asarray(got), np.asarray(want), equal_nan=True), (name, i)


@pytest.mark.parametrize("kwargs", [dict(alpha=0.2), dict(alpha=7.0)])
def test_arctan_with_parameters(kwargs):
    x = f32_sweep()
    got = compat.arctan_estimator()[1](x, np.float32(-52.0), **kwargs)
    want = upstream.arctan_estimator()[1](x, np.float32(-52.0), **kwargs)
    assert np.array_equal(np.asarray(got), np.asarray(want), equal_nan=True)


@pytest.mark.parametrize("omit_scale", [True, False])
def test_secant_with_scale(omit_scale):
    x = f32_sweep()
    got = compat.secant_lif_estimator()[1](x, 0.0, 0.5, 0.1, omit_scale)
    want = upstream.secant_lif_estimator()[1](x, 0.0, 0.5, 0.1, omit_scale)
    assert np.array_equal(np.asarray(got), np.asarray(want), equal_nan=True)
