"""User-defined neurons (``sp.Neuron``) and learnable parameters: the derived kernels against
``jax.grad`` / ``jax.jvp`` of a plain ``lax.scan`` of the same step, the residual plan, the pytree,
and bad input."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax
from jax._src.ad_checkpoint import saved_residuals

import surrogate_pallas as sp
from helpers.kernel_backend import KERNEL
from surrogate_pallas.derivation import residuals
from surrogate_pallas.derivation.placement import place
from surrogate_pallas.derivation.steps import Values
from helpers.neurons import ALIF, SUR, charge, reset, threshold
from helpers.transcriptions import ngclearn_step

T, N = 16, 300


def scan_of_the_step(j, v0, a0, alpha, b0, beta, rho):
    """The same step in a lax.scan, with the library's differentiable spike: the oracle."""
    p = Values(alpha=alpha, b0=b0, beta=beta, rho=rho)

    def step(carry, jt):
        s = Values(v=carry[0], a=carry[1])
        h = Values(charge(p, s, jt))
        thr = threshold(p, h)
        spike = sp.spike(h.v, thr, SUR)
        new = reset(p, h, spike, thr)
        return (new["v"], new["a"]), spike

    (vT, aT), s = lax.scan(step, (v0, a0), j)
    return s, vT, aT


def data():
    k1, k2 = jax.random.split(jax.random.PRNGKey(3))
    j = 2.5 + 2.0 * jax.random.normal(k1, (T, N))
    return j, 0.5 * jax.random.uniform(k2, (N,)), jnp.zeros(N)


def loss_ours(backend, residuals="exact"):
    def loss(j, v0, a0, params):
        st, out = sp.lif_sequence(j, sp.NeuronState(v=v0, extra={"a": a0}), params, backend=backend, residuals=residuals)
        w = jnp.cos(jnp.arange(T * N, dtype=jnp.float32)).reshape(T, N)
        return jnp.sum(w * out.s) + jnp.sum(jnp.sin(st.v)) + jnp.sum(jnp.cos(st.a))
    return loss


def loss_scan(j, v0, a0, alpha, b0, beta, rho):
    s, vT, aT = scan_of_the_step(j, v0, a0, alpha, b0, beta, rho)
    w = jnp.cos(jnp.arange(T * N, dtype=jnp.float32)).reshape(T, N)
    return jnp.sum(w * s) + jnp.sum(jnp.sin(vT)) + jnp.sum(jnp.cos(aT))


PER_NEURON_BETA = jnp.linspace(1.2, 2.0, N)


@pytest.mark.parametrize("backend", ["xla", KERNEL])
def test_alif_forward_and_gradients_match_a_scan_of_the_step(backend):
    j, v0, a0 = data()
    params = ALIF.with_params(alpha=jnp.float32(0.9), b0=1.0, beta=PER_NEURON_BETA, rho=jnp.float32(0.95))
    st, out = sp.lif_sequence(j, params.init_state(N), params, backend=backend)
    s, vT, aT = scan_of_the_step(j, jnp.zeros(N), jnp.zeros(N), 0.9, 1.0, PER_NEURON_BETA, 0.95)
    np.testing.assert_array_equal(out.s, s)
    np.testing.assert_allclose(st.v, vT, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(st.a, aT, rtol=1e-6, atol=1e-6)
    assert 0.05 < float(s.mean()) < 0.6

    g = jax.jit(jax.grad(loss_ours(backend), (0, 1, 2, 3)))(j, v0, a0, params)
    want = jax.grad(loss_scan, tuple(range(7)))(j, v0, a0, jnp.float32(0.9), 1.0, PER_NEURON_BETA, jnp.float32(0.95))
    # jax.grad differentiates every leaf, the Python float b0 included (under grad it is a traced scalar)
    got = [g[0], g[1], g[2], g[3].alpha, g[3].b0, g[3].beta, g[3].rho]
    for name, a, b in zip(["j", "v0", "a0", "alpha", "b0", "beta", "rho"], got, want):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-5 * float(jnp.max(jnp.abs(b))), err_msg=name)


