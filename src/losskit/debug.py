"""Debugging aids: the loss guide's checklist for a training run that misbehaves, made into code.

- :func:`check_loss` — stop at the first NaN, Inf or negative loss, naming the loss and the step.
- :func:`gradient_report` — per-parameter gradient norms after ``backward()``; flags parameters
  whose gradient is missing, zero, non-finite or exploding.
- :func:`expected_initial_loss` — ``log C``, what cross-entropy should read at the first step of a
  freshly initialised ``C``-class classifier (a first loss far from it points at a bug: wrong
  targets, probabilities passed as logits, a badly scaled last layer).
- :func:`warn_if_combined_scales_differ` — warn when the parts of a combined loss differ in
  scale by more than 100× (one part then drowns the others; reweight them).

Example:
    >>> import torch
    >>> from losskit.debug import check_loss, expected_initial_loss
    >>> round(expected_initial_loss(10), 4)
    2.3026
    >>> check_loss(torch.tensor(float("nan")), step=12, name="Loss/CE")
    Traceback (most recent call last):
    ...
    ValueError: check_loss: expected `Loss/CE` to be finite at step 12, got nan
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from losskit._checks import check_int, check_number, fail, shape_str

__all__ = [
    "GradientReport",
    "ParameterGradient",
    "check_loss",
    "expected_initial_loss",
    "gradient_report",
    "warn_if_combined_scales_differ",
]

GradientStatus = Literal["ok", "none", "zero", "nonfinite", "exploding", "frozen"]


def check_loss(
    loss: Tensor | float,
    step: int | None = None,
    name: str | None = None,
    *,
    allow_negative: bool = False,
) -> Tensor | float:
    """Raise a clear error if ``loss`` is NaN, infinite, or negative; return it unchanged.

    Call it on the loss right after computing it, before ``backward()``: a NaN caught at the step
    where it first appears is far easier to trace than a model full of NaN weights later.

    Args:
        loss (Tensor | float): the loss value; a tensor may hold several values (all are checked).
        step (int, optional): the training step, quoted in the error.
        name (str, optional): the loss's name (e.g. ``"Loss/CE"``), quoted in the error.
        allow_negative (bool): accept negative values (losses that may go below zero, e.g. a
            WGAN critic loss or uncertainty weighting's ``exp(-s)·L + s``). Default ``False``.

    Returns:
        ``loss`` itself, so the call can wrap the expression.

    Raises:
        ValueError: if a value is NaN or infinite, or negative when ``allow_negative`` is false.
        TypeError: if ``loss`` is neither a tensor nor a real number.
    """
    arg = name or "loss"
    where = f" at step {step}" if step is not None else ""
    if isinstance(loss, Tensor):
        values = loss.detach().reshape(-1).double()
    elif isinstance(loss, (int, float)) and not isinstance(loss, bool):
        values = torch.tensor([float(loss)], dtype=torch.float64)
    else:
        fail(
            "check_loss",
            arg,
            "to be a tensor or a real number",
            type(loss).__name__,
            kind=TypeError,
        )
    bad = ~torch.isfinite(values)
    if bad.any():
        first = float(values[bad][0])
        count = f" ({int(bad.sum())} of {values.numel()} values)" if values.numel() > 1 else ""
        fail("check_loss", arg, f"to be finite{where}", f"{first}{count}")
    if not allow_negative and (values < 0).any():
        low = float(values.min())
        fail("check_loss", arg, f"to be non-negative{where}", f"{low:.6g}")
    return loss


@dataclass(frozen=True)
class ParameterGradient:
    """The gradient of one parameter: its norm (``None`` when there is no gradient) and status."""

    name: str
    shape: tuple[int, ...]
    norm: float | None
    status: GradientStatus

    @property
    def flagged(self) -> bool:
        """Whether this parameter's gradient needs a look (missing, zero, non-finite, exploding)."""
        return self.status not in ("ok", "frozen")


_STATUS_NOTE: dict[str, str] = {
    "ok": "",
    "frozen": "frozen (requires_grad=False)",
    "none": "NO GRADIENT: not used in the loss, or backward() was not called",
    "zero": "ZERO GRADIENT: dead units, a detached branch, or a saturated activation",
    "nonfinite": "NON-FINITE GRADIENT: NaN/Inf; check the loss and the learning rate",
    "exploding": "EXPLODING GRADIENT: lower the learning rate or clip gradients",
}


@dataclass(frozen=True)
class GradientReport:
    """Per-parameter gradient norms of a model; ``str(report)`` is a printable table."""

    parameters: tuple[ParameterGradient, ...]
    total_norm: float
    explode_threshold: float

    @property
    def flagged(self) -> tuple[ParameterGradient, ...]:
        """The parameters whose gradient is missing, zero, non-finite or exploding."""
        return tuple(p for p in self.parameters if p.flagged)

    @property
    def ok(self) -> bool:
        """``True`` when no parameter is flagged."""
        return not self.flagged

    def __str__(self) -> str:
        width = max((len(p.name) for p in self.parameters), default=9)
        width = max(width, len("parameter"))
        lines = [f"{'parameter':<{width}}  {'shape':<16} {'grad norm':>12}  note"]
        for p in self.parameters:
            norm = "-" if p.norm is None else f"{p.norm:.4e}"
            line = (
                f"{p.name:<{width}}  {shape_str(p.shape):<16} {norm:>12}  {_STATUS_NOTE[p.status]}"
            )
            lines.append(line.rstrip())
        verdict = "all gradients look healthy" if self.ok else f"{len(self.flagged)} flagged"
        lines.append(f"total gradient norm {self.total_norm:.4e}; {verdict}")
        return "\n".join(lines)


def gradient_report(model: nn.Module, *, explode_threshold: float = 1e3) -> GradientReport:
    """Per-parameter gradient norms of ``model`` (call after ``loss.backward()``).

    A parameter is flagged ``"none"`` when it has no gradient, ``"zero"`` when its gradient is
    all zeros, ``"nonfinite"`` when it holds NaN or Inf, and ``"exploding"`` when its L2 norm
    exceeds ``explode_threshold``. Parameters with ``requires_grad=False`` are listed as
    ``"frozen"`` and not flagged.

    Args:
        model (nn.Module): the model whose ``named_parameters()`` are inspected.
        explode_threshold (float): L2 norm above which a gradient counts as exploding.

    Returns:
        GradientReport: ``.parameters`` (name, shape, norm, status), ``.total_norm`` (L2 norm of
        all finite gradients together), ``.flagged``, ``.ok``; ``str(report)`` is a table.

    Raises:
        TypeError: if ``model`` is not an ``nn.Module``.
        ValueError: if ``explode_threshold`` is not positive.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> model = nn.Linear(3, 2)
        >>> model(torch.ones(4, 3)).sum().backward()
        >>> report = gradient_report(model)
        >>> [p.status for p in report.parameters], report.ok
        (['ok', 'ok'], True)
    """
    if not isinstance(model, nn.Module):
        fail("gradient_report", "model", "to be an nn.Module", type(model).__name__, kind=TypeError)
    limit = check_number(
        "gradient_report", "explode_threshold", explode_threshold, low=0.0, low_open=True
    )
    entries: list[ParameterGradient] = []
    finite_grads: list[Tensor] = []
    for name, param in model.named_parameters():
        shape = tuple(param.shape)
        if not param.requires_grad:
            entries.append(ParameterGradient(name, shape, None, "frozen"))
            continue
        if param.grad is None:
            entries.append(ParameterGradient(name, shape, None, "none"))
            continue
        grad = param.grad.detach()
        norm = float(torch.linalg.vector_norm(grad.double()))
        status: GradientStatus
        if not torch.isfinite(grad).all():
            status = "nonfinite"
        elif norm == 0.0:
            status = "zero"
        else:
            finite_grads.append(grad)
            status = "exploding" if norm > limit else "ok"
        entries.append(ParameterGradient(name, shape, norm, status))
    total = float(torch.nn.utils.get_total_norm(finite_grads)) if finite_grads else 0.0
    return GradientReport(tuple(entries), total, limit)


def expected_initial_loss(num_classes: int) -> float:
    """Cross-entropy of an uninformed ``C``-class classifier: ``log C``.

    A freshly initialised classifier predicts close to uniform probabilities, so its first-step
    cross-entropy should be near ``log C`` (2.303 for 10 classes). Much larger means confident
    wrong logits (a badly scaled last layer, wrong targets); much smaller at step 0 means a leak.

    Args:
        num_classes (int): the number of classes ``C`` (at least 1).

    Returns:
        float: ``log(num_classes)``.

    Raises:
        TypeError: if ``num_classes`` is not an integer.
        ValueError: if ``num_classes`` is below 1.

    Example:
        >>> round(expected_initial_loss(100), 3)
        4.605
    """
    return math.log(check_int("expected_initial_loss", "num_classes", num_classes, low=1))


def warn_if_combined_scales_differ(
    parts: Mapping[str, Tensor | float], *, ratio: float = 100.0
) -> bool:
    """Warn when the parts of a combined loss differ in magnitude by more than ``ratio``.

    Meant for the first step of a combined objective (e.g. ``CombinedLoss``): when one part is
    ~0.01 and another ~100, the small one hardly affects training whatever its weight suggests.
    Parts that are exactly zero or not finite are left out of the comparison (:func:`check_loss`
    reports non-finite values). Callers decide how often to call it (once, at the first step).

    Args:
        parts (Mapping[str, Tensor | float]): part name -> its (scalar) value, unweighted.
        ratio (float): the largest accepted ratio of the largest to the smallest magnitude.

    Returns:
        bool: ``True`` when a warning was issued.

    Raises:
        TypeError: if a part is neither a scalar tensor nor a real number.
        ValueError: if ``ratio`` is below 1.

    Warns:
        UserWarning: naming the parts and their values.

    Example:
        >>> import warnings
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     warn_if_combined_scales_differ({"ce": 2.3, "proxy": 1.9})
        False
    """
    limit = check_number("warn_if_combined_scales_differ", "ratio", ratio, low=1.0)
    magnitudes: dict[str, float] = {}
    for key, value in parts.items():
        if isinstance(value, Tensor) and value.numel() == 1:
            v = float(value.detach())
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            v = float(value)
        else:
            got = (
                f"shape {tuple(value.shape)}" if isinstance(value, Tensor) else type(value).__name__
            )
            fail(
                "warn_if_combined_scales_differ",
                f"parts[{key!r}]",
                "to be a scalar tensor or a real number",
                got,
                kind=TypeError,
            )
        if math.isfinite(v) and v != 0.0:
            magnitudes[key] = abs(v)
    if len(magnitudes) < 2:
        return False
    big = max(magnitudes, key=magnitudes.__getitem__)
    small = min(magnitudes, key=magnitudes.__getitem__)
    factor = magnitudes[big] / magnitudes[small]
    if factor <= limit:
        return False
    listed = ", ".join(f"{k!r}={magnitudes[k]:.4g}" for k in magnitudes)
    warnings.warn(
        f"combined loss parts differ in scale by {factor:.3g}x (more than {limit:g}x): {listed}; "
        f"{small!r} will barely affect training. Rescale the weights so the weighted parts are "
        "comparable, or learn them (losskit.UncertaintyWeighting, losskit.GradNorm).",
        UserWarning,
        stacklevel=2,
    )
    return True
