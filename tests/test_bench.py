"""Issue 5: the benchmark tooling (no timing assertions: timing belongs in benchmarks/)."""
import json
import os
import subprocess
import sys

import pytest

from surrogate_pallas import bench


def doc(**ratios):
    return {"meta": {}, "results": [
        {"key": k, "id": k.split("|")[0], "backend": k.split("|")[1], "time_s": 1.0,
         "roofline_fraction": rf, "speedup_vs_scan": su} for k, (rf, su) in ratios.items()]}


def test_compare_catches_a_regression_and_names_it():
    base = doc(**{"a|xla": (0.80, 2.0), "b|xla": (0.50, 1.5), "c|scan": (0.4, None)})
    cur = doc(**{"a|xla": (0.60, 2.0), "b|xla": (0.50, 1.2), "c|scan": (0.4, None)})
    bad = bench.compare(base, cur, 0.10)
    assert {(k, m) for k, m, _, _ in bad} == {("a|xla", "roofline_fraction"), ("b|xla", "speedup_vs_scan")}


def test_compare_passes_noise_within_the_threshold_and_new_cases():
    base = doc(**{"a|xla": (0.80, 2.0)})
    cur = doc(**{"a|xla": (0.75, 1.85), "new|xla": (0.1, 0.1)})
    assert bench.compare(base, cur, 0.10) == []
    assert bench.compare(base, doc(**{"a|xla": (0.70, 2.0)}), 0.10)


def test_parse_fraction():
    assert bench.parse_fraction("10%") == pytest.approx(0.1)
    assert bench.parse_fraction("0.25") == pytest.approx(0.25)
    for bad in ("150%", "-1", "x"):
        with pytest.raises(ValueError):
            bench.parse_fraction(bad)


@pytest.mark.parametrize("case,expected", [
    (bench.Case("step", "ngclearn", 4096, 1), 16 + 20 + 8),  # SPEC 4: 36 B, + 8 B with tols
    (bench.Case("seq_fwd", "spikingjelly", 4096, 64), 8),  # j_t + s_t
    (bench.Case("seq_fwd", "snntorch", 4096, 64, spike_dtype="int8"), 5),  # 1-byte spikes
    (bench.Case("seq_fwd", "spikingjelly", 4096, 64, "bfloat16"), 4),
    (bench.Case("seq_fwd", "ngclearn", 4096, 64), 12),  # + the surrogate
    (bench.Case("seq_fwdbwd", "spikingjelly", 4096, 64, backend="triton"), 10 + 10),  # fwd 4+4+2, bwd 4+2+4
    (bench.Case("seq_fwdbwd", "spikingjelly", 4096, 64), 12 + 12),  # the jnp path keeps f32 residuals
    (bench.Case("spike_and_grad", "atan", 4096, 1), 12),
])
def test_byte_model_matches_spec(case, expected):
    assert bench.bytes_per_neuron_step(case) == expected


def test_quick_matrix_covers_every_op_and_the_baseline():
    cases = bench.matrix()
    assert {c.op for c in cases} == set(bench.OPS)
    assert {c.backend for c in cases} == {"xla", "scan"}
    assert {c.model for c in cases if c.op == "seq_fwdbwd"} == {"spikingjelly", "snntorch"}


def test_cli_smoke_json_save_and_gate(tmp_path):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    common = [sys.executable, "-m", "surrogate_pallas.bench", "--sizes", "4096", "--steps", "8", "--min-time",
              "0.002", "--quiet", "--baseline-dir", str(tmp_path)]
    r = subprocess.run(common + ["--json", str(tmp_path / "r.json"), "--save", "base"], capture_output=True,
                       text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "roofline" in r.stdout and "vs scan" in r.stdout
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["meta"]["platform"] == "cpu" and len(data["results"]) >= 10
    assert all(r_["roofline_fraction"] > 0 for r_ in data["results"])
    assert (tmp_path / "base.json").exists()
    # gate against an impossible baseline: every case "regressed"
    inflated = dict(data, results=[dict(r_, roofline_fraction=r_["roofline_fraction"] * 100) for r_ in data["results"]])
    (tmp_path / "inflated.json").write_text(json.dumps(inflated))
    r = subprocess.run(common + ["--compare", str(tmp_path / "inflated.json"), "--ops", "seq_fwd"],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 1
    assert "REGRESSION seq_fwd/spikingjelly/n=4096/T=8/float32|xla: roofline_fraction" in r.stdout
