"""The surrogate-pallas command (train, simulate, bench), end to end in subprocesses."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ENV = dict(os.environ, JAX_PLATFORMS="cpu")


def run(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "surrogate_pallas", *args], capture_output=True, text=True,
                          env=ENV, timeout=timeout)


def valid_png(path):
    with Image.open(path) as im:
        im.verify()
        return im.format == "PNG"


def test_train_tiny_reaches_well_above_chance(tmp_path):
    out = tmp_path / "run"
    r = run("train", "--epochs", "4", "--steps", "8", "--hidden", "64", "--out", str(out), "--quiet")
    assert r.returncode == 0, r.stderr[-2000:]
    line = [ln for ln in r.stdout.splitlines() if ln.startswith("test accuracy: ")]
    assert len(line) == 1
    acc = float(line[0].split(": ")[1])
    assert acc > 0.5
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test_accuracy"] == pytest.approx(acc, abs=1e-4) and len(metrics["history"]["loss"]) == 4
    assert valid_png(out / "hidden_raster.png") and valid_png(out / "curves.png")


def test_interpret_kernels_train_like_xla(tmp_path):
    """The Pallas kernels (interpreted) and the jnp path train to the same numbers, bit for bit, when
    they keep the same residuals (auto keeps bf16 for a kernel and f32 for the jnp path, so
    there the runs differ by the bf16 rounding of the residuals, by design)."""
    hist = {}
    for backend in ("xla", "interpret"):
        r = run("train", "--epochs", "4", "--steps", "8", "--hidden", "64", "--limit", "768", "--batch", "64",
                "--backend", backend, "--residuals", "exact",
                "--neuron", "spikingjelly", "--out", str(tmp_path / backend), "--quiet")
        assert r.returncode == 0, r.stderr[-2000:]
        hist[backend] = json.loads((tmp_path / backend / "metrics.json").read_text())["history"]
        del hist[backend]["seconds"]  # the one field that is not a result
    assert hist["interpret"] == hist["xla"] and set(hist["xla"]) >= {"loss", "test_accuracy"}
    assert hist["xla"]["test_accuracy"][-1] > 0.5


def test_simulate_tiny(tmp_path):
    r = run("simulate", "--neurons", "3000", "--steps", "60", "--chunk", "20", "--compare-steps", "10",
            "--out", str(tmp_path), "--quiet")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "speed-up:" in r.stdout and "M neuron-steps/s" in r.stdout
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["rate_per_step"] > 0 and m["steps"] == 60 and m["neurons"] == 3000
    assert valid_png(tmp_path / "raster.png")


@pytest.mark.parametrize("args,message", [
    (["train", "--surrogate", "nope"], "--surrogate: unknown value 'nope'"),
    (["train", "--neuron", "hodgkin"], "--neuron: unknown value 'hodgkin'"),
    (["train", "--epochs", "0"], "--epochs must be a positive integer"),
    (["train", "--epochs", "-3"], "--epochs must be a positive integer"),
    (["train", "--hidden", "x"], "--hidden must be a positive integer"),
    (["train", "--out", "/proc/forbidden/run"], "--out: cannot write to"),
    (["simulate", "--neurons", "0"], "--neurons must be a positive integer"),
    (["simulate", "--steps", "-1"], "--steps must be a positive integer"),
    (["bench", "--max-regression", "150%"], "--max-regression"),
    (["bench", "--ops", "nope"], "--ops: unknown op"),
    (["bench", "--max-regression", "ten"], "--max-regression: expected a fraction"),
    (["bench", "--sizes", "abc"], "argument --sizes: expected comma-separated integers"),
    (["bench", "--sizes", "0"], "argument --sizes: expected positive integers"),
    (["bench", "--backends", "cuda"], "--backends: 'cuda' is not available on this platform (cpu)"),
    (["bench", "--backends", "triton"], "--backends: 'triton' is not available on this platform (cpu)"),
    (["inspect", "--targets", "tpu-v9"], "unknown target(s) 'tpu-v9'"),
    (["inspect", "--max-regression", "x"], "--max-regression: expected a fraction"),
    (["inspect", "--jobs", "0"], "--jobs: expected a positive whole number"),
])
def test_bad_input_is_a_message_not_a_traceback(args, message):
    r = run(*args, timeout=60)
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])  # a usage error, like argparse's own
    assert message in r.stderr
    assert "Traceback" not in r.stderr


def test_every_option_has_help_and_shows_its_default():
    for cmd in ("train", "simulate", "bench", "inspect"):
        r = run(cmd, "--help", timeout=60)
        assert r.returncode == 0, r.stderr[-2000:]
        options = [ln.split()[0] for ln in r.stdout.splitlines() if ln.startswith("  --")]
        assert len(options) >= 3
        for opt in options:
            block = r.stdout.split(opt, 1)[1].split("\n  --", 1)[0]
            assert len(block.split()) >= 3, f"{cmd} {opt}: no help text"
        own = {"train": "\n  --epochs EPOCHS", "simulate": "\n  --neurons NEURONS", "bench": "\n  --min-time MIN_TIME",
               "inspect": "\n  --max-regression MAX_REGRESSION"}[cmd]
        default = {"train": "(default: 30)", "simulate": "(default: 1000000 for population", "bench": "(default: 0.05)",
                   "inspect": "(default: 5%)"}[cmd]
        block = " ".join(r.stdout.split(own, 1)[1].split("\n  --", 1)[0].split())
        assert default in block, f"{cmd} {own}: {block!r}"
        twice = [b.split()[0] for b in r.stdout.split("\n  --")[1:] if b.count("(default") > 1]
        assert not twice, f"{cmd}: these options show their default twice: {twice}"


def test_interrupt_keeps_written_metrics(tmp_path):
    """Ctrl-C during training: the metrics and curves written so far stay intact."""
    import signal
    import time

    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "surrogate_pallas", "train", "--epochs", "400", "--steps", "6",
                             "--hidden", "32", "--out", str(out), "--quiet"], env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    for _ in range(600):  # up to ~2 minutes for the first epoch to be written
        if (out / "metrics.json").exists():
            break
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    m = json.loads((out / "metrics.json").read_text())
    assert len(m["history"]["loss"]) >= 1
    assert valid_png(out / "curves.png")
    assert not list(out.glob(".*.tmp"))


@pytest.mark.parametrize("command,missing", [("train", "optax"), ("simulate", "tqdm")])
def test_a_missing_extra_is_an_install_hint(command, missing):
    code = (f"import sys; sys.modules[{missing!r}] = None\n"
            f"from surrogate_pallas.cli import main; sys.exit(main([{command!r}, '--quiet']))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=300)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert f"needs the cli extra ({missing} is missing): pip install 'surrogate-pallas[cli]'" in r.stderr


def test_simulate_a_network_writes_events_metrics_and_figures(tmp_path):
    r = run("simulate", "--network", "coba", "--neurons", "800", "--duration", "0.05", "--out", str(tmp_path),
            "--quiet")
    assert r.returncode == 0, r.stderr[-2000:]
    m = json.loads((tmp_path / "metrics.json").read_text())
    for key in ("neurons", "synapses", "steps", "spikes", "rate_hz", "wall_s", "realtime_factor", "compile_s",
                "backend"):
        assert key in m, key
    assert m["neurons"] == 800 and m["steps"] == 500 and m["spikes"] > 0 and m["backend"] == "auto"
    z = np.load(tmp_path / "spikes.npz")
    assert len(z["i"]) == m["spikes"] and z["t"].dtype == np.float64 and np.all(np.diff(z["t"]) >= 0)
    assert np.issubdtype(z["i"].dtype, np.integer) and z["t"].max() < 0.05
    assert valid_png(tmp_path / "raster.png") and valid_png(tmp_path / "rate.png")


@pytest.mark.parametrize("backend,propagation", [("auto", None), ("interpret", "kernel")])
def test_simulate_runs_a_given_connectivity_as_brian2_did(backend, propagation, tmp_path):
    """The XLA path and the fused network kernel (interpreted): Brian2's spikes."""
    data = Path(__file__).resolve().parents[1] / "data" / "brian2" / "coba_4000.npz"
    r = run("simulate", "--network", "coba", "--connectivity", str(data), "--duration", "0.2", "--out",
            str(tmp_path), "--quiet", "--backend", backend)
    assert r.returncode == 0, r.stderr[-2000:]
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["backend"] == backend and (propagation is None or m["propagation"] == propagation)
    z, ref = np.load(tmp_path / "spikes.npz"), np.load(data)
    keep = ref["spike_step"] < 2000
    order = np.lexsort((ref["spike_i"][keep], ref["spike_step"][keep]))
    np.testing.assert_array_equal(z["i"], ref["spike_i"][keep][order])
    np.testing.assert_allclose(z["t"], ref["spike_step"][keep][order] * 1e-4)


