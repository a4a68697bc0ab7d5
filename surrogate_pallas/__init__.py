"""surrogate_pallas: fused Pallas LIF kernels and surrogate-gradient spikes for SNNs on JAX."""
from ._native_loops import request as _request_native_loops

_request_native_loops()  # if SURROGATE_PALLAS_NATIVE_LOOPS=1: before JAX starts its CPU backend

from ._quiet import import_jax as _import_jax  # noqa: E402

_import_jax()

from . import presets  # noqa: E402
from .api import lif_sequence, lif_step
from .kernels.blocks import BlockSizes
from .neuron import Neuron, NeuronOut, NeuronParams, NeuronState
from .spike import spike, spike_and_grad
from .surrogates import SURROGATES, Surrogate, get_surrogate

__version__ = "0.1.0"
__all__ = [
    "SURROGATES", "Surrogate", "get_surrogate", "spike", "spike_and_grad", "presets",
    "Neuron", "NeuronParams", "NeuronState", "NeuronOut", "BlockSizes", "lif_step", "lif_sequence",
]
