"""Every kernel's step, derived from a neuron's one-step update (``surrogate_pallas.Neuron``).

A neuron is written once, on f32 values: ``charge`` (state and input to the charged values ``h``),
``threshold``, and ``reset``.  Between them sits the spike ``s = H(x)``, ``x = h[membrane] - threshold``,
whose derivative is the surrogate's ``sg(x)``.  From that one step this module builds:

* ``forward``: the step itself, with the values the derivative may store (``residuals.py`` picks them);
* ``backward``: one reverse-time step of the vector-Jacobian product, by ``jax.vjp`` of the three parts,
  with the spike's derivative ``sg(x)`` between them and the parameter gradients accumulated;
* ``tangent``: one step of the Jacobian-vector product, by ``jax.jvp`` of the same parts.

The derivatives do not re-run the forward: they linearise the step at stored values, with the
membrane's charged value rebuilt as ``x + threshold``.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend.core import Literal

from ..surrogates import fire

F32 = jnp.float32


class Values(dict):
    """A dict of named f32 values with attribute access (``p.beta``, ``s.v``, ``h.syn``)."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"no value named {name!r}; have {sorted(self)}") from None


jax.tree_util.register_pytree_node(Values, lambda v: (tuple(v.values()), tuple(v.keys())),
                                   lambda keys, vals: Values(zip(keys, vals)))


# ----------------------------------------------------------------------------- the three parts
def bits_of(neuron, P, S):
    """The neuron's detached 0/1 values (snnTorch's reset bit), as f32 without a derivative."""
    if neuron.bits is None:
        return Values()
    return Values({k: jax.lax.stop_gradient(jnp.asarray(b).astype(F32)) for k, b in neuron.bits(P, Values(S)).items()})


def charge_of(neuron, P, S, B, j):
    H = Values(neuron.charge(P, Values({**S, **B}), j))
    if neuron.membrane not in H:
        raise ValueError(f"charge: must return the membrane {neuron.membrane!r}; returned {sorted(H)}")
    return H


def threshold_value(neuron, P, H, B):
    return neuron.threshold(P, Values({**H, **B}))


def reset_of(neuron, P, H, B, s):
    HB = Values({**H, **B})
    S = neuron.reset(P, HB, s, neuron.threshold(P, HB))
    S = {k: S[k] for k in neuron.state}
    return S


def _x(neuron, P, H, B):
    return H[neuron.membrane] - threshold_value(neuron, P, H, B)


def surrogate_output(neuron, P, H, B, x):
    """What ``with_surrogate=True`` returns for a step: ``sg(x)``, or the neuron's own output."""
    if neuron.surrogate_output is None:
        return neuron.surrogate.grad(x)
    return neuron.surrogate_output(P, Values({**H, **B}), x)


def forward(neuron, P, S, j, with_surrogate=False):
    """One step: (new state, s, x, bits, charged, [surrogate output])."""
    B = bits_of(neuron, P, S)
    H = charge_of(neuron, P, S, B, j)
    x = _x(neuron, P, H, B)
    s = fire(x, neuron.fire_on_equal).astype(F32)
    sg = (surrogate_output(neuron, P, H, B, x),) if with_surrogate else ()  # before the reset: fewer live values
    return (reset_of(neuron, P, H, B, s), s, x, B, H, *sg)


# ----------------------------------------------------------------------------- derivatives
def _linearisation_point(neuron, P, x, B, Hn):
    """The charged values at the stored residual: the membrane rebuilt as x + threshold."""
    H = dict(Hn)
    H[neuron.membrane] = x  # a placeholder: the threshold does not read the membrane (checked)
    H[neuron.membrane] = x + threshold_value(neuron, P, Values(H), B)
    return Values(H)


def _split(P, learn):
    return {n: P[n] for n in learn}, (lambda L: Values({**P, **L}))


def backward(neuron, learn, P, x, B, Hn, Sp, j, g_S, g_s):
    """One reverse-time step: from dL/dS_t and dL/ds_t to (dL/dS_{t-1}, dL/dj_t, dL/dP_learn)."""
    L, with_ = _split(P, learn)
    s = fire(x, neuron.fire_on_equal).astype(F32)
    sg = neuron.surrogate.grad(x)
    H = _linearisation_point(neuron, P, x, B, Hn)
    _, f_reset = jax.vjp(lambda L, H, s: reset_of(neuron, with_(L), H, B, s), L, dict(H), s)
    gL1, gH1, gs1 = f_reset(dict(g_S))
    g_x = (g_s + gs1) * sg
    _, f_x = jax.vjp(lambda L, H: _x(neuron, with_(L), H, B), L, dict(H))
    gL2, gH2 = f_x(g_x)
    gH = {k: gH1[k] + gH2[k] for k in H}
    _, f_charge = jax.vjp(lambda L, S, j: dict(charge_of(neuron, with_(L), S, B, j)), L, dict(Sp), j)
    gL3, gS, gj = f_charge({k: gH[k] for k in H})
    return gS, gj, {n: gL1[n] + gL2[n] + gL3[n] for n in learn}


