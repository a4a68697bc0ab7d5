"""A record of the kernels a program launches, taken while it is lowered.

``surrogate_pallas.aot`` lowers a program inside ``recording()`` to learn, per
kernel, its grid, its on-chip buffer bytes (TPU VMEM) and its compiler
parameters (Triton ``num_warps`` / ``num_stages``), which the compiled
artifacts do not state in a readable form.  Outside ``recording()`` nothing is
kept.
"""
from __future__ import annotations

import contextlib
import contextvars

_LOG: contextvars.ContextVar[list | None] = contextvars.ContextVar("surrogate_pallas_launches", default=None)


def record(**launch):
    log = _LOG.get()
    if log is not None:
        log.append(launch)


@contextlib.contextmanager
def recording():
    """Collect one dict per kernel launch lowered inside the block."""
    log: list[dict] = []
    token = _LOG.set(log)
    try:
        yield log
    finally:
        _LOG.reset(token)
