"""``surrogate-pallas inspect``: static figures from the real compilers, and a gate on them.

For every program of ``programs.inspect_matrix()`` and every target it reports
whether it compiled; for TPU the whole compiled program's HBM bytes against the
fused kernels' ideal bytes, the kernels' VMEM and XLA's temporaries, and any
sequence-sized copy, pad or slice left around the kernels; for NVIDIA each
Triton kernel's registers, spills and shared memory (the pip ``triton`` build);
for the H100 and H200 the whole program compiled by XLA:GPU, in each GPU backend:
its bytes against the ideal, sequence-sized moves and temporaries.  None of it is timing, so
none of it is noise: ``--compare BASELINE --max-regression 5%`` fails on any
figure that got worse.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
from pathlib import Path

from ..gate import read_flags
from ..help_format import HelpFormatter

from . import network_programs, programs

TPU_TARGETS = ("tpu-v4", "tpu-v5e", "tpu-v5p", "tpu-v6e")
CUDA_TARGETS = ("cuda-sm80", "cuda-sm90", "cuda-sm100")
GPU_TARGETS = ("gpu-h100", "gpu-h200", "gpu-h100-mosaic", "gpu-h200-mosaic")  # XLA:GPU, whole programs
TARGETS = TPU_TARGETS + CUDA_TARGETS + GPU_TARGETS
# figure -> absolute slack below which a change is not a regression (every gated figure: higher is worse)
GATED = {"bytes_ratio": 0.0, "vmem_bytes": 64 * 2**10, "temp_bytes": 64 * 2**10, "moves": 0,
         "registers": 0, "spill_bytes": 0, "shared_bytes": 1024, "bytes_per_spike": 0}
STRICT = ("moves", "spill_bytes")  # any increase is a regression


def _network(program) -> bool:
    return isinstance(program, network_programs.NetworkProgram)


def _build(program, target, gpu_backend="triton"):
    """A program's function and abstract arguments for a kernel ``target`` (``tpu`` or ``triton``)."""
    return program.build(target) if _network(program) else program.build(gpu_backend=gpu_backend)


def _network_figures(program, target, moved):
    """A network program's bytes without its weight rows (read per spike, not per chunk), per step."""
    moved = None if moved is None else moved - program.weight_bytes(target)  # None: a loop XLA runs (not modelled)
    return dict(hbm_bytes=moved, bytes_per_step=None if moved is None else moved / program.T,
                ideal_per_step=program.ideal_bytes() / program.T,
                bytes_per_spike=program.bytes_per_spike(target),
                propagation=program.simulator(target).propagation)


def inspect_tpu(program, gen):
    from . import tpu
    fn, args = _build(program, "tpu")
    min_move = program.T * program.n if _network(program) else None  # a [T, N] array of the chunk
    r = tpu.compile_program(fn, args, gen, min_move_bytes=min_move)
    row = dict(compiled=r.ok, error=r.error)
    if r.ok:
        ideal = program.ideal_bytes()
        row.update(hbm_bytes=r.hbm_bytes, touched_bytes=r.touched_bytes, xla_bytes=r.xla_bytes,
                   kernel_bytes=r.kernel_bytes, ideal_bytes=ideal, vmem_bytes=r.vmem_bytes,
                   temp_bytes=r.temp_bytes, kernels=r.kernels, moves=len(r.moves), move_ops=list(r.moves))
        if _network(program):
            row.update(_network_figures(program, "tpu", r.hbm_bytes))
        row["bytes_ratio"] = None if not ideal else row["hbm_bytes"] / ideal
    return row


def inspect_cuda(program, arch):
    from . import nvidia
    fn, args = _build(program, "triton")
    ks = nvidia.compile_program(fn, args, (arch,))
    ok = all(k.ok for k in ks)
    row = dict(compiled=ok, error=next((f"{k.name}: {k.error}" for k in ks if not k.ok), None),
               kernels=[dict(name=k.name, registers=k.registers, spill_bytes=k.spill_bytes,
                             stack_bytes=k.stack_bytes, shared_bytes=k.shared_bytes, num_warps=k.num_warps)
                        for k in ks])
    if ok and ks:
        row.update(registers=max(k.registers for k in ks), spill_bytes=sum(k.spill_bytes for k in ks),
                   shared_bytes=max(k.shared_bytes for k in ks))
    if _network(program):
        row["propagation"] = program.simulator("triton").propagation
    return row


