"""The ``surrogate-pallas`` command: ``train``, ``simulate``, ``bench`` and ``inspect``."""
from __future__ import annotations

import argparse
import datetime
import os
import sys
from pathlib import Path

from ..backends import COMMAND_BACKENDS, COMMAND_HELP
from ..surrogates import SURROGATES
from ..tooling.help_format import HelpFormatter

EXTRA_HINT = "`surrogate-pallas {command}` needs the cli extra ({missing} is missing): pip install 'surrogate-pallas[cli]'"


def _positive(name, kind=int):
    """An argparse type: a positive ``kind`` (int or float), with a message naming the flag."""
    what = "integer" if kind is int else "number"

    def parse(text):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a positive {what}, got {text!r}") from None
        if not v > 0:
            raise argparse.ArgumentTypeError(f"{name} must be a positive {what}, got {v}")
        return v
    return parse


def _out_dir(path: Path | None, kind: str) -> Path:
    path = path or Path("runs") / f"{kind}-{datetime.datetime.now().strftime('%Y%m%d-%H%M%S')}"
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        _usage_error(f"--out: cannot write to {path}: {e.strerror or e}")
    return path


def _usage_error(message):
    """A bad flag: its message and exit status 2, like every argparse usage error."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def _check_choice(flag, value, choices):
    if value not in choices:
        _usage_error(f"{flag}: unknown value {value!r}; expected one of {', '.join(choices)}")


def _needs_extra(command):
    """Import the command's dependencies; a missing one is an install hint, not a traceback."""
    import importlib
    for mod in ("optax", "flax", "sklearn", "matplotlib", "tqdm") if command == "train" else ("matplotlib", "tqdm"):
        try:
            importlib.import_module(mod)
        except ImportError:
            _usage_error(EXTRA_HINT.format(command=command, missing={"sklearn": "scikit-learn"}.get(mod, mod)))


def cmd_train(args):
    _needs_extra("train")
    from . import plots
    from .train import ENCODINGS, NEURONS, READOUTS, TrainConfig, learned_values, neuron_params, train

    _check_choice("--neuron", args.neuron, NEURONS)
    _check_choice("--surrogate", args.surrogate, [s for s in SURROGATES if s != "secant_lif"])
    _check_choice("--encoding", args.encoding, ENCODINGS)
    _check_choice("--readout", args.readout, READOUTS)
    out = _out_dir(args.out, "train")
    cfg = TrainConfig(neuron=args.neuron, surrogate=args.surrogate, backend=args.backend,
                      residuals=args.residuals, epochs=args.epochs,
                      steps=args.steps, hidden=args.hidden, batch=args.batch, lr=args.lr, encoding=args.encoding,
                      readout=args.readout, seed=args.seed, limit=args.limit,
                      learn=tuple(n for n in args.learn.split(",") if n) if args.learn else ())
    from tqdm import tqdm

    bar = tqdm(total=cfg.epochs, desc="train", unit="epoch", file=sys.stderr, disable=args.quiet)
    metrics = {"config": vars(cfg), "history": None}

    def on_epoch(history, model, predict):
        metrics["history"] = history
        plots.save_json(out / "metrics.json", metrics)  # atomic: an interrupt leaves the last good copy
        bar.set_postfix(loss=f"{history['loss'][-1]:.3f}", train=f"{history['train_accuracy'][-1]:.3f}",
                        test=f"{history['test_accuracy'][-1]:.3f}")
        bar.update(1)

    try:
        model, history, predict, (xte, yte) = train(cfg, on_epoch)
    except KeyboardInterrupt:
        bar.close()
        if metrics["history"]:
            plots.curves(metrics["history"], out / "curves.png")
            print(f"\ninterrupted; the metrics and curves of the epochs that finished are in {out}", file=sys.stderr)
        else:
            print("\ninterrupted before the first epoch finished; nothing was written", file=sys.stderr)
        return 130
    bar.close()
    import jax
    import numpy as np

    pred, hidden = predict(model, xte[:6], jax.random.PRNGKey(1))
    plots.raster(np.swapaxes(np.asarray(hidden), 0, 1)[:6], out / "hidden_raster.png",
                 f"hidden-layer spikes of six test digits ({cfg.neuron}, {cfg.surrogate})",
                 labels=[f"true {d}, predicted {p}" for d, p in zip(yte[:6], np.asarray(pred))])
    plots.curves(history, out / "curves.png")
    learned = learned_values(model)
    if learned:
        initial = {n: float(np.asarray(v)) for n, v in neuron_params(cfg.neuron, cfg.surrogate).values.items()
                   if n in learned}
        plots.learned(learned, initial, out / "learned_params.png", f"learned hidden-neuron parameters ({cfg.neuron})")
        metrics["learned"] = {n: dict(initial=initial[n], mean=float(v.mean()), min=float(v.min()), max=float(v.max()))
                              for n, v in learned.items()}
    metrics.update(test_accuracy=history["test_accuracy"][-1], seconds=history["seconds"][-1],
                   platform=jax.default_backend())
    plots.save_json(out / "metrics.json", metrics)
    print(f"outputs: {out}")
    print(f"test accuracy: {history['test_accuracy'][-1]:.4f}")
    return 0


