"""``surrogate-pallas train``: a 2-layer SNN trained with surrogate gradients (BPTT through
``lif_sequence``) on scikit-learn's bundled handwritten digits, with no download."""
from __future__ import annotations

import dataclasses
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from . import LIFParams, lif_sequence

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


def neuron_params(name: str, surrogate: str) -> LIFParams:
    """The preset for ``--neuron``, on a unit voltage scale so one learning rate fits all three."""
    if name == "snntorch":
        return LIFParams.snntorch_leaky(0.9, threshold=1.0, surrogate=surrogate)
    if name == "spikingjelly":
        return LIFParams.spikingjelly(tau=2.0, v_threshold=1.0, v_reset=0.0, surrogate=surrogate)
    if name == "ngclearn":  # ngclearn's LIFCell, rescaled: rest 0, threshold 1, no refractory or adaptation
        return LIFParams.ngclearn(tau_m=2.0, resist_m=1.0, thr=1.0, v_rest=0.0, v_reset=0.0, tau_theta=0.0,
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


def init(key, n_in, hidden, n_out):
    k1, k2 = jax.random.split(key)
    return {
        "w1": jax.random.normal(k1, (n_in, hidden)) * (2.0 / np.sqrt(n_in)),
        "b1": jnp.zeros(hidden),
        "w2": jax.random.normal(k2, (hidden, n_out)) * (1.0 / np.sqrt(hidden)),
        "b2": jnp.zeros(n_out),
    }


def forward(params, spikes, lif: LIFParams, cfg: TrainConfig):
    """Returns (logits [B, 10], hidden spikes [T, B, H])."""
    T, B, _ = spikes.shape
    j1 = spikes @ params["w1"] + params["b1"]
    st1 = lif.init_state((B, j1.shape[-1]))
    _, out1 = lif_sequence(j1, st1, lif, backend=cfg.backend, residuals=cfg.residuals)
    j2 = out1.s @ params["w2"] + params["b2"]
    if cfg.readout == "membrane":  # a non-spiking integrator: the mean input current
        return j2.mean(0) * 4.0, out1.s
    st2 = lif.init_state((B, j2.shape[-1]))
    _, out2 = lif_sequence(j2, st2, lif, backend=cfg.backend, residuals=cfg.residuals)
    return out2.s.sum(0), out1.s


def make_steps(lif, cfg, optimizer):
    def loss_fn(params, spikes, y):
        logits, _ = forward(params, spikes, lif, cfg)
        logp = jax.nn.log_softmax(logits)
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1)), logits

    @jax.jit
    def train_step(params, opt_state, x, y, key):
        spikes = encode(x, cfg.steps, cfg.encoding, key)
        (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, spikes, y)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        return params, opt_state, loss, jnp.mean(jnp.argmax(logits, -1) == y)

    @jax.jit
    def predict(params, x, key):
        logits, hidden = forward(params, encode(x, cfg.steps, cfg.encoding, key), lif, cfg)
        return jnp.argmax(logits, -1), hidden

    return train_step, predict


def evaluate(predict, params, x, y, key, batch=512):
    correct = 0
    for i in range(0, len(x), batch):
        pred, _ = predict(params, x[i:i + batch], jax.random.fold_in(key, i))
        correct += int(jnp.sum(pred == y[i:i + batch]))
    return correct / len(x)


def train(cfg: TrainConfig, on_epoch=None):
    """Train; ``on_epoch(history, params, predict)`` is called after every epoch.  Returns
    (params, history, predict, test data)."""
    lif = neuron_params(cfg.neuron, cfg.surrogate)
    xtr, ytr, xte, yte = load_data(cfg.seed, cfg.limit)
    key = jax.random.PRNGKey(cfg.seed)
    params = init(key, xtr.shape[1], cfg.hidden, 10)
    optimizer = optax.adam(cfg.lr)
    opt_state = optimizer.init(params)
    train_step, predict = make_steps(lif, cfg, optimizer)
    history = {"epoch": [], "loss": [], "train_accuracy": [], "test_accuracy": [], "seconds": []}
    rng = np.random.default_rng(cfg.seed)
    t0 = time.perf_counter()
    for epoch in range(cfg.epochs):
        order = rng.permutation(len(xtr))
        losses, accs = [], []
        for b in range(max(1, len(order) // cfg.batch)):  # whole batches only: one compiled shape
            idx = order[b * cfg.batch:(b + 1) * cfg.batch]
            params, opt_state, loss, acc = train_step(params, opt_state, xtr[idx], ytr[idx],
                                                      jax.random.fold_in(key, epoch * 10_000 + b))
            losses.append(float(loss))
            accs.append(float(acc))
        test_acc = evaluate(predict, params, xte, yte, jax.random.fold_in(key, 99_999))
        history["epoch"].append(epoch + 1)
        history["loss"].append(float(np.mean(losses)))
        history["train_accuracy"].append(float(np.mean(accs)))
        history["test_accuracy"].append(test_acc)
        history["seconds"].append(time.perf_counter() - t0)
        if on_epoch:
            on_epoch(history, params, predict)
    return params, history, predict, (xte, yte)
