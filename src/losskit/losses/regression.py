"""Regression losses: squared, absolute, robust (Huber, smooth L1, log-cosh) and asymmetric errors.

Every loss compares a prediction ``input`` with a ``target`` of the same shape element by
element, then reduces (``"mean"`` over all elements by default). Half-precision inputs are
computed in float32 and the result is cast back to the input's dtype.

Registry names: ``mse`` (:class:`MSELoss`), ``mae`` (:class:`MAELoss`), ``huber``
(:class:`HuberLoss`), ``smooth_l1`` (:class:`SmoothL1Loss`), ``log_cosh`` (:class:`LogCoshLoss`)
and ``asymmetric_mse`` (:class:`AsymmetricMSELoss`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from losskit._checks import check_floating, check_number, check_same_shape
from losskit._reduce import Reduction, check_reduction, reduce, upcast
from losskit.registry import register

__all__ = [
    "AsymmetricMSELoss",
    "HuberLoss",
    "LogCoshLoss",
    "MAELoss",
    "MSELoss",
    "SmoothL1Loss",
    "asymmetric_mse",
    "huber",
    "log_cosh",
    "mae",
    "mse",
    "smooth_l1",
]

# Below this |error| log-cosh is evaluated as log1p(2 sinh²(x/2)) (exact for small errors); above
# it as |x| - log 2 + log1p(exp(-2|x|)) (no overflow). Both are accurate at the switch.
_LOG_COSH_SWITCH = 10.0
_LOG2 = math.log(2.0)


def _elementwise(
    fn: str,
    per_element: Callable[[Tensor, Tensor], Tensor],
    input: Tensor,
    target: Tensor,
    reduction: str,
) -> Tensor:
    """Validate ``input``/``target``, apply ``per_element`` in the compute dtype, reduce."""
    check_floating(fn, "input", input)
    check_floating(fn, "target", target)
    check_same_shape(fn, "target", target, "input", input)
    x = upcast(input)
    return reduce(per_element(x, target.to(x.dtype)), reduction, fn=fn, dtype=input.dtype)


def _check_delta(fn: str, delta: object) -> float:
    return check_number(fn, "delta", delta, low=0.0, low_open=True)


def _check_beta(fn: str, beta: object) -> float:
    return check_number(fn, "beta", beta, low=0.0)


def _check_over_penalty(fn: str, over_penalty: object) -> float:
    return check_number(fn, "over_penalty", over_penalty, low=0.0, low_open=True)


def mse(input: Tensor, target: Tensor, *, reduction: Reduction = "mean") -> Tensor:
    """Mean squared error between a prediction and its target.

    ``ℓ_i = (x_i − y_i)²``.

    Args:
        input (Tensor[*]): predictions, any floating dtype.
        target (Tensor[*]): targets, the same shape as ``input``.
        reduction: ``"mean"`` (over all elements), ``"sum"`` or ``"none"`` (shape of ``input``).

    Returns:
        Tensor: the reduced loss, in ``input``'s dtype.

    Raises:
        TypeError: ``input`` or ``target`` is not a floating-point tensor.
        ValueError: the shapes differ, or ``reduction`` is unknown.

    Reference:
        Legendre, "Nouvelles méthodes pour la détermination des orbites des comètes", 1805
        (least squares).

    Example:
        >>> import torch
        >>> mse(torch.tensor([1.0, 2.0]), torch.tensor([0.0, 0.0]))
        tensor(2.5000)
    """
    return _elementwise(
        "mse", lambda x, y: F.mse_loss(x, y, reduction="none"), input, target, reduction
    )


def mae(input: Tensor, target: Tensor, *, reduction: Reduction = "mean") -> Tensor:
    """Mean absolute error (L1) between a prediction and its target.

    ``ℓ_i = |x_i − y_i|``; robust to outliers, its gradient is ``sign(x_i − y_i)``.

    Args:
        input (Tensor[*]): predictions, any floating dtype.
        target (Tensor[*]): targets, the same shape as ``input``.
        reduction: ``"mean"`` (over all elements), ``"sum"`` or ``"none"`` (shape of ``input``).

    Returns:
        Tensor: the reduced loss, in ``input``'s dtype.

    Raises:
        TypeError: ``input`` or ``target`` is not a floating-point tensor.
        ValueError: the shapes differ, or ``reduction`` is unknown.

    Reference:
        Laplace, "Mémoire sur la probabilité des causes par les événements", 1774 (least
        absolute deviations).

    Example:
        >>> import torch
        >>> mae(torch.tensor([1.0, -2.0]), torch.tensor([0.0, 0.0]))
        tensor(1.5000)
    """
    return _elementwise(
        "mae", lambda x, y: F.l1_loss(x, y, reduction="none"), input, target, reduction
    )


def huber(
    input: Tensor, target: Tensor, delta: float = 1.0, *, reduction: Reduction = "mean"
) -> Tensor:
    """Huber loss: quadratic for small errors, linear (slope delta) for large ones.

    With ``e = x − y``: ``ℓ = e²/2`` if ``|e| < δ``, else ``δ·(|e| − δ/2)``. As ``δ → ∞`` it is
    ``MSE/2``; divided by ``δ`` it tends to the absolute error as ``δ → 0``.

    Args:
        input (Tensor[*]): predictions, any floating dtype.
        target (Tensor[*]): targets, the same shape as ``input``.
        delta: the switch point ``δ > 0``.
        reduction: ``"mean"`` (over all elements), ``"sum"`` or ``"none"`` (shape of ``input``).

    Returns:
        Tensor: the reduced loss, in ``input``'s dtype.

    Raises:
        TypeError: ``input`` or ``target`` is not a floating-point tensor.
        ValueError: the shapes differ, ``delta <= 0``, or ``reduction`` is unknown.

    Reference:
        Huber, "Robust Estimation of a Location Parameter", Ann. Math. Statist., 1964.

    Example:
        >>> import torch
        >>> huber(torch.tensor([1.0, 2.0]), torch.tensor([0.0, 0.0]), delta=1.0)
        tensor(1.)
    """
    d = _check_delta("huber", delta)
    return _elementwise(
        "huber",
        lambda x, y: F.huber_loss(x, y, reduction="none", delta=d),
        input,
        target,
        reduction,
    )


def smooth_l1(
    input: Tensor, target: Tensor, beta: float = 1.0, *, reduction: Reduction = "mean"
) -> Tensor:
    """Smooth L1 loss: Huber loss divided by its switch point, so large errors have slope 1.

    With ``e = x − y``: ``ℓ = e²/(2β)`` if ``|e| < β``, else ``|e| − β/2``; ``β = 0`` is the
    absolute error.

    Args:
        input (Tensor[*]): predictions, any floating dtype.
        target (Tensor[*]): targets, the same shape as ``input``.
        beta: the switch point ``β >= 0``.
        reduction: ``"mean"`` (over all elements), ``"sum"`` or ``"none"`` (shape of ``input``).

    Returns:
        Tensor: the reduced loss, in ``input``'s dtype.

    Raises:
        TypeError: ``input`` or ``target`` is not a floating-point tensor.
        ValueError: the shapes differ, ``beta < 0``, or ``reduction`` is unknown.

    Reference:
        Girshick, "Fast R-CNN", ICCV 2015.

    Example:
        >>> import torch
        >>> smooth_l1(torch.tensor([1.0, 2.0]), torch.tensor([0.0, 0.0]), beta=2.0)
        tensor(0.6250)
    """
    b = _check_beta("smooth_l1", beta)
    return _elementwise(
        "smooth_l1",
        lambda x, y: F.smooth_l1_loss(x, y, reduction="none", beta=b),
        input,
        target,
        reduction,
    )


def _log_cosh(e: Tensor) -> Tensor:
    """``log(cosh(e))`` without overflow for large ``|e|`` nor cancellation for small ``|e|``."""
    a = e.abs()
    small = a < _LOG_COSH_SWITCH
    # Each branch only sees inputs where it is accurate and finite (so no NaN gradient leaks
    # through torch.where from the branch that is not taken).
    a_small = torch.where(small, a, torch.zeros_like(a))
    a_large = torch.where(small, torch.full_like(a, _LOG_COSH_SWITCH), a)
    near = torch.log1p(2.0 * torch.sinh(a_small / 2.0).square())
    far = a_large - _LOG2 + F.softplus(-2.0 * a_large)
    return torch.where(small, near, far)


def log_cosh(input: Tensor, target: Tensor, *, reduction: Reduction = "mean") -> Tensor:
    """Log-cosh loss: about e²/2 for small errors and |e| − log 2 for large ones.

    ``ℓ_i = log cosh(x_i − y_i)``, twice differentiable, gradient ``tanh(x_i − y_i)`` (so ±1 for
    large errors). Computed in a stable form (softplus for large ``|e|``): an error of 1e4 gives
    a finite value and gradient ±1.

    Args:
        input (Tensor[*]): predictions, any floating dtype.
        target (Tensor[*]): targets, the same shape as ``input``.
        reduction: ``"mean"`` (over all elements), ``"sum"`` or ``"none"`` (shape of ``input``).

    Returns:
        Tensor: the reduced loss, in ``input``'s dtype.

    Raises:
        TypeError: ``input`` or ``target`` is not a floating-point tensor.
        ValueError: the shapes differ, or ``reduction`` is unknown.

    Reference:
        Saleh and Saleh, "Statistical Properties of the log-cosh Loss Function Used in Machine
        Learning", arXiv:2208.04564, 2022.

    Example:
        >>> import torch
        >>> log_cosh(torch.tensor([1e4, -1e4]), torch.tensor([0.0, 0.0]))
        tensor(9999.3066)
    """
    return _elementwise("log_cosh", lambda x, y: _log_cosh(x - y), input, target, reduction)


def asymmetric_mse(
    input: Tensor, target: Tensor, over_penalty: float = 2.0, *, reduction: Reduction = "mean"
) -> Tensor:
    """Squared error that weighs over-estimates over_penalty times more than under-estimates.

    With ``e = x − y``: ``ℓ = k·e²`` if ``e > 0`` (prediction too high), else ``e²``, where
    ``k = over_penalty``; ``k = 1`` is the MSE. Its minimiser is an expectile of the target
    distribution (``τ = 1/(1+k)``), below the mean when ``k > 1``.

    Args:
        input (Tensor[*]): predictions, any floating dtype.
        target (Tensor[*]): targets, the same shape as ``input``.
        over_penalty: the weight ``k > 0`` of over-estimates.
        reduction: ``"mean"`` (over all elements), ``"sum"`` or ``"none"`` (shape of ``input``).

    Returns:
        Tensor: the reduced loss, in ``input``'s dtype.

    Raises:
        TypeError: ``input`` or ``target`` is not a floating-point tensor.
        ValueError: the shapes differ, ``over_penalty <= 0``, or ``reduction`` is unknown.

    Reference:
        Newey and Powell, "Asymmetric Least Squares Estimation and Testing", Econometrica, 1987.

    Example:
        >>> import torch
        >>> asymmetric_mse(torch.tensor([3.0, 1.0]), torch.tensor([2.0, 2.0]), over_penalty=2.0)
        tensor(1.5000)
    """
    k = _check_over_penalty("asymmetric_mse", over_penalty)

    def per_element(x: Tensor, y: Tensor) -> Tensor:
        e = x - y
        squared = e.square()
        return torch.where(e > 0, k * squared, squared)

    return _elementwise("asymmetric_mse", per_element, input, target, reduction)


class _RegressionLoss(nn.Module):
    """Stores the validated ``reduction``; subclasses add their hyper-parameters."""

    def __init__(self, *, reduction: Reduction = "mean") -> None:
        super().__init__()
        self.reduction: Reduction = check_reduction(type(self).__name__, reduction)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


@register(mse)
class MSELoss(_RegressionLoss):
    """Mean squared error; see :func:`mse`.

    Example:
        >>> import torch
        >>> MSELoss()(torch.tensor([1.0, 2.0]), torch.tensor([0.0, 0.0]))
        tensor(2.5000)
    """

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return mse(input, target, reduction=self.reduction)


@register(mae)
class MAELoss(_RegressionLoss):
    """Mean absolute error; see :func:`mae`.

    Example:
        >>> import torch
        >>> MAELoss(reduction="sum")(torch.tensor([1.0, -2.0]), torch.tensor([0.0, 0.0]))
        tensor(3.)
    """

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return mae(input, target, reduction=self.reduction)


@register(huber)
class HuberLoss(_RegressionLoss):
    """Huber loss; see :func:`huber`.

    Example:
        >>> import torch
        >>> HuberLoss(delta=1.0)(torch.tensor([1.0, 2.0]), torch.tensor([0.0, 0.0]))
        tensor(1.)
    """

    def __init__(self, *, delta: float = 1.0, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction)
        self.delta = _check_delta(type(self).__name__, delta)

    def extra_repr(self) -> str:
        return f"delta={self.delta}, {super().extra_repr()}"

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return huber(input, target, self.delta, reduction=self.reduction)


@register(smooth_l1)
class SmoothL1Loss(_RegressionLoss):
    """Smooth L1 loss; see :func:`smooth_l1`.

    Example:
        >>> import torch
        >>> SmoothL1Loss(beta=2.0)(torch.tensor([1.0, 2.0]), torch.tensor([0.0, 0.0]))
        tensor(0.6250)
    """

    def __init__(self, *, beta: float = 1.0, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction)
        self.beta = _check_beta(type(self).__name__, beta)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, {super().extra_repr()}"

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return smooth_l1(input, target, self.beta, reduction=self.reduction)


@register(log_cosh)
class LogCoshLoss(_RegressionLoss):
    """Log-cosh loss; see :func:`log_cosh`.

    Example:
        >>> import torch
        >>> LogCoshLoss()(torch.tensor([0.0]), torch.tensor([0.0]))
        tensor(0.)
    """

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return log_cosh(input, target, reduction=self.reduction)


@register(asymmetric_mse)
class AsymmetricMSELoss(_RegressionLoss):
    """Asymmetric squared error; see :func:`asymmetric_mse`.

    Example:
        >>> import torch
        >>> AsymmetricMSELoss(over_penalty=3.0)(torch.tensor([1.0]), torch.tensor([0.0]))
        tensor(3.)
    """

    def __init__(self, *, over_penalty: float = 2.0, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction)
        self.over_penalty = _check_over_penalty(type(self).__name__, over_penalty)

    def extra_repr(self) -> str:
        return f"over_penalty={self.over_penalty}, {super().extra_repr()}"

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return asymmetric_mse(input, target, self.over_penalty, reduction=self.reduction)
