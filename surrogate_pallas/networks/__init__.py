"""Networks of spiking neurons: populations, projections with event-driven propagation, inputs,
monitors and checkpoints (``network.py``); batches of independent networks in one vmapped program
(``batch.py``); connectivity formats and builders (``connectivity.py``);
the CUBA and COBA neurons of the benchmark networks (``models.py``); and those benchmark networks
themselves (``benchmark.py``)."""
from .connectivity import (Connectivity, all_to_all, dense, fixed_in_degree, fixed_out_degree, fixed_probability,
                           from_edges, one_to_one)
from . import benchmark, models
from .models import coba, cuba, cuba_u, cuba_v
from .network import INPUT, Network, Result, Simulator, SpikeEvents
from .batch import BatchSimulator
from .._native_loops import request as _request


def use_native_loops() -> None:
    """Let XLA compile the simulator's CPU loops whole, as native code (several times faster on a CPU;
    docs/networks.md, "Native loops on a CPU").  Call it before running anything with JAX: XLA reads
    the option when JAX starts.  It applies to every loop of the process (see ``_native_loops``);
    ``SURROGATE_PALLAS_NATIVE_LOOPS=1`` does the same from the environment."""
    _request(force=True)

__all__ = ["Connectivity", "from_edges", "fixed_probability", "fixed_in_degree", "fixed_out_degree", "one_to_one",
           "all_to_all", "dense", "cuba", "coba", "cuba_u", "cuba_v", "benchmark", "models", "Network", "Simulator", "BatchSimulator", "Result", "SpikeEvents", "INPUT", "use_native_loops"]
