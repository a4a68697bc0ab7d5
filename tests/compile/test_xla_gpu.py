"""Whole programs compiled by XLA:GPU for the H100 and the H200, with no GPU (deviceless), in both GPU
backends: Pallas Triton through XLA's own Triton (whose kernels must not spill registers, read from
the PTX XLA writes by ``ptxas -v``), and Mosaic GPU.

The matrix is the TPU one (``programs.ci_matrix``: every model x every program kind, then every dtype
and spike dtype over aligned and ragged populations of 1-3 dims); each program compiles for one of
the two GPUs in turn (so each GPU compiles every model and program kind), in both backends.
``SP_AOT_MATRIX=full`` compiles the full cross product for both GPUs; ``core`` every model x kind.
"""
import os

import jax
import jax.numpy as jnp
import pytest
from jax.sharding import NamedSharding, PartitionSpec as P

import surrogate_pallas as sp
from surrogate_pallas.tooling.aot import programs, xla_gpu

FULL = os.environ.get("SP_AOT_MATRIX") == "full"
CORE = os.environ.get("SP_AOT_MATRIX") == "core"
MATRIX = programs.full_matrix() if FULL else programs.core_matrix() if CORE else programs.ci_matrix()
GPUS = tuple(xla_gpu.TARGETS)
OLD_XLA = tuple(map(int, jax.__version__.split(".")[:2])) < (0, 11)  # writes the PTX of its Triton kernels
CASES = [(p, backend, GPUS if FULL else (GPUS[(i + i // len(programs.WHATS) + k) % len(GPUS)],))
         for i, p in enumerate(MATRIX) for k, backend in enumerate(xla_gpu.GPU_BACKENDS)]


def test_each_gpu_compiles_every_model_and_program_kind_in_both_backends():
    for gpu in GPUS:
        for backend in xla_gpu.GPU_BACKENDS:
            cases = [p for p, b, gpus in CASES if b == backend and gpu in gpus]
            assert {p.model for p in cases} == set(programs.MODELS) and {p.what for p in cases} == set(programs.WHATS)


def _id(case):
    return getattr(case, "id", None) or (case if isinstance(case, str) else "+".join(case))


@pytest.mark.parametrize("program,backend,gpus", CASES, ids=_id)
def test_compiles_for_nvidia_gpus(program, backend, gpus):
    fn, args = program.build(gpu_backend=backend)
    failures = []
    for gpu in gpus:
        r = xla_gpu.compile_program(fn, args, gpu, functions=backend == "triton")
        where = f"{program.id} (model {program.model}, program {program.what}, pop {program.pop}, T={program.T}, " \
                f"dtype {program.dtype}, spikes {program.spike_dtype or program.dtype}) with gpu_backend={backend} " \
                f"on XLA:GPU {gpu}"
        if not r.ok:
            failures.append(f"{where}: {r.error}")
        elif r.kernels[backend] < 1:  # compiled without the kernel: nothing was checked
            failures.append(f"{where}: no {backend} kernel in the compiled program ({r.kernels})")
        elif backend == "triton" and (r.functions is not None or OLD_XLA):
            # XLA's own Triton build of the kernels (and its fusions): no register spills.  jax 0.10's XLA
            # writes its PTX (so this is checked on every program there); jax 0.12's writes none.
            figures = r.functions or []
            failures += [f"{where}: {f['name']} spills {f['spill_bytes']} B ({f['stack_bytes']} B stack)"
                         for f in figures if f["spill_bytes"] or f["stack_bytes"]]
            if not any(f["name"].startswith("neuron_") for f in figures):
                failures.append(f"{where}: ptxas saw no Triton kernel ({[f['name'] for f in figures]})")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("backend", xla_gpu.GPU_BACKENDS)
def test_a_program_sharded_over_eight_gpus_compiles(backend):
    """lif_sequence and its gradient over 8 H200s, the neurons split across them."""
    mesh = xla_gpu.mesh("h200", 8)
    p = sp.presets.spikingjelly(tau=2.0)
    spec = NamedSharding(mesh, P(None, "x"))
    j = jax.ShapeDtypeStruct((16, 8 * 1000), jnp.float32, sharding=spec)
    v = jax.ShapeDtypeStruct((8 * 1000,), jnp.float32, sharding=NamedSharding(mesh, P("x")))

    def loss(j, v):
        st, out = sp.lif_sequence(j, p.init_state((8000,))._replace(v=v), p, backend="pallas", gpu_backend=backend)
        return jnp.sum(out.s) + jnp.sum(st.v)

    r = xla_gpu.compile_program(jax.grad(loss, (0, 1)), (j, v), "h200", mesh_=mesh)
    assert r.ok, r.error
    assert r.kernels[backend] >= 2  # forward and backward


def test_a_gpu_compile_failure_is_reported_by_name():
    def broken(x):
        return x.reshape(7, -1)  # 7 does not divide 1000
    r = xla_gpu.compile_program(broken, (jax.ShapeDtypeStruct((1000,), jnp.float32),), "h100")
    assert not r.ok and "TypeError" in r.error
    with pytest.raises(ValueError, match="GPU target: expected one of"):
        xla_gpu.topology("a100")


def test_inspect_reads_the_whole_program_that_xla_gpu_compiled():
    """``inspect``'s gpu-* rows: compiled, the program's bytes against the ideal, moves, temporaries."""
    from surrogate_pallas.tooling.aot import report
    prog = programs.Program("spikingjelly_hard", "fwd", (65536,), T=64)
    rows = report.inspect_program(prog, ["gpu-h200", "gpu-h100-mosaic"])
    assert all(r["compiled"] for r in rows), [r["error"] for r in rows]
    triton = rows[0]
    assert triton["kernels"] >= 1 and triton["moves"] == 0
    assert 0.99 < triton["bytes_ratio"] < 1.01  # aligned N: exactly the kernel's own reads and writes
    text = report.table(rows)
    assert "gpu-h100-mosaic" in text and "XLA:GPU bytes ratio at most" in text


@pytest.mark.parametrize("backend", xla_gpu.GPU_BACKENDS)
def test_an_exported_artifact_compiles_for_the_gpus(backend):
    """``jax.export`` for cuda (with cpu and tpu), serialized and read back, compiles for the H100 and
    H200: forward and fused backward, the kernels intact."""
    from jax import export
    p = sp.presets.spikingjelly(tau=2.0)

    def f(j, v):
        def loss(j, v):
            st, out = sp.lif_sequence(j, sp.NeuronState(v), p, backend="pallas", gpu_backend=backend)
            return jnp.sum(out.s * j) + jnp.sum(st.v)
        return jax.grad(loss, (0, 1))(j, v)

    args = (jax.ShapeDtypeStruct((16, 1000), jnp.float32), jax.ShapeDtypeStruct((1000,), jnp.float32))
    checks = [export.DisabledSafetyCheck.custom_call(c) for c in ("__gpu$xla.gpu.triton", "mosaic_gpu_v2")]
    exp = export.export(jax.jit(f), platforms=("cpu", "cuda", "tpu"), disabled_checks=checks)(*args)
    back = export.deserialize(exp.serialize())
    for gpu in GPUS:
        r = xla_gpu.compile_program(back.call, args, gpu)
        assert r.ok, f"{backend} on {gpu}: {r.error}"
        assert r.kernels[backend] >= 2, r.kernels
