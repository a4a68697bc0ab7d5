"""The presets against the real snnTorch 1.0.0 and SpikingJelly 2.0.0 (torch, CPU).

Spikes must match exactly; membranes to 1e-6; gradients with respect to the inputs and the
initial membrane (torch autograd vs jax.grad through the fused backward) to 1e-5 of the largest
with exact residuals.  With the default residuals of a kernel (bf16), each gradient entry may
differ from the peer's by what the bf16 rounding of the residuals moves it, as computed by the
independent transcription (tests/transcriptions.py, derivatives at the rounded residual), and
no more (plus the same 1e-5 of float rounding).
"""
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import snntorch as snn
from snntorch import surrogate as snn_surrogate
from spikingjelly.activation_based import neuron as sj_neuron
from spikingjelly.activation_based import surrogate as sj_surrogate

import surrogate_pallas as sp
from helpers import transcriptions
from helpers.kernel_backend import KERNEL

T, SHAPE = 12, (3, 45)


def data():
    k1, k2 = jax.random.split(jax.random.PRNGKey(11))
    j = np.asarray(0.6 + 0.9 * jax.random.normal(k1, (T, *SHAPE)), np.float32)
    v0 = np.asarray(1.4 * jax.random.uniform(k2, SHAPE) - 0.2, np.float32)  # some above threshold
    w = np.cos(np.arange(T * np.prod(SHAPE), dtype=np.float32)).reshape(T, *SHAPE)
    return j, v0, w


def ours(params, backend, j, v0, w, residuals="exact"):
    def loss(j, v0):
        st, out = sp.lif_sequence(j, sp.NeuronState(v0), params, backend=backend, residuals=residuals)
        return jnp.sum(w * out.s) + jnp.sum(jnp.sin(st.v)), (out.s, st.v)

    (_, (s, v)), grads = jax.value_and_grad(loss, (0, 1), has_aux=True)(jnp.asarray(j), jnp.asarray(v0))
    return np.asarray(s), np.asarray(v), [np.asarray(g) for g in grads]


def check(theirs, mine, effect=None):
    """Spikes exact, state to 1e-6, each gradient entry within 1e-5 of the largest of the peer's, plus,
    with default (bf16) residuals, the rounding's own effect on that entry (``effect``: the
    transcription's rounded minus exact gradients)."""
    (s_t, v_t, g_t), (s_m, v_m, g_m) = theirs, mine
    np.testing.assert_array_equal(s_m, s_t)
    np.testing.assert_allclose(v_m, v_t, rtol=1e-6, atol=1e-6)
    for k, (a, b) in enumerate(zip(g_m, g_t)):
        bound = 1e-5 * max(np.max(np.abs(b)), 1e-12) + (0.0 if effect is None else np.abs(effect[k]))
        assert np.all(np.abs(a - b) <= bound), np.max(np.abs(a - b) - bound)
        if effect is not None:
            assert np.max(np.abs(effect[k])) > 1e-4 * np.max(np.abs(b))  # the rounding is really there
    assert 0.05 < s_t.mean() < 0.95


def rounding_effect(transcription, j, v0, w):
    """What the bf16 residuals move each gradient entry by: the independent transcription's gradients
    taken at the rounded residuals, minus its exact ones."""
    def grads(rounded):
        def loss(j, v0):
            s, _, vT, _ = transcription(jnp.asarray(j), jnp.asarray(v0), rounded)
            return jnp.sum(w * s) + jnp.sum(jnp.sin(vT))
        return jax.grad(loss, (0, 1))(jnp.asarray(j), jnp.asarray(v0))
    return [np.asarray(a) - np.asarray(b) for a, b in zip(grads(True), grads(False))]


SNN = list(itertools.product(["subtract", "zero", "none"], [True, False]))


def snntorch_run(mechanism, reset_delay, j, v0, w):
    lif = snn.Leaky(beta=0.85, threshold=1.0, spike_grad=snn_surrogate.atan(alpha=2.0),
                    reset_mechanism=mechanism, reset_delay=reset_delay)
    x = torch.tensor(j, requires_grad=True)
    mem0 = torch.tensor(v0, requires_grad=True)
    mem, spikes = mem0, []
    for t in range(T):
        spk, mem = lif(x[t], mem)
        spikes.append(spk)
    s = torch.stack(spikes)
    ((torch.tensor(w) * s).sum() + torch.sin(mem).sum()).backward()
    return s.detach().numpy(), mem.detach().numpy(), [x.grad.numpy(), mem0.grad.numpy()]