def test_alif_default_residuals_on_a_kernel_equal_the_oracle_with_the_same_residuals():
    j, v0, a0 = data()
    params = ALIF.with_params(alpha=0.9, b0=1.0, beta=jnp.float32(1.8), rho=0.95)
    g_kernel = jax.jit(jax.grad(loss_ours(KERNEL, "auto"), (0, 3)))(j, v0, a0, params)
    g_oracle = jax.jit(jax.grad(loss_ours("xla", "bf16"), (0, 3)))(j, v0, a0, params)
    for a, b in zip(jax.tree.leaves(g_kernel), jax.tree.leaves(g_oracle)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * float(jnp.max(jnp.abs(b))))


@pytest.mark.parametrize("backend", ["xla", KERNEL])
def test_tangents_with_respect_to_parameters_match_a_scan(backend):
    j, v0, a0 = data()
    base = dict(alpha=jnp.float32(0.9), b0=1.0, beta=jnp.float32(1.8), rho=jnp.float32(0.95))

    def ours(alpha, beta, rho):
        p = ALIF.with_params(**dict(base, alpha=alpha, beta=beta, rho=rho))
        st, out = sp.lif_sequence(j, sp.NeuronState(v=v0, extra={"a": a0}), p, backend=backend, residuals="exact")
        return st.v, st.a

    def scan(alpha, beta, rho):
        return scan_of_the_step(j, v0, a0, alpha, 1.0, beta, rho)[1:]

    primals, tangents = (base["alpha"], base["beta"], base["rho"]), (jnp.float32(0.3), jnp.float32(-0.7), jnp.float32(0.2))
    _, t_ours = jax.jvp(ours, primals, tangents)
    _, t_scan = jax.jvp(scan, primals, tangents)
    for a, b in zip(t_ours, t_scan):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-5 * float(jnp.max(jnp.abs(b))))


def test_residual_plan_stores_what_the_derivative_reads():
    plan = lambda p, learn=(): residuals.residual_plan(p.neuron, dataclasses.replace(place(p, (4,))[0], learn=learn))
    leaky = sp.presets.snntorch_leaky(0.9)
    assert plan(leaky) == residuals.ResidualPlan(bits=(), charged=(), previous=(), input=False)  # x alone: 2 B in bf16
    learned = sp.presets.snntorch_leaky(jnp.float32(0.9), jnp.float32(1.0))
    assert plan(learned, ("beta", "threshold")) == residuals.ResidualPlan(bits=("r",), charged=(), previous=("v",), input=False)
    zero = sp.presets.snntorch_leaky(0.9, reset_mechanism="zero")
    assert plan(zero).bits == ("r",)
    sj = sp.presets.spikingjelly(tau=jnp.float32(2.0))
    assert plan(sj, ("tau",)) == residuals.ResidualPlan(bits=(), charged=(), previous=("v",), input=True)  # dh/dtau reads j
    syn = sp.presets.snntorch_synaptic(0.8, 0.9)
    assert plan(syn) == residuals.ResidualPlan(bits=(), charged=(), previous=(), input=False)
    alif = ALIF.with_params(alpha=0.9, b0=1.0, beta=1.8, rho=0.95)
    assert plan(alif) == residuals.ResidualPlan(bits=(), charged=("a",), previous=(), input=False)  # thr = b0 + beta*a
    # ngclearn's cell: the refractory mask, and the values its reset multiplies by the spike
    cell = sp.presets.ngclearn(tau_m=10.0, v_min=-70.0)
    assert plan(cell) == residuals.ResidualPlan(bits=("m",), charged=("rfr", "thr_theta", "tols"), previous=(), input=False)


CELL = dict(tau_m=12.0, resist_m=1.5, tau_theta=200.0, theta_plus=0.4, refract_time=2.0, v_min=-64.0, dt=0.5)


