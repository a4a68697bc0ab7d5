"""Benchmarks as a product: roofline-normalised timings and a regression gate.

``surrogate-pallas bench`` (or ``python -m surrogate_pallas.tooling.bench``) runs a
matrix of cases, prints backend x case with time, throughput, the fraction of
a same-run device copy of the same bytes (the roofline), and the speed-up over
a plain-JAX baseline (``lax.scan`` + a ``custom_vjp`` spike); ``--json`` writes it,
``--save NAME`` stores it under benchmarks/baselines/, and ``--compare FILE
--max-regression 10%`` exits 1 naming every case whose speed-up fell by more
than that beyond the noise of both runs (``--gate-roofline``: the roofline
fraction too).  Ratios survive a change of machine; absolute times do not.
Bytes per neuron-step follow docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import random
import sys
import time
from pathlib import Path
from statistics import median

import jax
import jax.numpy as jnp

from .. import backends, presets
from ..api import lif_sequence, lif_step, residual_mode
from ..neuron import NeuronState
from ..spike import spike_and_grad
from . import baselines
from .gate import read_gate
from .help_format import HelpFormatter

OPS = ("step", "seq_fwd", "seq_fwdbwd", "spike_and_grad")
SEQ_MODELS = {"seq_fwd": ("spikingjelly", "snntorch", "ngclearn"), "seq_fwdbwd": ("spikingjelly", "snntorch")}
SURROGATE_CASES = ("atan", "sigmoid", "fast_sigmoid")
BASELINE = "scan"
ITEMSIZE = {"float32": 4, "bfloat16": 2, "float16": 2, "int8": 1}


@dataclasses.dataclass(frozen=True)
class Case:
    op: str
    model: str
    n: int
    T: int
    dtype: str = "float32"
    backend: str = "xla"
    spike_dtype: str | None = None

    @property
    def id(self) -> str:
        s = f"{self.op}/{self.model}/n={self.n}/T={self.T}/{self.dtype}"
        return s + (f"/s={self.spike_dtype}" if self.spike_dtype else "")

    @property
    def key(self) -> str:
        return f"{self.id}|{self.backend}"


def bytes_per_neuron_step(case: Case) -> float:
    """Bytes moved per neuron-step by the fused kernels (docs/benchmarks.md)."""
    it = ITEMSIZE[case.dtype]
    sit = ITEMSIZE[case.spike_dtype or case.dtype]
    if case.op == "step":  # read j, v, rfr, thr_theta, tols; write them back, s and surrogate
        return 5 * it + 4 * it + sit + it
    if case.op == "spike_and_grad":  # read v, write s and sg
        return it + sit + it
    if case.op == "seq_fwd":  # read j_t, write s_t (and the surrogate for the cell)
        return it + sit + (it if case.model == "ngclearn" else 0)
    # forward saving its residual (2 B in bf16 where a kernel runs, 4 B exact on the jnp path and
    # in the plain scan), then backward reading dL/ds and it, writing dL/dj
    kernel = case.backend != BASELINE and residual_mode("auto", backends.bench_call_args(case.backend)["backend"]) == "bf16"
    res = 2 if kernel else 4
    return (it + sit + res) + (sit + res + it)


def platform_backends(platform: str) -> tuple[str, ...]:
    """What bench times on ``platform``: the library's backends there, and the plain-JAX baseline."""
    return (*backends.bench_backends(platform), BASELINE)


def _params(model):
    return {"spikingjelly": presets.spikingjelly(), "snntorch": presets.snntorch_leaky(0.9),
            "ngclearn": presets.ngclearn(tau_m=10.0)}[model]


