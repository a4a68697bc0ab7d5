"""Networks: event-driven propagation against a dense transcription, bursts, delays, every kind of
population, checkpoints that resume spike for spike, and clear errors."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import surrogate_pallas as sp
from surrogate_pallas import networks as nw
from surrogate_pallas.derivation.steps import Values, bits_of, charge_of, reset_of, threshold_value
from surrogate_pallas.networks.propagate import add_row, add_rows, dense_oracle, record_fired, spike_lists
from surrogate_pallas.surrogates import fire

# a relay: fires whenever its input current exceeds 0.5, holds nothing
# the ways a network runs: the XLA path's two propagations, and the fused network kernel interpreted
PATHS = ["loops", "lists", "kernel"]


def simulator(net, path, **kw):
    if path == "kernel":
        return net.simulator(backend="interpret", **kw)
    return net.simulator(propagation=path, **kw)


RELAY = sp.Neuron("relay", state=("v",), params=(), charge=lambda p, s, j: {"v": j + 0.0 * s.v},
                  threshold=lambda p, h: 0.5, reset=lambda p, h, s, thr: {"v": h.v * 0.0},
                  surrogate="fast_sigmoid")


@pytest.mark.parametrize("K,p", [(8, 0.02), (4, 0.3), (3, 1.0), (16, 0.0), (64, 0.5)])
def test_spike_lists_propagate_every_spike_like_the_dense_product(K, p):
    """Few spikes, several lists, a burst (p = 1: all fire): every spike reaches its targets, as
    ``spikes @ W`` says."""
    rng = np.random.default_rng(0)
    conn = nw.fixed_probability(37, 23, 0.3, seed=0, weight=lambda r, m: r.integers(1, 8, m) * 0.25)
    fired = jnp.asarray(rng.random(37) < p)

    def body(idx, n_valid, acc):
        return add_rows(acc, idx, jnp.asarray(conn.targets), jnp.asarray(conn.weights))

    got = jax.jit(lambda f: spike_lists(f, K, body, jnp.zeros(23)))(fired)
    np.testing.assert_array_equal(got, dense_oracle(fired, jnp.asarray(conn.dense())))


@pytest.mark.parametrize("n,p", [(37, 0.02), (37, 0.3), (37, 1.0), (37, 0.0), (700, 0.05), (700, 1.0)])
def test_the_loops_record_and_propagate_every_spike_like_the_dense_product(n, p):
    """The loops' formulation: the fired neurons recorded ascending (a tree of groups, several levels
    at n = 700), each one's compressed row added: what ``spikes @ W`` says, in the same order."""
    rng = np.random.default_rng(1)
    conn = nw.fixed_probability(n, 23, 0.3, seed=0, weight=lambda r, m: r.integers(1, 8, m) * 0.25)
    fired = jnp.asarray(rng.random(n) < p)
    row_ptr, cols, w, _ = (jnp.asarray(a) for a in conn.csr())

    def run(f):
        ev, at = record_fired(f, jnp.full(n + 3, -1, jnp.int32), jnp.int32(2), fan=4, top=8)
        acc = jax.lax.fori_loop(2, at, lambda k, acc: add_row(acc, ev[k], row_ptr, cols, w), jnp.zeros(23))
        return ev, at, acc

    ev, at, acc = jax.jit(run)(fired)
    want = np.nonzero(np.asarray(fired))[0]
    assert int(at) == 2 + len(want)
    np.testing.assert_array_equal(np.asarray(ev)[2:int(at)], want)
    np.testing.assert_array_equal(acc, dense_oracle(fired, jnp.asarray(conn.dense())))


