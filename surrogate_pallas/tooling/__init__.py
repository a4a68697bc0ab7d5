"""Tooling for the library's developers and its performance gates: the benchmark engine and its
plain-JAX baselines (``bench``, ``baselines``), the real compilers' static figures (``aot``, the
``inspect`` command), and what both gates share (``gate``).  The core never imports it."""
