"""The fused LIF step (ngclearn LIFCell semantics)."""
import dataclasses
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import surrogate_pallas as sp
from surrogate_pallas.kernels import blocks, mosaic_tiling
from helpers.kernel_backend import KERNEL
from helpers.transcriptions import assert_state_close, ngclearn_step

KEY = jax.random.PRNGKey(0)


def random_state(p, shape, key, dtype=jnp.float32):
    """A state with some neurons refractory, some adapted, some near threshold."""
    k1, k2, k3 = jax.random.split(key, 3)
    st = p.init_state(shape, dtype)
    v = -65.0 + 14.0 * jax.random.uniform(k1, shape)
    rfr = jnp.floor(jax.random.uniform(k2, shape) * 8.0)
    theta = 0.5 * jax.random.uniform(k3, shape)
    return sp.NeuronState(v.astype(dtype), rfr.astype(dtype), theta.astype(dtype), st.tols)


def run_both(p, shape, dtype=jnp.float32, backend=KERNEL, steps=3, key=KEY):
    st_k = st_x = random_state(p, shape, key, dtype)
    for t in range(steps):
        j = (jax.random.uniform(jax.random.fold_in(key, t), shape) * 40.0).astype(dtype)
        st_k, out_k = sp.lif_step(st_k, j, p, t=float(t), backend=backend)
        st_x, out_x = sp.lif_step(st_x, j, p, t=float(t), backend="xla")
        np.testing.assert_array_equal(np.asarray(out_k.s), np.asarray(out_x.s))
        np.testing.assert_allclose(np.asarray(out_k.surrogate, np.float32), np.asarray(out_x.surrogate, np.float32),
                                   rtol=1e-6, atol=1e-9)
        rtol = 1e-6 if dtype == jnp.float32 else 1e-2
        assert_state_close(st_k, st_x, rtol=rtol, atol=1e-5 if dtype == jnp.float32 else 1e-1)
        assert st_k.v.dtype == dtype and out_k.s.dtype == dtype
    return st_k


@pytest.mark.parametrize("name", sp.SURROGATES)
def test_kernel_equals_reference_every_surrogate(name):
    run_both(sp.presets.ngclearn(tau_m=10.0, surrogate=name), (3, 70), steps=2)


@pytest.mark.parametrize("integration", ["euler", "midpoint"])
@pytest.mark.parametrize("refract_time", [0.0, 5.0])
@pytest.mark.parametrize("tau_theta", [0.0, 1e7, 50.0])
@pytest.mark.parametrize("v_min", [None, -62.0])
def test_kernel_equals_reference_cell_options(integration, refract_time, tau_theta, v_min):
    p = sp.presets.ngclearn(tau_m=10.0, integration_type=integration, refract_time=refract_time,
                              tau_theta=tau_theta, theta_plus=0.3, v_min=v_min, dt=0.5)
    run_both(p, (2, 129))


def test_kernel_equals_reference_per_neuron_parameters():
    n = 300
    rng = np.random.default_rng(1)
    p = sp.presets.ngclearn(tau_m=rng.uniform(5, 20, n), thr=rng.uniform(-55, -50, n), v_rest=-65.0,
                              refract_time=rng.integers(0, 6, n).astype(float), theta_plus=rng.uniform(0, 0.1, n),
                              resist_m=rng.uniform(0.5, 2.0, n), v_min=-70.0)
    assert len(p.array_params()) == 5
    run_both(p, (4, n))


@pytest.mark.parametrize("shape", [(1,), (127,), (129,), (5, 3, 7), (1000,)])
def test_ragged_shapes(shape):
    run_both(sp.presets.ngclearn(tau_m=10.0, integration_type="midpoint"), shape, steps=2)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_low_precision_state(dtype):
    run_both(sp.presets.ngclearn(tau_m=10.0), (3, 50), dtype=dtype)


def test_tpu_kernel_under_race_detecting_interpreter():
    p = sp.presets.ngclearn(tau_m=10.0, integration_type="midpoint", refract_time=3.0)
    run_both(p, (2, 200), backend="interpret_tpu", steps=1)