@pytest.mark.parametrize("mechanism,reset_delay", SNN)
@pytest.mark.parametrize("backend", ["xla", KERNEL])
def test_snntorch_leaky(mechanism, reset_delay, backend):
    j, v0, w = data()
    params = sp.presets.snntorch_leaky(0.85, threshold=1.0, reset_mechanism=mechanism, reset_delay=reset_delay)
    check(snntorch_run(mechanism, reset_delay, j, v0, w), ours(params, backend, j, v0, w))


@pytest.mark.parametrize("mechanism,reset_delay", SNN)
def test_snntorch_leaky_default_bf16_residuals(mechanism, reset_delay):
    j, v0, w = data()
    params = sp.presets.snntorch_leaky(0.85, threshold=1.0, reset_mechanism=mechanism, reset_delay=reset_delay)
    assert sp.api.residual_mode("auto", KERNEL) == "bf16"
    effect = rounding_effect(lambda j, v0, r: transcriptions.snntorch_leaky(j, v0, 0.85, 1.0, mechanism, reset_delay,
                                                                            rounded=r), j, v0, w)
    check(snntorch_run(mechanism, reset_delay, j, v0, w), ours(params, KERNEL, j, v0, w, "auto"), effect)


SJ = list(itertools.product([True, False], [0.0, None], [False, True])) + [("sigmoid", 0.0, False)]


def spikingjelly_run(decay_input, v_reset, detach_reset, j, v0, w):
    """SpikingJelly's outputs and gradients, and our preset of the same neuron."""
    sigmoid = decay_input == "sigmoid"
    decay_input = True if sigmoid else decay_input
    sur = sj_surrogate.Sigmoid(alpha=4.0) if sigmoid else sj_surrogate.ATan(alpha=2.0)
    node = sj_neuron.LIFNode(tau=2.0, decay_input=decay_input, v_threshold=1.0, v_reset=v_reset,
                             detach_reset=detach_reset, surrogate_function=sur, step_mode="m")
    x = torch.tensor(j, requires_grad=True)
    node.v = v0_t = torch.tensor(v0, requires_grad=True)
    s = node(x)
    ((torch.tensor(w) * s).sum() + torch.sin(node.v).sum()).backward()
    theirs = (s.detach().numpy(), node.v.detach().numpy(), [x.grad.numpy(), v0_t.grad.numpy()])
    sur = dict(surrogate="sigmoid", alpha=4.0) if sigmoid else dict(surrogate="atan", alpha=2.0)
    params = sp.presets.spikingjelly(tau=2.0, decay_input=decay_input, v_threshold=1.0, v_reset=v_reset,
                                       detach_reset=detach_reset, **sur)
    transcription = lambda j, v0, r: transcriptions.spikingjelly_lif(j, v0, 2.0, 1.0, v_reset, decay_input,
                                                                     detach_reset, rounded=r, **sur)
    return theirs, params, transcription


@pytest.mark.parametrize("decay_input,v_reset,detach_reset", SJ)
@pytest.mark.parametrize("backend", ["xla", KERNEL])
def test_spikingjelly_lifnode(decay_input, v_reset, detach_reset, backend):
    j, v0, w = data()
    theirs, params, _ = spikingjelly_run(decay_input, v_reset, detach_reset, j, v0, w)
    check(theirs, ours(params, backend, j, v0, w))


@pytest.mark.parametrize("decay_input,v_reset,detach_reset", SJ)
def test_spikingjelly_lifnode_default_bf16_residuals(decay_input, v_reset, detach_reset):
    j, v0, w = data()
    theirs, params, transcription = spikingjelly_run(decay_input, v_reset, detach_reset, j, v0, w)
    check(theirs, ours(params, KERNEL, j, v0, w, "auto"), rounding_effect(transcription, j, v0, w))