def test_the_loops_compile_natively_where_asked_and_the_lists_run_elsewhere():
    """Asked for (``SURROGATE_PALLAS_NATIVE_LOOPS=1`` before JAX starts), ``auto`` runs the loops compiled
    whole; not asked for (this test process), or asked for after JAX ran, it runs the lists: the same
    spikes."""
    import os
    import subprocess
    import sys
    sim = nw.benchmark.build("cuba", 200, 0).simulator()
    r = sim.run(steps=50)
    assert sim.propagation == "lists"
    code = ("import sys, jax, jax.numpy as jnp\n"
            "if sys.argv[1] == 'late': jax.jit(lambda x: x + 1)(jnp.ones(1)).block_until_ready()\n"
            "import surrogate_pallas.networks as nw\n"
            "sim = nw.benchmark.build('cuba', 200, 0).simulator(); r = sim.run(steps=50)\n"
            "print(sim.propagation, len(r.spikes['P'].i))\n")
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env.update(JAX_PLATFORMS="cpu", SURROGATE_PALLAS_NATIVE_LOOPS="1")
    got = {when: subprocess.run([sys.executable, "-c", code, when], capture_output=True, text=True, env=env,
                                check=True).stdout.split("\n")[-2] for when in ("early", "late")}
    n = len(r.spikes["P"].i)
    assert got["early"] == f"loops {n}" and n > 0
    # after JAX compiled something: jax 0.10's XLA has read its flags for good (the lists run); newer
    # JAX reads them again, and the loops run natively.  Either way the same spikes.
    late = {f"lists {n}"} if tuple(map(int, jax.__version__.split(".")[:2])) < (0, 11) else {f"lists {n}", f"loops {n}"}
    assert got["late"] in late


def _dense_run(net, steps):
    """The oracle: the same populations stepped in plain jnp, each projection a dense matrix product."""
    pops = list(net.populations.values())
    S = {p.name: {f: jnp.asarray(p.initial.get(f, p.params.init_state((p.n,)).field(f)), jnp.float32)
                  for f in p.params.neuron.state} for p in pops}
    Ws = [(pr, jnp.asarray(pr.conn.dense())) for pr in net.projections]
    spikes = {p.name: [] for p in pops}
    for t in range(steps):
        parts = {}
        for p in pops:
            P = Values({k: v for k, v in p.params.step_values().items()}, step=jnp.float32(t))
            B = bits_of(p.params.neuron, P, Values(S[p.name]))
            H = dict(charge_of(p.params.neuron, P, Values(S[p.name]), B, jnp.float32(0.0)))
            thr = threshold_value(p.params.neuron, P, Values(H), B)
            parts[p.name] = (P, B, H, fire(H[p.params.neuron.membrane] - thr, p.params.neuron.fire_on_equal))
        for pr, W in Ws:
            H = parts[pr.post][2]
            H[pr.target] = H[pr.target] + dense_oracle(parts[pr.pre][3], W)
        for p in pops:
            P, B, H, f = parts[p.name]
            S[p.name] = {k: jnp.asarray(v, jnp.float32) for k, v in
                         reset_of(p.params.neuron, P, Values(H), B, f.astype(jnp.float32)).items()}
            spikes[p.name].append(np.asarray(f))
    return {k: np.array(v) for k, v in spikes.items()}


@pytest.mark.parametrize("path", PATHS)
def test_a_network_equals_its_dense_transcription_spike_for_spike(path):
    """Two populations (CUBA onto COBA and back), dyadic weights (their sums are exact in any order)."""
    net = nw.Network(dt=0.1)
    rng = np.random.default_rng(5)
    net.add_population("A", nw.cuba(), 120, u=nw.models.cuba_u(rng.uniform(-60, -49.5, 120)))
    net.add_population("B", nw.coba(), 80, v=rng.uniform(-60, -50.5, 80))
    net.connect("A", "A", nw.fixed_probability(120, 120, 0.1, seed=1, weight=0.75), "ge")
    net.connect("A", "B", nw.fixed_probability(120, 80, 0.1, seed=2, weight=0.125), "ge")
    net.connect("B", "A", nw.fixed_probability(80, 120, 0.1, seed=3, weight=-2.5), "gi")
    net.connect("B", "B", nw.fixed_in_degree(80, 80, 4, seed=4, weight=1.5), "gi")
    steps = 800
    r = simulator(net, path, spikes_per_pass=4).run(steps=steps, chunk=300)
    want = _dense_run(net, steps)
    for name in ("A", "B"):
        dense = np.zeros((steps, net.populations[name].n), bool)
        dense[r.spikes[name].step, r.spikes[name].i] = True
        assert len(r.spikes[name].i) == dense.sum() > 20
        np.testing.assert_array_equal(dense, want[name], err_msg=name)
        np.testing.assert_array_equal(r.counts[name], want[name].sum(1))


