"""Lowering Pallas Triton kernels for CUDA on a machine with no GPU.

Newer JAX (seen with 0.12) has Pallas Triton ask which GPU it lowers for and, with none present,
raises "No supported GPU devices found, please specify an abstract GPU device". Exporting
or inspecting for CUDA from a CPU host is normal use here, so the CUDA lowering of the
library's primitives names an abstract GPU (``DEFAULT_GPU``) when there is no local one and
the caller has not named one. On JAX that does not ask (0.10), nothing changes. CI's newest-JAX leg
lowers for CUDA on a host with no GPU (the compile and lowering tests, the export example in
docs/sharding-export.md), so this path runs there.
"""
from __future__ import annotations

import contextlib
import functools
import importlib.util

import jax

DEFAULT_GPU = "NVIDIA H200"


@functools.cache
def _asks_for_a_gpu() -> bool:
    # the versions that look the GPU up have this module; 0.10 lowers for sm_90 without asking
    return importlib.util.find_spec("jax._src.pallas.triton.gpu_info") is not None


def _local_gpu() -> bool:
    try:
        return bool(jax.devices("gpu"))
    except RuntimeError:
        return False


def abstract_gpu():
    """A context naming ``DEFAULT_GPU`` as the abstract device, keeping the caller's mesh axes."""
    if not _asks_for_a_gpu() or _local_gpu():
        return contextlib.nullcontext()
    current = jax.sharding.get_abstract_mesh()
    if getattr(current, "abstract_device", None) is not None:
        return contextlib.nullcontext()  # the caller chose a GPU
    device = jax.sharding.AbstractDevice(device_kind=DEFAULT_GPU, num_cores=None, platform="gpu")
    mesh = jax.sharding.AbstractMesh(tuple(current.axis_sizes), tuple(current.axis_names),
                                     axis_types=tuple(current.axis_types), abstract_device=device)
    return jax.sharding.use_abstract_mesh(mesh)
