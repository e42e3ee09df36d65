"""Named input checks shared by every loss, with one message style.

Every message reads ``"<fn>: expected `<arg>` <what was expected>, got <what came>"``, e.g.
``"online_triplet: expected `labels` of shape (B,) matching embeddings (B=32), got (31,)"``.
Type problems raise :class:`TypeError`, value and shape problems :class:`ValueError`. The checks
of plain values live in :mod:`losskit._plain_checks` (no torch) and are re-exported here.

Shape and dtype checks read metadata only. The checks that read tensor values
(:func:`check_labels` with ``num_classes``, :func:`check_values`, :func:`warn_if_probabilities`)
make one host sync each and are skipped while :func:`losskit.set_checks` has them off.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import torch
from torch import Tensor

from losskit._plain_checks import (
    check_bool,
    check_choice,
    check_int,
    check_number,
    checks_enabled,
    closest,
    did_you_mean,
    fail,
    shape_str,
)

__all__ = [
    "check_bool",
    "check_choice",
    "check_floating",
    "check_int",
    "check_labels",
    "check_ndim",
    "check_number",
    "check_same_device",
    "check_same_shape",
    "check_shape",
    "check_tensor",
    "check_values",
    "checks_enabled",
    "closest",
    "did_you_mean",
    "fail",
    "shape_str",
    "warn_if_probabilities",
]


def check_tensor(fn: str, arg: str, x: object) -> Tensor:
    """``x`` must be a :class:`torch.Tensor`."""
    if not isinstance(x, Tensor):
        fail(fn, arg, "to be a torch.Tensor", type(x).__name__, kind=TypeError)
    return x


def check_floating(fn: str, arg: str, x: object) -> Tensor:
    """``x`` must be a floating-point tensor (logits, embeddings, predictions)."""
    t = check_tensor(fn, arg, x)
    if not t.is_floating_point():
        fail(fn, arg, "to be a floating-point tensor", f"dtype {t.dtype}", kind=TypeError)
    return t


def check_ndim(fn: str, arg: str, x: Tensor, ndim: int | Sequence[int], layout: str = "") -> Tensor:
    """``x`` must have ``ndim`` dimensions (or one of several); ``layout`` names them."""
    allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    if x.dim() not in allowed:
        dims = " or ".join(f"{d}-D" for d in allowed)
        what = f"{dims} {layout}".rstrip()
        fail(fn, arg, f"to be {what}", f"shape {shape_str(x.shape)}")
    return x


def check_shape(
    fn: str, arg: str, x: Tensor, shape: Sequence[int | None], context: str = ""
) -> Tensor:
    """``x`` must have ``shape``; ``None`` entries match any size."""
    ok = x.dim() == len(shape) and all(s is None or s == d for s, d in zip(shape, x.shape))
    if not ok:
        want = (
            "("
            + ", ".join("*" if s is None else str(s) for s in shape)
            + ("," if len(shape) == 1 else "")
            + ")"
        )
        suffix = f" {context}" if context else ""
        fail(fn, arg, f"of shape {want}{suffix}", shape_str(x.shape))
    return x


def check_same_shape(fn: str, arg: str, x: Tensor, ref_arg: str, ref: Tensor) -> Tensor:
    """``x`` must have the same shape as ``ref``, on the same device."""
    if x.shape != ref.shape:
        fail(
            fn, arg, f"of the same shape as `{ref_arg}` {shape_str(ref.shape)}", shape_str(x.shape)
        )
    return check_same_device(fn, arg, x, ref_arg, ref)


def check_same_device(fn: str, arg: str, x: Tensor, ref_arg: str, ref: Tensor) -> Tensor:
    """``x`` must be on the device of ``ref`` (0-d tensors, which torch moves, excepted)."""
    if x.device != ref.device and x.dim() > 0 and ref.dim() > 0:
        fail(fn, arg, f"on the device of `{ref_arg}` ({ref.device})", f"device {x.device}")
    return x


def check_labels(
    fn: str,
    arg: str,
    labels: object,
    num_classes: int | None = None,
    *,
    ignore_index: int | None = None,
) -> Tensor:
    """``labels`` must hold integer class indices in ``[0, num_classes)`` or ``ignore_index``."""
    t = check_tensor(fn, arg, labels)
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        fail(fn, arg, "to hold integer class indices", f"dtype {t.dtype}", kind=TypeError)
    if num_classes is not None and t.numel() > 0 and checks_enabled():
        outside = (t < 0) | (t >= num_classes)
        if ignore_index is not None:
            outside &= t != ignore_index
        if bool(outside.any()):  # the one host sync; the rest is the error path
            lo, hi = (int(v) for v in torch.aminmax(t[outside]))
            bad = lo if lo < 0 else hi
            extra = f" or {ignore_index}" if ignore_index is not None else ""
            fail(
                fn,
                arg,
                f"in [0, {num_classes - 1}]{extra} (num_classes={num_classes})",
                f"a label {bad}",
            )
    return t


def check_values(
    fn: str, arg: str, x: Tensor, *, low: float | None = None, high: float | None = None
) -> Tensor:
    """Every value of the tensor ``x`` lies in ``[low, high]`` (targets, weights); NaN fails."""
    if x.numel() == 0 or not checks_enabled():
        return x
    lo, hi = (float(v) for v in torch.stack(torch.aminmax(x.detach())).tolist())  # one sync
    bad: float | None = None
    if math.isnan(lo) or math.isnan(hi):
        bad = math.nan
    elif low is not None and lo < low:
        bad = lo
    elif high is not None and hi > high:
        bad = hi
    if bad is not None:
        lo_s = "-inf" if low is None else f"{low:g}"
        hi_s = "inf" if high is None else f"{high:g}"
        left, right = "(" if low is None else "[", ")" if high is None else "]"
        fail(fn, arg, f"with values in {left}{lo_s}, {hi_s}{right}", f"a value {bad:g}")
    return x


def warn_if_probabilities(fn: str, arg: str, x: Tensor, *, dim: int | None = None) -> bool:
    """Warn (once per loss, by Python's default filter) when logits look like probabilities.

    ``x`` looks like probabilities when every value lies in ``[0, 1]`` (and is not all zeros)
    and, with ``dim`` (the class dimension of a softmax loss), every slice along ``dim`` sums
    to 1 within 1e-3. Ordinary logits have negative entries or unnormalised rows, so they never
    trigger it. Costs two reductions; skipped while compiling. Returns whether it warned.
    """
    if x.numel() == 0 or not checks_enabled() or torch.compiler.is_compiling():
        return False
    with torch.no_grad():
        lo, hi = torch.aminmax(x.detach())
        looks = (lo >= 0) & (hi <= 1) & (hi > 0)
        if dim is not None:
            sums = x.detach().sum(dim=dim, dtype=torch.float32)
            looks &= (sums - 1).abs().max() <= 1e-3
    if not bool(looks):
        return False
    rows = f", summing to 1 over dim {dim}" if dim is not None else ""
    warnings.warn(
        f"{fn}: expected `{arg}` to be raw scores (logits, before sigmoid/softmax), got values "
        f"that look like probabilities (all in [0, 1]{rows}); pass the scores themselves",
        UserWarning,
        stacklevel=3,
    )
    return True
