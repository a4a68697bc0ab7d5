"""The benchmark tooling and its regression gate (no timing here: timing belongs in benchmarks/; the gate
is checked on recorded real runs, and live in benchmarks/test_gate.py)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import pytest

from surrogate_pallas.tooling import bench, gate


def doc(**ratios):
    return {"meta": {}, "results": [
        {"key": k, "id": k.split("|")[0], "backend": k.split("|")[1], "time_s": 1.0,
         "roofline_fraction": rf, "speedup_vs_scan": su} for k, (rf, su) in ratios.items()]}


def test_compare_catches_a_regression_and_names_it():
    base = doc(**{"a|xla": (0.80, 2.0), "b|xla": (0.50, 1.5), "c|scan": (0.4, None)})
    cur = doc(**{"a|xla": (0.60, 2.0), "b|xla": (0.50, 1.2), "c|scan": (0.4, None)})
    assert [(k, m) for k, m, _, _ in bench.compare(base, cur, 0.10)] == [("b|xla", "speedup_vs_scan")]
    both = bench.compare(base, cur, 0.10, ("roofline_fraction", "speedup_vs_scan"))  # --gate-roofline
    assert {(k, m) for k, m, _, _ in both} == {("a|xla", "roofline_fraction"), ("b|xla", "speedup_vs_scan")}


def test_compare_passes_noise_within_the_threshold_and_new_cases():
    base = doc(**{"a|xla": (0.80, 2.0)})
    cur = doc(**{"a|xla": (0.75, 1.85), "new|xla": (0.1, 0.1)})
    assert bench.compare(base, cur, 0.10) == []
    assert bench.compare(base, doc(**{"a|xla": (0.80, 1.7)}), 0.10)


# Real runs of the quick matrix on a 2-core CI-class machine, unchanged code, one process each;
# the last two with a busy loop on one of the two cores. Each keeps its per-round ratios.
RUNS = Path(__file__).resolve().parents[1] / "data" / "bench_runs"
BASE = json.loads((RUNS / "base.json").read_text())
RERUNS = {p.stem: json.loads(p.read_text()) for p in sorted(RUNS.glob("rerun*.json"))}


def planted(run, factor=2.0):
    """``run`` as if every library case were ``factor`` times slower (the plain-JAX baseline unchanged)."""
    def slow(r):
        if "time_s" not in r or r["backend"] == bench.BASELINE:
            return r
        samples = {k: v and [x / factor for x in v] for k, v in r["samples"].items()}
        return dict(r, speedup_vs_scan=r["speedup_vs_scan"] / factor, samples=samples)
    return dict(run, results=[slow(r) for r in run["results"]])


def gated(run):
    return {r["key"] for r in run["results"] if r.get("speedup_vs_scan") is not None}


def test_the_gate_passes_unchanged_code_across_real_reruns(monkeypatch):
    assert len(RERUNS) == 4
    flagged = {name: bench.compare(BASE, run, 0.10) for name, run in RERUNS.items()}
    assert all(not bad for name, bad in flagged.items() if "busy" not in name), flagged
    # under load a single pass may flag a case; timed again, it does not stay regressed
    monkeypatch.setattr(bench, "run", lambda cases, *a, **k: [r for r in RERUNS["rerun1"]["results"]
                                                              if r["id"] in {c.id for c in cases}])
    cases = [_case(r) for r in BASE["results"]]
    for name, bad in flagged.items():
        assert bench.confirmed(cases, BASE, bad, 0.10, bench.GATED, 2, 0.05) == [], name
    # the median-only rule (what the gate did before it kept rounds) cried wolf on these runs
    medians = lambda d: dict(d, results=[{k: v for k, v in r.items() if k != "samples"} for r in d["results"]])
    assert sum(len(bench.compare(medians(BASE), medians(r), 0.10)) for r in RERUNS.values()) >= 1


def test_the_gate_catches_a_planted_2x_slowdown_in_every_real_rerun(monkeypatch):
    for name, run in RERUNS.items():
        bad = {k for k, m, _, _ in bench.compare(BASE, planted(run), 0.10)}
        assert len(bad) >= 0.9 * len(gated(run)), (name, sorted(gated(run) - bad))
    # and it stays caught when timed again
    monkeypatch.setattr(bench, "run", lambda cases, *a, **k: [r for r in planted(RERUNS["rerun2"])["results"]
                                                              if r["id"] in {c.id for c in cases}])
    bad = bench.compare(BASE, planted(RERUNS["rerun1"]), 0.10)
    assert len(bench.confirmed([_case(r) for r in BASE["results"]], BASE, bad, 0.10, bench.GATED, 2, 0.05)) \
        >= 0.9 * len(bad)


def _case(result):
    op, model, n, T, dtype = result["id"].split("/")[:5]
    return bench.Case(op, model, int(n[2:]), int(T[2:]), dtype, result["backend"])


def test_parse_fraction():
    assert gate.parse_fraction("10%") == pytest.approx(0.1)
    assert gate.parse_fraction("0.25") == pytest.approx(0.25)
    for bad in ("150%", "-1", "x"):
        with pytest.raises(ValueError, match="--max-regression"):
            gate.parse_fraction(bad)


def test_a_missing_or_foreign_baseline_says_what_to_do(tmp_path):
    with pytest.raises(ValueError, match="--compare: no baseline at .*save one first"):
        gate.read_gate("10%", tmp_path / "main.json", "save one first")
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="not a saved report"):
        gate.read_gate("10%", tmp_path / "bad.json", "")


@pytest.mark.parametrize("case,expected", [
    (bench.Case("step", "ngclearn", 4096, 1), 16 + 20 + 8),  # 5 states read, 4 written, s and the surrogate
    (bench.Case("seq_fwd", "spikingjelly", 4096, 64), 8),  # j_t + s_t
    (bench.Case("seq_fwd", "snntorch", 4096, 64, spike_dtype="int8"), 5),  # 1-byte spikes
    (bench.Case("seq_fwd", "spikingjelly", 4096, 64, "bfloat16"), 4),
    (bench.Case("seq_fwd", "ngclearn", 4096, 64), 12),  # + the surrogate
    (bench.Case("seq_fwdbwd", "spikingjelly", 4096, 64, backend="triton"), 10 + 10),  # fwd 4+4+2, bwd 4+2+4
    (bench.Case("seq_fwdbwd", "spikingjelly", 4096, 64), 12 + 12),  # the jnp path keeps f32 residuals
    (bench.Case("spike_and_grad", "atan", 4096, 1), 12),
])
def test_byte_model_matches_what_the_kernels_read_and_write(case, expected):
    """The model against the traced program: the bytes of every operand and result of the library's
    kernels (or, with none, of the program itself), per neuron-step; per-neuron operands (the state)
    are read or written once per sequence, so they add at most their own bytes over T."""
    fn, args = bench.build(case)
    moved, per_neuron = _traced_bytes(jax.make_jaxpr(fn)(*args).jaxpr, case.T)
    assert bench.bytes_per_neuron_step(case) == expected
    assert moved / (case.n * case.T) == expected
    assert per_neuron / (case.n * case.T) <= 64 / case.T  # the state: a few f32 values per neuron


KERNELS = ("neuron_forward", "neuron_backward", "neuron_tangent")


def _traced_bytes(jaxpr, T):
    """(bytes of time-major arrays, bytes of the others) the library's kernels read and write; the
    program's own inputs and outputs where it calls none."""
    found = []

    def walk(jx):
        for eqn in jx.eqns:
            if eqn.primitive.name in KERNELS:
                found.extend(v.aval for v in (*eqn.invars, *eqn.outvars))
            for key in ("jaxpr", "call_jaxpr", "fun_jaxpr"):
                inner = eqn.params.get(key)
                if inner is not None:
                    walk(getattr(inner, "jaxpr", inner))

    walk(jaxpr)
    if not found:
        found = [v.aval for v in (*jaxpr.invars, *jaxpr.outvars)]
    found = [a for a in found if a.ndim]  # a 0-d operand (the cell's clock) is one value for every neuron
    nbytes = lambda a: a.size * a.dtype.itemsize
    seq = sum(nbytes(a) for a in found if T > 1 and a.ndim >= 2 and a.shape[0] == T)
    return (seq, sum(nbytes(a) for a in found) - seq) if T > 1 else (sum(nbytes(a) for a in found), 0)


