"""``surrogate-pallas train``: a 2-layer SNN trained with surrogate gradients (BPTT through
``lif_sequence``) on scikit-learn's bundled handwritten digits, with no download."""
from __future__ import annotations

import dataclasses
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from flax import nnx

from .. import presets
from ..neuron import NeuronParams
from ..nnx import Spiking

NEURONS = ("snntorch", "spikingjelly", "ngclearn")
ENCODINGS = ("rate", "latency")
READOUTS = ("count", "membrane")


@dataclasses.dataclass
class TrainConfig:
    neuron: str = "snntorch"
    surrogate: str = "atan"
    backend: str = "auto"
    residuals: str = "auto"  # what the backward reads: lif_sequence's residuals= (auto, bf16, exact)
    epochs: int = 30
    steps: int = 16          # T, time steps per digit
    hidden: int = 256
    batch: int = 128
    lr: float = 2e-3
    encoding: str = "rate"
    readout: str = "membrane"
    seed: int = 0
    limit: int | None = None  # use only this many training digits (quick runs)
    learn: tuple = ()        # neuron parameters learned per hidden neuron, e.g. ("beta", "threshold")


def neuron_params(name: str, surrogate: str) -> NeuronParams:
    """The preset for ``--neuron``, on a unit voltage scale so one learning rate fits all three."""
    if name == "snntorch":
        return presets.snntorch_leaky(0.9, threshold=1.0, surrogate=surrogate)
    if name == "spikingjelly":
        return presets.spikingjelly(tau=2.0, v_threshold=1.0, v_reset=0.0, surrogate=surrogate)
    if name == "ngclearn":  # ngclearn's LIFCell, rescaled: rest 0, threshold 1, no refractory or adaptation
        return presets.ngclearn(tau_m=2.0, resist_m=1.0, thr=1.0, v_rest=0.0, v_reset=0.0, tau_theta=0.0,
                                  refract_time=0.0, surrogate=surrogate)
    raise ValueError(f"--neuron: unknown neuron {name!r}; expected one of {', '.join(NEURONS)}")


def load_data(seed: int, limit: int | None = None):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    xtr, xte, ytr, yte = train_test_split(x, d.target, test_size=0.25, random_state=seed, stratify=d.target)
    if limit:
        xtr, ytr = xtr[:limit], ytr[:limit]
    return xtr, ytr.astype(np.int32), xte, yte.astype(np.int32)


def encode(x, steps: int, kind: str, key):
    """[B, 64] intensities in [0, 1] -> [T, B, 64] spike trains."""
    if kind == "rate":
        return (jax.random.uniform(key, (steps, *x.shape)) < x).astype(jnp.float32)
    # latency: one spike, earlier for brighter pixels; dark pixels never fire
    t_fire = jnp.round((1.0 - x) * (steps - 1))
    t = jnp.arange(steps, dtype=jnp.float32)[:, None, None]
    return ((t == t_fire) & (x > 0.05)).astype(jnp.float32)


class Net(nnx.Module):
    """Input weights -> a spiking hidden layer -> output weights -> a readout (``cfg.readout``).

    The hidden (and, for ``count``, the output) layer is a ``surrogate_pallas.nnx.Spiking`` layer;
    the parameters named by ``cfg.learn`` are per-neuron ``nnx.Param`` there, trained with the weights."""

    def __init__(self, key, n_in, hidden, n_out, lif: NeuronParams, cfg: TrainConfig):
        k1, k2 = jax.random.split(key)
        self.w1 = nnx.Param(jax.random.normal(k1, (n_in, hidden)) * (2.0 / np.sqrt(n_in)))
        self.b1 = nnx.Param(jnp.zeros(hidden))
        self.w2 = nnx.Param(jax.random.normal(k2, (hidden, n_out)) * (1.0 / np.sqrt(hidden)))
        self.b2 = nnx.Param(jnp.zeros(n_out))
        kw = dict(learn=cfg.learn, per_neuron=cfg.learn, backend=cfg.backend, residuals=cfg.residuals)
        self.hidden = Spiking(hidden, lif, **kw)
        self.out = Spiking(n_out, lif, **kw) if cfg.readout == "count" else None
        self.readout = cfg.readout

    def __call__(self, spikes):
        """Returns (logits [B, 10], hidden spikes [T, B, H])."""
        _, out1 = self.hidden(spikes @ self.w1[...] + self.b1[...])
        j2 = out1.s @ self.w2[...] + self.b2[...]
        if self.readout == "membrane":  # a non-spiking integrator: the mean input current
            return j2.mean(0) * 4.0, out1.s
        _, out2 = self.out(j2)
        return out2.s.sum(0), out1.s