@pytest.mark.parametrize("backend,midpoint", [("xla", False), ("xla", True), (KERNEL, True)])
def test_ngclearn_cell_derivatives_match_autodiff_of_a_scan_of_its_transcription(backend, midpoint):
    """The cell's gradient and tangent run the derived reverse-time and tangent kernels; the oracle is
    jax.grad / jax.jvp of a lax.scan of the independent transcription with the surrogate spike."""
    integration = "midpoint" if midpoint else "euler"
    p = sp.presets.ngclearn(CELL["tau_m"], CELL["resist_m"], -52.0, -65.0, -60.0, 1.0, CELL["tau_theta"],
                              CELL["theta_plus"], CELL["refract_time"], CELL["v_min"], integration, dt=CELL["dt"])
    T, n, t0 = 12, 130, 3.0
    k1, k2 = jax.random.split(jax.random.PRNGKey(4))
    st0 = p.init_state((n,))._replace(v=-60.0 + 8.5 * jax.random.uniform(k1, (n,)))  # some fire at once
    j = 10.0 + 25.0 * jax.random.uniform(k2, (T, n))
    w = jnp.cos(jnp.arange(T * n, dtype=jnp.float32)).reshape(T, n)
    finals = lambda v, rfr, theta, tols: jnp.sum(jnp.sin(v)) + 0.1 * jnp.sum(theta) + 0.01 * jnp.sum(tols + rfr)

    def ours(j, v0, residuals="exact", backend=backend):
        st, out = sp.lif_sequence(j, st0._replace(v=v0), p, t0=t0, backend=backend, residuals=residuals)
        return jnp.sum(w * out.s) + finals(st.v, st.rfr, st.thr_theta, st.tols)

    def scan(j, v0):
        def body(c, x):
            *c, s, _ = ngclearn_step(*c, *x, midpoint=midpoint, differentiable=True,
                                     **CELL)
            return tuple(c), s
        c, s = lax.scan(body, (v0, st0.rfr, st0.thr_theta, st0.tols), (j, t0 + CELL["dt"] * jnp.arange(T)))
        return jnp.sum(w * s) + finals(*c)

    assert float(jnp.abs(ours(j, st0.v) - scan(j, st0.v))) < 1e-3
    for a, b in zip(jax.jit(jax.grad(ours, (0, 1)))(j, st0.v), jax.grad(scan, (0, 1))(j, st0.v)):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-5 * float(jnp.max(jnp.abs(b))))
    tangents = (jnp.sin(j), jnp.cos(st0.v))
    np.testing.assert_allclose(jax.jvp(ours, (j, st0.v), tangents)[1], jax.jvp(scan, (j, st0.v), tangents)[1],
                               rtol=2e-5)
    assert float(sp.lif_sequence(j, st0, p)[1].s.sum()) > 100  # spikes, refractory periods and adaptation
    # the default residuals (bf16 on a kernel, exact on the jnp path) equal the oracle run with the
    # same rounding, and store 2 B per value the backward reads (1 B for the mask) in bf16
    default = "bf16" if backend == KERNEL else "exact"
    g_auto = jax.jit(jax.grad(lambda j, v0: ours(j, v0, "auto"), (0, 1)))(j, st0.v)
    g_oracle = jax.grad(lambda j, v0: ours(j, v0, default, "xla"), (0, 1))(j, st0.v)
    for a, b in zip(g_auto, g_oracle):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * float(jnp.max(jnp.abs(b))))
    for residuals, size in (("exact", 4 + 1 + 3 * 4), ("bf16", 2 + 1 + 3 * 2)):  # x, mask, rfr, thr_theta, tols
        res = saved_residuals(lambda j: ours(j, st0.v, residuals), j)
        stored = sum(np.prod(a.shape) * a.dtype.itemsize for a, what in res if "neuron_forward" in what)
        assert stored / (T * n) == size, (residuals, stored / (T * n))


