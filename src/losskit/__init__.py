"""losskit: loss functions for PyTorch, done right, and a trainer that puts them to work.

Loss classes live here (``losskit.FocalLoss``), functions in :mod:`losskit.functional`. They
are imported on first use, so ``import losskit`` alone (and the ``losskit`` command line) does
not load torch until a loss is needed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from losskit._plain_checks import checks as checks
from losskit._plain_checks import checks_enabled as checks_enabled
from losskit._plain_checks import set_checks as set_checks
from losskit._version import __version__ as __version__

if TYPE_CHECKING:  # what the lazy names below resolve to, for type checkers
    from losskit import distributed as distributed
    from losskit import functional as functional
    from losskit import metrics as metrics
    from losskit.functional import *  # noqa: F403
    from losskit.registry import build_loss as build_loss
    from losskit.registry import get_spec as get_spec
    from losskit.registry import list_losses as list_losses

_EAGER = ["__version__", "checks", "checks_enabled", "set_checks"]
_REGISTRY_NAMES = ("build_loss", "get_spec", "list_losses")
_SUBMODULES = ("functional", "metrics", "distributed")


def _loss_classes() -> list[str]:
    functional = importlib.import_module("losskit.functional")
    return [n for n in dir(functional) if not n.startswith("_") and n[0].isupper()]


def __getattr__(name: str) -> Any:
    if name == "__all__":
        return [*_EAGER, *_REGISTRY_NAMES, *_SUBMODULES, *_loss_classes()]
    if name in _SUBMODULES:
        return importlib.import_module(f"losskit.{name}")
    if name in _REGISTRY_NAMES:
        return getattr(importlib.import_module("losskit.registry"), name)
    if not name.startswith("_"):
        # a loss class, or a loss function (`losskit.focal` is `losskit.functional.focal`)
        functional = importlib.import_module("losskit.functional")
        if hasattr(functional, name):
            return getattr(functional, name)
    raise AttributeError(f"module 'losskit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__getattr__("__all__")})
