"""The fused network kernel (kernels/network.py) against the XLA path: the same state, the same spikes,
the same traces, bit for bit, on a network with every part a network can have; across chunk
boundaries and checkpoints; in the TPU interpreter with race detection; and the same errors."""
import jax
import numpy as np
import pytest

from surrogate_pallas import networks as nw
from surrogate_pallas.kernels import launches, network as kernel

from helpers.networks import rich
from helpers.tpu_races import races_found


def _same(got, want):
    for name in want.spikes:
        np.testing.assert_array_equal(got.spikes[name].i, want.spikes[name].i, err_msg=name)
        np.testing.assert_array_equal(got.spikes[name].step, want.spikes[name].step, err_msg=name)
        np.testing.assert_array_equal(got.counts[name], want.counts[name], err_msg=name)
    for g, w in zip(got.traces, want.traces):
        np.testing.assert_array_equal(g[3], w[3], err_msg=f"trace {g[0]}.{g[1]}")


def _states_equal(a, b):
    for x, y in zip(jax.tree.leaves(a.state), jax.tree.leaves(b.state)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def _lifted(fn):
    """Run with a chunk function's weights checked to be fused (one launch of the kernel per chunk)."""
    with launches.recording() as log:
        out = fn()
    return out, [k for k in log if k["name"].startswith("network_")]


def test_the_kernel_is_the_xla_path_bit_for_bit():
    net = rich()
    want_sim = net.simulator(seed=7, propagation="lists")
    want = want_sim.run(steps=600, chunk=250)
    sim = net.simulator(seed=7, backend="interpret")
    assert sim.propagation == "kernel"
    got, log = _lifted(lambda: sim.run(steps=600, chunk=250))
    assert log and all(k["target"] == "interpret" for k in log)
    assert all(len(want.spikes[p].i) > 20 for p in "ABC")
    _same(got, want)
    _states_equal(sim, want_sim)


def test_chunk_boundaries_and_checkpoints_change_nothing(tmp_path):
    """Pending delayed spikes cross chunk boundaries (the ring turns into the kernel's rows and back),
    and a run resumed from a checkpoint is the run never interrupted."""
    net = rich()
    want = net.simulator(seed=2, backend="interpret").run(steps=300, chunk=300)
    path = tmp_path / "ck.npz"
    first = net.simulator(seed=2, backend="interpret")
    first.run(steps=137, chunk=50, checkpoint=path)
    resumed = net.simulator(seed=2, backend="interpret").restore(path)
    _same(resumed.run(steps=163, chunk=100), want)
    # the checkpoint is the XLA path's too: either one resumes the other's
    _same(net.simulator(seed=2, propagation="lists").restore(path).run(steps=163, chunk=100), want)


def test_the_tpu_kernel_in_the_tpu_interpreter_with_race_detection():
    """Tiny: the TPU interpreter checks every DMA and every block for races, slowly."""
    net = rich(n_a=24, n_b=12, n_c=12)
    want = net.simulator(seed=1, propagation="lists").run(steps=30, chunk=30)
    sim = net.simulator(seed=1, backend="interpret_tpu")
    racy = []
    got, log = _lifted(lambda: sim.run(steps=30, chunk=15, progress=lambda done, total: racy.append(races_found())))
    assert [k["grid"] for k in log] == [(15,), (15,)] and racy == [False, False]
    assert sum(len(want.spikes[p].i) for p in "ABC") > 10
    _same(got, want)


@pytest.mark.parametrize("target,n,shape", [("tpu", 1000, (8, 128)), ("tpu", 1025, (16, 128)),
                                            ("triton", 1000, (1024,)), ("interpret", 5, (16,))])
def test_a_population_is_laid_out_for_its_target(target, n, shape):
    assert kernel.layout(target, n) == shape


def test_the_errors_are_the_xla_paths():
    net = nw.Network(dt=0.1)
    net.add_population("P", nw.cuba(), 10)
    with pytest.raises(ValueError, match="target: 'P' .* has no variable 'gx'"):
        net.connect("P", "P", nw.one_to_one(10), "gx")
    with pytest.raises(ValueError, match="spikes_per_pass"):
        net.simulator(backend="interpret", spikes_per_pass=0)
    with pytest.raises(ValueError, match="backend: expected one of"):
        net.simulator(backend="cuda")
    with pytest.raises(ValueError, match="Mosaic GPU's is not built yet"):
        nw.Simulator(net, target="mosaic")
    big = nw.Network(dt=0.1)
    big.add_population("P", nw.cuba(), kernel.ONE_BLOCK_MAX + 1)
    with pytest.raises(ValueError, match="backend: the triton network kernel holds the whole network in one block"):
        nw.Simulator(big, target="triton")


def test_auto_runs_the_kernel_where_it_holds_the_network_and_the_xla_path_elsewhere(monkeypatch):
    """On a GPU (only its lowering is asked here), a network beyond one block runs the XLA path, and says why."""
    from surrogate_pallas.networks import network
    monkeypatch.setattr(network.jax, "default_backend", lambda: "cuda")
    small, big = nw.benchmark.build("cuba", 1000), nw.benchmark.build("cuba", kernel.ONE_BLOCK_MAX + 1)
    sim = small.simulator()
    assert sim.target == "triton" and sim.propagation == "kernel" and sim.fallback is None
    sim = big.simulator()
    assert sim.target is None and sim.propagation in ("loops", "lists") and "one block" in sim.fallback
    with pytest.raises(ValueError, match="one block"):
        big.simulator(backend="pallas")


def test_the_race_check_is_not_vacuous():
    """A kernel that reads its DMA's destination before waiting for it is flagged."""
    from jax.experimental import pallas as pl
    from jax.experimental.pallas import tpu as pltpu
    import jax.numpy as jnp

    def racy(x_hbm, o_ref, buf, sem):
        cp = pltpu.make_async_copy(x_hbm, buf, sem)
        cp.start()
        o_ref[...] = buf[...]
        cp.wait()

    f = pl.pallas_call(racy, out_shape=jax.ShapeDtypeStruct((8, 128), jnp.float32),
                       in_specs=[pl.BlockSpec(memory_space=pl.ANY)],
                       scratch_shapes=[pltpu.VMEM((8, 128), jnp.float32), pltpu.SemaphoreType.DMA],
                       interpret=pltpu.InterpretParams(detect_races=True))
    try:  # jax 0.10 sets a flag; newer JAX raises from the interpreter's callback
        jax.block_until_ready(f(jnp.ones((8, 128))))
    except Exception as e:  # noqa: BLE001
        assert "RACE DETECTED" in str(e)
    else:
        assert races_found()


def test_a_batch_of_networks_on_the_kernel_is_each_network_run_alone():
    nets = [rich(seed=s) for s in (1, 2)]
    got = nw.BatchSimulator(nets, [5, 6], backend="interpret").run(steps=200, chunk=100)
    for net, seed, r in zip(nets, (5, 6), got):
        _same(r, net.simulator(seed=seed, propagation="lists").run(steps=200, chunk=100))
