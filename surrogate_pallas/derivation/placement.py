"""Where each of a neuron's step parameters comes from in a kernel: ``Placement``, and ``place``.

A Python float is a constant baked into the kernel (``static``), a 0-d array is a scalar operand
(``scalar``, one value every block shares), and any other array is a per-neuron operand (``per_neuron``,
broadcast to the population).  The ngclearn cell's clock ``t0`` is a scalar operand, so a simulation
loop compiles once for every ``t0``.
"""
from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

from .residuals import check_threshold
from .steps import Values

F32 = jnp.float32
KINDS = ("static", "per_neuron", "scalar")  # also the order of the operands


@dataclasses.dataclass(frozen=True)
class Placement:
    """Each step parameter's kind: ``static``, ``per_neuron`` or ``scalar`` (see the module).
    ``learn`` names the operands whose gradients the backward accumulates (and whose tangents the
    tangent kernel takes)."""

    params: tuple  # ((name, kind, value or None), ...)
    learn: tuple = ()

    @property
    def per_neuron(self):
        return tuple(n for n, k, _ in self.params if k == "per_neuron")

    @property
    def scalars(self):
        return tuple(n for n, k, _ in self.params if k == "scalar")

    def values(self, per_neuron, scalars, t_index=None):
        """The parameters as a ``Values``, from the kernel's per-neuron and scalar operands, with ``p.step``
        set to ``t_index``, the step's index in the sequence (0 when ``t_index`` is None: the traces that
        plan residuals run no step)."""
        P = {n: v for n, k, v in self.params if k == "static"}
        P.update(zip(self.per_neuron, per_neuron))
        P.update(zip(self.scalars, scalars))
        P["step"] = F32(0.0) if t_index is None else t_index.astype(F32)
        return Values(P)


def _per_neuron(name, value, pop):
    try:
        fits = np.broadcast_shapes(np.shape(value), pop) == tuple(pop)
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"params.{name}: per-neuron shape {np.shape(value)} does not broadcast to the population "
                         f"shape {tuple(pop)}")
    return jnp.broadcast_to(jnp.asarray(value, F32), pop)


def place(params, pop, t0=0.0):
    """``(placement, per-neuron operands, scalar operands)`` for a ``NeuronParams`` on population ``pop``;
    raises if the neuron's threshold reads its membrane (the derivatives rebuild the membrane from it)."""
    entries, per_neuron, scalars = [], [], []
    values = params.step_values()
    if params.is_cell:
        values["t0"] = jnp.asarray(t0, F32)
    for name, value in values.items():
        if isinstance(value, (int, float)):
            entries.append((name, "static", float(value)))
        elif np.ndim(value) == 0:
            entries.append((name, "scalar", None))
            scalars.append(jnp.asarray(value, F32))
        else:
            entries.append((name, "per_neuron", None))
            per_neuron.append(_per_neuron(name, value, pop))
    ranked = sorted(range(len(entries)), key=lambda i: KINDS.index(entries[i][1]))
    placement = Placement(tuple(entries[i] for i in ranked))
    check_threshold(params.neuron, placement)
    return placement, per_neuron, scalars