@pytest.mark.parametrize("path", PATHS)
def test_a_burst_in_which_every_neuron_fires_loses_no_spike(path):
    """Every relay fires every step; a spike list holds 8 and the event buffer starts small: more lists
    and a larger buffer record all of them, and every spike is propagated."""
    n, steps = 300, 40
    net = nw.Network(dt=1.0)
    net.add_population("R", RELAY.with_params(), n)
    net.add_population("C", RELAY.with_params(), n)
    net.add_current("R", 1.0)
    net.connect("R", "C", nw.one_to_one(n, weight=1.0), "input")
    r = simulator(net, path, spikes_per_pass=8).run(steps=steps, chunk=steps)
    assert len(r.spikes["R"].i) == n * steps and np.all(r.counts["R"] == n)
    assert np.all(r.counts["C"][1:] == n) and r.counts["C"][0] == 0  # one step later, every one
    ev = r.spikes["R"]
    assert np.array_equal(np.sort(ev.i[ev.step == 7]), np.arange(n))


@pytest.mark.parametrize("path", PATHS)
def test_delays_arrive_that_many_steps_later(path):
    net = nw.Network(dt=1.0)
    net.add_population("R", RELAY.with_params(), 3)
    net.add_population("C", RELAY.with_params(), 3)
    r_spikes = np.zeros(3)
    net.add_current("R", np.array([1.0, 0.0, 1.0]))
    net.connect("R", "C", nw.from_edges([0, 2], [0, 2], weight=1.0, delay=[2, 5], n_pre=3, n_post=3), "input")
    r = simulator(net, path).run(steps=12, chunk=5)
    first = {i: int(r.spikes["C"].step[r.spikes["C"].i == i].min()) for i in (0, 2)}
    # a spike at step t with delay d reaches the input current of step t + d + 1
    assert first == {0: 3, 2: 6} and 1 not in r.spikes["C"].i and r_spikes.sum() == 0


@pytest.mark.parametrize("path", ["lists", "kernel"])
def test_ngclearn_cells_and_user_neurons_are_populations_too(path):
    """A population under a constant current is lif_sequence of that current, spike for spike."""
    for params, j in ((sp.presets.ngclearn(tau_m=10.0, refract_time=2.0), 30.0),
                      (sp.presets.snntorch_leaky(beta=0.9), 0.35)):
        net = nw.Network(dt=1.0)
        net.add_population("P", params, 64)
        net.add_current("P", j * np.linspace(0.5, 1.5, 64))
        r = simulator(net, path).run(steps=50, chunk=20)
        _, out = sp.lif_sequence(jnp.broadcast_to(j * jnp.linspace(0.5, 1.5, 64), (50, 64)), params.init_state(64),
                                 params, backend="xla")
        dense = np.zeros((50, 64), bool)
        dense[r.spikes["P"].step, r.spikes["P"].i] = True
        assert dense.sum() > 20
        np.testing.assert_array_equal(dense, np.asarray(out.s) > 0, err_msg=params.kind)


def _cuba(n=400, seed=0):
    net = nw.benchmark.build("cuba", n, seed)
    net.record_state("P", "u", [0, 5, 9])
    return net


def test_a_resumed_run_is_the_run_that_was_never_interrupted(tmp_path):
    whole = _cuba().simulator(seed=3)
    want = whole.run(steps=600, chunk=200)
    ck = tmp_path / "run.npz"

    def stop_after_two(done, total):
        if done >= 400:
            raise KeyboardInterrupt

    first = _cuba().simulator(seed=3)
    with pytest.raises(KeyboardInterrupt):
        first.run(steps=600, chunk=200, progress=stop_after_two, checkpoint=ck)
    saved = np.load(ck)
    assert len(saved["spikes/P/i"]) == np.sum(want.spikes["P"].step < 400) > 0  # nothing recorded was lost
    resumed = _cuba().simulator(seed=3).restore(ck)
    assert resumed.step == 400
    got = resumed.run(steps=200, chunk=100)
    for a, b in ((got.spikes["P"].i, want.spikes["P"].i), (got.spikes["P"].step, want.spikes["P"].step),
                 (got.counts["P"], want.counts["P"]), (got.traces[0][3], want.traces[0][3])):
        np.testing.assert_array_equal(a, b)
    for f in ("u", "ge", "gi", "ref"):
        np.testing.assert_array_equal(resumed.state["neurons"]["P"][f], whole.state["neurons"]["P"][f])
    with pytest.raises(ValueError, match="seed: the checkpoint was written with seed 3"):
        _cuba().simulator(seed=4).restore(ck)
    with pytest.raises(ValueError, match="path: the checkpoint .* is of another network"):
        _cuba(n=300).simulator(seed=3).restore(ck)


