"""The two benchmark networks in Brian2 (Brette et al. 2007): CUBA (Brian2's examples/CUBA.py) and its
conductance-based twin COBA.  Run with Brian2's own venv (Brian2 2.9 needs numpy<2):

    python3 -m venv .venv-brian2 && .venv-brian2/bin/pip install -r benchmarks/brian2/requirements.txt

Both have N neurons, the first 80% excitatory; the connection probability is 80/N, so the in-degree
stays 80 as N grows.  ``build(kind, n, seed)`` returns the network and its monitors.
"""
import numpy as np
from brian2 import (NeuronGroup, Network, SpikeMonitor, Synapses, defaultclock, ms, mV, second,
                    seed as brian_seed)

DT = 0.1 * ms


def build(kind, n, seed):
    """A CUBA or COBA network of ``n`` neurons, its connectivity and initial v drawn from ``seed``."""
    brian_seed(seed)
    np.random.seed(seed)
    defaultclock.dt = DT
    n_exc = int(0.8 * n)
    taum, taue, taui, Vt, Vr = 20 * ms, 5 * ms, 10 * ms, -50 * mV, -60 * mV
    if kind == "cuba":
        El = -49 * mV
        eqs = """
        dv/dt  = (ge+gi-(v-El))/taum : volt (unless refractory)
        dge/dt = -ge/taue : volt
        dgi/dt = -gi/taui : volt
        """
        P = NeuronGroup(n, eqs, threshold="v>Vt", reset="v = Vr", refractory=5 * ms, method="exact",
                        namespace=dict(El=El, taum=taum, taue=taue, taui=taui, Vt=Vt, Vr=Vr))
        we, wi = 1.62 * mV, -9 * mV
        P.v = "Vr + rand() * (Vt - Vr)"
    else:
        El, Ee, Ei, I = -60 * mV, 0 * mV, -80 * mV, 20 * mV
        eqs = """
        dv/dt  = (ge*(Ee-v) + gi*(Ei-v) + (El-v) + I)/taum : volt (unless refractory)
        dge/dt = -ge/taue : 1
        dgi/dt = -gi/taui : 1
        """
        P = NeuronGroup(n, eqs, threshold="v>Vt", reset="v = Vr", refractory=5 * ms, method="euler",
                        namespace=dict(El=El, Ee=Ee, Ei=Ei, I=I, taum=taum, taue=taue, taui=taui, Vt=Vt, Vr=Vr))
        we, wi = 0.6, 6.7
        P.v = (np.random.randn(n) * 5.0 - 55.0) * mV
    P.ge = 0
    P.gi = 0
    Ce = Synapses(P, P, on_pre="ge += we", namespace=dict(we=we))
    Ci = Synapses(P, P, on_pre="gi += wi", namespace=dict(wi=wi))
    p = 80.0 / n
    Ce.connect(f"i < {n_exc}", p=p)
    Ci.connect(f"i >= {n_exc}", p=p)
    mon = SpikeMonitor(P)
    try:
        v_start = np.asarray(P.v[:] / mV, np.float64).copy()
    except NotImplementedError:  # C++ standalone: no values before the run
        v_start = None
    net = Network(P, Ce, Ci, mon)
    return net, dict(P=P, Ce=Ce, Ci=Ci, mon=mon, v0=v_start)


def spikes(parts):
    """(neuron indices, step indices), sorted by step then neuron."""
    i = np.asarray(parts["mon"].i[:], np.int32)
    step = np.round(np.asarray(parts["mon"].t[:] / DT)).astype(np.int32)
    order = np.lexsort((i, step))
    return i[order], step[order]


def run(kind, n, seed, duration_s=1.0):
    net, parts = build(kind, n, seed)
    net.run(duration_s * second)
    return parts
