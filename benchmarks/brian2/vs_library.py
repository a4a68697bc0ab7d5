"""CUBA and COBA on this machine: Brian2 2.9's C++ standalone mode (one thread, its default) beside the
library's CPU path (``surrogate-pallas simulate --network``), interleaved round by round, each run in a
fresh process; wall time of the simulation alone (no code generation, no compilation) per simulated
second.  Brian2 runs from its own venv (see networks.py); without it, only the library is timed.

    python benchmarks/brian2/vs_library.py [--sizes 4000,40000] [--rounds 3] [--library-only 400000,1000000]
"""
import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BRIAN2_PY = ROOT / ".venv-brian2" / "bin" / "python"


def brian2(kind, n, build_dir):
    out = subprocess.run([str(BRIAN2_PY), str(Path(__file__).with_name("time_brian2.py")), kind, str(n), build_dir],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def library(kind, n, duration=1.0):
    with tempfile.TemporaryDirectory() as d:
        subprocess.run([sys.executable, "-m", "surrogate_pallas", "simulate", "--network", kind, "--neurons", str(n),
                        "--duration", str(duration), "--seed", "1", "--out", d, "--quiet"], check=True,
                       capture_output=True, text=True)
        return json.loads((Path(d) / "metrics.json").read_text())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="4000,40000")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--library-only", default="", help="sizes to time the library alone (one round)")
    ap.add_argument("--brian2-only", default="", help="sizes to time Brian2 alone (one round)")
    args = ap.parse_args()
    have_brian2 = BRIAN2_PY.exists()
    rows = []
    for kind in ("cuba", "coba"):
        for n in [int(x) for x in args.sizes.split(",") if x]:
            build = tempfile.mkdtemp(prefix=f"brian2-{kind}-{n}-")
            if have_brian2:
                brian2(kind, n, build)  # generate and compile once; later runs reuse the build
            b, lib = [], []
            for _ in range(args.rounds):
                if have_brian2:
                    b.append(brian2(kind, n, build)["run_s"])
                m = library(kind, n)
                lib.append(m["wall_s"])
            row = dict(kind=kind, neurons=n, synapses=m["synapses"], library_s=lib, library_rate_hz=m["rate_hz"],
                       library_compile_s=m["compile_s"], library_peak_rss_mb=m["peak_rss_bytes"] / 2**20,
                       brian2_s=b or None,
                       ratio_per_round=[x / y for x, y in zip(b, lib)] if b else None)
            rows.append(row)
            print(json.dumps(row), flush=True)
        for n in [int(x) for x in args.library_only.split(",") if x]:
            dur = 0.1 if n >= 1_000_000 else 1.0
            m = library(kind, n, dur)
            row = dict(kind=kind, neurons=n, synapses=m["synapses"], library_s_per_simulated_s=m["realtime_factor"],
                       simulated_s=dur, library_rate_hz=m["rate_hz"], library_compile_s=m["compile_s"],
                       library_build_s=m["build_s"], library_peak_rss_mb=m["peak_rss_bytes"] / 2**20,
                       bytes_per_synapse=m["bytes_per_synapse"], state_bytes_per_neuron=m["state_bytes_per_neuron"])
            rows.append(row)
            print(json.dumps(row), flush=True)
        for n in [int(x) for x in args.brian2_only.split(",") if x] if have_brian2 else []:
            build = tempfile.mkdtemp(prefix=f"brian2-{kind}-{n}-")
            brian2(kind, n, build)
            row = dict(kind=kind, neurons=n, brian2_s=[brian2(kind, n, build)["run_s"]])
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


if __name__ == "__main__":
    main()