def learned_values(model: Net) -> dict:
    """The hidden layer's learned neuron parameters, by name (per neuron), as the model uses them: a
    snnTorch decay that drifted past [0, 1] acts as its bound (``Neuron.prepare``), so the bound is
    what is reported."""
    used = model.hidden.params.step_values()
    return {n: np.asarray(used[n] if n in used else getattr(model.hidden, n)[...]) for n in model.hidden.learned}


def make_steps(cfg, optimizer):
    def loss_fn(model, spikes, y):
        logits, _ = model(spikes)
        logp = jax.nn.log_softmax(logits)
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1)), logits

    @nnx.jit
    def train_step(model, optimizer, x, y, key):
        spikes = encode(x, cfg.steps, cfg.encoding, key)
        (loss, logits), grads = nnx.value_and_grad(loss_fn, has_aux=True)(model, spikes, y)
        optimizer.update(model, grads)
        return loss, jnp.mean(jnp.argmax(logits, -1) == y)

    @nnx.jit
    def predict(model, x, key):
        logits, hidden = model(encode(x, cfg.steps, cfg.encoding, key))
        return jnp.argmax(logits, -1), hidden

    return train_step, predict


def evaluate(predict, params, x, y, key, batch=512):
    correct = 0
    for i in range(0, len(x), batch):
        pred, _ = predict(params, x[i:i + batch], jax.random.fold_in(key, i))
        correct += int(jnp.sum(pred == y[i:i + batch]))
    return correct / len(x)


def train(cfg: TrainConfig, on_epoch=None):
    """Train; ``on_epoch(history, model, predict)`` is called after every epoch.  Returns
    (model, history, predict, test data)."""
    lif = neuron_params(cfg.neuron, cfg.surrogate)
    check_learn(cfg.learn, lif, cfg.neuron)
    xtr, ytr, xte, yte = load_data(cfg.seed, cfg.limit)
    key = jax.random.PRNGKey(cfg.seed)
    model = Net(key, xtr.shape[1], cfg.hidden, 10, lif, cfg)
    optimizer = nnx.Optimizer(model, optax.adam(cfg.lr), wrt=nnx.Param)
    train_step, predict = make_steps(cfg, optimizer)
    history = {"epoch": [], "loss": [], "train_accuracy": [], "test_accuracy": [], "seconds": []}
    rng = np.random.default_rng(cfg.seed)
    t0 = time.perf_counter()
    for epoch in range(cfg.epochs):
        order = rng.permutation(len(xtr))
        losses, accs = [], []
        for b in range(max(1, len(order) // cfg.batch)):  # whole batches only: one compiled shape
            idx = order[b * cfg.batch:(b + 1) * cfg.batch]
            loss, acc = train_step(model, optimizer, xtr[idx], ytr[idx], jax.random.fold_in(key, epoch * 10_000 + b))
            losses.append(float(loss))
            accs.append(float(acc))
        test_acc = evaluate(predict, model, xte, yte, jax.random.fold_in(key, 99_999))
        history["epoch"].append(epoch + 1)
        history["loss"].append(float(np.mean(losses)))
        history["train_accuracy"].append(float(np.mean(accs)))
        history["test_accuracy"].append(test_acc)
        history["seconds"].append(time.perf_counter() - t0)
        if on_epoch:
            on_epoch(history, model, predict)
    return model, history, predict, (xte, yte)


def check_learn(learn, lif: NeuronParams, neuron: str):
    if not learn:
        return
    if lif.is_cell:
        raise ValueError("--learn: the ngclearn cell's parameters are static; learn with --neuron snntorch or "
                         "spikingjelly")
    unknown = [n for n in learn if n not in lif.values]
    if unknown:
        raise ValueError(f"--learn: {neuron} has no parameter {', '.join(map(repr, unknown))}; "
                         f"it has {', '.join(lif.values)}")
