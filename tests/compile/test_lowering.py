"""Every kernel lowers for every target on this CPU-only machine (issues 3, 4), and exports (issue 6).

CUDA lowering needs only jax-cuda12-plugin and absl-py (no GPU); TPU lowering needs nothing.
"""
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import export

import surrogate_pallas as sp

TARGETS = [("tpu", "triton", "tpu_custom_call"), ("cuda", "triton", "__gpu$xla.gpu.triton"),
           ("cuda", "mosaic", "mosaic_gpu_v2")]
MODELS = {
    "cell_midpoint": sp.presets.ngclearn(tau_m=10.0, integration_type="midpoint", v_min=-70.0),
    "cell_per_neuron": sp.presets.ngclearn(tau_m=np.linspace(5, 20, 4 * 300).reshape(4, 300)),
    "sj_hard": sp.presets.spikingjelly(),
    "sj_soft_sigmoid": sp.presets.spikingjelly(v_reset=None, surrogate="sigmoid", alpha=4.0),
    "snn_zero_nodelay": sp.presets.snntorch_leaky(0.9, reset_mechanism="zero", reset_delay=False),
}


def custom_calls(lowered):
    txt = lowered.as_text()
    return set(re.findall(r'call_target_name = "([^"]+)"', txt)) | set(re.findall(r"custom_call @([\w$.]+)", txt))


def program(p, gpu_backend, what, spike_dtype=None):
    st0 = p.init_state((4, 300))

    def fwd(j, v):
        st, out = sp.lif_sequence(j, st0._replace(v=v), p, backend="pallas", gpu_backend=gpu_backend,
                                  with_surrogate=True, spike_dtype=spike_dtype)
        return out.s, out.surrogate, st.v

    if what == "fwd":
        return fwd
    loss = lambda j, v: jnp.sum(fwd(j, v)[0].astype(jnp.float32)) + jnp.sum(fwd(j, v)[2])
    if what == "grad":
        return jax.grad(loss, (0, 1))
    return lambda j, v: jax.jvp(loss, (j, v), (j, v))  # "jvp": the fused tangent kernel


KERNELS = [(m, w) for m in MODELS for w in ("fwd", "grad", "jvp")]


@pytest.mark.parametrize("platform,gpu_backend,call", TARGETS)
@pytest.mark.parametrize("model,what", KERNELS)
def test_every_kernel_lowers(platform, gpu_backend, call, model, what):
    p = MODELS[model]
    j = jnp.ones((10, 4, 300), jnp.float32)
    f = program(p, gpu_backend, what)
    lowered = jax.jit(f).trace(j, p.init_state((4, 300)).v).lower(lowering_platforms=(platform,))
    calls = custom_calls(lowered)
    assert call in calls
    assert not calls - {call, "Sharding", "SPMDFullToShardShape", "SPMDShardToFullShape"}


@pytest.mark.parametrize("platform,gpu_backend,call", TARGETS)
@pytest.mark.parametrize("dtype,spike_dtype", [(jnp.bfloat16, jnp.int8), (jnp.float16, None)])
def test_low_precision_kernels_lower(platform, gpu_backend, call, dtype, spike_dtype):
    p = sp.presets.spikingjelly()
    j = jnp.ones((10, 4, 300), dtype)
    f = program(p, gpu_backend, "fwd", spike_dtype)
    assert call in custom_calls(jax.jit(f).trace(j, jnp.zeros((4, 300), dtype)).lower(lowering_platforms=(platform,)))


def test_step_kernel_lowers_everywhere():
    p = sp.presets.ngclearn(tau_m=10.0)
    st = p.init_state((1000,))
    for platform, gpu_backend, call in TARGETS:
        f = lambda st, j, t: sp.lif_step(st, j, p, t=t, backend="auto", gpu_backend=gpu_backend)
        lowered = jax.jit(f).trace(st, jnp.ones(1000), 3.0).lower(lowering_platforms=(platform,))
        assert call in custom_calls(lowered)
    # on CPU, "auto" is the jnp reference: no custom call at all
    assert not custom_calls(jax.jit(f).trace(st, jnp.ones(1000), 3.0).lower())


@pytest.mark.parametrize("backend", ["auto", "pallas"])
def test_export_for_every_platform_round_trips(backend):
    """One artifact for cpu, cuda and tpu; on CPU it runs the jnp path ("auto") or the interpreted
    Pallas kernels ("pallas"), forward and fused backward, and gives the same numbers after the trip."""
    p = sp.presets.spikingjelly()
    v0 = jnp.zeros((4, 300))

    def f(j):
        st, out = sp.lif_sequence(j, sp.NeuronState(v0), p, backend=backend)
        g = jax.grad(lambda j: jnp.sum(sp.lif_sequence(j, sp.NeuronState(v0), p, backend=backend)[1].s * j))(j)
        return out.s, st.v, g

    j = jax.random.normal(jax.random.PRNGKey(0), (10, 4, 300)) + 0.8
    exp = export.export(jax.jit(f), platforms=("cpu", "cuda", "tpu"),
                        disabled_checks=[export.DisabledSafetyCheck.custom_call("__gpu$xla.gpu.triton")])(j)
    assert exp.platforms == ("cpu", "cuda", "tpu")
    text = exp.mlir_module()
    assert "tpu_custom_call" in text and "__gpu$xla.gpu.triton" in text
    back = export.deserialize(exp.serialize())
    for a, b in zip(back.call(j), f(j)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