@pytest.mark.parametrize("spike_dtype", [jnp.int8, jnp.bfloat16])
def test_spike_dtype_option(spike_dtype):
    p = sp.presets.ngclearn(tau_m=10.0)
    st = random_state(p, (300,), KEY)
    j = jax.random.uniform(KEY, (300,)) * 40
    _, out = sp.lif_step(st, j, p, backend=KERNEL, spike_dtype=spike_dtype)
    _, ref = sp.lif_step(st, j, p, backend="xla")
    assert out.s.dtype == spike_dtype
    np.testing.assert_array_equal(np.asarray(out.s, np.float32), np.asarray(ref.s))


@pytest.mark.parametrize("shape", [(0,), (3, 0)])
@pytest.mark.parametrize("backend", ["xla", KERNEL])
def test_zero_size(shape, backend):
    p = sp.presets.ngclearn(tau_m=10.0)
    st, out = sp.lif_step(p.init_state(shape), jnp.zeros(shape), p, backend=backend)
    assert out.s.shape == shape and st.v.shape == shape


@pytest.mark.parametrize("backend", ["xla", KERNEL])
def test_300_steps_against_spec_transcription(backend):
    """257 neurons, refractory and adaptive threshold active, midpoint integration, dt = 0.5."""
    kw = dict(tau_m=12.0, resist_m=1.5, thr=-52.0, v_rest=-65.0, v_reset=-60.0, tau_theta=200.0,
              theta_plus=0.4, refract_time=2.0, v_min=-64.0, dt=0.5)
    p = sp.presets.ngclearn(kw["tau_m"], kw["resist_m"], kw["thr"], kw["v_rest"], kw["v_reset"], 1.0,
                              kw["tau_theta"], kw["theta_plus"], kw["refract_time"], kw["v_min"], "midpoint",
                              dt=kw["dt"])
    n = 257
    st = p.init_state((n,))
    ref = (st.v, st.rfr, st.thr_theta, st.tols)
    step = jax.jit(lambda st, j, t: sp.lif_step(st, j, p, t=t, backend=backend))
    tr = jax.jit(lambda ref, j, t: ngclearn_step(*ref, j, t, tau_m=kw["tau_m"], resist_m=kw["resist_m"],
                                                 tau_theta=kw["tau_theta"], theta_plus=kw["theta_plus"],
                                                 refract_time=kw["refract_time"], v_min=kw["v_min"],
                                                 midpoint=True, dt=kw["dt"]))
    drive = 10.0 + 20.0 * jax.random.uniform(KEY, (n,))
    total = 0.0
    for k in range(300):
        j = drive * jax.random.uniform(jax.random.fold_in(KEY, k), (n,))
        t = k * kw["dt"]
        st, out = step(st, j, t)
        *ref, s, surr = tr(tuple(ref), j, t)
        ref = tuple(ref)
        np.testing.assert_array_equal(np.asarray(out.s), np.asarray(s), err_msg=f"step {k}")
        np.testing.assert_allclose(st.v, ref[0], atol=1e-5, rtol=0)
        np.testing.assert_array_equal(st.rfr, ref[1])
        np.testing.assert_allclose(st.thr_theta, ref[2], atol=1e-5, rtol=0)
        np.testing.assert_array_equal(st.tols, ref[3])
        np.testing.assert_allclose(out.surrogate, surr, rtol=1e-6, atol=1e-9)
        total += float(out.s.sum())
    assert total > 300  # the population is active: refractory and adaptation are exercised


def test_vmap_equals_loop():
    p = sp.presets.ngclearn(tau_m=10.0, refract_time=2.0)
    B, n = 4, 150
    st = random_state(p, (B, n), KEY)
    j = jax.random.uniform(KEY, (B, n)) * 40
    f = lambda st, j: sp.lif_step(st, j, p, backend=KERNEL)
    vm = jax.vmap(f)(st, j)
    for b in range(B):
        one = f(jax.tree.map(lambda x: x[b], st), j[b])
        for x, y in zip(jax.tree.leaves(one), jax.tree.leaves(jax.tree.map(lambda x: x[b], vm))):
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    # in_axes other than 0, unbatched state, and a batched t
    st0 = jax.tree.map(lambda x: x[0], st)
    vm2 = jax.vmap(f, in_axes=(None, 1), out_axes=1)(st0, j.T)
    for b in range(B):
        np.testing.assert_array_equal(vm2[1].s[:, b], f(st0, j[b])[1].s)
        np.testing.assert_array_equal(vm2[0].v[:, b], f(st0, j[b])[0].v)
    ts = jnp.arange(B, dtype=jnp.float32)
    vm3 = jax.vmap(lambda st, j, t: sp.lif_step(st, j, p, t=t, backend=KERNEL))(st, j, ts)
    for b in range(B):
        one = sp.lif_step(jax.tree.map(lambda x: x[b], st), j[b], p, t=float(b), backend=KERNEL)
        np.testing.assert_array_equal(vm3[0].tols[b], one[0].tols)


