"""The time-fused multi-step LIF, its fused reverse-time backward, and the peer presets."""
import dataclasses
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax._src.ad_checkpoint import saved_residuals

import surrogate_pallas as sp
from helpers.kernel_backend import KERNEL
from surrogate_pallas import kernels
from surrogate_pallas.derivation import kernel_spec, reference, residuals
from surrogate_pallas.derivation.placement import place
from surrogate_pallas.kernels import blocks
from helpers import surrogate_formulas
from helpers.transcriptions import snntorch_leaky, spikingjelly_lif

KEY = jax.random.PRNGKey(7)
SJ = [dict(decay_input=d, v_reset=r, detach_reset=dr)
      for d, r, dr in itertools.product([True, False], [0.0, None], [False, True])]
SNN = [dict(reset_mechanism=m, reset_delay=dl) for m, dl in itertools.product(["subtract", "zero", "none"], [True, False])]
PRESETS = [("sj", kw) for kw in SJ] + [("snn", kw) for kw in SNN]
LEAN_RTOL = 5e-3  # bf16 residuals vs exact: the rounding moves gradients by ~1-2e-3 of the largest entry
ULPS = 8 * 2.0 ** -23  # a few f32 ulps of an array's largest entry


def make(kind, kw, **extra):
    if kind == "sj":
        return sp.presets.spikingjelly(tau=2.0, v_threshold=1.0, **kw, **extra)
    return sp.presets.snntorch_leaky(0.85, threshold=1.0, **kw, **extra)


def inputs(shape, T, key=KEY, above=True):
    k1, k2 = jax.random.split(key)
    j = 0.6 + 0.9 * jax.random.normal(k1, (T, *shape))
    v0 = 1.4 * jax.random.uniform(k2, shape) - 0.2  # some start above threshold: snnTorch's r_0 = 1
    return j, (v0 if above else jnp.zeros(shape))


def loss_fn(p, backend, residuals="exact", w=None):
    def loss(j, v0):
        st, out = sp.lif_sequence(j, sp.NeuronState(v0), p, backend=backend, residuals=residuals)
        ww = jnp.cos(jnp.arange(out.s.size, dtype=jnp.float32)).reshape(out.s.shape) if w is None else w
        return jnp.sum(ww * out.s) + jnp.sum(jnp.sin(st.v))
    return loss


def rel_err(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-12)


# ----------------------------------------------------------------------------- presets vs peers
def _peer(kind, kw, j, v0, rounded=False):
    """The independent transcription: (spikes, per-step v, final v, what the surrogate sees)."""
    if kind == "sj":
        return spikingjelly_lif(j, v0, 2.0, 1.0, kw["v_reset"], kw["decay_input"], kw["detach_reset"], rounded=rounded)
    return snntorch_leaky(j, v0, 0.85, 1.0, kw["reset_mechanism"], kw["reset_delay"], rounded=rounded)


@pytest.mark.parametrize("kind,kw", PRESETS)
@pytest.mark.parametrize("backend", ["xla", KERNEL])
def test_presets_reproduce_peer_equations(kind, kw, backend):
    p = make(kind, kw)
    j, v0 = inputs((3, 45), 12)
    s_peer, v_peer, vT_peer, _ = _peer(kind, kw, j, v0)
    st, out = sp.lif_sequence(j, sp.NeuronState(v0), p, backend=backend, residuals="exact")
    np.testing.assert_array_equal(np.asarray(out.s), np.asarray(s_peer))
    np.testing.assert_allclose(st.v, vT_peer, rtol=1e-6, atol=1e-6)
    # per-step voltages, through lif_step
    stt = sp.NeuronState(v0)
    for t in range(j.shape[0]):
        stt, o = sp.lif_step(stt, j[t], p, backend=backend)
        np.testing.assert_array_equal(np.asarray(o.s), np.asarray(s_peer[t]))
        np.testing.assert_allclose(stt.v, v_peer[t], rtol=1e-6, atol=1e-6)
    assert 0.05 < float(out.s.mean()) < 0.95

    g = jax.grad(loss_fn(p, backend), (0, 1))(j, v0)
    g_peer = jax.grad(peer_loss(kind, kw), (0, 1))(j, v0)
    for a, b in zip(g, g_peer):
        assert rel_err(a, b) < 1e-5