def _driven(seed, n=150):
    """A CUBA population of its own connectivity and initial state, with Poisson input keyed by the seed."""
    net = nw.benchmark.build("cuba", n, seed)
    net.add_poisson("P", rate_hz=20.0, weight=0.5, target="ge", n_sources=3)
    net.record_state("P", "u", [1, 7])
    return net


def test_a_batch_of_networks_is_each_network_run_alone():
    """Networks of their own connectivity (rows of different lengths), initial state and seed, in one
    vmapped program: each gets the spikes, counts and traces its own simulator gives."""
    seeds = [0, 1, 5]
    batch = nw.BatchSimulator([_driven(s) for s in seeds], seeds=[10 + s for s in seeds])
    got = batch.run(steps=400, chunk=150)
    fan_outs = {m.constants["tables"]["P"][0][0].shape[1] for m in batch.members}
    assert len(fan_outs) > 1  # the tables were padded to one shape
    for s, r in zip(seeds, got):
        want = _driven(s).simulator(seed=10 + s, propagation="lists").run(steps=400, chunk=150)
        assert len(r.spikes["P"].i) > 15
        np.testing.assert_array_equal(r.spikes["P"].i, want.spikes["P"].i)
        np.testing.assert_array_equal(r.spikes["P"].step, want.spikes["P"].step)
        np.testing.assert_array_equal(r.traces[0][3], want.traces[0][3])
    assert not np.array_equal(got[0].counts["P"], got[1].counts["P"])


def test_a_batch_refuses_networks_of_different_structures():
    other = _driven(0)
    other.add_current("P", 1.0)
    with pytest.raises(ValueError, match="network 1 differs from network 0 in its structure"):
        nw.BatchSimulator([_driven(0), other], seeds=[0, 1])
    with pytest.raises(ValueError, match="seeds: expected one seed per network"):
        nw.BatchSimulator([_driven(0)], seeds=[0, 1])


def test_poisson_input_drives_a_population_at_its_rate():
    net = nw.Network(dt=0.1)
    net.add_population("R", RELAY.with_params(), 2000)
    net.add_poisson("R", rate_hz=50.0, weight=1.0, target="input")
    r = net.simulator(seed=1).run(1000.0)
    assert abs(r.rate_hz("R") - 50.0) < 2.0


@pytest.mark.parametrize("call,message", [
    (lambda net: net.connect("P", "Q", nw.one_to_one(10), "ge"), "post: no population named 'Q'"),
    (lambda net: net.connect("P", "P", nw.one_to_one(10), "gx"), "target: 'P' .* has no variable 'gx'"),
    (lambda net: net.connect("P", "P", nw.one_to_one(9), "ge"), "conn: connects 9 -> 9 neurons"),
    (lambda net: net.add_population("P", nw.cuba(), 5), "name: expected a new"),
    (lambda net: net.add_population("Q", nw.cuba(), 5, w=1.0), "w: not a state field of cuba"),
    (lambda net: net.add_population("Q", nw.cuba(), 5, u=np.zeros(4)), r"u: expected a scalar or one value per"),
    (lambda net: net.add_population("Q", nw.cuba(), 0), "n: expected a positive number of neurons"),
    (lambda net: net.add_poisson("P", -1.0, 1.0, "ge"), "rate_hz: expected a rate >= 0"),
    (lambda net: net.record_state("P", "u", [10]), "indices: out of range"),
    (lambda net: net.simulator(backend="triton"), "backend=.triton. runs on cuda/rocm only"),
    (lambda net: net.simulator(spikes_per_pass=0), "spikes_per_pass: expected a positive whole number"),
    (lambda net: net.simulator(propagation="dense"), "propagation: expected one of"),
    (lambda net: net.simulator().run(-1.0), "duration_ms: expected a finite duration >= 0"),
    (lambda net: nw.Network(dt=0.0), "dt: must be a finite time step > 0 ms"),
    (lambda net: nw.cuba(tau_m=-1.0), "tau_m: must be a finite time > 0 ms"),
    (lambda net: nw.coba(method="exact"), "method: COBA integrates with 'euler' only"),
    (lambda net: nw.cuba(refractory=-2.0), "refractory: must be a finite time >= 0 ms"),
])
def test_bad_network_input_names_the_argument(call, message):
    net = nw.Network(dt=0.1)
    net.add_population("P", nw.cuba(), 10)
    with pytest.raises((ValueError, TypeError), match=message):
        call(net)
