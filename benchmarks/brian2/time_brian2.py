"""Time one Brian2 2.9 C++ standalone run (single-threaded, Brian2's default) of CUBA or COBA:

    .venv-brian2/bin/python benchmarks/brian2/time_brian2.py cuba 4000 [BUILD_DIR]

Prints one JSON line: the simulation's own run time (Brian2's ``device._last_run_time``, without code
generation and compilation), the spike count and the synapse count."""
import json
import sys
import tempfile
import time
from pathlib import Path

from brian2 import device, second, set_device

sys.path.insert(0, str(Path(__file__).parent))
from networks import build  # noqa: E402


def main(kind, n, directory):
    set_device("cpp_standalone", directory=directory, build_on_run=False)
    net, parts = build(kind, n, seed=1)
    net.run(1 * second)
    t = time.perf_counter()
    device.build(directory=directory, compile=True, run=True, debug=False)
    total = time.perf_counter() - t
    print(json.dumps(dict(kind=kind, neurons=n, run_s=device._last_run_time, build_and_run_s=total,
                          spikes=int(parts["mon"].num_spikes),
                          synapses=int(len(parts["Ce"]) + len(parts["Ci"])))))


if __name__ == "__main__":
    kind, n = sys.argv[1], int(sys.argv[2])
    main(kind, n, sys.argv[3] if len(sys.argv) > 3 else tempfile.mkdtemp(prefix=f"brian2-{kind}-{n}-"))
