"""The fused network kernel compiled by the real compilers, with no accelerator: libtpu for TPU v4, v5e,
v5p and v6e; the pip Triton for sm_80, sm_90 and sm_100 (no register spills); XLA:GPU whole programs
for the H100 and the H200 (its own Triton build: no spills).  The benchmark networks at 4k neurons
(what ``auto`` runs there: the kernel), and a ragged network of three populations with delays, Poisson
input and traces.  (400k, on the XLA path, is compiled by ``surrogate-pallas inspect``.)"""
import jax
import jax.numpy as jnp
import pytest

from surrogate_pallas.networks import Simulator
from surrogate_pallas.tooling.aot import network_programs, nvidia, tpu, xla_gpu

from helpers.networks import rich

PROGRAMS = [network_programs.NetworkProgram(k, "4k", T=100) for k in network_programs.KINDS]
OLD_XLA = tuple(map(int, jax.__version__.split(".")[:2])) < (0, 11)  # writes the PTX of its Triton kernels


def _rich(target):
    sim = Simulator(rich(), seed=0, target=target)
    fn = sim.chunk_function(50, sim.capacity_for(50))
    return fn, network_programs._abstract((sim.state, jnp.int32(0), sim.constants))


CASES = [(p.id, lambda t, p=p: p.build(t)) for p in PROGRAMS] + [("rich-3-populations", _rich)]


@pytest.mark.parametrize("name,build", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("gen", tuple(tpu.GENERATIONS))
def test_compiles_for_tpu(name, build, gen):
    r = tpu.compile_program(*build("tpu"), gen)
    assert r.ok, f"{name} on TPU {gen}: {r.error}"
    assert r.kernels == 1 and 0 < r.vmem_bytes < 16 << 20, (name, gen, r.kernels, r.vmem_bytes)


@pytest.mark.parametrize("name,build", CASES, ids=[c[0] for c in CASES])
def test_compiles_for_nvidia_with_no_spill(name, build):
    ks = nvidia.compile_program(*build("triton"))
    assert [k.name for k in ks] == ["network_triton"] * len(nvidia.ARCHS), [k.name for k in ks]
    for k in ks:
        assert k.ok, f"{name} on {k.arch}: {k.error}"
        assert k.spill_bytes == 0 and k.stack_bytes == 0, f"{name} on {k.arch}: {k}"


@pytest.mark.parametrize("name,build", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("gpu", tuple(xla_gpu.TARGETS))
def test_compiles_whole_for_h100_and_h200(name, build, gpu):
    r = xla_gpu.compile_program(*build("triton"), gpu, functions=True)
    assert r.ok, f"{name} on XLA:GPU {gpu}: {r.error}"
    assert r.kernels["triton"] == 1, r.kernels
    if r.functions is not None or OLD_XLA:
        kernel = [f for f in r.functions or [] if f["name"].startswith("network_")]
        assert kernel, f"{name} on {gpu}: ptxas saw no network kernel"
        assert all(f["spill_bytes"] == 0 and f["stack_bytes"] == 0 for f in kernel), kernel


def test_inspect_reports_network_programs_per_step():
    from surrogate_pallas.tooling.aot import report
    p = network_programs.NetworkProgram("cuba", "4k", T=100)
    rows = report.inspect_program(p, ["tpu-v5e", "cuda-sm90", "gpu-h200", "gpu-h200-mosaic"])
    assert [r["target"] for r in rows] == ["tpu-v5e", "cuda-sm90", "gpu-h200"]  # no Mosaic GPU network kernel
    assert all(r["compiled"] and r["propagation"] == "kernel" for r in rows), rows
    tpu_row, _, gpu_row = rows
    # a spike reads one dense row of 4096 floats per projection (excitatory and inhibitory)
    assert tpu_row["bytes_per_spike"] == gpu_row["bytes_per_spike"] == 2 * 4096 * 4
    # the weights (2 x 64 MiB) are read by rows, not per chunk: left out of the per-step bytes
    assert 0 < tpu_row["bytes_per_step"] < 1 << 20 and 0 < gpu_row["bytes_per_step"] < 1 << 20
    assert rows[1]["spill_bytes"] == 0 and (gpu_row["spill_bytes"] == 0 if OLD_XLA else True)  # newer XLA writes no PTX
    assert "network program" in report.table(rows) and "networks: 3 of 3 pairs on the fused kernel" in report.summary(rows)


@pytest.mark.parametrize("target", ["tpu", "triton"])
def test_a_batch_of_networks_compiles_on_the_kernel(target):
    """``BatchSimulator``: a grid axis of the kernel on a GPU, the members in turn on a TPU."""
    from surrogate_pallas.networks import BatchSimulator, benchmark
    nets = [benchmark.build("cuba", 1000, seed=s) for s in (0, 1)]
    batch = BatchSimulator(nets, [0, 1])
    batch.members = [Simulator(n, seed=s, target=target) for n, s in zip(nets, (0, 1))]
    consts = jax.tree.map(lambda *a: jnp.stack(a), *[m.constants for m in batch.members])
    args = network_programs._abstract((batch._state(), jnp.int32(0), consts))
    fn = batch.batched_chunk(100, 2000)
    if target == "tpu":
        r = tpu.compile_program(fn, args, "v5e")
        assert r.ok and r.kernels == 1, r.error
    else:
        r = xla_gpu.compile_program(fn, args, "h200")
        assert r.ok and r.kernels["triton"] == 1, r.error