def inspect_gpu(program, target):
    """The whole program compiled by XLA:GPU: ``target`` is ``h100`` or ``h200``, with ``-mosaic`` for
    the Mosaic GPU backend (else Pallas Triton)."""
    import math

    import jax
    import jax.numpy as jnp

    from . import hbm, tpu, xla_gpu
    gpu, _, mosaic = target.partition("-")
    backend = "mosaic" if mosaic else "triton"
    fn, args = _build(program, "triton", backend)
    r = xla_gpu.compile_program(fn, args, gpu, functions=True)
    row = dict(compiled=r.ok, error=r.error)
    if r.ok:
        ideal = program.ideal_bytes()
        moved = hbm.hbm_bytes(r.hlo)  # no on-chip memory space on a GPU: every operand and result
        biggest = max((math.prod(a.shape) * jnp.dtype(a.dtype).itemsize for a in jax.tree.leaves(args)), default=0)
        if _network(program):
            row.update(_network_figures(program, "triton", moved))
            moved, biggest = row["hbm_bytes"], 2 * program.T * program.n
        moves = tpu.moves(r.hlo, max(biggest // 2, 1))
        row.update(hbm_bytes=moved, ideal_bytes=ideal, bytes_ratio=None if not (ideal and moved) else moved / ideal,
                   temp_bytes=r.temp_bytes, kernels=r.kernels[backend], moves=len(moves), move_ops=list(moves),
                   functions=r.functions)
        if r.functions:  # XLA's own Triton build (and its fusions); Mosaic GPU's kernels are not among them
            row.update(registers=max(f["registers"] for f in r.functions),
                       spill_bytes=sum(f["spill_bytes"] + f["stack_bytes"] for f in r.functions))
    return row


def inspect_program(p, targets):
    rows = []
    for t in targets:
        kind, _, which = t.partition("-")
        if _network(p) and t.endswith("-mosaic"):
            continue  # no Mosaic GPU network kernel yet (the table says so)
        row = inspect_tpu(p, which) if kind == "tpu" else inspect_gpu(p, which) if kind == "gpu" \
            else inspect_cuda(p, which)
        rows.append(dict(key=f"{p.id}|{t}", id=p.id, target=t, **row))
    return rows


def run(progs, targets, progress=True, jobs=1):
    """Rows for every program and target, in order.  ``jobs > 1`` compiles programs in that many
    fresh processes (the compilers are single-threaded; JAX is not fork-safe, so they are spawned)."""
    try:
        from tqdm import tqdm
    except ImportError:
        tqdm = None
    bar = tqdm(total=len(progs) * len(targets), desc="inspect", unit="program", file=sys.stderr,
               disable=not progress) if tqdm else None
    rows = []
    pool = None
    if jobs > 1 and len(progs) > 1:
        import concurrent.futures
        import multiprocessing
        pool = concurrent.futures.ProcessPoolExecutor(min(jobs, len(progs)),
                                                      mp_context=multiprocessing.get_context("spawn"))
    try:
        results = pool.map(inspect_program, progs, [targets] * len(progs)) if pool \
            else (inspect_program(p, targets) for p in progs)
        for r in results:
            rows += r
            if bar:
                bar.update(len(r))
    finally:
        if pool:
            pool.shutdown(cancel_futures=True)
        if bar:
            bar.close()
    return rows


def meta():
    import jax
    import jaxlib
    out = dict(date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               jax=jax.__version__, jaxlib=jaxlib.__version__, python=sys.version.split()[0])
    for mod in ("libtpu", "triton"):
        try:
            out[mod] = __import__(mod).__version__
        except (ImportError, AttributeError):
            from importlib import metadata
            try:
                out[mod] = metadata.version(mod)
            except metadata.PackageNotFoundError:
                out[mod] = None
    return out


def _mib(x):
    return f"{x / 2**20:.2f}"


def _bytes_table(rows, w, tw, bytes_head, last_head, last):
    """A table of compiled bytes against the ideal: ``last(row)`` is its last column."""
    head = (f"{'program':<{w}} {'target':<{tw}} {'ok':<3} {bytes_head:>9} {'ideal':>9} {'ratio':>6} {'moves':>5} "
            f"{last_head:>8}")
    lines = [head, "-" * len(head)]
    for r in rows:
        if not r["compiled"]:
            lines.append(f"{r['id']:<{w}} {r['target']:<{tw}} NO  {r['error']}")
            continue
        ratio = "-" if r["bytes_ratio"] is None else f"{r['bytes_ratio']:.2f}x"
        ideal = "-" if not r["ideal_bytes"] else _mib(r["ideal_bytes"])
        lines.append(f"{r['id']:<{w}} {r['target']:<{tw}} yes {_mib(r['hbm_bytes'] or 0):>9} {ideal:>9} "
                     f"{ratio:>6} {r['moves']:>5} {last(r):>8}")
    return lines


def table(rows) -> str:
    """Three tables (TPU: bytes and VMEM; NVIDIA, the pip triton build: registers, spills, shared
    memory; XLA:GPU: bytes and temporaries), then a summary."""
    w = max([52] + [len(r["id"]) for r in rows])
    tpu = [r for r in rows if r["target"].startswith("tpu")]
    cuda = [r for r in rows if r["target"].startswith("cuda")]
    gpu = [r for r in rows if r["target"].startswith("gpu")]
    lines = []
    if tpu:
        lines += _bytes_table(tpu, w, 10, "HBM MiB", "VMEM KiB", lambda r: r["vmem_bytes"] // 1024)
        lines += ["ratio: the compiled program's HBM bytes over the least the fused kernels must move.  Below "
                  "1.00x, XLA kept arrays in on-chip memory that the ideal counts as HBM traffic (layer rows: "
                  "the currents and spikes passed between the matmul, the kernel and the count).", ""]
    if cuda:
        head = f"{'program':<{w}} {'target':<10} {'ok':<3} {'regs':>5} {'spill':>5} {'smem':>6}"
        lines += [head, "-" * len(head)]
        for r in cuda:
            if not r["compiled"]:
                lines.append(f"{r['id']:<{w}} {r['target']:<10} NO  {r['error']}")
                continue
            lines.append(f"{r['id']:<{w}} {r['target']:<10} yes {r.get('registers', '-'):>5} "
                         f"{r.get('spill_bytes', '-'):>5} {r.get('shared_bytes', '-'):>6}")
        lines.append("")
    if gpu:
        lines += _bytes_table(gpu, w, 16, "MiB", f"{'temp MiB':>8} {'regs':>4} {'spill':>5}",
                              lambda r: f"{_mib(r['temp_bytes']):>8} {r.get('registers', '-'):>4} "
                                        f"{r.get('spill_bytes', '-'):>5}")
        lines += ["gpu-*: XLA:GPU compiled the whole program for that GPU (-mosaic: the Mosaic GPU backend, else "
                  "Pallas Triton); MiB: the bytes its ops and kernels read and write in device memory; the last two: "
                  "the most registers and the spilled bytes of the GPU functions XLA compiled (its fusions and "
                  "the Triton kernels; not the Mosaic GPU kernels).", ""]
    nets = [r for r in rows if r["id"].startswith("network/") and r["compiled"] and not r["target"].startswith("cuda")]
    if nets:
        lines += network_table(nets, w)
    lines.append(summary(rows))
    return "\n".join(lines)


def network_table(rows, w) -> list[str]:
    """Per simulated step: a network program's bytes (without its weight rows), the least, and what a
    spike reads."""
    def kib(x):
        return "-" if x is None else f"{x / 1024:.1f}"
    head = f"{'network program':<{w}} {'target':<10} {'runs':<7} {'KiB/step':>9} {'ideal':>7} {'KiB/spike':>9}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['id']:<{w}} {r['target']:<10} {r.get('propagation', '-'):<7} {kib(r.get('bytes_per_step')):>9} "
                     f"{kib(r.get('ideal_per_step')):>7} {kib(r.get('bytes_per_spike')):>9}")
    lines += ["runs: kernel (the fused network kernel) or lists (the XLA path, where the kernel cannot hold the "
              "network); KiB/step: bytes per simulated step without the weight rows, which a spike reads "
              "(KiB/spike: a dense row per outgoing projection); ideal: the state once per chunk and the spike flags "
              "written and read once.  No Mosaic GPU network kernel yet: network programs skip the -mosaic "
              "targets.", ""]
    return lines


def summary(rows) -> str:
    """One line: how many compiled, the worst bytes ratio, sequence-sized moves, registers and spills."""
    ok = [r for r in rows if r["compiled"]]
    nets = [r for r in ok if r["id"].startswith("network/")]
    ok_all, ok = ok, [r for r in ok if not r["id"].startswith("network/")]
    ratios = [r["bytes_ratio"] for r in ok if r.get("bytes_ratio") is not None and r["target"].startswith("tpu")]
    gpu = [r for r in ok if r["target"].startswith("gpu")]
    gpu_ratios = [r["bytes_ratio"] for r in gpu if r.get("bytes_ratio") is not None]
    regs = [r["registers"] for r in ok if r.get("registers") is not None]
    parts = [f"{len(ok_all)} of {len(rows)} program x target pairs compiled"]
    if ratios:
        parts.append(f"TPU bytes ratio at most {max(ratios):.2f}x, "
                     f"{sum(r.get('moves') or 0 for r in ok if r['target'].startswith('tpu'))} "
                     "sequence-sized moves")
    if gpu_ratios:
        parts.append(f"XLA:GPU bytes ratio at most {max(gpu_ratios):.2f}x, {sum(r.get('moves') or 0 for r in gpu)} "
                     "sequence-sized moves")
    if regs:
        parts.append(f"NVIDIA at most {max(regs)} registers, {sum(r.get('spill_bytes') or 0 for r in ok)} "
                     "spill bytes")
    kernel = [r for r in nets if r.get("propagation") == "kernel"]
    if nets:
        parts.append(f"networks: {len(kernel)} of {len(nets)} pairs on the fused kernel, at most "
                     f"{max((r.get('registers') or 0) for r in nets)} registers, "
                     f"{sum(r.get('spill_bytes') or 0 for r in nets)} spill bytes")
    return "summary: " + "; ".join(parts)


def compare(baseline: dict, current: dict, max_regression: float):
    """Every figure that got worse: a program that stopped compiling, any new spill or sequence-sized
    move, and bytes ratio, VMEM, temporaries, registers or shared memory up by more than
    ``max_regression`` (beyond a small absolute slack).  Returns (key, figure, old, new)."""
    base = {r["key"]: r for r in baseline["results"]}
    out = []
    for r in current["results"]:
        b = base.get(r["key"])
        if b is None:
            continue
        if b["compiled"] and not r["compiled"]:
            out.append((r["key"], "compiled", True, False))
            continue
        for fig, slack in GATED.items():
            old, new = b.get(fig), r.get(fig)
            if old is None or new is None:
                continue
            limit = old if fig in STRICT else old + max(old * max_regression, slack)
            if new > limit:
                out.append((r["key"], fig, old, new))
    return out


def _targets(text):
    out = [t.strip() for t in text.split(",") if t.strip()]
    bad = [t for t in out if t not in TARGETS]
    if bad or not out:
        raise argparse.ArgumentTypeError(f"unknown target(s) {', '.join(bad) or text!r}; expected some of "
                                         f"{', '.join(TARGETS)}")
    return out


def _jobs(text):
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number of processes, got {text!r}")
    return n


def parser(prog="surrogate-pallas inspect"):
    ap = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0],
                                 formatter_class=HelpFormatter)
    ap.add_argument("--targets", type=_targets, default=list(TARGETS), help="comma-separated, from: "
                    + ", ".join(TARGETS))
    ap.add_argument("--json", action="store_true", help="print the report as JSON instead of a table")
    ap.add_argument("--out", type=Path, default=None, help="also write the JSON report to this file")
    ap.add_argument("--compare", type=Path, metavar="BASELINE.json", default=None,
                    help="exit 1 if any figure is worse than in this saved report")
    ap.add_argument("--max-regression", default="5%", help="allowed growth of bytes, VMEM, registers, shared memory")
    ap.add_argument("--jobs", type=_jobs, default=min(4, os.cpu_count() or 1),
                    help="programs compiled in parallel, each in its own process (default: this machine's cores, at most 4)")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    return ap


