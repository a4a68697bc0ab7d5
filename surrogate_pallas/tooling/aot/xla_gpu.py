"""Compile whole programs for NVIDIA GPUs ahead of time, with no GPU: XLA:GPU's deviceless mode.

Given a description of the GPU (``gpu_specs/*.txtpb``: XLA's ``GpuTargetConfig`` for the H100 SXM
and the H200, from openxla/xla's ``xla/backends/gpu/target_config/specs``), XLA compiles the whole
program for sm_90a as it would on the GPU: its own fusions, Pallas Triton kernels through XLA's
bundled Triton, and Mosaic GPU kernels.  Needs the ``aot`` extra (``jax-cuda12-plugin``); the
runtime stays on the CPU, and no driver is opened.

The arguments must be placed on the topology's compile-only devices (``place``); with host
arguments, ``jit`` would quietly compile for the CPU instead.

**Which ptxas.** XLA's Triton path runs the ``ptxas`` of the ``nvidia-cuda-nvcc-cu12`` wheel when it is
installed (the ``aot`` extra pins it), and Mosaic GPU runs the first ``ptxas`` on ``PATH`` (else
``/usr/local/cuda/bin``).  So that both run the same pinned one, ``topology`` puts the wheel's ``bin``
first on this process's ``PATH``.  Without the wheel, both run the machine's CUDA toolkit, if any.
"""
from __future__ import annotations

import dataclasses
import functools
import importlib.util
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import jax
import numpy as np

SPECS = Path(__file__).with_name("gpu_specs")
TARGETS = {"h100": "h100.txtpb", "h200": "h200.txtpb"}
GPU_BACKENDS = ("triton", "mosaic")
# the custom call each GPU backend's kernels become in the compiled program
KERNEL_CALLS = {"triton": "__gpu$xla.gpu.triton", "mosaic": "mosaic_gpu"}


def _config(target: str) -> str:
    if target not in TARGETS:
        raise ValueError(f"GPU target: expected one of {tuple(TARGETS)}, got {target!r}")
    return (SPECS / TARGETS[target]).read_text()


def ptxas_dir() -> str | None:
    """The ``bin`` of the ``nvidia-cuda-nvcc-cu12`` wheel, or None."""
    spec = importlib.util.find_spec("nvidia.cuda_nvcc") if importlib.util.find_spec("nvidia") else None
    if spec is None or not spec.submodule_search_locations:
        return None
    bin_dir = Path(list(spec.submodule_search_locations)[0]) / "bin"
    return str(bin_dir) if (bin_dir / "ptxas").exists() else None


@functools.cache
def topology(target: str, devices: int = 1):
    """The compile-only topology of ``devices`` GPUs of ``target`` on one host."""
    pinned = ptxas_dir()
    if pinned and os.environ.get("PATH", "").split(os.pathsep)[0] != pinned:
        os.environ["PATH"] = pinned + os.pathsep + os.environ.get("PATH", "")
    try:
        import jax_cuda12_plugin  # noqa: F401
    except ImportError:
        raise RuntimeError("compiling for NVIDIA GPUs without one needs the CUDA plugin: "
                           "pip install 'surrogate-pallas[aot]'") from None
    from jax.experimental import topologies
    config = _config(target)
    if tuple(int(x) for x in jax.__version__.split(".")[:2]) < (0, 11):  # its XLA predates this field
        config = "\n".join(line for line in config.splitlines() if "collective_memory_granularity" not in line)
    return topologies.get_topology_desc("cuda", "cuda", target_config=config, topology=f"1x1x{devices}")


def mesh(target: str, devices: int = 1, axis_names=("x",), axis_types=None):
    devs = np.array(topology(target, devices).devices).reshape([-1] + [1] * (len(axis_names) - 1))
    kw = {} if axis_types is None else dict(axis_types=axis_types)
    return jax.sharding.Mesh(devs, axis_names, **kw)