def peer_loss(kind, kw, rounded=False):
    def loss(j, v0):
        s, _, vT, _ = _peer(kind, kw, j, v0, rounded)
        w = jnp.cos(jnp.arange(s.size, dtype=jnp.float32)).reshape(s.shape)
        return jnp.sum(w * s) + jnp.sum(jnp.sin(vT))
    return loss


@pytest.mark.parametrize("kind,kw", PRESETS)
@pytest.mark.parametrize("residuals", ["exact", "bf16"])
def test_kernels_match_an_independent_transcription_in_both_residual_modes(kind, kw, residuals):
    """The forward, the surrogate output, the tangent kernel and the reverse-time kernel against the
    jnp oracle with the same residuals, and against the transcription written from the peers'
    equations (not the library's maths). In bf16 mode the transcription takes its derivatives at the
    bf16-rounded residual, so the comparison stays at float-rounding tolerance instead of the
    rounding's own size; the oracle rounds the same f32 residual the same way, so the kernel's
    derivatives are its to a few f32 ulps of their scale (XLA may contract the f32 arithmetic into
    fused multiply-adds differently), 10^4 times tighter than the bf16-vs-exact tolerance."""
    p = make(kind, kw)
    j, v0 = inputs((3, 45), 12)
    rounded = residuals == "bf16"
    oracle_tol = ULPS if rounded else 1e-5

    def ours(j, v0, backend=KERNEL):
        st, out = sp.lif_sequence(j, sp.NeuronState(v0), p, backend=backend, residuals=residuals, with_surrogate=True)
        return out.s, st.v, out.surrogate

    def theirs(j, v0):
        s, _, vT, h = _peer(kind, kw, j, v0, rounded)
        return s, vT, h

    tangents = (jnp.sin(3.0 * j), jnp.cos(v0))
    (s, vT, sg), (ds, dvT, _) = jax.jvp(ours, (j, v0), tangents)
    (s_t, vT_t, h_t), (ds_t, dvT_t, _) = jax.jvp(theirs, (j, v0), tangents)
    np.testing.assert_array_equal(np.asarray(s), np.asarray(s_t))
    np.testing.assert_allclose(vT, vT_t, rtol=1e-6, atol=1e-6)
    formula = np.vectorize(lambda x: surrogate_formulas.sg("atan", float(x), {"alpha": 2.0}))
    np.testing.assert_allclose(sg, formula(np.asarray(h_t, np.float64) - 1.0), rtol=1e-5, atol=1e-7)
    assert rel_err(ds, ds_t) < 1e-5 and rel_err(dvT, dvT_t) < 1e-5
    (s_x, vT_x, sg_x), (ds_x, dvT_x, _) = jax.jvp(lambda j, v0: ours(j, v0, "xla"), (j, v0), tangents)
    np.testing.assert_array_equal(np.asarray(s), np.asarray(s_x))
    np.testing.assert_allclose(vT, vT_x, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(sg, sg_x, rtol=1e-6)
    assert rel_err(ds, ds_x) < oracle_tol and rel_err(dvT, dvT_x) < oracle_tol
    g = jax.grad(loss_fn(p, KERNEL, residuals), (0, 1))(j, v0)
    g_t = jax.grad(peer_loss(kind, kw, rounded), (0, 1))(j, v0)
    g_x = jax.grad(loss_fn(p, "xla", residuals), (0, 1))(j, v0)
    for a, b, c in zip(g, g_t, g_x):
        assert rel_err(a, b) < 1e-5
        assert rel_err(a, c) < oracle_tol, rel_err(a, c)
    if rounded:  # the rounding is visible: these are not the exact-mode gradients
        g_exact = jax.grad(peer_loss(kind, kw), (0, 1))(j, v0)
        assert max(rel_err(a, b) for a, b in zip(g_t, g_exact)) > 1e-4


def test_tie_semantics_of_presets():
    j = jnp.float32([[2.0]])  # SJ decay_input: h = 0 + (2 - 0)/2 = 1.0 == v_threshold
    _, out = sp.lif_sequence(j, sp.NeuronState(jnp.zeros(1)), sp.presets.spikingjelly())
    assert float(out.s[0, 0]) == 1.0  # SpikingJelly fires on >=
    _, out = sp.lif_sequence(jnp.float32([[1.0]]), sp.NeuronState(jnp.zeros(1)), sp.presets.snntorch_leaky(0.9))
    assert float(out.s[0, 0]) == 0.0  # snnTorch fires on >


# ----------------------------------------------------------------------------- kernel vs oracle
@pytest.mark.parametrize("kind,kw", [PRESETS[0], PRESETS[len(SJ)], PRESETS[-1]])
def test_kernel_jvp_and_vjp_are_transposes(kind, kw):
    """<J t, c> == <t, J^T c>: the tangent kernel and the reverse-time kernel are one linear map."""
    p = make(kind, kw)
    j, v0 = inputs((2, 130), 19)
    dj = jax.random.normal(KEY, j.shape)
    f = lambda j: sp.lif_sequence(j, sp.NeuronState(v0), p, backend=KERNEL)[0].v
    _, jt = jax.jvp(f, (j,), (dj,))
    c = jax.random.normal(jax.random.PRNGKey(1), v0.shape)
    (jtc,) = jax.vjp(f, j)[1](c)
    np.testing.assert_allclose(jnp.vdot(jt, c), jnp.vdot(dj, jtc), rtol=1e-4)


@pytest.mark.parametrize("name", [n for n in sp.SURROGATES if n != "secant_lif"])
def test_kernel_equals_reference_every_surrogate(name):
    p = sp.presets.spikingjelly(surrogate=name)
    j, v0 = inputs((150,), 9)
    gk = jax.grad(loss_fn(p, KERNEL), (0, 1))(j, v0)
    gx = jax.grad(loss_fn(p, "xla"), (0, 1))(j, v0)
    for a, b in zip(gk, gx):
        assert rel_err(a, b) < 1e-5


@pytest.mark.parametrize("kind,kw", [PRESETS[0], PRESETS[2], PRESETS[9], PRESETS[10]])
@pytest.mark.parametrize("backend", ["xla", KERNEL])
def test_lean_bf16_residuals_within_documented_tolerance(kind, kw, backend):
    p = make(kind, kw)
    j, v0 = inputs((4, 64), 32)
    exact = jax.grad(loss_fn(p, "xla", "exact"), (0, 1))(j, v0)
    lean = jax.grad(loss_fn(p, backend, "bf16"), (0, 1))(j, v0)
    for a, b in zip(lean, exact):
        assert rel_err(a, b) < LEAN_RTOL


def test_lean_residuals_keep_every_spike():
    """The bf16 residual keeps the sign class of h - thr, so the backward sees the forward's spikes."""
    for foe in (False, True):
        x = jnp.float32([1e-45, -1e-45, 0.0, -0.0, 1e-39, -1e-39, 3e-3, -3e-3, 1.0001, -1.0001])
        s = (x >= 0) if foe else (x > 0)
        xb = residuals.encode_residual(x, s.astype(jnp.float32), jnp.bfloat16, foe).astype(jnp.float32)
        np.testing.assert_array_equal((xb >= 0) if foe else (xb > 0), s)


def test_cell_sequence_equals_repeated_steps():
    p = sp.presets.ngclearn(tau_m=10.0, integration_type="midpoint", refract_time=3.0, theta_plus=0.3,
                              tau_theta=100.0, dt=0.5)
    shape, T = (3, 77), 23
    st0 = p.init_state(shape)
    j = jax.random.uniform(KEY, (T, *shape)) * 45
    for backend in ("xla", KERNEL):
        st, out = sp.lif_sequence(j, st0, p, t0=2.0, backend=backend, with_surrogate=True,
                                  block_sizes=sp.BlockSizes(time_chunk=5))
        stt = st0
        for t in range(T):
            stt, o = sp.lif_step(stt, j[t], p, t=2.0 + t * 0.5, backend="xla")
            np.testing.assert_array_equal(np.asarray(out.s[t]), np.asarray(o.s))
            np.testing.assert_allclose(out.surrogate[t], o.surrogate, rtol=1e-6, atol=1e-9)
        for a, b in zip(jax.tree.leaves(st), jax.tree.leaves(stt)):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-5)
        assert float(out.s.sum()) > 10


