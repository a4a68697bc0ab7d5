"""Import JAX without the accelerator plugins' start-up chatter on machines with no accelerator.

When ``jax-cuda12-plugin`` is installed (the ``aot`` extra, to lower for CUDA on any
machine), ``import jax`` loads its CUDA stubs, which print ``cudart_stub ... Could not find
cuda drivers`` lines from C++ straight to file descriptor 2 on a CPU-only host.  The
plugin is only needed to lower for CUDA, which works without a driver, so those lines say
nothing to a CPU user.  Importing ``surrogate_pallas`` before JAX drops exactly those lines
and passes every other line through; nothing is hidden when a driver is present, and a
JAX that is already imported is left alone.

On a host with no NVIDIA driver and no TPU device nodes, JAX would also start the CUDA
plugin and libtpu on the first ``jax.devices()`` only to print that they found nothing (a
traceback and several warnings).  There the only platform is the CPU, so unless the user
chose one (``JAX_PLATFORMS`` or ``jax.config.update("jax_platforms", ...)``), JAX is told
so.  Lowering and compiling ahead of time for CUDA and TPU need no device and still work.
"""
from __future__ import annotations

import glob
import os
import sys
import tempfile

NOISE = ("cudart_stub.cc", "All log messages before absl::InitializeLog() is called")


def cpu_only_host() -> bool:
    """No NVIDIA driver and no TPU device nodes: the CUDA plugin and libtpu have nothing to find."""
    return not (os.path.exists("/proc/driver/nvidia/version") or glob.glob("/dev/nvidia[0-9]*")
                or glob.glob("/dev/accel*") or glob.glob("/dev/vfio/[0-9]*") or os.path.exists("/dev/kfd"))


def import_jax() -> None:
    _import_jax()
    import jax
    if cpu_only_host() and not os.environ.get("JAX_PLATFORMS") and not jax.config.jax_platforms:
        jax.config.update("jax_platforms", "cpu")


def _preload_cuda_plugin() -> None:
    """The CUDA plugin's PJRT library prints the same lines when JAX loads it at backend start-up;
    loaded here first, its start-up runs now, and JAX's later load finds it already loaded."""
    import ctypes
    import importlib.util
    try:
        spec = importlib.util.find_spec("jax_plugins.xla_cuda12")
    except (ImportError, ValueError):
        return
    for path in glob.glob(os.path.join(os.path.dirname(spec.origin or ""), "*.so")) if spec else ():
        try:
            ctypes.CDLL(path)
        except OSError:
            pass


def _import_jax() -> None:
    if "jax" in sys.modules or not cpu_only_host():
        import jax  # noqa: F401
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable fd 2 (embedded interpreters)
        import jax  # noqa: F401
        return
    with tempfile.TemporaryFile(mode="w+b") as caught:
        os.dup2(caught.fileno(), 2)
        try:
            import jax  # noqa: F401
            _preload_cuda_plugin()
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            kept = without_noise(caught.read().decode(errors="replace"))
            if kept:
                sys.stderr.write(kept)
                sys.stderr.flush()


def without_noise(text: str) -> str:
    """``text`` without the CUDA stubs' start-up lines; every other line kept as it was."""
    return "".join(line for line in text.splitlines(keepends=True) if not any(n in line for n in NOISE))
