"""Device code only (installed as ``surrogate_pallas.kernels``): the one kernel body, its launchers
for Pallas TPU (Mosaic), Pallas Triton, Mosaic GPU and the interpreters, how each target blocks the
arrays, and the float16 bit handling TPU kernels need.

It imports nothing from the package above it: a kernel's step arrives as a ``KernelSpec``'s
function, built by ``surrogate_pallas.derivation``.

* ``launcher.run``: a spec on a target, over arrays in their natural shapes;
* ``blocks``: ``BlockSizes`` (user overrides) and each target's ``BlockPlan``;
* ``body``: the kernel body every target runs;
* ``pallas_call``, ``mosaic_gpu``: the launches; ``mosaic_tiling``: Mosaic GPU's padded tiles;
* ``f16_bits``: float16 across a TPU kernel boundary; ``launches``: a record of what was launched.
"""
from .blocks import BlockSizes
from .launcher import run

__all__ = ["BlockSizes", "run"]
