#!/usr/bin/env bash
# The one command to run on an NVIDIA GPU machine (reference: one H200, jax 0.11.2 with its
# CUDA plugin preinstalled, no network).  Well inside 8 minutes it:
#   1. installs this checkout without dependencies (offline),
#   2. runs the kernel-vs-oracle tests on the compiled kernels (no interpret mode),
#      once with Pallas Triton and once with Mosaic GPU,
#   3. runs the benchmark matrix: Triton, Mosaic GPU, the xla path and the plain lax.scan,
#   4. prints a compact table and writes JSON; a kernel under 70% of a same-run copy fails the run,
#   5. runs CUBA and COBA at $NET_SIZES neurons (the fused network kernel where it holds the network,
#      else the XLA path) against the published anchors, and Brian2 parity at 4,000 (networks.json).
# Output goes to $RESULTS (default benchmarks/results/gpu-<date>/): log, bench.json, summary.
#
# Dry run on a CPU (checks this script's mechanics, not the GPU):
#   PLATFORM=cpu KERNELS=interpret SIZES=4096 STEPS=8 TEST_TIMEOUT=900 NET_SIZES=4000 NET_DURATION=0.05 \
#     bash benchmarks/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
PLATFORM=${PLATFORM:-cuda}
KERNELS=${KERNELS:-"triton mosaic"}
SIZES=${SIZES:-"2**16,2**22"}
STEPS=${STEPS:-"64,256"}
RESULTS=${RESULTS:-benchmarks/results/gpu-$(date -u +%Y%m%d)}
PY=${PYTHON:-python3}
TEST_TIMEOUT=${TEST_TIMEOUT:-150}    # per kernel backend; two of them + benchmarks stay well inside 8 min
BENCH_TIMEOUT=${BENCH_TIMEOUT:-150}
NET_SIZES=${NET_SIZES:-4000,40000,400000,1000000}
NET_DURATION=${NET_DURATION:-1.0}     # simulated seconds per network run
NET_TIMEOUT=${NET_TIMEOUT:-240}
mkdir -p "$RESULTS"
export JAX_PLATFORMS=$PLATFORM XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1
status=0

echo "== versions"
# an editable install when the environment takes one; otherwise a plain copy on PYTHONPATH (only
# then, so that a stale copy can never shadow this checkout)
if ! $PY -m pip install -q --no-deps --no-build-isolation -e . >/dev/null 2>&1; then
  $PY -m pip install -q --no-deps --no-build-isolation --target /tmp/sp-site . >/dev/null 2>&1 \
    && export PYTHONPATH=/tmp/sp-site${PYTHONPATH:+:$PYTHONPATH}
fi
$PY - <<'PY'
import jax, jaxlib, sys, surrogate_pallas
print(f"python {sys.version.split()[0]}  jax {jax.__version__}  jaxlib {jaxlib.__version__}  "
      f"surrogate_pallas {surrogate_pallas.__version__}")
print("devices:", jax.devices())
PY
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader

for k in $KERNELS; do
  echo "== kernel tests: SP_TEST_KERNEL=$k"
  # race-detection tests need the TPU interpreter (CPU only); everything else runs on the device
  SP_TEST_KERNEL=$k timeout "$TEST_TIMEOUT" $PY -m pytest tests/kernels/test_lif_step.py tests/kernels/test_lif_sequence.py \
      -k "not race_detecting" -q -x -n 8 -p no:cacheprovider 2>&1 | tail -15 || status=1
done

echo "== benchmarks"
backends=xla,scan
for k in $KERNELS; do [ "$k" = interpret ] || backends="$backends,$k"; done
timeout "$BENCH_TIMEOUT" $PY -m surrogate_pallas.tooling.bench --sizes "$SIZES" --steps "$STEPS" --backends "$backends" \
    --json "$RESULTS/bench.json" --quiet | tee "$RESULTS/bench.txt" || status=1

$PY - "$RESULTS/bench.json" <<'PY' > "$RESULTS/summary.txt" || status=1
import json, sys
doc = json.load(open(sys.argv[1]))
rows = [r for r in doc["results"] if "time_s" in r]
kern = [r for r in rows if r["backend"] in ("triton", "mosaic", "pallas")]
print(f"{doc['meta']['device']}: {len(rows)} cases, {len(kern)} kernel cases")
below = [r for r in kern if r["roofline_fraction"] < 0.70 and r["n"] * r["T"] >= 2**22]
for r in below:
    print(f"BELOW 70% OF COPY: {r['key']}: {r['roofline_fraction']:.0%}")
for b in sorted({r["backend"] for r in kern}):
    sub = [r for r in kern if r["backend"] == b and r.get("speedup_vs_scan")]
    if sub:
        best = max(sub, key=lambda r: r["speedup_vs_scan"])
        print(f"{b}: best speed-up over lax.scan {best['speedup_vs_scan']:.2f}x ({best['id']})")
sys.exit(1 if below else 0)
PY
cat "$RESULTS/summary.txt"

echo "== networks: CUBA and COBA at $NET_SIZES neurons, $NET_DURATION s simulated each"
timeout "$NET_TIMEOUT" $PY benchmarks/gpu_networks.py --sizes "$NET_SIZES" --duration "$NET_DURATION" \
    --json "$RESULTS/networks.json" | tee "$RESULTS/networks.txt" || status=1
echo "== done (status $status); results in $RESULTS"
exit $status
