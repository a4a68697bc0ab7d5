"""Which kernels the kernel-vs-oracle tests run.

On CPU (CI): the Pallas kernels under ``interpret=True``.  On a GPU machine,
``SP_TEST_KERNEL=triton`` or ``=mosaic`` runs the same tests on the compiled
kernels (benchmarks/gpu_check.sh does both).
"""
import os

KERNEL = os.environ.get("SP_TEST_KERNEL", "interpret")
