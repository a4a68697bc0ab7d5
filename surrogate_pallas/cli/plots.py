"""PNG figures for the CLI (matplotlib, headless), and atomic file writes."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def atomic_write(path: Path, data: bytes | str):
    """Write via a temporary file and rename, so an interrupt never leaves a half-written file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data.encode() if isinstance(data, str) else data)
    os.replace(tmp, path)


def save_json(path, obj):
    atomic_write(path, json.dumps(obj, indent=1))


def save_fig(fig, path):
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _plt().close(fig)
    atomic_write(path, buf.getvalue())


def curves(history, path):
    plt = _plt()
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.2))
    a.plot(history["epoch"], history["loss"], "o-")
    a.set(xlabel="epoch", ylabel="training loss", title="loss")
    b.plot(history["epoch"], history["train_accuracy"], "o-", label="train")
    b.plot(history["epoch"], history["test_accuracy"], "s-", label="test")
    b.set(xlabel="epoch", ylabel="accuracy", ylim=(0, 1.02), title="accuracy")
    b.legend(loc="lower right")  # the curves climb towards 1.0: keep the legend below them
    save_fig(fig, path)


def raster(spikes, path, title, labels=None, dt_label="time step"):
    """spikes: [n_panels, T, N] (one panel per sample) or [T, N]."""
    plt = _plt()
    spikes = np.asarray(spikes, np.float32)
    if spikes.ndim == 2:
        spikes = spikes[None]
    n = spikes.shape[0]
    fig, axes = plt.subplots(1, n, figsize=(2.6 * n + 1, 3.2), squeeze=False)
    for i, ax in enumerate(axes[0]):
        t, k = np.nonzero(spikes[i])
        ax.scatter(t, k, s=1.5, c="k", marker="|")
        ax.set(xlim=(-0.5, spikes.shape[1] - 0.5), ylim=(-0.5, spikes.shape[2] - 0.5), xlabel=dt_label)
        if labels is not None:
            ax.set_title(str(labels[i]))
    axes[0][0].set_ylabel("neuron")
    fig.suptitle(title, y=1.04)
    save_fig(fig, path)


def learned(values: dict, initial: dict, path, title):
    """One histogram per learned neuron parameter, with its initial value marked."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(values), figsize=(3.6 * len(values), 3.0), squeeze=False)
    for ax, (name, v) in zip(axes[0], values.items()):
        ax.hist(np.ravel(v), bins=30, color="0.4")
        ax.axvline(initial[name], color="C3", ls="--", label="initial")
        ax.set(xlabel=name, ylabel="neurons")
        ax.legend(loc="upper right")
    fig.suptitle(title, y=1.04)
    save_fig(fig, path)


def population(spikes, rate_hz, path, title, dt_ms=1.0):
    """A simulation's raster [T, N] over the population rate of the same steps, on one time axis."""
    plt = _plt()
    spikes = np.asarray(spikes, np.float32)
    T, N = spikes.shape
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9.0, 5.0), sharex=True, height_ratios=(3, 1))
    t, k = np.nonzero(spikes)
    top.scatter(t * dt_ms, k, s=2.0, c="k", marker="|")
    top.set(ylim=(-0.5, N - 0.5), ylabel="neuron")
    top.set_title(title)
    rate = spikes.mean(1) * (1000.0 / dt_ms)
    bottom.plot(np.arange(T) * dt_ms, rate, color="C0", lw=0.8, label="these neurons")
    bottom.axhline(rate_hz, color="C3", ls="--", lw=0.8, label=f"whole population, whole run: {rate_hz:.1f} Hz")
    bottom.set(xlabel="time (ms)", ylabel="rate (Hz)", xlim=(-0.5 * dt_ms, (T - 0.5) * dt_ms))
    bottom.legend(loc="upper right", fontsize="small")
    fig.tight_layout()
    save_fig(fig, path)


def network_raster(i, t, n, path, title, max_neurons=500):
    """Spike events (neuron ``i``, time ``t`` in s) of the first ``max_neurons`` neurons."""
    plt = _plt()
    keep = i < max_neurons
    fig, ax = plt.subplots(figsize=(9.0, 4.0))
    ax.scatter(np.asarray(t)[keep], np.asarray(i)[keep], s=1.0, c="k", marker="|")
    ax.set(xlabel="time (s)", ylabel="neuron", ylim=(-0.5, min(n, max_neurons) - 0.5),
           title=f"{title}\nthe first {min(n, max_neurons)} neurons")
    fig.tight_layout()
    save_fig(fig, path)


def network_rate(counts, n, dt_s, path, title, bin_s=1e-3):
    """The population rate, in bins of ``bin_s``."""
    plt = _plt()
    per_bin = max(1, int(round(bin_s / dt_s)))
    c = np.asarray(counts, np.float64)
    c = c[:len(c) // per_bin * per_bin].reshape(-1, per_bin).sum(1) if len(c) >= per_bin else c
    rate = c / (n * per_bin * dt_s)
    fig, ax = plt.subplots(figsize=(9.0, 3.0))
    ax.plot(np.arange(len(rate)) * per_bin * dt_s, rate, lw=0.8, color="C0")
    ax.set(xlabel="time (s)", ylabel="population rate (Hz)", title=f"{title}\nin {per_bin * dt_s * 1e3:g} ms bins")
    fig.tight_layout()
    save_fig(fig, path)
