"""The benchmark networks of Brette et al. (2007): CUBA (Brian2's ``examples/CUBA.py``) and its
conductance-based twin COBA.  N neurons, the first 80% excitatory; every excitatory synapse adds
``we`` to its target's ``ge``, every inhibitory one ``wi`` to its ``gi``; no delays.  The connection
probability is 80/N, so every neuron has 80 inputs on average at every N."""
from __future__ import annotations

import numpy as np

from .connectivity import fixed_probability, from_edges
from .models import coba, cuba, cuba_u
from .network import Network

KINDS = ("cuba", "coba")
WEIGHTS = {"cuba": (1.62, -9.0), "coba": (0.6, 6.7)}  # (we, wi): mV (CUBA), relative conductance (COBA)
REQUIRED = ("exc_pre", "exc_post", "inh_pre", "inh_post", "v0")


def initial_v(kind, n, seed):
    rng = np.random.default_rng([seed, 1])
    if kind == "cuba":
        return (-60.0 + rng.random(n) * 10.0).astype(np.float32)   # uniform in [V_r, V_t]
    return (rng.standard_normal(n) * 5.0 - 55.0).astype(np.float32)  # N(-55 mV, 5 mV)


def load_connectivity(path, kind=None):
    """The arrays of a ``--connectivity`` file (``exc_pre``, ``exc_post``, ``inh_pre``, ``inh_post``, ``v0``),
    checked: integer indices in range and ``v0`` of length N."""
    with np.load(path, allow_pickle=False) as z:
        missing = [k for k in REQUIRED if k not in z.files]
        if missing:
            raise ValueError(f"--connectivity: {path} lacks {missing}; it must hold {list(REQUIRED)}")
        arrays = {k: np.asarray(z[k]) for k in REQUIRED}
    for k in REQUIRED[:4]:
        if arrays[k].ndim != 1 or (arrays[k].size and not np.issubdtype(arrays[k].dtype, np.integer)):
            raise ValueError(f"--connectivity: {k} must be a 1-D integer array, got {arrays[k].dtype} {arrays[k].shape}")
    if arrays["v0"].ndim != 1 or not arrays["v0"].size:
        raise ValueError(f"--connectivity: v0 must be a 1-D array of N initial potentials, got shape {arrays['v0'].shape}")
    return arrays


def build(kind: str, n: int | None = None, seed: int = 0, dt: float = 0.1, connectivity=None):
    """The network, ready to simulate; ``connectivity``: the arrays of ``load_connectivity`` (their N wins)."""
    if kind not in KINDS:
        raise ValueError(f"network: expected one of {KINDS}, got {kind!r}")
    if connectivity is not None:
        v0 = connectivity["v0"].astype(np.float32)
        n = len(v0)
    elif n is None or n < 2:
        raise ValueError(f"neurons: expected at least 2 neurons, got {n!r}")
    else:
        v0 = initial_v(kind, n, seed)
    params = cuba(dt=dt) if kind == "cuba" else coba(dt=dt)
    net = Network(dt=dt)
    if kind == "cuba":
        net.add_population("P", params, n, u=cuba_u(v0))
    else:
        net.add_population("P", params, n, v=v0)
    n_exc = int(0.8 * n)
    we, wi = WEIGHTS[kind]
    if connectivity is not None:
        exc = from_edges(connectivity["exc_pre"], connectivity["exc_post"], we, n_pre=n, n_post=n)
        inh = from_edges(connectivity["inh_pre"], connectivity["inh_post"], wi, n_pre=n, n_post=n)
    else:
        p = min(1.0, 80.0 / n)
        # one draw over all pairs, split at the excitatory/inhibitory boundary: exc rows i < 0.8 N
        conn = fixed_probability(n, n, p, seed=seed)
        pre, post, _, _ = conn.edges()
        e = pre < n_exc
        exc = from_edges(pre[e], post[e], we, n_pre=n, n_post=n)
        inh = from_edges(pre[~e], post[~e], wi, n_pre=n, n_post=n)
    net.connect("P", "P", exc, "ge")
    net.connect("P", "P", inh, "gi")
    return net
