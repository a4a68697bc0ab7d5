"""Compile programs' Triton kernels for NVIDIA GPUs ahead of time, with no GPU.

The program is lowered for CUDA (needs ``jax-cuda12-plugin``); each Pallas
Triton kernel's module is captured and compiled by the ``triton`` package to
PTX and a cubin for the requested architectures, and ``cuobjdump`` (shipped
with it) reads the cubin's registers, shared memory and local memory (spills).
The pip Triton is close to, not the same as, the one XLA runs, so registers
are a close proxy.  Needs the ``aot`` extra.
"""
from __future__ import annotations

import dataclasses
import functools
import os
import re
import subprocess
import tempfile

import jax

from ..._gpu_lowering import abstract_gpu
from ...kernels import launches
from ._triton_capture import triton_modules

ARCHS = {"sm80": 80, "sm90": 90, "sm100": 100}


@dataclasses.dataclass
class TritonKernel:
    name: str
    arch: str
    ok: bool
    error: str | None = None
    registers: int = 0
    spill_bytes: int = 0   # local memory per thread (spilled registers), from the cubin
    stack_bytes: int = 0
    shared_bytes: int = 0  # static + Triton's layout-conversion scratch
    num_warps: int = 4


def lower(fn, args, gpu_backend: str = "triton"):
    """Lower ``fn(*args)`` for CUDA; returns [(module text, launch record)] per Triton kernel."""
    # an abstract GPU for the kernels lowered outside the library's primitives (the network kernel),
    # which newest JAX otherwise refuses with no GPU here; the primitives name one themselves
    with triton_modules() as mods, launches.recording() as log, abstract_gpu():
        jax.jit(fn).trace(*args).lower(lowering_platforms=("cuda",))
    log = [k for k in log if k["target"] == "triton"]
    if len(log) != len(mods):
        raise RuntimeError(f"captured {len(mods)} Triton modules for {len(log)} kernel launches")
    return list(zip(mods, log))


@functools.cache
def _cuobjdump():
    import triton
    path = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "cuobjdump")
    if not os.path.exists(path):
        raise RuntimeError(f"cuobjdump not found at {path}; the triton package ships it")
    return path


def _import_triton():
    os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")  # XLA's Triton fuses too; say so, quietly
    try:
        import triton
        from triton.backends.compiler import GPUTarget
    except ImportError:
        raise RuntimeError("compiling for NVIDIA without a GPU needs triton: pip install 'surrogate-pallas[aot]'") \
            from None
    return triton, GPUTarget


def compile_module(text: str, launch: dict, arch: str) -> TritonKernel:
    triton, GPUTarget = _import_triton()
    name = launch["name"]
    warps = launch.get("num_warps", 4)
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, f"{name}.ttir")
        with open(src, "w") as f:
            f.write(text)
        try:
            k = triton.compile(src, target=GPUTarget("cuda", ARCHS[arch], 32),
                               options={"num_warps": warps, "num_stages": launch.get("num_stages", 1)})
        except Exception as e:  # noqa: BLE001 - a compile failure is a result here
            return TritonKernel(name, arch, ok=False, error=f"{type(e).__name__}: {str(e).strip()[:300]}",
                                num_warps=warps)
        cubin = os.path.join(tmp, f"{name}.cubin")
        with open(cubin, "wb") as f:
            f.write(k.asm["cubin"])
        usage = subprocess.run([_cuobjdump(), "--dump-resource-usage", cubin], capture_output=True, text=True,
                               check=True).stdout
    fields = dict(re.findall(r"\b(REG|STACK|SHARED|LOCAL):(\d+)", usage))
    return TritonKernel(name, arch, ok=True, registers=int(fields.get("REG", 0)),
                        spill_bytes=int(fields.get("LOCAL", 0)), stack_bytes=int(fields.get("STACK", 0)),
                        shared_bytes=max(int(fields.get("SHARED", 0)), int(k.metadata.shared)), num_warps=warps)


def compile_program(fn, args, archs=tuple(ARCHS)) -> list[TritonKernel]:
    """Every Triton kernel of the program, compiled for every arch.  A lowering failure is one
    failed entry named ``<lowering>``."""
    try:
        mods = lower(fn, args)
    except Exception as e:  # noqa: BLE001
        return [TritonKernel("<lowering>", a, ok=False, error=f"{type(e).__name__}: {str(e).strip()[:300]}")
                for a in archs]
    return [compile_module(text, launch, a) for text, launch in mods for a in archs]
