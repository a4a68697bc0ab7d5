"""The network programs that the compile tests and ``surrogate-pallas inspect`` compile: one chunk of
a benchmark network (CUBA or COBA, ``networks.benchmark``) as ``Simulator.chunk_function`` gives it,
on what ``backend="auto"`` runs for each target.

* Up to the fused kernel's limits (``networks.fused.unsupported``): the fused network kernel, the TPU
  one for ``tpu-*`` and the Triton one for ``cuda-*`` and ``gpu-*``.
* Beyond them (400k neurons: dense weight rows would take a terabyte): the XLA path with spike lists,
  which is what ``auto`` falls back to there.

Figures per simulated step (``T`` steps a chunk).  The kernel reads its weights only row by row, one
row per spike and outgoing projection, by DMA or pointer loads that no static figure sees: so the
bytes exclude the weight operands (``weight_bytes``), and ``bytes_per_spike`` says what a spike
reads.  The least a chunk must move (``ideal_bytes``): the state read and written once, every
step's spike flags written once and read once (to list the events).
"""
from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp

SIZES = {"4k": 4000, "400k": 400_000}
KINDS = ("cuba", "coba")
CHUNK = 1000


@functools.cache
def _network(kind: str, n: int):
    from ...networks import benchmark
    return benchmark.build(kind, n, seed=0)


@functools.cache
def _on(kind: str, n: int, target: str | None):
    from ...networks import Simulator
    net = _network(kind, n)
    if target is None:
        return Simulator(net, seed=0, backend="xla", propagation="lists")
    return Simulator(net, seed=0, target=target)


def _simulator(kind: str, n: int, target: str | None):
    """What ``auto`` runs for ``target``: the fused kernel where it holds the network, else the XLA path."""
    from ...networks.fused import unsupported
    if target is not None and unsupported(_network(kind, n), target) is not None:
        target = None
    return _on(kind, n, target)


def _abstract(tree):
    return jax.tree.map(lambda a: jax.ShapeDtypeStruct(jnp.shape(a), jnp.asarray(a).dtype), tree)


@dataclasses.dataclass(frozen=True)
class NetworkProgram:
    kind: str
    size: str
    T: int = CHUNK

    @property
    def id(self) -> str:
        return f"network/{self.kind}-{self.size}/T={self.T}"

    @property
    def n(self) -> int:
        return SIZES[self.size]

    def simulator(self, target: str):
        """The simulator for a kernel ``target`` (``tpu``, ``triton``)."""
        return _simulator(self.kind, self.n, target)

    def build(self, target: str = "triton"):
        """(function, abstract arguments): one chunk of ``T`` steps from step 0."""
        sim = self.simulator(target)
        fn = sim.chunk_function(self.T, sim.capacity_for(self.T))
        return fn, _abstract((sim.state, jnp.int32(0), sim.constants))

    def uses_kernel(self, target: str) -> bool:
        return self.simulator(target).propagation == "kernel"

    def weight_bytes(self, target: str) -> int:
        """Bytes of the weight operands the kernel reads only by rows (0 on the XLA path)."""
        sim = self.simulator(target)
        return sum(math.prod(w.shape) * 4 for w in sim.constants["weights"]) if self.uses_kernel(target) else 0

    def bytes_per_spike(self, target: str) -> int | None:
        """What one spike of the (single) population reads: a dense row per outgoing projection."""
        sim = self.simulator(target)
        if not self.uses_kernel(target):
            return None
        return sum(math.prod(w.shape[2:]) * w.shape[0] * 4 for w in sim.constants["weights"])

    def ideal_bytes(self) -> int:
        sim = _simulator(self.kind, self.n, None)
        state = sum(math.prod(jnp.shape(a)) * 4 for a in jax.tree.leaves(sim.state))
        return 2 * state + 2 * self.T * self.n


def inspect_matrix() -> list[NetworkProgram]:
    return [NetworkProgram(k, s) for s in SIZES for k in KINDS]
