"""Ahead-of-time compilation for real accelerators on a CPU-only machine (the ``aot`` extra).

``tpu``: libtpu's deviceless topologies compile the Mosaic TPU kernels for v4,
v5e, v5p and v6e and report the compiled program's bytes.  ``nvidia``: the
``triton`` package compiles the Pallas Triton kernels for sm_80, sm_90 and
sm_100 and reports registers, spills and shared memory.  ``programs`` lists
what is compiled; ``report`` is ``surrogate-pallas inspect``.
"""