def cmd_simulate(args):
    _needs_extra("simulate")
    from tqdm import tqdm

    from . import plots
    from .simulate import simulate

    out = _out_dir(args.out, "simulate")
    bar = tqdm(total=None, desc="simulate", unit="chunk", file=sys.stderr, disable=args.quiet)

    def progress(done, total):
        bar.total = total
        bar.update(done - bar.n)

    if args.network != "population":
        from ..networks import use_native_loops
        use_native_loops()  # this process only simulates: XLA may compile its loops whole
        return _simulate_network(args, out, bar, progress)
    if args.connectivity is not None:
        _usage_error("--connectivity: only for --network cuba or coba")
    res, sample = simulate(args.neurons or 1_000_000, args.steps, min(args.chunk, args.steps), args.backend,
                           args.seed, min(args.compare_steps, args.steps), progress)
    bar.close()
    plots.population(sample, res["rate_hz"], out / "raster.png",
                     f"{res['neurons']:,} LIF neurons: the first {sample.shape[1]} over the first "
                     f"{sample.shape[0]} of {res['steps']:,} steps", dt_ms=1.0)
    plots.save_json(out / "metrics.json", res)
    print(f"outputs: {out}")
    print(f"neurons x steps: {res['neurons']:,} x {res['steps']:,} on {res['platform']} ({res['backend']})")
    print(f"spike rate: {res['rate_hz']:.2f} Hz ({res['rate_per_step']:.4f} spikes per neuron-step)")
    print(f"library ({res['library_path']}): {res['library_neuron_steps_per_s'] / 1e6:,.1f} M neuron-steps/s")
    print(f"plain per-step JAX loop: {res['per_step_loop_neuron_steps_per_s'] / 1e6:,.1f} M neuron-steps/s")
    print(f"speed-up: {res['speedup']:.2f}x over the plain per-step loop")
    return 0


def _simulate_network(args, out, bar, progress):
    import numpy as np

    from . import plots
    from .network_run import simulate_network

    checkpoint = out / "checkpoint.npz"
    try:
        m, ev, counts = simulate_network(args.network, args.neurons, args.duration, args.dt, args.seed,
                                         args.connectivity, args.backend, progress, checkpoint)
    except KeyboardInterrupt:
        bar.close()
        print(f"\ninterrupted; every spike and the state of the chunks that finished are in {checkpoint}",
              file=sys.stderr)
        return 130
    bar.close()
    np.savez(out / "spikes.npz", i=ev.i.astype(np.int64), t=ev.t)
    plots.save_json(out / "metrics.json", m)
    title = f"{m['network'].upper()}: {m['neurons']:,} neurons, {m['synapses']:,} synapses, {m['rate_hz']:.2f} Hz"
    plots.network_raster(ev.i, ev.t, m["neurons"], out / "raster.png", title)
    plots.network_rate(counts, m["neurons"], args.dt, out / "rate.png", title)
    print(f"outputs: {out}")
    print(f"{m['network']}: {m['neurons']:,} neurons, {m['synapses']:,} synapses, {m['steps']:,} steps of "
          f"{args.dt * 1e3:g} ms on {m['backend']}")
    print(f"spikes: {m['spikes']:,} ({m['rate_hz']:.2f} Hz)")
    print(f"simulation: {m['wall_s']:.3f} s for {m['duration_s']:g} s simulated ({m['realtime_factor']:.3f} s per "
          f"simulated second), compilation {m['compile_s']:.2f} s")
    return 0