def place(args, target: str):
    """The abstract arguments on the target's first compile-only device."""
    device = jax.sharding.SingleDeviceSharding(topology(target).devices[0])
    return jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=device), args)


@dataclasses.dataclass
class GPUReport:
    ok: bool
    error: str | None = None
    kernels: dict = dataclasses.field(default_factory=dict)  # GPU backend -> kernel custom calls
    temp_bytes: int = 0        # XLA temporaries (memory_analysis)
    argument_bytes: int = 0
    output_bytes: int = 0
    hlo: str = dataclasses.field(default="", repr=False)
    # per GPU function whose PTX XLA wrote (its fusions and the Triton kernels; Mosaic GPU compiles its
    # kernels itself): name, registers, spill_bytes (stores), stack_bytes.  None: not asked for, or
    # this XLA wrote no PTX
    functions: list | None = None


_PTXAS = {"entry": re.compile(r"Compiling entry function '([^']+)'"),
          "frame": re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads"),
          "regs": re.compile(r"Used (\d+) registers")}


def ptx_figures(folder: str, arch: str = "sm_90a") -> list[dict] | None:
    """Registers and spills of every entry function of the PTX files XLA dumped into ``folder``, from
    ``ptxas -v`` (the pinned one; see the module's docstring); None if XLA wrote no PTX (jax 0.10's
    XLA writes it, jax 0.12's does not)."""
    pinned = ptxas_dir()
    ptxas = os.path.join(pinned, "ptxas") if pinned else shutil.which("ptxas")
    if not ptxas:
        raise RuntimeError("registers and spills need ptxas: pip install 'surrogate-pallas[aot]'")
    out = []
    files = sorted(Path(folder).glob("*.ptx"))
    if not files:  # this XLA wrote no PTX (jax 0.12's does not in this mode): not obtainable
        return None
    for f in files:
        if ".entry" not in f.read_text():
            continue
        log = subprocess.run([ptxas, "-v", "--gpu-name", arch, "-o", os.devnull, str(f)], capture_output=True,
                             text=True, check=True).stderr
        for chunk in log.split("Compiling entry function")[1:]:
            chunk = "Compiling entry function" + chunk
            frame, regs = _PTXAS["frame"].search(chunk), _PTXAS["regs"].search(chunk)
            out.append(dict(name=_PTXAS["entry"].search(chunk).group(1), registers=int(regs.group(1)) if regs else 0,
                            spill_bytes=int(frame.group(2)) if frame else 0,
                            stack_bytes=int(frame.group(1)) if frame else 0))
    return out


def compile_program(fn, args, target: str, mesh_=None, functions: bool = False) -> GPUReport:
    """Compile ``fn(*args)`` for ``target``; ``args`` abstract (``ShapeDtypeStruct``), placed on the
    target's first device unless they carry shardings of ``mesh_`` (a mesh of its devices).
    ``functions``: also the registers and spills of the GPU functions whose PTX XLA writes."""
    try:
        if mesh_ is None:
            args = place(args, target)
            mesh_ = mesh(target)
        with tempfile.TemporaryDirectory() as dump, jax.sharding.use_abstract_mesh(mesh_.abstract_mesh):
            options = {"xla_dump_to": dump} if functions else {}
            compiled = jax.jit(fn).lower(*args).compile(compiler_options=options)
            figures = ptx_figures(dump) if functions else None
        text = compiled.as_text()
        mem = compiled.memory_analysis()
    except Exception as e:  # noqa: BLE001  (every compiler error is a finding, reported by name)
        return GPUReport(False, f"{type(e).__name__}: {str(e)[:2000]}")
    kernels = {b: len(re.findall(rf'custom_call_target="{re.escape(c)}[^"]*"', text)) for b, c in KERNEL_CALLS.items()}
    return GPUReport(True, None, kernels, int(getattr(mem, "temp_size_in_bytes", 0) or 0),
                     int(getattr(mem, "argument_size_in_bytes", 0) or 0),
                     int(getattr(mem, "output_size_in_bytes", 0) or 0), text, figures)
