"""Regenerate the Brian2 test data in tests/data/brian2/ (run with Brian2's venv; see networks.py):

    .venv-brian2/bin/python benchmarks/brian2/make_test_data.py

For CUBA and COBA at N = 4000 (the paper's network), 1 s at dt = 0.1 ms, it stores Brian2's
connectivity (``exc_pre``, ``exc_post``, ``inh_pre``, ``inh_post``), the initial membrane potentials
``v0`` (mV), and every spike (``spike_i``, ``spike_step``).  The file layout is the one
``surrogate-pallas simulate --connectivity`` reads.
"""
import sys
from pathlib import Path

import brian2
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from networks import run, spikes  # noqa: E402

OUT = Path(__file__).resolve().parents[2] / "tests" / "data" / "brian2"
N, SEED = 4000, 3  # a seed whose float32 runs stay clear of near-ties (docs/networks.md)


def main(seed=SEED, out=OUT):
    brian2.prefs.codegen.target = "numpy"  # no compiler needed; the same float64 maths as the C++ target
    out.mkdir(parents=True, exist_ok=True)
    for kind in ("cuba", "coba"):
        parts = run(kind, N, seed)
        i, step = spikes(parts)
        np.savez_compressed(out / f"{kind}_{N}.npz",
                            exc_pre=np.asarray(parts["Ce"].i[:], np.int32), exc_post=np.asarray(parts["Ce"].j[:], np.int32),
                            inh_pre=np.asarray(parts["Ci"].i[:], np.int32), inh_post=np.asarray(parts["Ci"].j[:], np.int32),
                            v0=parts["v0"].astype(np.float64), spike_i=i, spike_step=step,
                            brian2_version=np.asarray(brian2.__version__), seed=np.asarray(seed))
        print(f"{kind}: {len(i)} spikes, {len(i) / N:.2f} Hz, {len(parts['Ce'].i) + len(parts['Ci'].i)} synapses")


if __name__ == "__main__":
    main(*([int(sys.argv[1]), Path(sys.argv[2])] if len(sys.argv) > 2 else []))
