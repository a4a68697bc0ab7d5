"""Backend choice as data: one table maps (backend, platform) to what runs.

What runs is a kernel target (``"triton"``, ``"mosaic"``, ``"tpu"``, ``"interpret"``,
``"interpret_tpu"``) or ``REFERENCE``, the jnp oracle compiled by XLA.  The ops read it at lowering
time (the platform is the one being lowered for, so exporting for CUDA from a CPU host picks the
CUDA kernels); the residual default, the commands' ``--backend`` choices, ``bench`` and
``simulate`` read it too.
"""
from __future__ import annotations

import jax

REFERENCE = None  # the jnp oracle
GPU = "gpu_backend"  # stands for the ``gpu_backend`` argument: "triton" or "mosaic"
GPU_BACKENDS = ("triton", "mosaic")
PLATFORMS = ("cpu", "cuda", "rocm", "tpu")

# backend -> platform -> what runs.  A platform a backend lacks is an error naming the backends that work.
TABLE = {
    "auto": {"cpu": REFERENCE, "cuda": GPU, "rocm": "triton", "tpu": "tpu"},
    "xla": {p: REFERENCE for p in PLATFORMS},
    "pallas": {"cpu": "interpret", "cuda": GPU, "rocm": "triton", "tpu": "tpu"},
    "interpret": {p: "interpret" for p in PLATFORMS},
    "interpret_tpu": {p: "interpret_tpu" for p in PLATFORMS},
    "triton": {"cuda": "triton", "rocm": "triton"},
    "mosaic": {"cuda": "mosaic", "rocm": "mosaic"},
}
BACKENDS = tuple(TABLE)

# what the commands (``train``, ``simulate``) offer, with the words their --help shows
COMMAND_BACKENDS = ("auto", "xla", "pallas", "interpret")
COMMAND_HELP = ("auto: Pallas kernels on GPU/TPU, the jnp path elsewhere; xla: the jnp path; pallas: the "
                "kernels (interpreted on CPU); interpret: the kernels in the Pallas interpreter")


def check(backend: str, gpu_backend: str = "triton") -> None:
    if backend not in TABLE:
        raise ValueError(f"backend: expected one of {BACKENDS}, got {backend!r}")
    if gpu_backend not in GPU_BACKENDS:
        raise ValueError(f"gpu_backend: expected one of {GPU_BACKENDS}, got {gpu_backend!r}")


def kernel_target(backend: str, gpu_backend: str, platform: str) -> str | None:
    """What runs for this choice on ``platform``: a kernel target, or ``None`` for the jnp oracle."""
    check(backend, gpu_backend)
    row = TABLE[backend]
    if platform not in row:
        have = [b for b, r in TABLE.items() if platform in r]
        raise ValueError(f"backend={backend!r} runs on {'/'.join(row)} only; this computation is lowered for "
                         f"{platform!r} (use one of {', '.join(have)})")
    target = row[platform]
    return gpu_backend if target == GPU else target


def runs_kernel(backend: str, gpu_backend: str = "triton", platform: str | None = None) -> bool:
    """True when this choice runs a Pallas kernel (not the jnp oracle) on ``platform`` (default: JAX's)."""
    return kernel_target(backend, gpu_backend, platform or jax.default_backend()) is not REFERENCE


def default_residuals(backend: str) -> str:
    """``residuals="auto"``: bf16 where a kernel runs (it halves the bytes the backward reads on a GPU or
    TPU), exact where the jnp path runs, since XLA:CPU spends longer converting to bf16 and back than the
    bytes save.  A backend that has no entry for the default platform (``"triton"`` on a CPU host that
    exports for CUDA) runs a kernel."""
    row = TABLE[backend]
    platform = jax.default_backend()
    return "exact" if platform in row and row[platform] is REFERENCE else "bf16"


def bench_backends(platform: str) -> tuple[str, ...]:
    """The library backends ``bench`` times on ``platform`` (the plain-JAX baseline is added by bench)."""
    if platform in ("gpu", "cuda"):
        return ("xla", *GPU_BACKENDS)
    if platform == "tpu":
        return ("xla", "pallas")
    return ("xla",)


def bench_call_args(name: str) -> dict:
    """``lif_sequence`` keywords for a name bench's ``--backends`` takes: a GPU backend is ``pallas`` with it."""
    if name in GPU_BACKENDS:
        return dict(backend="pallas", gpu_backend=name)
    return dict(backend=name)
