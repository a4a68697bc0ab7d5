"""The ``surrogate-pallas`` command and its demos: ``train`` (a spiking digit classifier), ``simulate``
(a large population) and their figures.  It needs the ``cli`` extra (optax, scikit-learn, matplotlib,
tqdm); ``bench`` and ``inspect`` hand over to ``surrogate_pallas.tooling``."""
from .main import main

__all__ = ["main"]
