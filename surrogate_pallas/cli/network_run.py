"""``surrogate-pallas simulate --network cuba|coba``: a benchmark network, simulated, recorded and plotted."""
from __future__ import annotations

import resource
import time

import numpy as np

from ..networks import benchmark

DEFAULT_NEURONS = 4000


def simulate_network(kind, neurons, duration_s, dt_s, seed, connectivity, backend, progress=None, checkpoint=None):
    """Returns (metrics dict, SpikeEvents, spikes per step).  With ``checkpoint``, an interrupted run
    (Ctrl-C, an error) leaves everything it recorded there, resumable (``Simulator.restore``)."""
    if not dt_s > 0:
        raise ValueError(f"--dt: expected a time step > 0 s, got {dt_s!r}")
    if not duration_s > 0:
        raise ValueError(f"--duration: expected a duration > 0 s, got {duration_s!r}")
    conn = benchmark.load_connectivity(connectivity) if connectivity else None
    if conn is not None and neurons is not None and neurons != len(conn["v0"]):
        raise ValueError(f"--neurons: {neurons} does not match the {len(conn['v0'])} neurons of --connectivity")
    t = time.perf_counter()
    net = benchmark.build(kind, neurons or DEFAULT_NEURONS, seed, dt=dt_s * 1000.0, connectivity=conn)
    build_s = time.perf_counter() - t
    sim = net.simulator(seed=seed, backend=backend)
    steps = int(round(duration_s / dt_s))
    chunk = max(1, min(steps, 10_000, int(2e8 // max(1, net.n_neurons * 4))))
    r = sim.run(steps=steps, chunk=chunk, progress=progress, checkpoint=checkpoint, checkpoint_every=10**9)
    ev = r.spikes["P"]
    order = np.lexsort((ev.i, ev.step))
    ev.i, ev.step = ev.i[order], ev.step[order]
    conn_bytes = sum(p.conn.bytes() for p in net.projections)
    n, syn = net.n_neurons, net.n_synapses
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    metrics = dict(network=kind, neurons=n, synapses=syn, steps=r.steps, dt_s=dt_s, duration_s=r.steps * dt_s,
                   spikes=int(len(ev.i)), rate_hz=r.rate_hz("P"), wall_s=sim.wall_s,
                   realtime_factor=sim.wall_s / (r.steps * dt_s), compile_s=sim.compile_s, build_s=build_s,
                   backend=backend, propagation=sim.propagation, kernel_fallback=sim.fallback, seed=seed,
                   connectivity=str(connectivity) if connectivity else None,
                   connectivity_bytes=conn_bytes, bytes_per_synapse=conn_bytes / max(syn, 1),
                   state_bytes_per_neuron=4 * len(net.populations["P"].params.neuron.state),
                   peak_rss_bytes=peak)
    return metrics, ev, r.counts["P"]
