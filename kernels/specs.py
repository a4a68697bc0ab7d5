"""What each fused kernel reads, carries and writes, around one step of ``lif_math``.

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
from typing import Callable

import jax.numpy as jnp

from . import lif_math

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


def needs_reset_bit(p) -> bool:
    """snnTorch's zero reset scales the decay by the detached reset bit, so the backward needs it."""
    return p.kind == "snntorch" and p.reset == "zero"


def cell(p, array_names: tuple[str, ...], with_surrogate: bool, spike=None) -> Spec:
    """ngclearn LIFCell over T steps. seq_in [j]; state (v, rfr, thr_theta, tols); tiles [t0]."""

    def step(consts, tiles, carry, seq, t_index):
        P = dict(zip(array_names, consts))
        t = tiles[0] + t_index.astype(F32) * p.dt
        carry, (s, surr) = lif_math.cell_step(p, P, carry, seq[0], t, spike)
        return carry, ((s, surr) if with_surrogate else (s,))

    return Spec("lif_cell", step, n_seq_in=1, n_state=4, n_consts=len(array_names), n_tiles=1,
                n_seq_out=2 if with_surrogate else 1,
                binary_outputs=(0,) if spike is None else ())  # a differentiable spike must stay float


def train_forward(p, save_residuals: bool, residual_dtype, with_surrogate: bool) -> Spec:
    """A training preset over T steps. seq_out: s, [x, [r]] (residuals), [sg]."""
    with_r = save_residuals and needs_reset_bit(p)

    def step(consts, tiles, carry, seq, t_index):
        v, s, x, r = lif_math.train_forward(p, carry[0], seq[0])
        outs = [s]
        if save_residuals:
            outs.append(x)
        if with_r:
            outs.append(r)
        if with_surrogate:
            outs.append(p.surrogate.grad(x))
        return (v,), tuple(outs)

    def finalize(outs):
        s, x, *rest = outs
        return (s, lif_math.encode_residual(x, s, residual_dtype, p.fire_on_equal), *rest)

    return Spec("lif_train_fwd", step, n_seq_in=1, n_state=1,
                n_seq_out=1 + save_residuals + with_r + with_surrogate,
                finalize=finalize if save_residuals else None, binary_outputs=(0,) + ((2,) if with_r else ()))


def _residuals(p, seq):
    x = seq[0].astype(F32)
    r = seq[1].astype(F32) if needs_reset_bit(p) else 0.0
    return x, r


def train_backward(p) -> Spec:
    """Reverse time. seq_in: x, [r], dL/ds; state: dL/dv_T -> seq_out dL/dj, state dL/dv_0."""

    def step(consts, tiles, carry, seq, t_index):
        x, r = _residuals(p, seq)
        g_j, g_v = lif_math.train_backward(p, carry[0], seq[-1], x, r)
        return (g_v,), (g_j,)

    return Spec("lif_train_bwd", step, n_seq_in=2 + needs_reset_bit(p), n_state=1, reverse=True)


def train_tangent(p) -> Spec:
    """Forward-mode. seq_in: x, [r], dj; state: dv_0 -> seq_out ds, state dv_T."""

    def step(consts, tiles, carry, seq, t_index):
        x, r = _residuals(p, seq)
        ds, dv = lif_math.train_tangent(p, carry[0], seq[-1], x, r)
        return (dv,), (ds,)

    return Spec("lif_train_tan", step, n_seq_in=2 + needs_reset_bit(p), n_state=1)
