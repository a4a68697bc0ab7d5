"""On CPU the jnp path is memory-bound: what it costs is the sequence-sized buffers it fills and copies.

The compiled XLA:CPU program of a training step (forward + backward) is read for two static facts,
which timing on a noisy machine cannot give:

- no sequence-sized ``copy`` (a plain ``lax.scan`` has one: XLA merges its two zero-filled output
  buffers and then copies them apart);
- the only sequence-sized buffers created from nothing are the forward's outputs (spikes and
  residuals): the backward writes dL/dj over the residual it has read, where a plain scan fills a
  fresh buffer for it, and so does the tangent (``jax.jvp``) with its output.
"""
import re

import jax
import jax.numpy as jnp
import pytest

import surrogate_pallas as sp
from surrogate_pallas.tooling import baselines

T, N = 16, 1000
SEQ = f"[{T},{N}]"
PRESETS = {
    "spikingjelly": sp.presets.spikingjelly(),
    "spikingjelly_soft": sp.presets.spikingjelly(tau=10.0, decay_input=False, v_reset=None),
    "snntorch_subtract": sp.presets.snntorch_leaky(0.9),
    "snntorch_zero": sp.presets.snntorch_leaky(0.9, reset_mechanism="zero"),
    "ngclearn": sp.presets.ngclearn(tau_m=10.0),
}


def _sequence_ops(hlo):
    """(copies, fills) of sequence-sized arrays in optimized HLO text; a fill is an op whose operands
    are all constants (a broadcast of one, or a fusion wrapping it)."""
    copies, fills = [], []
    for line in hlo.splitlines():
        m = re.match(r"\s*(ROOT )?%\S+ = \w+(\[[\d,]*\])\S* (\w[\w-]*)\((.*?)\)", line)
        if not m or m.group(2) != SEQ:
            continue
        op, operands = m.group(3), [o.strip() for o in m.group(4).split(",") if o.strip()]
        if op == "copy":
            copies.append(line.strip())
        elif op in ("broadcast", "fusion") and operands and all(o.startswith("%constant") for o in operands):
            fills.append(line.strip())
    return copies, fills


def _training_step(forward):
    def loss(j, state):
        s, final = forward(j, state)
        return jnp.sum(s * jnp.cos(j)) + sum(jnp.sum(x) for x in jax.tree.leaves(final))
    return jax.jit(jax.grad(loss, (0, 1)))


def _compiled(f, *args):
    return jax.jit(f).lower(*args).compile().as_text()


def _tangent_step(forward):
    return jax.jit(lambda j, st, dj: jax.jvp(lambda j: forward(j, st), (j,), (dj,)))


@pytest.mark.parametrize("mode", ["grad", "jvp"])
@pytest.mark.parametrize("model", PRESETS)
def test_derivatives_fill_only_the_forward_outputs_and_copy_no_sequence(model, mode):
    p = PRESETS[model]
    st = p.init_state((N,), jnp.float32)
    j = jnp.ones((T, N), jnp.float32)

    def forward(j, st):
        final, out = sp.lif_sequence(j, st, p)
        return out.s, final

    program = _training_step(forward) if mode == "grad" else _tangent_step(forward)
    copies, fills = _sequence_ops(_compiled(program, j, st, *([j] if mode == "jvp" else [])))
    assert not copies, copies
    # one buffer per forward output (the spikes and the residuals); the derivative writes over a residual
    assert len(fills) == _forward_outputs(p, j, st), fills


def _forward_outputs(p, j, st):
    """How many sequence-sized arrays the forward primitive writes when the gradient is taken."""
    jaxpr = jax.make_jaxpr(lambda j, st: jax.vjp(lambda j: sp.lif_sequence(j, st, p)[1].s, j)[0])(j, st)
    eqn = next(e for e in jaxpr.jaxpr.eqns if e.primitive.name == "neuron_forward")
    return sum(v.aval.shape == (T, N) for v in eqn.outvars)


def test_the_counter_sees_a_plain_scans_copy_and_fills():
    v0 = jnp.zeros((N,), jnp.float32)
    copies, fills = _sequence_ops(_compiled(_training_step(baselines.spikingjelly_scan), jnp.ones((T, N)), v0))
    assert copies and fills


def test_a_residual_read_twice_is_not_overwritten():
    """The backward writes over its residual only where XLA finds no other reader: a vjp applied
    twice, eagerly and inside one jit, gives the same gradient both times (as the reference scan)."""
    p = PRESETS["spikingjelly"]
    j = 0.3 + 0.5 * jax.random.normal(jax.random.PRNGKey(1), (T, N))
    v0 = jnp.zeros((N,))
    f = lambda j: sp.lif_sequence(j, sp.NeuronState(v0), p)[1].s
    s, vjp = jax.vjp(f, j)
    g1, g2 = jnp.cos(j), jnp.sin(j)
    eager = (vjp(g1)[0], vjp(g2)[0], vjp(g1)[0])
    jitted = jax.jit(lambda j: (lambda vjp: (vjp(g1)[0], vjp(g2)[0], vjp(g1)[0]))(jax.vjp(f, j)[1]))(j)
    want = [jax.vjp(lambda j: baselines.spikingjelly_scan(j, v0)[0], j)[1](g)[0] for g in (g1, g2, g1)]
    for a, b, c in zip(eager, jitted, want):
        assert jnp.array_equal(a, b)
        assert float(jnp.max(jnp.abs(a - c))) <= 1e-5 * float(jnp.max(jnp.abs(c)))
    assert jnp.array_equal(eager[0], eager[2]) and not jnp.array_equal(eager[0], eager[1])