@pytest.mark.parametrize("T,chunk", [(1, None), (11, 4), (8, 8), (13, 32), (0, None)])
@pytest.mark.parametrize("shape", [(1,), (129,), (2, 3, 50)])
def test_ragged_sizes_and_lengths(T, chunk, shape):
    p = sp.presets.snntorch_leaky(0.9, reset_mechanism="zero")
    j, v0 = inputs(shape, T)
    bs = sp.BlockSizes(time_chunk=chunk)
    a = sp.lif_sequence(j, sp.NeuronState(v0), p, backend=KERNEL, block_sizes=bs)
    b = sp.lif_sequence(j, sp.NeuronState(v0), p, backend="xla")
    assert a[1].s.shape == (T, *shape)
    np.testing.assert_array_equal(np.asarray(a[1].s), np.asarray(b[1].s))
    np.testing.assert_allclose(a[0].v, b[0].v, rtol=1e-6)
    if T:
        f = lambda backend: jax.grad(lambda j, v: jnp.sum(sp.lif_sequence(
            j, sp.NeuronState(v), p, backend=backend, residuals="exact", block_sizes=bs)[1].s * j), (0, 1))(j, v0)
        for x, y in zip(f(KERNEL), f("xla")):
            assert rel_err(x, y) < 1e-5
    else:
        np.testing.assert_array_equal(a[0].v, v0)