def main(argv=None, prog="surrogate-pallas inspect") -> int:
    args = parser(prog).parse_args(argv)
    gated = read_flags(args, "write one first with `surrogate-pallas inspect --out FILE`, or compare against "
                             "the shipped benchmarks/baselines/inspect.json")
    if gated is None:
        return 2
    max_reg, baseline = gated
    try:
        rows = run(programs.inspect_matrix() + network_programs.inspect_matrix(), args.targets,
                   progress=not args.quiet, jobs=args.jobs)
    except RuntimeError as e:  # a missing compiler (the aot extra) or moved JAX internals
        print(f"error: {e}", file=sys.stderr)
        return 2
    doc = dict(meta=meta(), results=rows)
    print(json.dumps(doc, indent=1) if args.json else table(rows))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(doc, indent=1) + "\n")
    failed = [r for r in rows if not r["compiled"]]
    status = 0
    if failed:
        print(f"{len(failed)} program(s) failed to compile", file=sys.stderr)
        status = 1
    if baseline is not None:
        bad = compare(baseline, doc, max_reg)
        for key, fig, old, new in bad:
            print(f"REGRESSION {key}: {fig} {old} -> {new}", file=sys.stderr)
        if bad:
            print(f"{len(bad)} regression(s) beyond {max_reg:.0%} against {args.compare}", file=sys.stderr)
            status = 1
        else:
            print(f"no regression beyond {max_reg:.0%} against {args.compare}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main(prog="python -m surrogate_pallas.tooling.aot.report"))