@pytest.mark.parametrize("backend", ["xla", "scan"])
def test_fwdbwd_case_is_one_training_step(backend):
    """One forward loop and one backward loop, reading dL/ds from an input (the counted bytes): a loss
    that called the forward twice had two backward passes, and a dL/ds of ones that no pass read."""
    fn, args = bench.build(bench.Case("seq_fwdbwd", "spikingjelly", 256, 8, backend=backend))
    compiled = fn.lower(*args).compile()
    assert compiled.as_text().count(" while(") == 2
    j, v, w = args
    assert w.shape == j.shape
    assert not (compiled(j, v, w)[0] == compiled(j, v, 2 * w)[0]).all()  # the gradient reads dL/ds = w


def test_quick_matrix_covers_every_op_and_the_baseline():
    cases = bench.matrix()
    assert {c.op for c in cases} == set(bench.OPS)
    assert {c.backend for c in cases} == {"xla", "scan"}
    assert {c.model for c in cases if c.op == "seq_fwdbwd"} == {"spikingjelly", "snntorch"}


def test_full_matrix_trains_only_on_spikes_that_carry_a_gradient():
    full = bench.matrix(full=True)
    assert {c.spike_dtype for c in full if c.op == "seq_fwd"} == {None, "int8"}
    assert {c.spike_dtype for c in full if c.op == "seq_fwdbwd"} == {None}
    assert {c.spike_dtype for c in bench.matrix(spike_dtypes=["bfloat16"], ops=["seq_fwdbwd"])} == {"bfloat16"}