def build(case: Case):
    """A jitted function and its arguments for ``case``."""
    dt = jnp.dtype(case.dtype)
    key = jax.random.PRNGKey(0)
    shape = (case.T, case.n)
    if case.op == "spike_and_grad":
        v = (jax.random.normal(key, (case.n,)) * 2).astype(dt)
        if case.backend == BASELINE:
            return jax.jit(lambda v: baselines.spike_and_surrogate(v, 0.5, case.model)), (v,)
        return jax.jit(lambda v: spike_and_grad(v, 0.5, case.model)), (v,)
    p = _params(case.model)
    if case.model == "ngclearn":
        j = (jax.random.uniform(key, shape) * 30).astype(dt)
        st = p.init_state((case.n,), dt)
        if case.op == "step":
            if case.backend == BASELINE:
                f = lambda st, j: baselines.ngclearn_scan(j[None], st)
            else:
                f = lambda st, j: lif_step(st, j, p, t=1.0, spike_dtype=case.spike_dtype, **backends.bench_call_args(case.backend))
            return jax.jit(f), (st, j[0])
        if case.backend == BASELINE:
            f = lambda j, st: baselines.ngclearn_scan(j, st)
        else:
            f = lambda j, st: lif_sequence(j, st, p, with_surrogate=True, spike_dtype=case.spike_dtype,
                                           **backends.bench_call_args(case.backend))
        return jax.jit(f), (j, st)
    j = (0.6 + jax.random.normal(key, shape)).astype(dt)
    v0 = jnp.zeros((case.n,), dt)
    if case.backend == BASELINE:
        plain = {"spikingjelly": baselines.spikingjelly_scan, "snntorch": baselines.snntorch_scan}[case.model]
        fwd = lambda j, v: plain(j, v)
    else:
        def fwd(j, v):
            st, out = lif_sequence(j, NeuronState(v), p, spike_dtype=case.spike_dtype, **backends.bench_call_args(case.backend))
            return out.s, st.v
    if case.op == "seq_fwd":
        return jax.jit(fwd), (j, v0)

    def loss(j, v, w):
        # a training step: one forward, and a readout whose weights give dL/ds, which the backward
        # reads from memory as it would a downstream layer's gradient (the bytes counted above)
        s, v_T = fwd(j, v)
        return jnp.sum(s.astype(jnp.float32) * w) + jnp.sum(v_T.astype(jnp.float32))
    w = jax.random.normal(jax.random.fold_in(key, 1), shape, jnp.float32).astype(dt)
    return jax.jit(jax.grad(loss, (0, 1))), (j, v0, w)


def _batch_seconds(fn, args, k):
    t = time.perf_counter()
    out = None
    for _ in range(k):
        out = fn(*args)
    jax.block_until_ready(out)
    return (time.perf_counter() - t) / k


def _calls_per_batch(fn, args, seconds):
    jax.block_until_ready(fn(*args))  # compile and warm up (excluded)
    jax.block_until_ready(fn(*args))
    return max(1, int(seconds / max(_batch_seconds(fn, args, 1), 1e-7)))


def measure_rounds(fns, min_time=0.05, repeats=9) -> list[list[float]]:
    """Seconds per call of each ``(fn, args)`` in each of ``repeats`` rounds, timed round-robin.

    Noisy machines drift by tens of percent within a minute; timing the members of a
    comparison alternately, and taking their ratios round by round, makes the ratios
    meaningful.  Every batch blocks on its result.
    """
    ks = [_calls_per_batch(f, a, min_time / repeats) for f, a in fns]
    times = [[] for _ in fns]
    order = random.Random(0)
    for _ in range(repeats):
        # a fresh order each round, so that no member always follows the same one (a program timed
        # right after a slow, memory-heavy one was seen to lose 10% against its own twin)
        for i in order.sample(range(len(fns)), len(fns)):
            f, a = fns[i]
            times[i].append(_batch_seconds(f, a, ks[i]))
    return times


