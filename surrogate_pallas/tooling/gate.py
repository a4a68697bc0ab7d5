"""What both gates (``bench`` and ``inspect``) share: their flags, read one way, with errors that
name the flag and say what to do."""
from __future__ import annotations

import json
import sys
from pathlib import Path


def parse_fraction(text: str) -> float:
    """``--max-regression``: ``10%`` or ``0.1``, a fraction in [0, 1)."""
    text = str(text).strip()
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        value = float("nan")
    if not 0 <= value < 1:
        raise ValueError(f"--max-regression: expected a fraction in [0, 1) such as 10% or 0.1, got {text!r}")
    return value


def read_baseline(path: Path, save_hint: str) -> dict:
    """A saved report for ``--compare``; a missing or unreadable file is a ValueError that says how to
    make one (``save_hint``)."""
    if not path.is_file():
        raise ValueError(f"--compare: no baseline at {path}; {save_hint}")
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"--compare: {path} is not a saved report (invalid JSON: {e})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("results"), list):
        raise ValueError(f"--compare: {path} is not a saved report (no 'results' list)")
    return doc


def read_gate(max_regression: str, compare_path: Path | None, save_hint: str):
    """(--max-regression as a fraction, the --compare baseline or None); raises ValueError."""
    return parse_fraction(max_regression), (read_baseline(compare_path, save_hint) if compare_path else None)


def read_flags(args, save_hint: str):
    """``read_gate`` of parsed ``--max-regression`` and ``--compare``; on bad input, the message on
    stderr and None (the command then exits 2)."""
    try:
        return read_gate(args.max_regression, args.compare, save_hint)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return None
