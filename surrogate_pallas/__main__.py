"""``python -m surrogate_pallas``: the ``surrogate-pallas`` command."""
import sys

from .cli import main

sys.exit(main())