def tangent(neuron, learn, P, x, B, Hn, Sp, j, dS, dj, dL):
    """One forward-mode step: from (dS_{t-1}, dj_t, dP_learn) to (ds_t, dS_t)."""
    L, with_ = _split(P, learn)
    s = fire(x, neuron.fire_on_equal).astype(F32)
    sg = neuron.surrogate.grad(x)
    H = _linearisation_point(neuron, P, x, B, Hn)
    _, dH = jax.jvp(lambda L, S, j: dict(charge_of(neuron, with_(L), S, B, j)), (L, dict(Sp), j), (dL, dict(dS), dj))
    _, dx = jax.jvp(lambda L, H: _x(neuron, with_(L), H, B), (L, dict(H)), (dL, dH))
    ds = sg * dx
    _, dS_new = jax.jvp(lambda L, H, s: reset_of(neuron, with_(L), H, B, s), (L, dict(H), s), (dL, dH, ds))
    return ds, dS_new


def lowerable(fn):
    """``fn`` as the kernel bodies run it: the cotangent sums ``jax.vjp`` emits (``add_any``) become
    plain adds and ``stop_gradient`` the identity (a kernel's step is never differentiated again).

    Mosaic GPU lowers neither; the step is traced once to a jaxpr and evaluated equation by equation
    with those two replaced (nested ``jit``s are inlined).  A sum with a zero that ``jax.vjp``
    materialised for a cut path (a detached reset) is dropped, as XLA's simplifier drops it; the
    Triton and Mosaic compilers keep ``x + 0`` (it is not ``x`` for ``x = -0``) and spend registers."""
    def run(*args):
        flat, tree = jax.tree.flatten(args)
        closed = jax.make_jaxpr(lambda *f: fn(*jax.tree.unflatten(tree, f)))(*flat)
        out_tree = jax.tree.structure(jax.eval_shape(lambda *f: fn(*jax.tree.unflatten(tree, f)), *flat))
        return jax.tree.unflatten(out_tree, _eval(closed.jaxpr, closed.consts, flat))
    return run


def _is_zero(v, zeros):
    if isinstance(v, Literal):
        return np.ndim(v.val) == 0 and float(v.val) == 0.0
    return v in zeros


def _other_than_zero(eqn, zeros):
    """The one operand of a sum whose others are all zeros, when it already has the sum's type."""
    keep = [v for v in eqn.invars if not _is_zero(v, zeros)]
    out = eqn.outvars[0].aval
    if len(keep) == 1 and not isinstance(keep[0], Literal) and keep[0].aval.shape == out.shape \
            and keep[0].aval.dtype == out.dtype:
        return keep[0]
    return None


def _eval(jaxpr, consts, args):
    env, zeros = {}, set()
    read = lambda v: v.val if isinstance(v, Literal) else env[v]
    for v, x in zip(jaxpr.constvars, consts):
        env[v] = x
    for v, x in zip(jaxpr.invars, args):
        env[v] = x
    for eqn in jaxpr.eqns:
        ins = [read(v) for v in eqn.invars]
        name = eqn.primitive.name
        if name == "broadcast_in_dim" and _is_zero(eqn.invars[0], zeros):
            zeros.add(eqn.outvars[0])
        other = _other_than_zero(eqn, zeros) if name in ("add", "add_any") else None
        if other is not None:
            outs = [read(other)]
        elif name == "add_any":
            outs = [jax.lax.add(*ins)]
        elif name == "stop_gradient":
            outs = ins
        elif name in ("pjit", "jit", "closed_call"):
            inner = eqn.params.get("jaxpr") or eqn.params.get("call_jaxpr")
            outs = _eval(inner.jaxpr, inner.consts, ins)
        else:
            outs = eqn.primitive.bind(*ins, **eqn.params)
            outs = outs if eqn.primitive.multiple_results else [outs]
        for v, x in zip(eqn.outvars, outs):
            env[v] = x
    return [read(v) for v in jaxpr.outvars]


# ----------------------------------------------------------------------------- dependence
def used_inputs(closed):
    """Which of a jaxpr's inputs its outputs depend on (an eqn that is kept needs all its inputs)."""
    jaxpr = closed.jaxpr
    live = {id(v) for v in jaxpr.outvars if not isinstance(v, Literal)}
    for eqn in reversed(jaxpr.eqns):
        if any(id(v) in live for v in eqn.outvars):
            live.update(id(v) for v in eqn.invars if not isinstance(v, Literal))
    return [id(v) in live for v in jaxpr.invars]
