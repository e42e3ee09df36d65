"""``python -m losskit`` (also what ``torchrun -m losskit`` runs)."""

import sys

from losskit.cli import main

sys.exit(main())
