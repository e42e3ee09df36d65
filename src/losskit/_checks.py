"""Named input checks shared by every loss, with one message style.

Every message reads ``"<fn>: expected `<arg>` <what was expected>, got <what came>"``, e.g.
``"online_triplet: expected `labels` of shape (B,) matching embeddings (B=32), got (31,)"``.
Type problems raise :class:`TypeError`, value and shape problems :class:`ValueError`.
"""

from __future__ import annotations

import difflib
import math
import warnings
from collections.abc import Iterable, Sequence
from typing import NoReturn

import torch
from torch import Tensor

__all__ = [
    "check_bool",
    "check_choice",
    "check_floating",
    "check_int",
    "check_labels",
    "check_ndim",
    "check_number",
    "check_same_shape",
    "check_shape",
    "check_tensor",
    "check_values",
    "closest",
    "did_you_mean",
    "fail",
    "shape_str",
    "warn_if_probabilities",
]


def shape_str(shape: Iterable[int]) -> str:
    """Format a shape as ``(2, 3)``; a 1-tuple keeps its comma: ``(31,)``."""
    dims = tuple(int(d) for d in shape)
    return str(dims)


def fail(
    fn: str, arg: str, expected: str, got: object, *, kind: type[Exception] = ValueError
) -> NoReturn:
    """Raise ``kind`` with the project's one message style."""
    raise kind(f"{fn}: expected `{arg}` {expected}, got {got}")


def closest(name: str, choices: Iterable[str]) -> str | None:
    """The choice closest to ``name`` (case-insensitive), or ``None`` if nothing is close."""
    options = list(choices)
    lowered = {c.lower(): c for c in options}
    match = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.5)
    return lowered[match[0]] if match else None


def did_you_mean(name: object, choices: Iterable[str], *, form: str = "'{}'") -> str:
    """``" (did you mean 'x'?)"`` naming the choice closest to ``name`` (:func:`closest`), or
    ``""`` when none is close; ``form`` formats the choice (``"`{}`"`` for config keys,
    ``"--{}"`` for flags).

    >>> did_you_mean("hubr", ["huber", "mse"])
    " (did you mean 'huber'?)"
    """
    hint = closest(name, choices) if isinstance(name, str) else None
    return f" (did you mean {form.format(hint)}?)" if hint else ""


def check_choice(fn: str, arg: str, value: object, choices: Sequence[str]) -> str:
    """``value`` must be one of ``choices``; the error suggests the closest one."""
    if isinstance(value, str) and value in choices:
        return value
    listed = ", ".join(repr(c) for c in choices)
    fail(fn, arg, f"one of {listed}", f"{value!r}{did_you_mean(value, choices)}")


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
    """``x`` must have the same shape as ``ref``."""
    if x.shape != ref.shape:
        fail(
            fn, arg, f"of the same shape as `{ref_arg}` {shape_str(ref.shape)}", shape_str(x.shape)
        )
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
    if num_classes is not None and t.numel() > 0:
        valid = t if ignore_index is None else t[t != ignore_index]
        if valid.numel() > 0:
            lo, hi = int(valid.min()), int(valid.max())
            if lo < 0 or hi >= num_classes:
                bad = lo if lo < 0 else hi
                extra = f" or {ignore_index}" if ignore_index is not None else ""
                fail(
                    fn,
                    arg,
                    f"in [0, {num_classes - 1}]{extra} (num_classes={num_classes})",
                    f"a label {bad}",
                )
    return t


def check_number(
    fn: str,
    arg: str,
    value: object,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """A finite real number within ``[low, high]`` (an end is excluded when ``*_open``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        fail(fn, arg, "to be a real number", type(value).__name__, kind=TypeError)
    v = float(value)
    too_low = low is not None and (v <= low if low_open else v < low)
    too_high = high is not None and (v >= high if high_open else v > high)
    if not math.isfinite(v) or too_low or too_high:
        left = "(" if low_open or low is None else "["
        right = ")" if high_open or high is None else "]"
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        finite = "to be a finite number " if not math.isfinite(v) else ""
        fail(fn, arg, f"{finite}in {left}{lo}, {hi}{right}", f"{value!r}")
    return v


def check_bool(fn: str, arg: str, value: object) -> bool:
    """A ``bool`` flag (not an int or a tensor)."""
    if not isinstance(value, bool):
        fail(fn, arg, "to be a bool", type(value).__name__, kind=TypeError)
    return value


def check_int(fn: str, arg: str, value: object, *, low: int | None = None) -> int:
    """An integer (not a bool), at least ``low`` when given."""
    if isinstance(value, bool) or not isinstance(value, int):
        fail(fn, arg, "to be an integer", type(value).__name__, kind=TypeError)
    if low is not None and value < low:
        fail(fn, arg, f"to be an integer >= {low}", f"{value!r}")
    return value


def check_values(
    fn: str, arg: str, x: Tensor, *, low: float | None = None, high: float | None = None
) -> Tensor:
    """Every value of the tensor ``x`` lies in ``[low, high]`` (targets, weights); NaN fails."""
    if x.numel() == 0:
        return x
    lo_t, hi_t = torch.aminmax(x.detach())
    lo, hi = float(lo_t), float(hi_t)
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
    if x.numel() == 0 or torch.compiler.is_compiling():
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