def test_cli_smoke_json_save_and_gate(tmp_path):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    common = [sys.executable, "-m", "surrogate_pallas.tooling.bench", "--sizes", "4096", "--steps", "8", "--min-time",
              "0.002", "--quiet", "--baseline-dir", str(tmp_path)]
    r = subprocess.run(common + ["--json", str(tmp_path / "r.json"), "--save", "base"], capture_output=True,
                       text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "roofline" in r.stdout and "vs scan" in r.stdout
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["meta"]["platform"] == "cpu" and len(data["results"]) >= 10
    assert all(r_["roofline_fraction"] > 0 for r_ in data["results"])
    assert (tmp_path / "base.json").exists()
    # gate against an impossible baseline: every case "regressed" (confirmed on re-timing)
    inflated = dict(data, results=[dict(r_, speedup_vs_scan=r_["speedup_vs_scan"] and r_["speedup_vs_scan"] * 100,
                                        roofline_fraction=r_["roofline_fraction"] * 100, samples=None)
                                   for r_ in data["results"]])
    (tmp_path / "inflated.json").write_text(json.dumps(inflated))
    r = subprocess.run(common + ["--compare", str(tmp_path / "inflated.json"), "--ops", "seq_fwd"],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 1
    assert "REGRESSION seq_fwd/spikingjelly/n=4096/T=8/float32|xla: speedup_vs_scan" in r.stdout
    assert "roofline_fraction" not in r.stdout
    r = subprocess.run(common + ["--compare", str(tmp_path / "inflated.json"), "--ops", "seq_fwd", "--gate-roofline",
                                 "--confirm", "0"], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 1 and "|scan: roofline_fraction" in r.stdout
