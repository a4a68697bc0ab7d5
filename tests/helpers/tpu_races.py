"""Whether the TPU interpreter found a race in the kernel it ran last.  With
``InterpretParams(detect_races=True)`` it prints a race and sets a flag; it raises nothing, so the
tests read the flag after every launch."""
from __future__ import annotations

import importlib


def _state_module():
    for name in ("jax._src.pallas.mosaic.interpret.interpret_pallas_call",  # jax 0.10 and later
                 "jax._src.pallas.mosaic.interpret"):
        try:
            mod = importlib.import_module(name)
        except ImportError:
            continue
        if hasattr(mod, "races"):
            return mod
    raise RuntimeError("this JAX's TPU interpreter keeps its race-detection state elsewhere: update tests/helpers/tpu_races.py")


def races_found() -> bool:
    """True if the last kernel the TPU interpreter ran had a race (False before any ran)."""
    races = _state_module().races
    return bool(races is not None and races.races_found)
