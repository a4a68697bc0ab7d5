"""What each fused kernel reads, carries and writes, around one step derived from a ``Neuron``.

A ``Spec`` is the complete description of a time-fused kernel: the per-step
function on f32 values and the roles of its operands.  The Pallas bodies
(``body.py``) and the jnp reference (``surrogate_pallas.reference``) both run
``Spec.step``; only the data movement differs.

Operand roles, in order:
  seq_in    [T, N]  read once per step          (currents, residuals, cotangents)
  state_in  [N]     read once, carried on chip  (v0, ...)
  consts    [N]     per-neuron parameters, read once
  tiles     scalar  broadcast values (t0), one tile shared by every block
  seq_out   [T, N]  written once per step       (spikes, residuals, ...)
  state_out [N]     written once at the end     (v_T, ...)
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Callable

import jax.numpy as jnp

from . import derive, lif_math

F32 = jnp.float32


@dataclasses.dataclass(frozen=True)
class Spec:
    name: str
    step: Callable  # step(consts, tiles, carry, seq_vals, t_index) -> (carry, seq_outs)
    n_seq_in: int
    n_state: int
    n_consts: int = 0
    n_tiles: int = 0
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
    # so the reference may write its outputs over them (``surrogate_pallas.reference``).
    scratch: tuple[int, ...] = ()


def train_forward(neuron, layout, save_residuals: bool, residual_dtype, with_surrogate: bool) -> Spec:
    """A training neuron over T steps.  seq_in [j]; state: the neuron's fields; consts/tiles: its
    parameters (``layout``).  seq_out: s, [x, bits, charged, previous (``derive.residual_plan``)], [sg]."""
    plan = derive.residual_plan(neuron, layout) if save_residuals else None
    names = neuron.state

    def step(consts, tiles, carry, seq, t_index):
        P = layout.values(consts, tiles, t_index)
        S = dict(zip(names, carry))
        S_new, s, x, B, H, *sg = derive.lowerable(functools.partial(derive.forward, neuron,
                                                                     with_surrogate=with_surrogate))(P, S, seq[0])
        outs = [s]
        if save_residuals:
            outs += [x, *(B[k] for k in plan.bits), *(H[k] for k in plan.charged), *(S[k] for k in plan.previous)]
        outs += sg
        return tuple(S_new[k] for k in names), tuple(outs)

    def finalize(outs):
        s, x, *rest = outs
        return (s, lif_math.encode_residual(x, s, residual_dtype, neuron.fire_on_equal), *rest)

    n_res = plan.n_seq - plan.input if save_residuals else 0
    bits_at = tuple(range(2, 2 + len(plan.bits))) if save_residuals else ()
    return Spec("lif_train_fwd", step, n_seq_in=1, n_state=len(names), n_consts=len(layout.consts),
                n_tiles=len(layout.tiles), n_seq_out=1 + n_res + with_surrogate,
                finalize=finalize if save_residuals else None, binary_outputs=(0,) + bits_at)


def residual_dtypes(neuron, layout, residual_dtype):
    """The dtypes of the residuals the forward writes (the input, when re-read, is not written)."""
    plan = derive.residual_plan(neuron, layout)
    r = jnp.dtype(residual_dtype)
    return (r, *(jnp.dtype(jnp.int8),) * len(plan.bits), *(r,) * (len(plan.charged) + len(plan.previous)))


def _unpack(neuron, layout, plan, seq):
    """Residual values from a step's loaded seq operands (x, bits, charged, previous, [j]), f32.
    What the derivative does not read (``residual_plan``) is never stored; zeros stand in for it."""
    zero = seq[0] * 0.0
    it = iter(seq)
    x = next(it)
    stored = lambda names: {k: next(it) for k in names}
    B, Hn, Sp = stored(plan.bits), stored(plan.charged), stored(plan.previous)
    j = next(it) if plan.input else zero
    bits, charged = derive.names(neuron, layout)
    fill = lambda d, names: {k: d.get(k, zero) for k in names}
    return x, derive.Values(fill(B, bits)), fill(Hn, charged), fill(Sp, neuron.state), j, list(it)


def _residuals(plan):
    """The derivative kernels' seq inputs that are stored residuals (the re-read input is not)."""
    return tuple(range(plan.n_seq - plan.input))


def train_backward(neuron, layout) -> Spec:
    """Reverse time.  seq_in: residuals, [j], dL/ds; state: dL/dS_T and the parameter-gradient
    accumulators (zeros in) -> seq_out dL/dj, state dL/dS_0 and dL/dP (per neuron, summed over time)."""
    plan = derive.residual_plan(neuron, layout)
    names, learn = neuron.state, layout.learn

    def step(consts, tiles, carry, seq, t_index):
        P = layout.values(consts, tiles, t_index)
        x, B, Hn, Sp, j, (g_s,) = _unpack(neuron, layout, plan, seq)
        g_S = dict(zip(names, carry[:len(names)]))
        gS, gj, gL = derive.lowerable(functools.partial(derive.backward, neuron, learn))(P, x, B, Hn, Sp, j, g_S, g_s)
        acc = tuple(a + gL[n] for a, n in zip(carry[len(names):], learn))
        return (*(gS[k] for k in names), *acc), (gj,)

    return Spec("lif_train_bwd", step, n_seq_in=plan.n_seq + 1, n_state=len(names) + len(learn),
                n_consts=len(layout.consts), n_tiles=len(layout.tiles), reverse=True, scratch=_residuals(plan))


def train_tangent(neuron, layout) -> Spec:
    """Forward mode.  seq_in: residuals, [j], dj; state: dS_0; consts: the per-neuron parameters, then
    the learned parameters' tangents (per neuron) -> seq_out ds, state dS_T."""
    plan = derive.residual_plan(neuron, layout)
    names, learn, n_c = neuron.state, layout.learn, len(layout.consts)

    def step(consts, tiles, carry, seq, t_index):
        P = layout.values(consts[:n_c], tiles, t_index)
        x, B, Hn, Sp, j, (dj,) = _unpack(neuron, layout, plan, seq)
        ds, dS = derive.lowerable(functools.partial(derive.tangent, neuron, learn))(P, x, B, Hn, Sp, j, dict(zip(names, carry)),
                                                        dj, dict(zip(learn, consts[n_c:])))
        return tuple(dS[k] for k in names), (ds,)

    return Spec("lif_train_tan", step, n_seq_in=plan.n_seq + 1, n_state=len(names),
                n_consts=n_c + len(learn), n_tiles=len(layout.tiles), scratch=_residuals(plan))
