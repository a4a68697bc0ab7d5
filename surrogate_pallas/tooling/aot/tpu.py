"""Compile programs for real TPUs ahead of time, with no TPU: libtpu's deviceless topologies.

Needs the ``aot`` extra (libtpu through ``jax[tpu]``).  The runtime stays on
CPU; only the compiler runs.  The whole program's HBM bytes are XLA's
``cost_analysis`` of its own ops plus the operands and results of the Mosaic
kernels, which ``cost_analysis`` counts as 0, less what XLA keeps in on-chip memory
(``hbm.py``: an array laid out in ``S(1)`` moves between the cores and on-chip memory, not HBM).
"""
from __future__ import annotations

import dataclasses
import functools
import math
import os
import re

import jax
import jax.numpy as jnp
import numpy as np

from ...kernels import launches
from . import hbm

GENERATIONS = {"v4": "v4:2x2x1", "v5e": "v5e:2x2", "v5p": "v5p:2x2x1", "v6e": "v6e:2x2"}
# a sequence-sized array moved by an XLA op around the kernels (issue: no copy, pad or slice of it)
_MOVES = ("copy", "pad", "slice", "dynamic-slice", "concatenate", "transpose", "all-gather", "all-reduce",
          "all-to-all", "collective-permute", "reduce-scatter")


def _quiet_libtpu():
    """libtpu probes the host for TPU metadata at start; say there is nothing to find."""
    os.environ.setdefault("TPU_ACCELERATOR_TYPE", "v5litepod-4")
    os.environ.setdefault("TPU_WORKER_HOSTNAMES", "localhost")
    os.environ.setdefault("TPU_SKIP_MDS_QUERY", "1")
    # no chip is opened, so several processes (pytest-xdist workers) may each load libtpu
    os.environ.setdefault("ALLOW_MULTIPLE_LIBTPU_LOAD", "1")


@functools.cache
def topology(gen: str):
    if gen not in GENERATIONS:
        raise ValueError(f"TPU generation: expected one of {tuple(GENERATIONS)}, got {gen!r}")
    _quiet_libtpu()
    try:
        import libtpu  # noqa: F401
    except ImportError:
        raise RuntimeError("compiling for TPU without a TPU needs libtpu: pip install 'surrogate-pallas[aot]'") from None
    from jax.experimental import topologies
    return topologies.get_topology_desc(GENERATIONS[gen], platform="tpu")


def mesh(gen: str, n_chips: int = 1, axis_names=("x",), axis_types=None):
    devices = np.array(topology(gen).devices[:n_chips]).reshape([-1] + [1] * (len(axis_names) - 1))
    kw = {} if axis_types is None else dict(axis_types=axis_types)
    return jax.sharding.Mesh(devices, axis_names, **kw)


@dataclasses.dataclass
class TPUReport:
    ok: bool
    error: str | None = None
    xla_bytes: float = 0.0      # cost_analysis: XLA's own ops, bytes touched in any memory
    kernel_bytes: int = 0       # operands + results of the Mosaic kernels, in any memory
    hbm_model_bytes: float | None = None  # HBM traffic read off the HLO (aot/hbm.py); None: not modelled
    temp_bytes: int = 0         # XLA temporaries (memory_analysis)
    vmem_bytes: int = 0         # the largest kernel's double-buffered blocks + scratch
    kernels: int = 0
    moves: tuple[str, ...] = ()  # XLA ops that move a whole sequence-sized array
    hlo: str = dataclasses.field(default="", repr=False)

    @property
    def touched_bytes(self) -> float:
        """Bytes touched in HBM and on-chip memory alike: cost_analysis plus the kernels' operands."""
        return self.xla_bytes + self.kernel_bytes

    @property
    def hbm_bytes(self) -> float:
        """The program's HBM traffic: arrays that XLA keeps in on-chip memory (``S(1)``) move no HBM
        bytes (aot/hbm.py); where the model does not apply, every byte touched."""
        return self.touched_bytes if self.hbm_model_bytes is None else self.hbm_model_bytes


def kernel_bytes(hlo: str) -> tuple[int, int]:
    """(bytes, count) of the operands and results of every ``tpu_custom_call`` in compiled HLO."""
    total = count = 0
    for line in hlo.splitlines():
        if 'custom_call_target="tpu_custom_call"' not in line:
            continue
        count += 1
        results = line.split("custom-call(")[0].split("=", 1)[1]
        total += hbm.shape_bytes(results) + hbm.shape_bytes(_braced(line, "operand_layout_constraints={"))
    return total, count


def _braced(line: str, opening: str) -> str:
    """The text inside the balanced braces that ``opening`` (ending in "{") starts."""
    start = line.find(opening)
    if start < 0:
        return ""
    i = start + len(opening) - 1
    depth = 0
    for j in range(i, len(line)):
        depth += {"{": 1, "}": -1}.get(line[j], 0)
        if depth == 0:
            return line[i + 1:j]
    return line[i + 1:]


def moves(hlo: str, min_bytes: int) -> tuple[str, ...]:
    """XLA ops in the entry computation (or its fusions) that produce an array of >= min_bytes by
    copying, padding, slicing or communicating."""
    found = []
    for line in hlo.splitlines():
        m = re.match(r"\s*(?:ROOT )?%\S+ = (\S+\[[\d,]*\])\S* ([\w-]+)\(", line)
        if m and m.group(2) in _MOVES and hbm.shape_bytes(m.group(1)) >= min_bytes:
            found.append(f"{m.group(2)} {m.group(1)}")
    return tuple(found)


def compile_program(fn, args, gen: str, *, min_move_bytes: int | None = None, shardings=None) -> TPUReport:
    """Compile ``fn(*args)`` (abstract args) for one chip of ``gen``, or with ``shardings`` given."""
    m = mesh(gen)
    rep = jax.sharding.NamedSharding(m, jax.sharding.PartitionSpec())
    if shardings is None:
        args = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=rep), args)
    try:
        with launches.recording() as log:
            lowered = jax.jit(fn).trace(*args).lower()
        compiled = lowered.compile()
    except Exception as e:  # noqa: BLE001 - a compile failure is a result here, reported by name
        return TPUReport(ok=False, error=f"{type(e).__name__}: {_first_line(e)}")
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    hlo = compiled.as_text()
    kb, count = kernel_bytes(hlo)
    mem = compiled.memory_analysis()
    biggest = max((math.prod(a.shape) * jnp.dtype(a.dtype).itemsize for a in jax.tree.leaves(args)), default=0)
    return TPUReport(ok=True, xla_bytes=float(cost.get("bytes accessed", 0.0)), kernel_bytes=kb,
                     hbm_model_bytes=hbm.hbm_bytes(hlo),
                     temp_bytes=int(getattr(mem, "temp_size_in_bytes", 0)),
                     vmem_bytes=max((k["vmem_bytes"] for k in log if k["target"] == "tpu"), default=0),
                     kernels=count, moves=moves(hlo, min_move_bytes or max(biggest // 2, 1)), hlo=hlo)


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    for line in text.splitlines():
        if "Mosaic failed" in line or "Error" in line or "error" in line:
            return line.strip()[:300]
    return text.splitlines()[0][:300] if text else ""
