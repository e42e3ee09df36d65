"""losskit: loss functions for PyTorch, done right, and a trainer that puts them to work.

Loss classes live here (``losskit.FocalLoss``), functions in :mod:`losskit.functional`.
"""

from losskit import functional, metrics
from losskit.functional import *  # noqa: F403
from losskit.registry import build_loss, get_spec, list_losses

__version__ = "0.1.0"
__all__ = ["__version__", "build_loss", "functional", "get_spec", "list_losses", "metrics"]
__all__ += [n for n in dir(functional) if not n.startswith("_") and n[0].isupper()]  # loss classes
