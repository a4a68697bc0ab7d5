"""CUBA and COBA on the accelerator at several sizes, against the published anchors; run by
``benchmarks/gpu_check.sh`` when a GPU is lent (it works on any platform).

Anchors (brainevent, COBA, 10 s simulated on an RTX A6000): 2.66 s at 4,000 neurons and 11.7 s at
400,000, i.e. 0.266 and 1.17 s per simulated second.  Goals on an H200: COBA at 400,000 at least 3x
faster than that anchor, and 4,000 neurons at least 10x faster than real time.  Each network is
compiled once, then timed over ``--duration`` simulated seconds (wall time of the simulation alone).
With Brian2's committed 4,000-neuron files, the spikes on this device are compared with Brian2's
(reported, not failed: a GPU may contract ``a * b + c`` into one rounding, which moves a spike near
threshold).

    python benchmarks/gpu_networks.py [--sizes 4000,40000,400000,1000000] [--duration 1.0] [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import jax
import numpy as np

from surrogate_pallas.cli.network_run import simulate_network

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "brian2"
ANCHORS = {("coba", 4000): 0.266, ("coba", 400_000): 1.17}  # brainevent, A6000, s per simulated second
GOALS = {("coba", 400_000): ("3x faster than brainevent on an A6000", 1.17 / 3),
         ("coba", 4000): ("10x faster than real time", 0.1), ("cuba", 4000): ("10x faster than real time", 0.1)}


def parity(kind):
    """Spikes matched with Brian2's over the span the CPU path matches (CUBA 100 ms, COBA 1 s)."""
    z = np.load(DATA / f"{kind}_4000.npz")
    cut = 1000 if kind == "cuba" else 10_000
    m, ev, _ = simulate_network(kind, None, cut * 1e-4, 1e-4, 0, DATA / f"{kind}_4000.npz", "auto")
    keep = z["spike_step"] < cut
    order = np.lexsort((z["spike_i"][keep], z["spike_step"][keep]))
    theirs = np.stack([z["spike_step"][keep][order], z["spike_i"][keep][order]], 1)
    mine = np.stack([ev.step[ev.step < cut], ev.i[ev.step < cut]], 1)
    same = len(mine) == len(theirs) and bool(np.all(mine == theirs))
    first = next((k for k in range(min(len(mine), len(theirs))) if not np.array_equal(mine[k], theirs[k])), None)
    return dict(kind=kind, identical=same, spikes=len(mine), brian2_spikes=len(theirs),
                first_difference_step=None if first is None else int(min(mine[first][0], theirs[first][0])),
                propagation=m["propagation"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="4000,40000,400000,1000000")
    ap.add_argument("--kinds", default="cuba,coba")
    ap.add_argument("--duration", type=float, default=1.0, help="simulated seconds per run")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    rows, failed = [], []
    print(f"device: {jax.devices()[0].device_kind} ({jax.default_backend()}), jax {jax.__version__}")
    for kind in args.kinds.split(","):
        for n in (int(s) for s in args.sizes.split(",")):
            t = time.perf_counter()
            try:
                m, _, _ = simulate_network(kind, n, args.duration, 1e-4, 1, None, "auto")
            except Exception as e:  # noqa: BLE001  (a size that does not run is a finding, reported)
                rows.append(dict(network=kind, neurons=n, error=f"{type(e).__name__}: {str(e)[:300]}"))
                print(f"{kind:5} {n:>9,}  FAILED {rows[-1]['error']}")
                failed.append(f"{kind} {n}")
                continue
            rt = m["realtime_factor"]
            row = dict(network=kind, neurons=n, s_per_simulated_s=rt, propagation=m["propagation"],
                       kernel_fallback=m["kernel_fallback"], spikes=m["spikes"], rate_hz=m["rate_hz"],
                       compile_s=m["compile_s"], total_s=time.perf_counter() - t)
            anchor, goal = ANCHORS.get((kind, n)), GOALS.get((kind, n))
            if anchor:
                row["speedup_vs_brainevent_a6000"] = anchor / rt
            if goal:
                row["goal"], row["goal_met"] = goal[0], rt <= goal[1]
            rows.append(row)
            note = f"  {anchor / rt:.2f}x brainevent A6000" if anchor else ""
            note += f"  goal ({goal[0]}): {'met' if rt <= goal[1] else 'NOT met'}" if goal else ""
            print(f"{kind:5} {n:>9,}  {rt:8.4f} s per simulated s  {m['propagation']:7} {m['rate_hz']:6.2f} Hz{note}")
    checks = [parity(k) for k in ("cuba", "coba")]
    for c in checks:
        print(f"Brian2 parity {c['kind']}: {'identical' if c['identical'] else 'DIFFERENT'} "
              f"({c['spikes']} vs {c['brian2_spikes']} spikes, {c['propagation']})")
    doc = dict(device=str(jax.devices()[0].device_kind), platform=jax.default_backend(), jax=jax.__version__,
               duration_s=args.duration, results=rows, brian2_parity=checks)
    if args.json:
        args.json.write_text(json.dumps(doc, indent=1) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
