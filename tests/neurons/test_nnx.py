"""Flax NNX layers: learned parameters are nnx.Param (scalar or per neuron) whose gradients come from
the fused backward, equal to differentiating the same NeuronParams directly."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import surrogate_pallas as sp
from surrogate_pallas import nnx as snx
from helpers.neurons import ALIF

J = 0.55 + 0.5 * jax.random.normal(jax.random.PRNGKey(0), (10, 4, 16))


def loss(layer, j):
    st, out = layer(j)
    return jnp.sum(out.s * jnp.cos(j)) + jnp.sum(jnp.sin(st.v))


@pytest.mark.parametrize("make,learn,per_neuron", [
    (lambda **kw: snx.Leaky(16, 0.9, **kw), ("beta", "threshold"), ("beta",)),
    (lambda **kw: snx.Synaptic(16, 0.7, 0.9, **kw), ("alpha", "beta"), ("alpha", "beta")),
    (lambda **kw: snx.LIF(16, tau=2.0, **kw), ("tau", "v_threshold"), ()),
    (lambda **kw: snx.IF(16, **kw), ("v_threshold",), ("v_threshold",)),
    (lambda **kw: snx.PLIF(16, init_tau=2.0, **kw), ("w",), ()),
    (lambda **kw: snx.custom(16, ALIF, alpha=0.5, b0=0.3, beta=0.5, rho=0.9, **kw), ("beta", "rho"), ("beta",)),
])
def test_layer_gradients_equal_those_of_its_params(make, learn, per_neuron):
    layer = make(learn=learn, per_neuron=per_neuron)
    for n in learn:
        assert isinstance(getattr(layer, n), nnx.Param)
        assert getattr(layer, n)[...].shape == ((16,) if n in per_neuron else ())
    grads = nnx.grad(loss)(layer, J)
    direct = jax.grad(lambda p: loss(lambda j: sp.lif_sequence(j, p.init_state(j.shape[1:]), p), J))(layer.params)
    for n in learn:
        np.testing.assert_allclose(grads[n][...], direct.values[n], rtol=1e-6, atol=1e-7)
        assert np.any(np.asarray(grads[n][...]) != 0)


def test_a_training_step_moves_only_the_learned_parameters():
    layer = snx.Leaky(16, 0.9, learn=("beta",), per_neuron=("beta",), lif_kw=dict(backend="interpret"))
    opt = nnx.Optimizer(layer, optax.sgd(1e-2), wrt=nnx.Param)
    before = layer.params

    @nnx.jit
    def step(layer, opt):
        g = nnx.grad(loss)(layer, J)
        opt.update(layer, g)

    step(layer, opt)
    assert not np.allclose(layer.beta[...], 0.9) and layer.params.threshold == before.threshold == 1.0


def test_bad_layer_arguments():
    with pytest.raises(ValueError, match=r"j_seq: expected a time-major array \[T, \*batch, 16\].*got shape \(5, 2, 17\)"):
        snx.Leaky(16, beta=0.9)(jnp.ones((5, 2, 17)))
    with pytest.raises(ValueError, match="j_seq: expected a time-major array"):
        snx.Leaky(16, beta=0.9)(jnp.ones((16,)))
    with pytest.raises(ValueError, match="learn: snntorch has no parameter 'tau'"):
        snx.Leaky(4, 0.9, learn=("tau",))
    with pytest.raises(ValueError, match=r"per_neuron: \['threshold'\] are not learned"):
        snx.Leaky(4, 0.9, learn=("beta",), per_neuron=("threshold",))
    with pytest.raises(ValueError, match="learn: the ngclearn cell's parameters are static"):
        snx.Spiking(4, sp.presets.ngclearn(tau_m=10.0), learn=("tau_m",))


def test_preset_layers_show_their_arguments():
    import inspect
    sig = inspect.signature(snx.Leaky)
    assert list(sig.parameters)[:3] == ["n", "beta", "threshold"] and "learn" in sig.parameters
    assert "snnTorch" in snx.Leaky.__doc__ and "presets.snntorch_leaky" in snx.Leaky.__doc__
    assert snx.Leaky.__name__ == "Leaky" and list(inspect.signature(snx.PLIF).parameters)[:2] == ["n", "init_tau"]


def test_learned_values_are_the_values_the_model_uses():
    """A snnTorch beta that a step pushed past 1 acts as 1 (the clamp), and is reported as 1."""
    from types import SimpleNamespace
    from surrogate_pallas.cli.train import learned_values
    layer = snx.Leaky(4, beta=0.9, learn=("beta",), per_neuron=("beta",))
    layer.beta[...] = jnp.asarray([0.5, 0.99, 1.015, 1.2])
    np.testing.assert_allclose(learned_values(SimpleNamespace(hidden=layer))["beta"], [0.5, 0.99, 1.0, 1.0])
