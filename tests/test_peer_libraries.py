"""Issue 4: the presets against the real snnTorch 1.0.0 and SpikingJelly 2.0.0 (torch, CPU).

Spikes must match exactly; membranes to 1e-6; gradients with respect to the inputs and the
initial membrane (torch autograd vs jax.grad through the fused backward) to 1e-5 of the largest.
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
from kernel_backend import KERNEL

T, SHAPE = 12, (3, 45)


def data():
    k1, k2 = jax.random.split(jax.random.PRNGKey(11))
    j = np.asarray(0.6 + 0.9 * jax.random.normal(k1, (T, *SHAPE)), np.float32)
    v0 = np.asarray(1.4 * jax.random.uniform(k2, SHAPE) - 0.2, np.float32)  # some above threshold
    w = np.cos(np.arange(T * np.prod(SHAPE), dtype=np.float32)).reshape(T, *SHAPE)
    return j, v0, w


def ours(params, backend, j, v0, w):
    def loss(j, v0):
        st, out = sp.lif_sequence(j, sp.LIFState(v0), params, backend=backend, residuals="exact")
        return jnp.sum(w * out.s) + jnp.sum(jnp.sin(st.v)), (out.s, st.v)

    (_, (s, v)), grads = jax.value_and_grad(loss, (0, 1), has_aux=True)(jnp.asarray(j), jnp.asarray(v0))
    return np.asarray(s), np.asarray(v), [np.asarray(g) for g in grads]


def check(theirs, mine):
    (s_t, v_t, g_t), (s_m, v_m, g_m) = theirs, mine
    np.testing.assert_array_equal(s_m, s_t)
    np.testing.assert_allclose(v_m, v_t, rtol=1e-6, atol=1e-6)
    for a, b in zip(g_m, g_t):
        assert np.max(np.abs(a - b)) <= 1e-5 * max(np.max(np.abs(b)), 1e-12)
    assert 0.05 < s_t.mean() < 0.95


@pytest.mark.parametrize("mechanism,reset_delay", list(itertools.product(["subtract", "zero", "none"], [True, False])))
@pytest.mark.parametrize("backend", ["xla", KERNEL])
def test_snntorch_leaky(mechanism, reset_delay, backend):
    j, v0, w = data()
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
    theirs = (s.detach().numpy(), mem.detach().numpy(), [x.grad.numpy(), mem0.grad.numpy()])
    params = sp.LIFParams.snntorch_leaky(0.85, threshold=1.0, reset_mechanism=mechanism, reset_delay=reset_delay)
    check(theirs, ours(params, backend, j, v0, w))


SJ = list(itertools.product([True, False], [0.0, None], [False, True])) + [("sigmoid", 0.0, False)]


@pytest.mark.parametrize("decay_input,v_reset,detach_reset", SJ)
@pytest.mark.parametrize("backend", ["xla", KERNEL])
def test_spikingjelly_lifnode(decay_input, v_reset, detach_reset, backend):
    j, v0, w = data()
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
    params = sp.LIFParams.spikingjelly(tau=2.0, decay_input=decay_input, v_threshold=1.0, v_reset=v_reset,
                                       detach_reset=detach_reset, surrogate="sigmoid" if sigmoid else "atan",
                                       alpha=4.0 if sigmoid else 2.0)
    check(theirs, ours(params, backend, j, v0, w))