def quartiles(xs):
    """(lower, upper) quartile of the samples (the middle half lies between them)."""
    xs = sorted(xs)
    n = len(xs)
    return median(xs[:(n + 1) // 2]), median(xs[n // 2:])


def measure_interleaved(fns, min_time=0.05, repeats=9) -> list[float]:
    """Median seconds per call of each ``(fn, args)``, timed round-robin in one run."""
    return [median(t) for t in measure_rounds(fns, min_time, repeats)]


def measure(fn, args, min_time=0.05, repeats=9) -> float:
    """Median seconds per call of one function (compiled and warmed up first)."""
    return measure_interleaved([(fn, args)], min_time, repeats)[0]


def _copy_fn(nbytes):
    """A same-run device copy moving ``nbytes`` (half read, half written)."""
    x = jnp.ones((max(1, int(nbytes // 8)),), jnp.float32)
    return jax.jit(lambda x: x + 1.0), (x,)


def copy_seconds(nbytes: int, min_time=0.05) -> float:
    return measure(*_copy_fn(nbytes), min_time)


def matrix(full=False, sizes=None, steps=None, dtypes=None, ops=None, backends=None, spike_dtypes=None):
    platform = jax.default_backend()
    sizes = sizes or ([2**12, 2**16, 2**20, 2**24] if full else [2**12, 2**17])
    steps = steps or ([8, 64, 256] if full else [64])
    dtypes = dtypes or (["float32", "bfloat16"] if full else ["float32"])
    ops = ops or OPS
    backends = backends or platform_backends(platform)
    spike_dtypes = spike_dtypes or ([None, "int8"] if full else [None])
    cases = []
    for op in ops:
        models = ("ngclearn",) if op == "step" else SURROGATE_CASES if op == "spike_and_grad" else SEQ_MODELS[op]
        for model in models:
            for n in sizes:
                for T in ([1] if op in ("step", "spike_and_grad") else steps):
                    for dtype in dtypes:
                        for sdt in spike_dtypes:
                            for b in backends:
                                if op == "spike_and_grad" and b not in ("xla", BASELINE):
                                    continue  # an elementwise jnp op: XLA fuses it; no kernel
                                if b == BASELINE and (sdt or dtype != "float32"):
                                    continue  # the baseline is what a user writes: f32 with f32 spikes
                                if op == "seq_fwdbwd" and sdt == "int8":
                                    continue  # integer spikes carry no gradient: not a training step
                                cases.append(Case(op, model, n, T, dtype, b, sdt))
    return cases


def run(cases, min_time=0.05, max_bytes=None, progress=True):
    """Time every case; returns result dicts.

    The cases sharing a problem (op, model, size, T, dtype: every backend, the plain
    scan baseline and a copy of the same bytes) are timed round-robin, so the roofline
    fraction and the speed-up are ratios taken side by side.  Cases over ``max_bytes``
    are left out (reported).
    """
    try:
        from tqdm import tqdm
    except ImportError:  # the CLI extra brings tqdm; the library works without it
        tqdm = None
    max_bytes = max_bytes or _default_max_bytes()
    groups: dict[tuple, list[Case]] = {}
    for c in cases:
        groups.setdefault((c.op, c.model, c.n, c.T, c.dtype), []).append(c)
    results = []
    # warm the machine up first (clocks, allocator, thread pools): the first group measured in a
    # fresh process was seen to be an outlier
    measure(*_copy_fn(64 * 2**20), min(1.0, 10 * min_time))
    bar = tqdm(total=len(cases), desc="bench", unit="case", disable=not progress, file=sys.stderr) if tqdm else None
    for group in groups.values():
        timed = []
        for case in group:
            total = bytes_per_neuron_step(case) * case.n * case.T
            if total * 4 > max_bytes:
                results.append(dict(key=case.key, id=case.id, backend=case.backend,
                                    left_out=f"needs ~{total * 4 / 2**30:.1f} GiB"))
            else:
                timed.append(case)
        if timed:
            if bar:
                bar.set_postfix_str(timed[0].id[-40:])
            fns = [build(c) for c in timed]
            copies = {int(bytes_per_neuron_step(c) * c.n * c.T) for c in timed}
            copy_fns = {nb: _copy_fn(nb) for nb in copies}
            rounds = measure_rounds(fns + list(copy_fns.values()), min_time)
            copy_r = dict(zip(copy_fns, rounds[len(fns):]))
            base = next((r for c, r in zip(timed, rounds) if c.backend == BASELINE), None)
            for c, r in zip(timed, rounds):
                bpns = bytes_per_neuron_step(c)
                total = bpns * c.n * c.T
                t, copy_t = median(r), median(copy_r[int(total)])
                # ratios round by round: both members of a ratio were timed back to back
                roof = [ct / x for ct, x in zip(copy_r[int(total)], r)]
                speed = None if c.backend == BASELINE or base is None else [b / x for b, x in zip(base, r)]
                results.append(dict(
                    key=c.key, id=c.id, **dataclasses.asdict(c), time_s=t, neuron_steps_per_s=c.n * c.T / t,
                    bytes_per_neuron_step=bpns, achieved_GBps=total / t / 1e9,
                    copy_GBps=total / copy_t / 1e9, roofline_fraction=median(roof),
                    speedup_vs_scan=None if speed is None else median(speed),
                    samples=dict(roofline_fraction=_rounded(roof), speedup_vs_scan=_rounded(speed))))
            del fns, copy_fns
        if bar:
            bar.update(len(group))
    if bar:
        bar.close()
    return results


def _rounded(xs):
    return None if xs is None else [float(f"{x:.4g}") for x in xs]


def _default_max_bytes():
    try:
        stats = jax.devices()[0].memory_stats() or {}
        limit = stats.get("bytes_limit")
    except Exception:  # CPU devices have no memory stats
        limit = None
    if limit:
        return int(limit * 0.5)
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") * 0.25)
    except (ValueError, OSError):
        return 4 * 2**30


def meta():
    d = jax.devices()[0]
    import jaxlib
    return dict(date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                platform=jax.default_backend(), device=getattr(d, "device_kind", str(d)),
                jax=jax.__version__, jaxlib=jaxlib.__version__, python=sys.version.split()[0])


def table(results) -> str:
    w = max([44] + [len(r["id"]) for r in results])  # the columns stay aligned for long case names
    head = f"{'case':<{w}} {'backend':<8} {'time':>10} {'Gn-steps/s':>11} {'GB/s':>8} {'roofline':>8} {'vs scan':>8}"
    lines = [head, "-" * len(head)]
    for r in results:
        if "left_out" in r:
            lines.append(f"{r['id']:<{w}} {r['backend']:<8} left out: {r['left_out']}")
            continue
        t = r["time_s"]
        ts = f"{t * 1e3:.3f} ms" if t >= 1e-3 else f"{t * 1e6:.1f} us"
        sp = "-" if r.get("speedup_vs_scan") is None else f"{r['speedup_vs_scan']:.2f}x"
        lines.append(f"{r['id']:<{w}} {r['backend']:<8} {ts:>10} {r['neuron_steps_per_s'] / 1e9:>11.3f} "
                     f"{r['achieved_GBps']:>8.1f} {r['roofline_fraction']:>8.1%} {sp:>8}")
    return "\n".join(lines)


GATED = ("speedup_vs_scan",)


def compare(baseline: dict, current: dict, max_regression: float, metrics=GATED):
    """Cases whose ``metrics`` (default: the speed-up over the plain-JAX baseline) fell by more than
    ``max_regression``, beyond the noise of both runs.

    The speed-up is the gate because both of its members are real programs timed back to back: a
    change of the machine's state between two runs moves them together.  The roofline fraction
    (against a copy) also moves when the copy's speed alone changes, by 30% and more between two
    runs on a busy CPU; gate on it (``roofline_fraction``) where copies run steadily (a GPU).

    Each run keeps a ratio per timing round (its members timed back to back).  A case regresses
    only when its median fell by more than ``max_regression`` *and* the middle half of its
    rounds lies wholly below the middle half of the baseline's rounds (shrunk by the same
    allowance): one noisy round, or a run whose rounds spread over the baseline's, is not a
    regression; a slowdown that moves every round is.  Results saved without rounds compare
    their medians alone.  Returns a list of (key, metric, baseline value, current value).
    """
    base = {r["key"]: r for r in baseline["results"] if "time_s" in r}
    out = []
    for r in current["results"]:
        b = base.get(r.get("key"))
        if b is None or "time_s" not in r:
            continue
        for metric in metrics:
            old, new = b.get(metric), r.get(metric)
            if old is None or new is None or not new < old * (1.0 - max_regression):
                continue
            old_s, new_s = (b.get("samples") or {}).get(metric), (r.get("samples") or {}).get(metric)
            if old_s and new_s and not quartiles(new_s)[1] < quartiles(old_s)[0] * (1.0 - max_regression):
                continue  # the two runs' rounds overlap: noise, not a regression
            out.append((r["key"], metric, old, new))
    return out


def confirmed(cases, baseline, bad, max_regression, metrics, rounds, min_time):
    """The regressions that persist when their cases (with the rest of their group) are timed again,
    ``rounds`` more times: a slower kernel stays slower, a burst of load elsewhere passes."""
    for _ in range(rounds):
        if not bad:
            break
        ids = {key.split("|")[0] for key, *_ in bad}
        again = compare(baseline, dict(results=run([c for c in cases if c.id in ids], min_time, progress=False)),
                        max_regression, metrics)
        before = {(key, metric) for key, metric, *_ in bad}
        bad = [b for b in again if (b[0], b[1]) in before]
    return bad


def positive_ints(text):
    """An argparse type: comma-separated positive integers, each may be written as 2**20."""
    out = []
    try:
        for x in text.split(","):
            base, _, exp = x.strip().partition("**")
            out.append(int(base) ** int(exp) if exp else int(base))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 4096,2**20, got {text!r}") \
            from None
    if any(n <= 0 for n in out):
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return out


def _backends_here(platform):
    """What --backends may name on this platform: its own backends, and the interpreter."""
    return tuple(dict.fromkeys(platform_backends(platform) + ("interpret",)))


def parser(prog="surrogate-pallas bench"):
    ap = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0],
                                 formatter_class=HelpFormatter)
    ap.add_argument("--full", action="store_true", help="the full matrix (sizes 2^12..2^24, T 8/64/256, f32+bf16)")
    ap.add_argument("--sizes", type=positive_ints, help="comma-separated neuron counts, e.g. 4096,2**20 "
                    "(default: 2**12,2**17; --full: 2**12..2**24)")
    ap.add_argument("--steps", type=positive_ints, help="comma-separated T values (default: 64; --full: 8,64,256)")
    ap.add_argument("--dtypes", type=lambda s: s.split(","), help="float32,bfloat16 (default: float32)")
    ap.add_argument("--spike-dtypes", type=lambda s: [None if x in ("", "same") else x for x in s.split(",")],
                    help="spike storage: same,int8,bfloat16 (default: same; --full: same,int8). Forward + "
                         "backward leaves int8 out: integer spikes carry no gradient")
    ap.add_argument("--ops", type=lambda s: s.split(","), help="some of " + ",".join(OPS) + " (default: all)")
    ap.add_argument("--backends", type=lambda s: s.split(","),
                    help="default: every backend on this platform (cpu: xla,scan; cuda: xla,triton,mosaic,scan; "
                         "tpu: xla,pallas,scan); interpret runs the Pallas kernels interpreted")
    ap.add_argument("--min-time", type=float, default=0.05, help="seconds of timed calls per case")
    ap.add_argument("--json", type=Path, help="write the results here")
    ap.add_argument("--save", metavar="NAME", help="store the results as benchmarks/baselines/NAME.json")
    ap.add_argument("--baseline-dir", type=Path, default=Path("benchmarks/baselines"))
    ap.add_argument("--compare", type=Path, metavar="BASELINE.json", help="gate on a saved baseline")
    ap.add_argument("--max-regression", default="10%", help="allowed drop of a ratio, e.g. 10%%")
    ap.add_argument("--confirm", type=int, default=2, metavar="N",
                    help="time a case that looks regressed N more times; report it only if it stays regressed")
    ap.add_argument("--gate-roofline", action="store_true",
                    help="gate on the roofline fraction too, not only on the speed-up over the plain-JAX "
                         "baseline (for machines whose copies run steadily, such as a GPU)")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    return ap


def main(argv=None, prog="surrogate-pallas bench") -> int:
    args = parser(prog).parse_args(argv)
    try:
        max_reg, baseline = read_gate(args.max_regression, args.compare,
                                      "save one first with `surrogate-pallas bench --save NAME`, or compare "
                                      "against the shipped benchmarks/baselines/cpu-quick.json")
        if args.confirm < 0:
            raise ValueError(f"--confirm: expected a count >= 0, got {args.confirm}")
        for op in args.ops or ():
            if op not in OPS:
                raise ValueError(f"--ops: unknown op {op!r}; expected some of {', '.join(OPS)}")
        for d in (args.dtypes or []) + [d for d in (args.spike_dtypes or []) if d]:
            if d not in ITEMSIZE:
                raise ValueError(f"--dtypes/--spike-dtypes: unknown dtype {d!r}; expected some of {', '.join(ITEMSIZE)}")
        here = _backends_here(jax.default_backend())
        for b in args.backends or ():
            if b not in here:
                raise ValueError(f"--backends: {b!r} is not available on this platform ({jax.default_backend()}); "
                                 f"expected some of {', '.join(here)}")
    except (ValueError, OSError, json.JSONDecodeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    cases = matrix(args.full, args.sizes, args.steps, args.dtypes, args.ops, args.backends, args.spike_dtypes)
    results = run(cases, args.min_time, progress=not args.quiet)
    doc = dict(meta=meta(), results=results)
    print(f"# {doc['meta']['device']} ({doc['meta']['platform']}), jax {doc['meta']['jax']}")
    print(table(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(doc, indent=1))
    if args.save:
        path = args.baseline_dir / f"{args.save}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc, indent=1))
        print(f"saved baseline {path}")
    if baseline is not None:
        metrics = GATED + (("roofline_fraction",) if args.gate_roofline else ())
        bad = confirmed(cases, baseline, compare(baseline, doc, max_reg, metrics), max_reg, metrics,
                        args.confirm, args.min_time)
        for key, metric, old, new in bad:
            print(f"REGRESSION {key}: {metric} {old:.3f} -> {new:.3f}")
        if bad:
            print(f"{len(bad)} regression(s) beyond {max_reg:.0%}", file=sys.stderr)
            return 1
        print(f"no regression beyond {max_reg:.0%} against {args.compare}")
    return 0


if __name__ == "__main__":
    sys.exit(main(prog="python -m surrogate_pallas.tooling.bench"))