@pytest.mark.parametrize("args,message", [
    (["simulate", "--network", "hh"], "--network: invalid choice"),
    (["simulate", "--network", "cuba", "--connectivity", "/nonexistent.npz"], "No such file"),
    (["simulate", "--network", "cuba", "--dt", "-1"], "--dt must be a positive number"),
    (["simulate", "--connectivity", "x.npz"], "--connectivity: only for --network cuba or coba"),
])
def test_bad_network_flags_are_messages(args, message, tmp_path):
    r = run(*args, "--out", str(tmp_path), "--quiet")
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr[-2000:]


def test_a_connectivity_file_lacking_arrays_is_a_message(tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, exc_pre=np.zeros(3, np.int32))
    r = run("simulate", "--network", "cuba", "--connectivity", str(bad), "--out", str(tmp_path / "o"), "--quiet")
    assert r.returncode == 2 and "lacks ['exc_post', 'inh_pre', 'inh_post', 'v0']" in r.stderr, r.stderr[-2000:]


def test_an_interrupted_network_run_keeps_what_it_recorded(tmp_path):
    from surrogate_pallas.cli.network_run import simulate_network
    from surrogate_pallas.networks import benchmark

    def stop(done, total):
        if done >= 300:
            raise KeyboardInterrupt

    ck = tmp_path / "checkpoint.npz"
    with pytest.raises(KeyboardInterrupt):
        simulate_network("cuba", 500, 0.1, 1e-4, 0, None, "auto", stop, ck)
    saved = np.load(ck)
    assert "state/P/u" in saved.files and len(saved["spikes/P/i"]) == int(saved["counts/P"].sum()) > 0
    sim = benchmark.build("cuba", 500, 0).simulator(seed=0).restore(ck)
    assert sim.step >= 300
