"""What each time-fused kernel reads, carries and writes, around one step derived from a ``Neuron``.

A ``KernelSpec`` is the complete description of a time-fused kernel: the per-step function on f32
values and the roles of its operands.  The Pallas bodies (``surrogate_pallas.kernels``) and the jnp
oracle (``reference.py``) both run ``KernelSpec.step``; only the data movement differs.

Operand roles, in order:
  seq_in      [T, N]  read once per step          (currents, residuals, cotangents)
  state_in    [N]     read once, carried on chip  (v0, ...)
  per_neuron  [N]     per-neuron parameters, read once
  scalars     scalar  values every block shares (t0, a learned scalar parameter)
  seq_out     [T, N]  written once per step       (spikes, residuals, ...)
  state_out   [N]     written once at the end     (v_T, ...)
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Callable

import jax.numpy as jnp

from . import residuals, steps

F32 = jnp.float32
FORWARD, BACKWARD, TANGENT = "neuron_forward", "neuron_backward", "neuron_tangent"


@dataclasses.dataclass(frozen=True)
class KernelSpec:
    name: str
    step: Callable  # step(per_neuron, scalars, carry, seq_vals, t_index) -> (carry, seq_outs)
    n_seq_in: int
    n_state: int
    n_per_neuron: int = 0
    n_scalars: int = 0
    n_seq_out: int = 1
    reverse: bool = False
    # Elementwise encoding of the step's outputs for storage.  Kernels apply it every step;
    # the reference applies it once to the stacked sequence (XLA:CPU converts to bf16 slowly
    # inside loop bodies, and it is elementwise, so the result is the same).
    finalize: Callable | None = None
    # Indices of outputs that only ever hold 0 or 1 (spikes).  The reference writes them as
    # int8 inside its loop (XLA:CPU writes narrow loop outputs several times faster) and
    # widens them after; the values are identical.
    binary_outputs: tuple[int, ...] = ()
    # Indices of seq inputs that hold the forward's residuals: nothing but this kernel reads them,
    # so the reference may write its outputs over them (``reference.py``).
    overwritable: tuple[int, ...] = ()


def forward_spec(neuron, placement, save_residuals: bool, residual_dtype, with_surrogate: bool) -> KernelSpec:
    """A neuron over T steps.  seq_in [j]; state: the neuron's fields; per-neuron and scalar operands:
    its parameters (``placement``).  seq_out: s, [x, bits, charged, previous (``residuals.residual_plan``)],
    [the surrogate output]."""
    plan = residuals.residual_plan(neuron, placement) if save_residuals else None
    names = neuron.state

    def step(per_neuron, scalars, carry, seq, t_index):
        P = placement.values(per_neuron, scalars, t_index)
        S = dict(zip(names, carry))
        S_new, s, x, B, H, *sg = steps.lowerable(functools.partial(steps.forward, neuron,
                                                                   with_surrogate=with_surrogate))(P, S, seq[0])
        outs = [s]
        if save_residuals:
            outs += [x, *(B[k] for k in plan.bits), *(H[k] for k in plan.charged), *(S[k] for k in plan.previous)]
        outs += sg
        return tuple(S_new[k] for k in names), tuple(outs)

    def finalize(outs):
        s, x, *rest = outs
        return (s, residuals.encode_residual(x, s, residual_dtype, neuron.fire_on_equal), *rest)

    n_res = plan.n_seq - plan.input if save_residuals else 0
    bits_at = tuple(range(2, 2 + len(plan.bits))) if save_residuals else ()
    return KernelSpec(FORWARD, step, n_seq_in=1, n_state=len(names), n_per_neuron=len(placement.per_neuron),
                      n_scalars=len(placement.scalars), n_seq_out=1 + n_res + with_surrogate,
                      finalize=finalize if save_residuals else None, binary_outputs=(0,) + bits_at)


def _unpack(neuron, placement, plan, seq):
    """Residual values from a step's loaded seq operands (x, bits, charged, previous, [j]), f32.
    What the derivative does not read (``residual_plan``) is never stored; zeros stand in for it."""
    zero = seq[0] * 0.0
    it = iter(seq)
    x = next(it)
    stored = lambda names: {k: next(it) for k in names}
    B, Hn, Sp = stored(plan.bits), stored(plan.charged), stored(plan.previous)
    j = next(it) if plan.input else zero
    bits, charged = residuals.value_names(neuron, placement)
    fill = lambda d, names: {k: d.get(k, zero) for k in names}
    return x, steps.Values(fill(B, bits)), fill(Hn, charged), fill(Sp, neuron.state), j, list(it)


def _stored(plan):
    """The derivative kernels' seq inputs that are stored residuals (the re-read input is not)."""
    return tuple(range(plan.n_seq - plan.input))


def backward_spec(neuron, placement) -> KernelSpec:
    """Reverse time.  seq_in: residuals, [j], dL/ds; state: dL/dS_T and the parameter-gradient
    accumulators (zeros in) -> seq_out dL/dj, state dL/dS_0 and dL/dP (per neuron, summed over time)."""
    plan = residuals.residual_plan(neuron, placement)
    names, learn = neuron.state, placement.learn

    def step(per_neuron, scalars, carry, seq, t_index):
        P = placement.values(per_neuron, scalars, t_index)
        x, B, Hn, Sp, j, (g_s,) = _unpack(neuron, placement, plan, seq)
        g_S = dict(zip(names, carry[:len(names)]))
        gS, gj, gL = steps.lowerable(functools.partial(steps.backward, neuron, learn))(P, x, B, Hn, Sp, j, g_S, g_s)
        acc = tuple(a + gL[n] for a, n in zip(carry[len(names):], learn))
        return (*(gS[k] for k in names), *acc), (gj,)

    return KernelSpec(BACKWARD, step, n_seq_in=plan.n_seq + 1, n_state=len(names) + len(learn),
                      n_per_neuron=len(placement.per_neuron), n_scalars=len(placement.scalars), reverse=True,
                      overwritable=_stored(plan))


def tangent_spec(neuron, placement) -> KernelSpec:
    """Forward mode.  seq_in: residuals, [j], dj; state: dS_0; per-neuron operands: the parameters, then
    the learned parameters' tangents (per neuron) -> seq_out ds, state dS_T."""
    plan = residuals.residual_plan(neuron, placement)
    names, learn, n_p = neuron.state, placement.learn, len(placement.per_neuron)

    def step(per_neuron, scalars, carry, seq, t_index):
        P = placement.values(per_neuron[:n_p], scalars, t_index)
        x, B, Hn, Sp, j, (dj,) = _unpack(neuron, placement, plan, seq)
        ds, dS = steps.lowerable(functools.partial(steps.tangent, neuron, learn))(
            P, x, B, Hn, Sp, j, dict(zip(names, carry)), dj, dict(zip(learn, per_neuron[n_p:])))
        return tuple(dS[k] for k in names), (ds,)

    return KernelSpec(TANGENT, step, n_seq_in=plan.n_seq + 1, n_state=len(names), n_per_neuron=n_p + len(learn),
                      n_scalars=len(placement.scalars), overwritable=_stored(plan))