@pytest.mark.parametrize("backend", ["xla", KERNEL])
def test_grad_equals_reference_with_spike(backend):
    p = sp.presets.ngclearn(tau_m=10.0, tau_theta=0.0, refract_time=0.0)
    n = 200
    st = random_state(p, (n,), KEY)._replace(rfr=jnp.zeros(n), thr_theta=jnp.zeros(n))
    j = jax.random.uniform(KEY, (n,)) * 40
    w = jax.random.normal(jax.random.PRNGKey(3), (n,))

    def loss_lib(j, v):
        st2, out = sp.lif_step(st._replace(v=v), j, p, backend=backend, residuals="exact")
        return jnp.sum(w * out.s) + 0.1 * jnp.sum(st2.v)

    def loss_ref(j, v):
        v2, _, _, _, s, _ = ngclearn_step(v, st.rfr, st.thr_theta, st.tols, j, 0.0, tau_m=10.0, tau_theta=0.0,
                                          refract_time=0.0, differentiable=True)
        return jnp.sum(w * s) + 0.1 * jnp.sum(v2)

    g = jax.grad(loss_lib, (0, 1))(j, st.v)
    r = jax.grad(loss_ref, (0, 1))(j, st.v)
    assert float(jnp.abs(g[0]).sum()) > 0
    for a, b in zip(g, r):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    # jvp and checkpoint compose
    _, tan = jax.jvp(loss_lib, (j, st.v), (jnp.ones(n), jnp.zeros(n)))
    _, tan_ref = jax.jvp(loss_ref, (j, st.v), (jnp.ones(n), jnp.zeros(n)))
    np.testing.assert_allclose(tan, tan_ref, rtol=1e-5)
    gc = jax.grad(jax.checkpoint(loss_lib))(j, st.v)
    np.testing.assert_allclose(gc, r[0], rtol=1e-5, atol=1e-7)