def parser():
    ap = argparse.ArgumentParser(prog="surrogate-pallas", description="Fused LIF kernels for SNNs on JAX.")
    sub = ap.add_subparsers(dest="command", required=True)
    backends, backend_help = COMMAND_BACKENDS, COMMAND_HELP
    fmt = HelpFormatter
    t = sub.add_parser("train", help="train a 2-layer SNN on the bundled handwritten digits", formatter_class=fmt)
    t.add_argument("--neuron", default="snntorch", help="neuron model: snntorch | spikingjelly | ngclearn")
    t.add_argument("--surrogate", default="atan", help="any registry name, e.g. atan, sigmoid, fast_sigmoid")
    t.add_argument("--backend", default="auto", choices=backends, help=backend_help)
    t.add_argument("--residuals", default="auto", choices=("auto", "bf16", "exact"),
                   help="what the backward kernel reads: bf16 (2 B per neuron-step), exact (f32), or auto "
                        "(bf16 where a kernel runs, exact on the jnp path)")
    t.add_argument("--epochs", type=_positive("--epochs"), default=30, help="passes over the training digits")
    t.add_argument("--steps", type=_positive("--steps"), default=16, help="time steps per digit")
    t.add_argument("--hidden", type=_positive("--hidden"), default=256, help="LIF neurons in the hidden layer")
    t.add_argument("--batch", type=_positive("--batch"), default=128, help="digits per training step")
    t.add_argument("--lr", type=_positive("--lr", float), default=2e-3, help="Adam learning rate")
    t.add_argument("--encoding", default="rate", help="input spikes: rate (Bernoulli) | latency (first spike)")
    t.add_argument("--readout", default="membrane", help="logits: membrane (a non-spiking integrator of the output layer) | count (output spikes)")
    t.add_argument("--limit", type=_positive("--limit"), default=None, help="use only N training digits")
    t.add_argument("--learn", default="", help="neuron parameters to learn per hidden neuron, comma-separated "
                                             "(snntorch: beta,threshold; spikingjelly: tau,v_threshold,v_reset)")
    t.add_argument("--seed", type=int, default=0, help="seed of the weights, the encoding and the data split")
    t.add_argument("--out", type=Path, default=None, help="output folder (default: runs/train-<time>)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(fn=cmd_train)
    s = sub.add_parser("simulate", help="simulate a network (CUBA, COBA) or a large ngclearn-style LIF "
                       "population", formatter_class=fmt)
    s.add_argument("--network", default="population", choices=("population", "cuba", "coba"),
                   help="cuba / coba: the benchmark networks of Brette et al. 2007 (connection probability 80/N); "
                        "population: unconnected ngclearn cells with Poisson input")
    s.add_argument("--neurons", type=_positive("--neurons"), default=None,
                   help="neurons (default: 1000000 for population, 4000 for cuba and coba)")
    s.add_argument("--duration", type=_positive("--duration", float), default=1.0,
                   help="simulated seconds (cuba, coba)")
    s.add_argument("--dt", type=_positive("--dt", float), default=1e-4, help="time step in seconds (cuba, coba)")
    s.add_argument("--connectivity", type=Path, default=None, metavar="FILE.npz",
                   help="run this network instead of drawing one (cuba, coba): integer arrays exc_pre, exc_post, "
                        "inh_pre, inh_post, and v0 (mV); its length is N")
    s.add_argument("--steps", type=_positive("--steps"), default=1000, help="1 ms time steps to simulate (population)")
    s.add_argument("--chunk", type=_positive("--chunk"), default=100,
                   help="steps per jitted call (fused launch; population)")
    s.add_argument("--compare-steps", type=_positive("--compare-steps"), default=100,
                   help="steps timed for the plain per-step loop (population)")
    s.add_argument("--backend", default="auto", choices=backends, help=backend_help)
    s.add_argument("--seed", type=int, default=0, help="seed of the connectivity and initial v, or of the weights "
                   "and the Poisson input")
    s.add_argument("--out", type=Path, default=None, help="output folder (default: runs/simulate-<time>)")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(fn=cmd_simulate)
    b = sub.add_parser("bench", help="kernel benchmarks and the regression gate (see --help)", add_help=False)
    b.set_defaults(fn=None)
    i = sub.add_parser("inspect", help="compile every kernel for real TPUs and NVIDIA GPUs, report static "
                       "figures and gate on them (see --help)", add_help=False)
    i.set_defaults(fn=None)
    return ap


def _choose_platform(command):
    """``inspect`` runs on CPU always: its compilers need no device (importing the package has
    already chosen the CPU on a host with no accelerator).  An explicit JAX_PLATFORMS is kept."""
    if os.environ.get("JAX_PLATFORMS"):
        return
    if command == "inspect":
        import jax
        jax.config.update("jax_platforms", "cpu")


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    _choose_platform(argv[0] if argv else None)
    if argv and argv[0] == "bench":
        from ..tooling.bench import main as bench_main
        return bench_main(argv[1:])
    if argv and argv[0] == "inspect":
        from ..tooling.aot.report import main as inspect_main
        return inspect_main(argv[1:])
    args = parser().parse_args(argv)
    try:
        return args.fn(args)
    except (ValueError, OSError) as e:  # bad settings or files found past argument parsing: a message
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