@pytest.mark.parametrize("spike_dtype", [jnp.int8, jnp.bfloat16, jnp.float16])
def test_spike_storage(spike_dtype):
    p = sp.presets.spikingjelly()
    j, v0 = inputs((300,), 10)
    _, a = sp.lif_sequence(j, sp.NeuronState(v0), p, backend=KERNEL, spike_dtype=spike_dtype)
    _, b = sp.lif_sequence(j, sp.NeuronState(v0), p, backend="xla")
    assert a.s.dtype == spike_dtype
    np.testing.assert_array_equal(np.asarray(a.s, np.float32), np.asarray(b.s))
    if spike_dtype != jnp.int8:
        g = jax.grad(lambda j: jnp.sum(sp.lif_sequence(j, sp.NeuronState(v0), p, backend=KERNEL,
                                                       spike_dtype=spike_dtype)[1].s.astype(jnp.float32)))(j)
        assert float(jnp.abs(g).sum()) > 0


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_low_precision_inputs(dtype):
    p = sp.presets.spikingjelly(v_reset=None)
    j, v0 = inputs((2, 100), 12)
    j, v0 = j.astype(dtype), v0.astype(dtype)
    a = sp.lif_sequence(j, sp.NeuronState(v0), p, backend=KERNEL)
    b = sp.lif_sequence(j, sp.NeuronState(v0), p, backend="xla")
    assert a[1].s.dtype == dtype and a[0].v.dtype == dtype
    np.testing.assert_array_equal(np.asarray(a[1].s, np.float32), np.asarray(b[1].s, np.float32))
    ga = jax.grad(lambda j: jnp.sum(sp.lif_sequence(j, sp.NeuronState(v0), p, backend=KERNEL)[1].s))(j)
    assert ga.dtype == dtype


@pytest.mark.parametrize("backend", ["auto", KERNEL])
def test_numpy_float64_input_is_float32_as_under_jit(backend):
    p = sp.presets.spikingjelly()
    j = np.linspace(0.3, 1.7, 12).reshape(3, 4)  # float64, the NumPy default
    st, out = sp.lif_sequence(j, sp.NeuronState(np.zeros(4)), p, backend=backend)
    want = jax.jit(lambda j, v: sp.lif_sequence(j, sp.NeuronState(v), p, backend=backend))(j, np.zeros(4))
    assert out.s.dtype == jnp.float32 and st.v.dtype == jnp.float32
    np.testing.assert_array_equal(np.asarray(out.s), np.asarray(want[1].s))
    cell = sp.presets.ngclearn(tau_m=10.0)
    _, o = sp.lif_step(cell.init_state((4,)), np.full(4, 30.0), cell, backend=backend)
    assert o.s.dtype == jnp.float32


