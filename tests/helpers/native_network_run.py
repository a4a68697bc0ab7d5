"""Run a benchmark network from Brian2's committed connectivity with the loops compiled natively
(``SURROGATE_PALLAS_NATIVE_LOOPS=1``, which must be set before JAX starts, hence a process of its
own) and write its spikes.  Usage: python native_network_run.py cuba|coba DATA.npz OUT.npz"""
import os
import sys

os.environ["SURROGATE_PALLAS_NATIVE_LOOPS"] = "1"
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np  # noqa: E402

from surrogate_pallas.networks import benchmark  # noqa: E402

kind, data, out = sys.argv[1:4]
net = benchmark.build(kind, connectivity=benchmark.load_connectivity(data))
sim = net.simulator()
r = sim.run(1000.0, chunk=2500)
np.savez(out, i=r.spikes["P"].i, step=r.spikes["P"].step, rate_hz=r.rate_hz("P"), propagation=sim.propagation)
