"""What the forward stores for the derivative kernels, and how.

The backward and tangent kernels do not re-run the forward: they linearise the step at stored values
(``steps.py``).  ``x = h[membrane] - threshold`` is always stored (its sign is the spike, kept through
rounding by ``encode_residual``), and the membrane's charged value is rebuilt as ``x + threshold``.
Everything else (the other charged values, the previous state, the input, the detached bits) is stored
only if the derivative reads it, which ``residual_plan`` finds by tracing the derived steps and
following what their outputs depend on.  A leaky neuron whose parameters are not learned stores ``x``
alone; learning ``beta`` adds the previous membrane, because dh/dbeta = v_prev.
"""
from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp

from . import steps
from .steps import Values

F32 = jnp.float32


@dataclasses.dataclass(frozen=True)
class ResidualPlan:
    """What the forward saves per step for the derivative kernels, beyond ``x``."""

    bits: tuple      # detached 0/1 values, stored as int8
    charged: tuple   # charged values other than the membrane, in the residual dtype
    previous: tuple  # previous-state values, in the residual dtype
    input: bool      # whether the derivative re-reads the input current

    @property
    def n_seq(self):
        return 1 + len(self.bits) + len(self.charged) + len(self.previous) + self.input


@functools.lru_cache(maxsize=512)
def value_names(neuron, placement):
    """A forward trace on scalars: the names of the bits and of the charged values (membrane left out)."""
    def step():
        P = placement.values([F32(0.5)] * len(placement.per_neuron), [F32(0.5)] * len(placement.scalars))
        return steps.forward(neuron, P, {k: F32(0.25) for k in neuron.state}, F32(0.5))[3:5]

    B, H = jax.eval_shape(step)  # abstract: nothing is run, nor staged into a caller's trace
    return tuple(B), tuple(k for k in H if k != neuron.membrane)


@functools.lru_cache(maxsize=512)
def residual_plan(neuron, placement) -> ResidualPlan:
    """Trace ``backward`` and ``tangent`` on scalars and keep the residuals either reads."""
    bits, charged = value_names(neuron, placement)
    learn = placement.learn
    z = F32(0.0)
    n_c, n_t = len(placement.per_neuron), len(placement.scalars)
    st = neuron.state

    def unpack(args):
        it = iter(args)
        take = lambda n: [next(it) for _ in range(n)]
        per_neuron, scalars = take(n_c), take(n_t)
        B = Values(zip(bits, take(len(bits))))
        Hn = dict(zip(charged, take(len(charged))))
        Sp = dict(zip(st, take(len(st))))
        j = next(it)
        x = next(it)
        rest = list(it)
        return placement.values(per_neuron, scalars), B, Hn, Sp, j, x, rest

    def bwd(*args):
        P, B, Hn, Sp, j, x, rest = unpack(args)
        g_S, g_s = dict(zip(st, rest[:len(st)])), rest[len(st)]
        gS, gj, gL = steps.backward(neuron, learn, P, x, B, Hn, Sp, j, g_S, g_s)
        return [gS[k] for k in st] + [gj] + [gL[n] for n in learn]

    def tan(*args):
        P, B, Hn, Sp, j, x, rest = unpack(args)
        dS, dj, dL = dict(zip(st, rest[:len(st)])), rest[len(st)], dict(zip(learn, rest[len(st) + 1:]))
        ds, dS_new = steps.tangent(neuron, learn, P, x, B, Hn, Sp, j, dS, dj, dL)
        return [ds] + [dS_new[k] for k in st]

    n_in = n_c + n_t + len(bits) + len(charged) + len(st) + 2
    used = [False] * n_in
    for f, n_rest in ((bwd, len(st) + 1), (tan, len(st) + 1 + len(learn))):
        u = steps.used_inputs(jax.make_jaxpr(f)(*([z] * (n_in + n_rest))))
        used = [a or b for a, b in zip(used, u[:n_in])]
    o = n_c + n_t
    pick = lambda names, at: tuple(n for i, n in enumerate(names) if used[at + i])
    return ResidualPlan(bits=pick(bits, o), charged=pick(charged, o + len(bits)),
                        previous=pick(st, o + len(bits) + len(charged)),
                        input=used[o + len(bits) + len(charged) + len(st)])


@functools.lru_cache(maxsize=512)
def check_threshold(neuron, placement):
    """The backward rebuilds the membrane from x, so the threshold must not read the membrane."""
    bits, charged = value_names(neuron, placement)
    z = F32(0.0)
    n_c, n_t = len(placement.per_neuron), len(placement.scalars)

    def thr(*args):
        P = placement.values(args[:n_c], args[n_c:n_c + n_t])
        rest = args[n_c + n_t:]
        H = Values(zip((neuron.membrane, *charged), rest[:1 + len(charged)]))
        return steps.threshold_value(neuron, P, H, Values(zip(bits, rest[1 + len(charged):])))

    used = steps.used_inputs(jax.make_jaxpr(thr)(*([z] * (n_c + n_t + 1 + len(charged) + len(bits)))))
    if used[n_c + n_t]:
        raise ValueError(f"threshold: must not depend on the membrane {neuron.membrane!r} (the backward "
                         "rebuilds the membrane as x + threshold)")


def residual_dtypes(neuron, placement, residual_dtype):
    """The dtypes of the residuals the forward writes (the input, when re-read, is not written)."""
    plan = residual_plan(neuron, placement)
    r = jnp.dtype(residual_dtype)
    return (r, *(jnp.dtype(jnp.int8),) * len(plan.bits), *(r,) * (len(plan.charged) + len(plan.previous)))


def encode_residual(x, s, dtype, fire_on_equal):
    """Store x = h - thr in ``dtype`` so that its sign class (the spike) survives rounding.

    The clamp is applied in f32 before the one conversion: rounding is monotone and the
    smallest normal of ``dtype`` is representable, so a spike's residual stays > 0 (and, for
    ``>=``, a non-spike's stays < 0).
    """
    if jnp.dtype(dtype) == jnp.dtype(F32):
        return x
    tiny = float(jnp.finfo(dtype).tiny)  # a Python float: kernels take no array constants
    x = jnp.where(s > 0, jnp.maximum(x, tiny), x)
    if fire_on_equal:
        x = jnp.where(s > 0, x, jnp.minimum(x, -tiny))
    return x.astype(dtype)