def test_vmap_and_checkpoint():
    p = sp.presets.snntorch_leaky(0.9)
    j, v0 = inputs((5, 140), 10)
    f = lambda j, v: sp.lif_sequence(j, sp.NeuronState(v), p, backend=KERNEL)
    vm = jax.vmap(f, in_axes=(1, 0), out_axes=(0, 1))(j, v0)
    full = f(j, v0)
    np.testing.assert_array_equal(np.asarray(vm[1].s), np.asarray(full[1].s))
    g1 = jax.grad(lambda j: jnp.sum(jax.vmap(f, in_axes=(1, 0), out_axes=(0, 1))(j, v0)[1].s * j))(j)
    g2 = jax.grad(jax.checkpoint(lambda j: jnp.sum(f(j, v0)[1].s * j)))(j)
    assert rel_err(g1, g2) < 1e-5


# ----------------------------------------------------------------------------- TPU race detection
def derived_kernel_args(which, pop, T, learn=False):
    """A training spec and operands for the kernel-level tests: snnTorch's zero reset without delay
    (residuals x and the reset bit); ``learn`` makes beta a learned scalar operand (adds v_prev)."""
    p = sp.presets.snntorch_leaky(jnp.float32(0.9) if learn else 0.9, reset_mechanism="zero", reset_delay=False)
    placement, _, scalars = place(p, pop)
    if learn:
        placement = dataclasses.replace(placement, learn=("beta",))
    j, v0 = inputs(pop, T)
    if which == "fwd":
        spec = kernel_spec.forward_spec(p.neuron, placement, True, jnp.bfloat16, True)
        dts = (jnp.float32, *residuals.residual_dtypes(p.neuron, placement, jnp.bfloat16), jnp.float32)
        return spec, ((j,), (v0,), (), tuple(scalars)), dts, (jnp.float32,)
    plan = residuals.residual_plan(p.neuron, placement)
    res = [(j - 1.0).astype(jnp.bfloat16)]
    res += [(jax.random.uniform(KEY, j.shape) > 0.7).astype(jnp.int8) for _ in plan.bits]
    res += [(j * 0.5).astype(jnp.bfloat16) for _ in plan.charged + plan.previous]
    g = jax.random.normal(KEY, j.shape)
    acc = tuple(jnp.zeros(pop) for _ in placement.learn)
    if which == "bwd":
        spec = kernel_spec.backward_spec(p.neuron, placement)
        return spec, ((*res, g), (v0, *acc), (), tuple(scalars)), (jnp.float32,), (jnp.float32,) * (1 + len(acc))
    spec = kernel_spec.tangent_spec(p.neuron, placement)
    return spec, ((*res, g), (v0,), tuple(0.5 * v0 for _ in acc), tuple(scalars)), (jnp.float32,), (jnp.float32,)


@pytest.mark.parametrize("which,learn", [("fwd", False), ("bwd", False), ("tan", False), ("bwd", True),
                                         ("tan", True)])
