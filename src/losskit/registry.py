"""The one registry: loss name -> loss class, with ``build_loss`` and ``list_losses``.

A loss's registry name is its function's name (``"focal"`` builds :class:`losskit.FocalLoss`).
Family modules register their modules with :func:`register`; the registry imports every family
on first use, so ``list_losses()`` is complete whatever the user imported.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from losskit._plain_checks import did_you_mean

if TYPE_CHECKING:  # the registry itself loads no torch: `losskit list --help` stays quick
    from torch import nn

__all__ = ["LossSpec", "build_loss", "get_spec", "list_losses", "register"]

# Every module that registers losses; a new family adds itself here.
FAMILIES: tuple[str, ...] = (
    "losskit.losses.regression",
    "losskit.losses.classification",
    "losskit.losses.metric.pairs",
    "losskit.losses.metric.contrastive",
    "losskit.losses.metric.proxies",
    "losskit.losses.metric.margins",
    "losskit.losses.metric.label_pairs",
    "losskit.losses.segmentation",
    "losskit.losses.segmentation_overlap",
    "losskit.losses.detection",
    "losskit.losses.generative",
    "losskit.losses.language",
    "losskit.losses.weighting",
    "losskit.losses.self_supervised",
    "losskit.losses.image",
)

M = TypeVar("M", bound="type[nn.Module]")


@dataclass(frozen=True)
class LossSpec:
    """What the registry knows of one loss."""

    name: str
    cls: type[nn.Module]
    function: Callable[..., Any] | None
    family: str

    @property
    def doc(self) -> str:
        """The source of truth for the loss's text: the function's docstring, else the class's."""
        return inspect.getdoc(self.function if self.function is not None else self.cls) or ""

    @property
    def summary(self) -> str:
        """The docstring's first line."""
        return self.doc.split("\n", 1)[0].strip()


_REGISTRY: dict[str, LossSpec] = {}
_loaded = False


def register(
    function: Callable[..., Any] | None = None, *, name: str | None = None
) -> Callable[[M], M]:
    """Class decorator registering a loss module under its function's name (or ``name``)."""

    def deco(cls: M) -> M:
        key = name or (function.__name__ if function is not None else None)
        if key is None:
            raise TypeError(
                f"register: expected `function` or `name` for {cls.__name__}, got neither"
            )
        if key in _REGISTRY and _REGISTRY[key].cls is not cls:
            raise ValueError(f"register: expected a new loss name, got {key!r} registered twice")
        # A module may name its family (``FAMILY = "segmentation"``); else its module name.
        module = sys.modules.get(cls.__module__)
        default = cls.__module__.removeprefix("losskit.losses.").split(".")[0]
        family = getattr(module, "FAMILY", default)
        _REGISTRY[key] = LossSpec(name=key, cls=cls, function=function, family=family)
        return cls

    return deco


def _load() -> None:
    global _loaded
    if not _loaded:
        for module in FAMILIES:
            importlib.import_module(module)
        _loaded = True


def list_losses(family: str | None = None) -> list[str]:
    """Names of every registered loss (sorted), optionally of one family (e.g. ``"regression"``).

    Raises:
        ValueError: an unknown ``family`` (with the closest one).
    """
    _load()
    if family is not None:
        families = sorted({s.family for s in _REGISTRY.values()})
        if family not in families:
            suggestion = did_you_mean(family, families)
            raise ValueError(
                f"list_losses: expected `family` one of {', '.join(map(repr, families))}, "
                f"got {family!r}{suggestion}"
            )
    return sorted(n for n, s in _REGISTRY.items() if family is None or s.family == family)


def get_spec(name: str) -> LossSpec:
    """The :class:`LossSpec` of ``name``; an unknown name raises with the closest suggestion."""
    _load()
    if not isinstance(name, str) or name not in _REGISTRY:
        raise ValueError(
            f"build_loss: expected `name` to be a registered loss (see losskit.list_losses()), "
            f"got {name!r}{did_you_mean(name, _REGISTRY)}"
        )
    return _REGISTRY[name]


def build_loss(name: str, **kwargs: Any) -> nn.Module:
    """Build the loss module registered as ``name`` with keyword hyper-parameters.

    Example:
        >>> import losskit
        >>> losskit.build_loss("huber", delta=0.5)
        HuberLoss(delta=0.5, reduction='mean')
    """
    cls = get_spec(name).cls
    accepted = inspect.signature(cls).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in accepted.values()):
        for key in kwargs:
            if key not in accepted:
                suggestion = did_you_mean(key, accepted)
                raise TypeError(
                    f"build_loss: expected keyword arguments of {cls.__name__} "
                    f"({', '.join(accepted) or 'none'}), got {key!r}{suggestion}"
                )
    return cls(**kwargs)
