import os
import sys

# the package's own benchmark engine (surrogate_pallas.bench) builds and times every case;
# this folder only exposes it to pytest-benchmark
sys.path.insert(0, os.path.dirname(__file__))