def test_tpu_kernels_under_race_detecting_interpreter(which, learn):
    T, shape = 12, (40, 128)
    spec, args, dts, sdts = derived_kernel_args(which, shape, T, learn)
    bs = sp.BlockSizes(block_rows=32, time_chunk=5)  # 2 row blocks (after padding) x 3 time chunks
    got = kernels.run(spec, "interpret_tpu", *args, dts, sdts, bs)
    want = reference.run(spec, *args, dts, sdts)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        np.testing.assert_allclose(np.asarray(a, np.float32), np.asarray(b, np.float32), rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize("pop,bs", [
    ((300,), sp.BlockSizes(block_lanes=128, time_chunk=32)),          # [T, N]: time on sublanes
    ((20, 300), sp.BlockSizes(block_rows=8, block_lanes=128, time_chunk=5)),  # natural 2-D blocks
    ((3, 5, 77), sp.BlockSizes(time_chunk=7)),                         # a squeezed leading dim
])
@pytest.mark.parametrize("model", ["cell", "snn_zero"])
def test_tpu_layouts_partial_edge_blocks_in_the_race_detecting_interpreter(pop, bs, model):
    """Every population rank on TPU, with partial lane, row and time blocks (no padding)."""
    if model == "cell":
        p = sp.presets.ngclearn(tau_m=np.linspace(8, 12, int(np.prod(pop))).reshape(pop), v_min=-70.0)
        j = 40.0 * jax.random.uniform(KEY, (40, *pop))
        st = p.init_state(pop)
    else:
        p = sp.presets.snntorch_leaky(0.9, reset_mechanism="zero")
        j, v0 = inputs(pop, 40)
        st = sp.NeuronState(v0)
    got = sp.lif_sequence(j, st, p, backend="interpret_tpu", with_surrogate=True, block_sizes=bs)
    want = sp.lif_sequence(j, st, p, backend="xla", with_surrogate=True)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("which", ["cell", "fwd", "bwd", "tan"])
def test_triton_launch_across_programs_in_the_interpreter(which):
    """The Triton layout and launch (one program per lane block, the state in registers over all T,
    next-step prefetch), interpreted: 4 programs, the last one partial, with per-neuron constants."""
    T, pop = 13, (1000,)
    bs = sp.BlockSizes(block_lanes=256)
    if which == "cell":
        p = sp.presets.ngclearn(tau_m=np.linspace(8, 12, 1000), thr=np.linspace(-53, -51, 1000))
        cell_placement, per_neuron, scalars = place(p, pop, t0=2.0)
        spec = kernel_spec.forward_spec(p.neuron, cell_placement, False, jnp.float32, True)
        st = p.init_state(pop)
        args = ((40.0 * jax.random.uniform(KEY, (T, *pop)),), (st.v, st.rfr, st.thr_theta, st.tols), tuple(per_neuron),
                tuple(scalars))
        dts, sdts = (jnp.float32, jnp.float32), (jnp.float32,) * 4
    else:
        spec, args, dts, sdts = derived_kernel_args(which, pop, T)
    assert blocks.make_block_plan("interpret_triton", pop, T, [4], [4], bs).grid == (4,)
    got = kernels.run(spec, "interpret_triton", *args, dts, sdts, bs)
    want = reference.run(spec, *args, dts, sdts)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        if which in ("cell", "fwd"):  # the forward, bit for bit
            np.testing.assert_array_equal(np.asarray(a, np.float32), np.asarray(b, np.float32))
        else:  # the derivatives: the same ops, which XLA:CPU may contract differently (1 ulp)
            np.testing.assert_allclose(np.asarray(a, np.float32), np.asarray(b, np.float32), rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- memory
def residual_bytes_per_neuron_step(p, T, shape, **kw):
    j, v0 = inputs(shape, T)
    f = lambda j, v: jnp.sum(sp.lif_sequence(j, sp.NeuronState(v), p, **kw)[1].s) + jnp.sum(v)
    res = saved_residuals(f, j, v0)
    total = sum(np.prod(aval.shape) * aval.dtype.itemsize for aval, _ in res)
    return total / (T * np.prod(shape))


@pytest.mark.parametrize("backend", ["xla", KERNEL])
def test_bf16_mode_saves_at_most_two_bytes_per_neuron_step(backend):
    for p in (sp.presets.spikingjelly(), sp.presets.snntorch_leaky(0.9)):
        b = residual_bytes_per_neuron_step(p, 64, (4, 256), backend=backend, residuals="bf16")
        assert b <= 2.0, b
    exact = residual_bytes_per_neuron_step(sp.presets.spikingjelly(), 64, (4, 256), backend=backend,
                                           residuals="exact")
    assert 4.0 <= exact <= 4.1
    zero = residual_bytes_per_neuron_step(sp.presets.snntorch_leaky(0.9, reset_mechanism="zero"), 64, (4, 256),
                                          backend=backend, residuals="bf16")
    assert zero <= 3.0


def test_default_residuals_are_bf16_where_a_kernel_runs_and_exact_where_the_reference_runs():
    from surrogate_pallas.api import residual_mode
    assert residual_mode("auto", "xla") == "exact"
    assert residual_mode("auto", "auto") == ("exact" if jax.default_backend() == "cpu" else "bf16")
    for kernel in ("pallas", "interpret", "triton", "mosaic"):
        assert residual_mode("auto", kernel) == "bf16"
    assert residual_mode("bf16", "xla") == "bf16" and residual_mode("exact", "pallas") == "exact"
    p = sp.presets.spikingjelly()
    assert residual_bytes_per_neuron_step(p, 64, (4, 256), backend=KERNEL) <= 2.0
    assert residual_bytes_per_neuron_step(p, 64, (4, 256), backend="xla") >= 4.0


# ----------------------------------------------------------------------------- bad input
def test_bad_input():
    p = sp.presets.spikingjelly()
    with pytest.raises(ValueError, match=r"state.v: expected shape \(4,\) \(from j_seq.shape\[1:\]\), got \(5,\)"):
        sp.lif_sequence(jnp.zeros((3, 4)), sp.NeuronState(jnp.zeros(5)), p)
    with pytest.raises(ValueError, match="j_seq: expected a time-major array"):
        sp.lif_sequence(jnp.float32(1.0), sp.NeuronState(jnp.zeros(())), p)
    with pytest.raises(ValueError, match="tau: must be > 1"):
        sp.presets.spikingjelly(tau=1.0)
    with pytest.raises(ValueError, match="tau: must be > 1"):
        sp.presets.spikingjelly(tau=0.5)
    with pytest.raises(ValueError, match="beta: must be finite"):
        sp.presets.snntorch_leaky(float("nan"))
    with pytest.raises(ValueError, match="beta: expected a number or an array"):
        sp.presets.snntorch_leaky("0.9")
    with pytest.raises(ValueError, match="reset_mechanism: expected"):
        sp.presets.snntorch_leaky(0.9, reset_mechanism="hard")
    with pytest.raises(ValueError, match="secant_lif"):
        sp.presets.spikingjelly(surrogate="secant_lif")
    with pytest.raises(ValueError, match="unknown surrogate"):
        sp.presets.snntorch_leaky(0.9, surrogate="nope")
    with pytest.raises(ValueError, match="residuals: expected one of"):
        sp.lif_sequence(jnp.zeros((3, 4)), sp.NeuronState(jnp.zeros(4)), p, residuals="fp8")
    with pytest.raises(TypeError, match="state: expected a NeuronState"):
        sp.lif_sequence(jnp.zeros((3, 4)), jnp.zeros(4), p)


def test_the_race_detecting_interpreter_refuses_transformations_by_name():
    p = sp.presets.spikingjelly()
    f = lambda j: sp.lif_sequence(j, sp.NeuronState(jnp.zeros(4)), p, backend="interpret_tpu")[1].s.sum()
    for transform in (jax.grad, jax.jit):
        with pytest.raises(ValueError, match="backend='interpret_tpu' runs the race-detecting TPU interpreter eagerly"):
            transform(f)(jnp.ones((3, 4)))


def test_nan_and_inf_behave_as_the_oracle():
    p = sp.presets.spikingjelly()
    j = jnp.float32([[jnp.nan, jnp.inf, -jnp.inf, 0.5], [0.5, 0.5, 0.5, 3.0]])
    v0 = jnp.zeros(4)
    a = sp.lif_sequence(j, sp.NeuronState(v0), p, backend=KERNEL)
    b = sp.lif_sequence(j, sp.NeuronState(v0), p, backend="xla")
    np.testing.assert_array_equal(np.asarray(a[1].s), np.asarray(b[1].s))
    np.testing.assert_array_equal(np.asarray(a[0].v), np.asarray(b[0].v))
