"""The HBM traffic of a compiled TPU program, read off its optimized HLO.

Every instruction of the entry computation reads its operands and writes its results; only
arrays that live in HBM count.  XLA's memory-space assignment places some arrays in on-chip
memory (their layouts carry ``S(1)``): a residual that the forward kernel writes and the
backward kernel reads, a cotangent prefetched before the kernel that reads it (v6e), a state
staged between its ``[N]`` and ``[1, N]`` views.  Those arrays move between the cores and
on-chip memory, not HBM.  ``cost_analysis`` counts every byte an op touches in any memory
(an asynchronous copy into on-chip memory counts four times its size), so it overstates the
HBM traffic of such programs; on programs that use no on-chip memory this model and
``cost_analysis`` + the Mosaic kernels' operands agree (tested).

Async pairs: ``copy-start`` reads its source and writes its destination, ``slice-start`` reads
and writes its slice; the ``-done`` halves move nothing.  Shape-only instructions (parameter,
constant, tuple, get-tuple-element, bitcast) move nothing; their consumers read the arrays.
"""
from __future__ import annotations

import math
import re

_DTYPE = {"f32": 4, "bf16": 2, "f16": 2, "s32": 4, "u32": 4, "s16": 2, "u16": 2, "s8": 1, "u8": 1, "pred": 1,
          "f64": 8, "s64": 8, "u64": 8}
_ARRAY = re.compile(r"\b(" + "|".join(_DTYPE) + r")\[([\d,]*)\](\{[^}]*\})?")
_INSTR = re.compile(r"\s*(?:ROOT )?%([\w.\-]+) = (.*?) ([a-z][\w\-]*)\((.*)$")
_NO_TRAFFIC = {"parameter", "constant", "get-tuple-element", "tuple", "bitcast", "copy-done", "slice-done",
               "after-all", "partition-id", "replica-id", "iota"}
_UNMODELLED = {"while", "call", "conditional", "async-start", "send", "recv"}


def shape_bytes(text: str) -> int:
    """Bytes of every array named in ``text`` (a shape, a tuple of shapes, a list of operand shapes)."""
    return sum(b for b, _ in _arrays(text))


def _arrays(shape_text: str):
    """(bytes, in_hbm) per array in a (possibly tuple) shape, in order."""
    out = []
    for dt, dims, layout in _ARRAY.findall(shape_text):
        n = math.prod(int(d) for d in dims.split(",") if d)
        on_chip = bool(re.search(r"S\([1-9]\d*\)", layout or ""))
        out.append((_DTYPE[dt] * n, not on_chip))
    return out


def _operands(rest: str):
    depth, i = 1, 0
    for i, ch in enumerate(rest):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth == 0:
            break
    return re.findall(r"%([\w.\-]+)", rest[:i])


def _entry(hlo: str):
    start = hlo.find("\nENTRY ")
    if start < 0:
        return None
    body = hlo[start:].split("\n", 1)[1]
    return body[:body.find("\n}")]


def hbm_bytes(hlo: str) -> float | None:
    """Bytes the entry computation moves to and from HBM, or None if it holds an instruction that
    this model does not follow (a loop or a call, whose bodies it would have to walk)."""
    body = _entry(hlo)
    if body is None:
        return None
    defs: dict[str, list[tuple[int, bool]]] = {}
    total = 0
    for line in body.splitlines():
        m = _INSTR.match(line)
        if not m:
            continue
        name, shape, op, rest = m.groups()
        if op in _UNMODELLED:
            return None
        result = _arrays(shape)
        operands = _operands(rest)
        if op == "get-tuple-element":
            k = int(re.search(r"index=(\d+)", rest).group(1))
            src = defs.get(operands[0], [])
            # an async start's tuple nests its source; a kernel's or fusion's is flat
            defs[name] = [src[k]] if k < len(src) and len(result) == 1 else result
            continue
        defs[name] = result
        if op in _NO_TRAFFIC:
            continue
        if op == "copy-start":
            src = defs.get(operands[0], [])
            total += sum(b for b, hbm in src if hbm) + (result[0][0] if result and result[0][1] else 0)
            continue
        if op == "slice-start":
            src = defs.get(operands[0], [])
            dest = result[len(src)] if len(result) > len(src) else result[-1]
            total += (dest[0] if src and src[0][1] else 0) + (dest[0] if dest[1] else 0)
            continue
        total += sum(b for o in operands for b, hbm in defs.get(o, []) if hbm)
        total += sum(b for b, hbm in result if hbm)
    return float(total)
