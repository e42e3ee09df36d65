"""The one reduction helper, and the float32 compute-dtype rule shared by every loss."""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor

from losskit._checks import check_choice

__all__ = [
    "REDUCTIONS",
    "Reduction",
    "check_reduction",
    "compute_dtype",
    "reduce",
    "sample_rows",
    "upcast",
]

Reduction = Literal["mean", "sum", "none"]
REDUCTIONS: tuple[str, ...] = ("mean", "sum", "none")


def check_reduction(fn: str, reduction: object) -> Reduction:
    """Validate ``reduction`` (``"mean" | "sum" | "none"``)."""
    return check_choice(fn, "reduction", reduction, REDUCTIONS)  # type: ignore[return-value]


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype for log/exp parts: float32 for half-precision inputs, else ``dtype``."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def upcast(x: Tensor) -> Tensor:
    """``x`` in :func:`compute_dtype` (a no-op for float32/float64)."""
    return x.to(compute_dtype(x.dtype))


def sample_rows(x: Tensor) -> Tensor:
    """``x (B, *)`` as ``(B, prod(*))``, one row per sample; unlike ``reshape(B, -1)`` also for
    an empty batch."""
    return x.reshape(x.shape[0], math.prod(x.shape[1:]))


def reduce(
    loss: Tensor,
    reduction: str,
    *,
    fn: str,
    denominator: Tensor | float | None = None,
    dtype: torch.dtype | None = None,
) -> Tensor:
    """Reduce a per-element loss.

    ``"none"`` returns ``loss`` as it is, ``"sum"`` its sum, ``"mean"`` its sum divided by
    ``denominator`` (default: the number of elements). Callers that ignore elements pass the
    count (or summed weight) of the valid ones and must have zeroed the ignored entries; when
    nothing is valid the mean is ``0.0`` still connected to the graph, never NaN. The result is
    cast to ``dtype`` when given (the input's dtype, after a float32 computation).
    """
    check_reduction(fn, reduction)
    if reduction == "none":
        out = loss
    elif reduction == "sum":
        out = loss.sum()
    else:
        total = loss.sum()
        if denominator is None:
            denominator = float(max(loss.numel(), 1))
        if isinstance(denominator, Tensor):
            out = total / denominator.to(total.dtype).clamp_min(torch.finfo(total.dtype).tiny)
        else:
            out = total / max(float(denominator), torch.finfo(total.dtype).tiny)
    return out if dtype is None else out.to(dtype)
