"""Ask XLA's CPU compiler to compile a while loop whole, as one native function.

XLA:CPU runs a program as a sequence of calls, one per fused op, and a ``while_loop`` body the same
way each iteration: about a microsecond an op.  A network step is dozens of small ops, so at 4,000
neurons those calls, not the arithmetic, would set the speed.  XLA can instead compile a loop whole,
as one function, when the loop moves fewer bytes than a threshold
(``xla_cpu_small_while_loop_byte_threshold``, about 1 KB by default) and holds no scatter, dot or
custom call.  The network step's CPU formulation (``networks.propagate``: plain loops over the fired
neurons and their synapses) is written for that; ``request`` raises the threshold through
``XLA_FLAGS``, which XLA reads once, when JAX starts its CPU backend.

It is opt-in for a process that imports the library (``SURROGATE_PALLAS_NATIVE_LOOPS=1``, or
``networks.use_native_loops()`` before JAX runs anything), because the flag applies to every loop of
the process: compiling some large programs whole (seen: an interpreted Pallas kernel sharded over
8 devices) takes far longer than running them op by op.  ``surrogate-pallas simulate`` turns it on
for itself.  Without it, a simulator runs the vector formulation: the same spikes, slower on a CPU.
``compiled_native`` is how a simulator tells.
"""
from __future__ import annotations

import os

OPTION = "xla_cpu_small_while_loop_byte_threshold"
THRESHOLD = 1 << 50
ENV = "SURROGATE_PALLAS_NATIVE_LOOPS"
_MARK = "xla_cpu_small_call"  # the attribute XLA puts on a loop it compiled whole
_requested = False


def request(force: bool = False) -> None:
    """Add the option to ``XLA_FLAGS`` (merged into an ``--xla_backend_extra_options`` already there),
    if ``force`` or ``SURROGATE_PALLAS_NATIVE_LOOPS=1``.  It takes effect only if JAX has not yet
    started its CPU backend."""
    global _requested
    if not force and os.environ.get(ENV, "0") != "1":
        return
    flags = os.environ.get("XLA_FLAGS", "").split()
    if any(OPTION in f for f in flags):
        _requested = True
        return
    extra = [i for i, f in enumerate(flags) if f.startswith("--xla_backend_extra_options=")]
    if extra:
        flags[extra[-1]] += f",{OPTION}={THRESHOLD}"
    else:
        flags.append(f"--xla_backend_extra_options={OPTION}={THRESHOLD}")
    os.environ["XLA_FLAGS"] = " ".join(flags)
    _requested = True


def available() -> bool:
    """Whether the loops may compile natively here: requested, and the default backend is the CPU."""
    if not _requested:
        return False
    import jax
    return jax.default_backend() == "cpu"


def compiled_native(compiled) -> bool:
    """Whether a compiled program's loops were all compiled whole: its entry computation runs no
    ``while`` of its own, and calls one compiled whole."""
    try:
        text = compiled.as_text()
    except Exception:  # noqa: BLE001  (no text: assume not)
        return False
    entry = text[text.find("\nENTRY "):]
    entry = entry[:entry.find("\n}")]
    return " while(" not in entry and _MARK in entry