def test_params_are_a_pytree_of_their_numeric_values():
    p = sp.presets.snntorch_leaky(0.9, threshold=jnp.float32(1.1))
    assert [float(x) for x in jax.tree.leaves(p)] == [0.9, pytest.approx(1.1)]
    q = jax.tree.map(lambda x: x * 2, p)
    assert isinstance(q, sp.NeuronParams) and q.kind == "snntorch" and float(q.beta) == 1.8
    j, v0 = jnp.full((5, 7), 0.6), jnp.zeros(7)
    f = jax.jit(lambda p: sp.lif_sequence(j, sp.NeuronState(v0), p)[1].s.sum())
    assert float(f(p)) == float(sp.lif_sequence(j, sp.NeuronState(v0), p)[1].s.sum())
    # the two spellings, under jit
    g = jax.jit(jax.grad(lambda b: sp.lif_sequence(j, sp.NeuronState(v0), sp.presets.snntorch_leaky(b))[0].v.sum()))
    assert float(g(jnp.float32(0.9))) != 0.0
    gp = jax.jit(jax.grad(lambda p: sp.lif_sequence(j, sp.NeuronState(v0), p)[0].v.sum()))(p)
    assert isinstance(gp, sp.NeuronParams) and float(gp.beta) != 0.0
    assert not hasattr(sp.presets.ngclearn(tau_m=10.0), "beta") and jax.tree.leaves(sp.presets.ngclearn(10.0)) == []


def test_vmap_over_a_learned_parameter():
    j, v0 = jnp.full((6, 9), 0.45), jnp.zeros(9)
    run = lambda beta: sp.lif_sequence(j, sp.NeuronState(v0), sp.presets.snntorch_leaky(beta), backend=KERNEL)[0].v
    betas = jnp.float32([0.5, 0.8, 0.95])
    np.testing.assert_allclose(jax.vmap(run)(betas), jnp.stack([run(b) for b in betas]), rtol=1e-6)


def test_bad_neurons_and_values():
    with pytest.raises(ValueError, match=r"beta: must be in \[0, 1\]"):
        sp.presets.snntorch_leaky(beta=1.5)
    with pytest.raises(ValueError, match=r"alpha: must be in \[0, 1\]"):
        sp.presets.snntorch_synaptic(alpha=1.2, beta=0.9)
    with pytest.raises(ValueError, match="beta: must be >= 0"):
        sp.presets.snntorch_leaky(beta=jnp.asarray([0.5, -0.1]))
    with pytest.raises(ValueError, match="refract_time: must be >= 0"):
        sp.presets.ngclearn(tau_m=10.0, refract_time=-1.0)
    with pytest.raises(ValueError, match="refract_time: must be >= 0 everywhere"):
        sp.presets.ngclearn(tau_m=10.0, refract_time=np.asarray([1.0, -1.0]))
    with pytest.raises(ValueError, match="threshold: must not depend on the membrane"):
        bad = sp.Neuron("bad", ("v",), ("b",), lambda p, s, j: {"v": s.v + j}, lambda p, h: p.b + 0.1 * h.v,
                        lambda p, h, s, thr: {"v": h.v - s}, SUR)
        sp.lif_sequence(jnp.ones((2, 3)), sp.NeuronState(jnp.zeros(3)), bad.with_params(b=1.0))
    with pytest.raises(ValueError, match="membrane: 'u' is not one of the state fields"):
        sp.Neuron("bad", ("v",), (), charge, threshold, reset, SUR, membrane="u")
    with pytest.raises(ValueError, match=r"alif: parameters are .* missing \['rho'\]"):
        ALIF.with_params(alpha=0.9, b0=1.0, beta=1.8)
    with pytest.raises(ValueError, match=r"params.beta: per-neuron shape \(4,\) does not broadcast"):
        p = ALIF.with_params(alpha=0.9, b0=1.0, beta=jnp.ones(4), rho=0.9)
        sp.lif_sequence(jnp.ones((2, 3)), p.init_state(3), p)
    with pytest.raises(ValueError, match="state.a: missing"):
        p = ALIF.with_params(alpha=0.9, b0=1.0, beta=1.8, rho=0.9)
        sp.lif_sequence(jnp.ones((2, 3)), sp.NeuronState(jnp.zeros(3)), p)
    with pytest.raises(TypeError, match="beta: expected a floating dtype"):
        sp.presets.snntorch_leaky(jnp.int32(1))
    with pytest.raises(ValueError, match="tau: must be > 1"):
        sp.presets.spikingjelly(tau=np.float32([2.0, 0.5]))
    with pytest.raises(ValueError, match="init_tau: must be > 1"):
        sp.presets.spikingjelly_plif(init_tau=1.0)
    with pytest.raises(TypeError, match="surrogate: expected a name or a Surrogate"):
        sp.Neuron("bad", ("v",), (), charge, threshold, reset, 3)