def test_bad_input():
    p = sp.presets.ngclearn(tau_m=10.0)
    st = p.init_state((10,))
    with pytest.raises(ValueError, match=r"j: expected shape \(10,\)"):
        sp.lif_step(st, jnp.zeros(11), p)
    with pytest.raises(TypeError, match="j: expected a floating-point array"):
        sp.lif_step(st, jnp.zeros(10, jnp.int32), p)
    with pytest.raises(ValueError, match=r"state.rfr: expected shape \(10,\)"):
        sp.lif_step(st._replace(rfr=jnp.zeros(3)), jnp.zeros(10), p)
    with pytest.raises(ValueError, match="state.rfr: missing"):
        sp.lif_step(sp.NeuronState(jnp.zeros(10)), jnp.zeros(10), p)
    with pytest.raises(TypeError, match="params: expected a NeuronParams"):
        sp.lif_step(st, jnp.zeros(10), {"tau_m": 10})
    with pytest.raises(ValueError, match="backend: expected one of"):
        sp.lif_step(st, jnp.zeros(10), p, backend="cuda")
    with pytest.raises(ValueError, match="gpu_backend: expected one of"):
        sp.lif_step(st, jnp.zeros(10), p, gpu_backend="cutlass")
    with pytest.raises(ValueError, match="spike_dtype: expected one of"):
        sp.lif_step(st, jnp.zeros(10), p, spike_dtype=jnp.int32)
    for kw, field in [(dict(tau_m=0.0), "tau_m"), (dict(tau_m=-1.0), "tau_m"), (dict(tau_m=10.0, dt=0.0), "dt"),
                      (dict(tau_m=10.0, resist_m=-1.0), "resist_m"), (dict(tau_m=np.array([1.0, -1.0])), "tau_m"),
                      (dict(tau_m=10.0, integration_type="rk4"), "integration_type"),
                      (dict(tau_m=10.0, surrogate="nope"), "surrogate"), (dict(tau_m=float("nan")), "tau_m")]:
        with pytest.raises(ValueError, match=field):
            sp.presets.ngclearn(**kw)
    bad = sp.presets.ngclearn(tau_m=np.ones(7) * 10)
    with pytest.raises(ValueError, match=r"params.tau_m: per-neuron shape \(7,\)"):
        sp.lif_step(st, jnp.zeros(10), bad)
    with pytest.raises(ValueError, match="block_sizes.block_rows: expected a positive int"):
        sp.lif_step(st, jnp.zeros(10), p, backend=KERNEL, block_sizes=sp.BlockSizes(block_rows=0))
    st2 = p.init_state((40, 300))
    with pytest.raises(ValueError, match=r"block_sizes.block_rows: must be a multiple of 8 on TPU \(its \(8, 128\)"):
        sp.lif_step(st2, jnp.zeros((40, 300)), p, backend="interpret_tpu", block_sizes=sp.BlockSizes(block_rows=12))
    with pytest.raises(ValueError, match="block_sizes.block_lanes: must be a multiple of 128 on TPU"):
        sp.lif_step(st2, jnp.zeros((40, 300)), p, backend="interpret_tpu", block_sizes=sp.BlockSizes(block_lanes=200))
    with pytest.raises(ValueError, match="block_sizes.block_lanes: must be a power of two for Triton"):
        blocks.make_block_plan("triton", (1000,), 8, [4, 4], [4, 4], sp.BlockSizes(block_lanes=384))
    with pytest.raises(ValueError, match="block_sizes.time_chunk: must be a multiple of 32"):
        blocks.make_block_plan("tpu", (1000,), 100, [4, 4], [4, 4], sp.BlockSizes(time_chunk=10))
    with pytest.raises(ValueError, match="MiB of double-buffered VMEM"):
        blocks.make_block_plan("tpu", (1 << 22,), 64, [4, 4], [4, 4], sp.BlockSizes(block_lanes=1 << 20))
    with pytest.raises(ValueError, match="KiB of shared memory"):
        mosaic_tiling.make_mosaic_plan(1 << 20, 64, 8, sp.BlockSizes(block_rows=64, time_chunk=64))


def test_triton_blocks_fill_the_gpu():
    """Default Triton blocks fill the GPU (two programs per SM, from its SM count), 256..2048 neurons each."""
    assert blocks.GPU_SMS["NVIDIA H200"] == 132 and blocks.DEFAULT_SMS == 132
    h200 = blocks.make_block_plan("triton", (65536,), 64, [4, 4], [4, 4], None, "NVIDIA H200")
    assert h200.grid[0] >= 132 and h200.block_lanes == 256  # 65536 neurons still fill 132 SMs
    assert blocks.make_block_plan("triton", (1 << 22,), 64, [4, 4], [4, 4], None).block_lanes == 2048
    l4 = blocks.make_block_plan("triton", (1 << 16,), 64, [4, 4], [4, 4], None, "NVIDIA L4")  # 58 SMs
    assert l4.block_lanes == 512 and l4.grid[0] >= 2 * 58
    assert blocks.make_block_plan("triton", (70000,), 64, [4, 4], [4, 4], None, "Some other GPU").block_lanes == 256


def test_params_are_static_and_hashable():
    a = sp.presets.ngclearn(tau_m=10.0)
    b = sp.presets.ngclearn(tau_m=10.0)
    assert a == b and hash(a) == hash(b)
    c = sp.presets.ngclearn(tau_m=np.full(4, 10.0))
    assert c == sp.presets.ngclearn(tau_m=np.full(4, 10.0)) and c != a and hash(c)
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.tau_m = 3.0
    st = a.init_state((4,))
    assert float(st.v[0]) == -65.0 and float(st.rfr[0]) == 5.0 and float(st.thr_theta[0]) == 0 and float(st.tols[0]) == 0
    eager = sp.lif_step(st, jnp.ones(4), a)
    f = jax.jit(lambda st, j, p: sp.lif_step(st, j, p))  # params as a normal (static-pytree) argument
    g = jax.jit(lambda st, j, p: sp.lif_step(st, j, p), static_argnums=2)  # params as a static argument
    for got in (f(st, jnp.ones(4), a), g(st, jnp.ones(4), a)):
        for x, y in zip(jax.tree.leaves(got), jax.tree.leaves(eager)):
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
