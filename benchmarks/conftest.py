import os
import sys

import surrogate_pallas  # noqa: F401  (first: JAX imports without the CUDA plugin's start-up lines)

# the package's own benchmark engine (surrogate_pallas.tooling.bench) builds and times every case;
# this folder only exposes it to pytest-benchmark
sys.path.insert(0, os.path.dirname(__file__))
