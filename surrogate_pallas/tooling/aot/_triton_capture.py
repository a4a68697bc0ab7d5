"""Capturing Pallas's Triton modules (through a private JAX name, as ``_gpu_lowering.py``,
``primitives.py`` and ``partitioning.py`` each use one of their own).

Pallas Triton lowers each kernel to a Triton-dialect MLIR module and embeds it
in the custom call as bytecode.  To compile that module with the ``triton``
package, we wrap ``lower_jaxpr_to_triton_module`` while a program is lowered
for CUDA and keep each module's text.  If JAX moves these names, the error
says which one.
"""
from __future__ import annotations

import contextlib

_WHERE = "jax._src.pallas.triton.pallas_call_registration.lowering.lower_jaxpr_to_triton_module"


def _registration():
    try:
        from jax._src.pallas.triton import pallas_call_registration as reg
        reg.lowering.lower_jaxpr_to_triton_module  # noqa: B018 - probe the name
    except (ImportError, AttributeError) as e:
        raise RuntimeError(f"cannot capture Pallas Triton modules: {_WHERE} is gone in this JAX "
                           f"({e}); update surrogate_pallas/aot/_triton_capture.py") from None
    return reg


@contextlib.contextmanager
def triton_modules():
    """Yields a list that receives the text of each Triton module lowered inside the block."""
    reg = _registration()
    orig = reg.lowering.lower_jaxpr_to_triton_module
    modules: list[str] = []

    def capture(*args, **kwargs):
        result = orig(*args, **kwargs)
        modules.append(result.module.operation.get_asm(enable_debug_info=False))
        return result

    reg.lowering.lower_jaxpr_to_triton_module = capture
    try:
        yield modules
    finally:
        reg.lowering.lower_jaxpr_to_triton_module = orig
