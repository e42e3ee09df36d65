"""Regression losses: squared, absolute, robust (Huber, smooth L1, log-cosh) and asymmetric errors.

Every loss compares a prediction ``input`` with a ``target`` of the same shape element by
element, then reduces (``"mean"`` over all elements by default). Half-precision inputs are
computed in float32 and the result is cast back to the input's dtype.

Registry names: ``mse`` (:class:`MSELoss`), ``mae`` (:class:`MAELoss`), ``huber``
(:class:`HuberLoss`), ``smooth_l1`` (:class:`SmoothL1Loss`), ``log_cosh`` (:class:`LogCoshLoss`)
``asymmetric_mse`` (:class:`AsymmetricMSELoss`), Barron's general ``robust`` loss
(:class:`RobustLoss`) with its named cases ``charbonnier``, ``cauchy`` and ``welsch``, and the
``quantile`` (pinball) loss (:class:`QuantileLoss`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from losskit._checks import (
    check_floating,
    check_ndim,
    check_number,
    check_same_shape,
    check_shape,
    checks_enabled,
    fail,
    shape_str,
)
from losskit._reduce import Reduction, check_reduction, reduce, upcast
from losskit.registry import register

__all__ = [
    "AsymmetricMSELoss",
    "CauchyLoss",
    "CharbonnierLoss",
    "HuberLoss",
    "LogCoshLoss",
    "MAELoss",
    "MSELoss",
    "QuantileLoss",
    "RobustLoss",
    "SmoothL1Loss",
    "WelschLoss",
    "asymmetric_mse",
    "cauchy",
    "charbonnier",
    "huber",
    "log_cosh",
    "mae",
    "mse",
    "quantile",
    "robust",
    "smooth_l1",
    "welsch",
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


def _check_alpha(fn: str, alpha: object) -> float:
    """Barron's shape ``α``: a real number, ``-inf`` included (Welsch)."""
    if isinstance(alpha, (int, float)) and not isinstance(alpha, bool) and alpha == -math.inf:
        return -math.inf
    return check_number(fn, "alpha", alpha)


def _check_scale(fn: str, scale: object) -> float:
    return check_number(fn, "scale", scale, low=0.0, low_open=True)


def _log1p_square(x: Tensor, b: float) -> Tensor:
    """``log(x²/b + 1)``; as ``2·log|x| − log b`` where ``|x| > 2³⁰·√b`` (``x²`` may overflow
    there, and the dropped ``log1p(b/x²) < 2⁻⁶⁰`` is below float64 round-off)."""
    big = x.abs() > 2.0**30 * math.sqrt(b)
    # Each branch sees harmless values where it is not taken (no NaN in the unused gradient).
    near = torch.where(big, 0.0, x)
    far = torch.where(big, x.abs(), 1.0)
    return torch.where(big, 2.0 * torch.log(far) - math.log(b), torch.log1p(near.square() / b))


def _barron(e: Tensor, alpha: float, scale: float) -> Tensor:
    """``ρ(e, α, c)`` of Barron (2019), with its limits at ``α = 2, 0, −∞`` taken exactly."""
    x = e / scale
    if alpha == 2.0:
        return 0.5 * x.square()
    if alpha == -math.inf:
        return -torch.expm1(-0.5 * x.square())
    if alpha == 0.0:
        return _log1p_square(x, 2.0)
    b = abs(alpha - 2.0)
    # ρ = b/α · ((x²/b + 1)^(α/2) − 1), as expm1 of a log1p for accuracy at small errors.
    return (b / alpha) * torch.expm1(0.5 * alpha * _log1p_square(x, b))


def robust(
    input: Tensor,
    target: Tensor,
    alpha: float = 1.0,
    scale: float = 1.0,
    *,
    reduction: Reduction = "mean",
) -> Tensor:
    """Barron's general robust loss: one shape parameter from L2 to Welsch.

    With ``x = (input − target)/c`` (``c = scale``) and ``b = |α − 2|``::

        ρ(x, α) = b/α · ((x²/b + 1)^(α/2) − 1)

    and its limits, computed exactly at those values of ``α``: ``α = 2`` gives ``x²/2`` (L2/2),
    ``α = 1`` ``sqrt(x² + 1) − 1`` (Charbonnier / pseudo-Huber), ``α = 0`` ``log(x²/2 + 1)``
    (Cauchy / Lorentzian), ``α = −2`` ``2x²/(x² + 4)`` (Geman-McClure) and ``α = −∞``
    ``1 − exp(−x²/2)`` (Welsch / Leclerc). Smaller ``α`` down-weights outliers more; every case
    is about ``x²/2`` for small ``x``. ``α`` is fixed here (not learned).

    Args:
        input (Tensor[*]): predictions, any floating dtype.
        target (Tensor[*]): targets, the same shape as ``input``.
        alpha: the shape ``α`` (a real number or ``float("-inf")``).
        scale: the scale ``c > 0`` of the quadratic bowl near 0.
        reduction: ``"mean"`` (over all elements), ``"sum"`` or ``"none"`` (shape of ``input``).

    Returns:
        Tensor: the reduced loss, in ``input``'s dtype.

    Raises:
        TypeError: non-float inputs, a non-number ``alpha``/``scale``.
        ValueError: the shapes differ, ``alpha`` NaN or ``+inf``, ``scale <= 0``, an unknown
            ``reduction``.

    Reference:
        Barron, "A General and Adaptive Robust Loss Function", CVPR 2019.

    Example:
        >>> import torch
        >>> robust(torch.tensor([2.0]), torch.tensor([0.0]), alpha=2.0)  # L2 / 2
        tensor(2.)
    """
    a = _check_alpha("robust", alpha)
    c = _check_scale("robust", scale)
    return _elementwise("robust", lambda x, y: _barron(x - y, a, c), input, target, reduction)


def _named_robust(fn: str, alpha: float) -> Callable[..., Tensor]:
    def loss(
        input: Tensor, target: Tensor, scale: float = 1.0, *, reduction: Reduction = "mean"
    ) -> Tensor:
        c = _check_scale(fn, scale)
        return _elementwise(fn, lambda x, y: _barron(x - y, alpha, c), input, target, reduction)

    loss.__name__ = loss.__qualname__ = fn
    return loss


_NAMED_DOC = """{title}: Barron's :func:`robust` loss at ``alpha = {alpha}``.

    With ``x = (input − target)/scale``: ``ℓ = {formula}``.

    Args:
        input (Tensor[*]): predictions, any floating dtype.
        target (Tensor[*]): targets, the same shape as ``input``.
        scale: the scale ``c > 0``.
        reduction: ``"mean"`` (over all elements), ``"sum"`` or ``"none"`` (shape of ``input``).

    Returns:
        Tensor: the reduced loss, in ``input``'s dtype.

    Raises:
        TypeError: non-float inputs.
        ValueError: the shapes differ, ``scale <= 0``, an unknown ``reduction``.

    Reference:
        {reference}; Barron, "A General and Adaptive Robust Loss Function", CVPR 2019.

    Example:
        >>> import torch
        >>> round(float({name}(torch.tensor([3.0]), torch.tensor([0.0]))), 4)
        {example}
    """

charbonnier = _named_robust("charbonnier", 1.0)
charbonnier.__doc__ = _NAMED_DOC.format(
    title="Charbonnier (pseudo-Huber) loss",
    alpha="1",
    formula="sqrt(x² + 1) − 1",
    reference="Charbonnier et al., 'Two deterministic half-quadratic regularization algorithms "
    "for computed imaging', ICIP 1994",
    name="charbonnier",
    example="2.1623",
)
cauchy = _named_robust("cauchy", 0.0)
cauchy.__doc__ = _NAMED_DOC.format(
    title="Cauchy (Lorentzian) loss",
    alpha="0",
    formula="log(x²/2 + 1)",
    reference="Black and Anandan, 'The robust estimation of multiple motions', CVIU 1996",
    name="cauchy",
    example="1.7047",
)
welsch = _named_robust("welsch", -math.inf)
welsch.__doc__ = _NAMED_DOC.format(
    title="Welsch (Leclerc) loss",
    alpha="-inf",
    formula="1 − exp(−x²/2)",
    reference="Dennis and Welsch, 'Techniques for nonlinear least squares and robust "
    "regression', Comm. Statist. 1978",
    name="welsch",
    example="0.9889",
)


def _check_quantiles(fn: str, quantiles: object) -> Tensor:
    levels: list[float] | None = None  # read from a tensor only while value checks are on
    if isinstance(quantiles, Tensor):
        q = quantiles.detach()
    elif isinstance(quantiles, (list, tuple)) and quantiles:
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in quantiles):
            fail(fn, "quantiles", "to be a sequence of numbers", repr(quantiles), kind=TypeError)
        levels = [float(v) for v in quantiles]
        q = torch.tensor(levels, dtype=torch.float64)
    else:
        fail(
            fn,
            "quantiles",
            "to be a tensor or a non-empty sequence of levels",
            repr(quantiles),
            kind=TypeError,
        )
    if q.dim() != 1 or not q.is_floating_point():
        fail(
            fn,
            "quantiles",
            "to be a 1-D float tensor (Q,)",
            f"shape {shape_str(q.shape)}, dtype {q.dtype}",
        )
    if levels is None and checks_enabled():
        levels = q.tolist()  # one host sync
    if levels is not None and not all(0 < v < 1 for v in levels):  # NaN fails too
        fail(fn, "quantiles", "with every level in (0, 1)", levels)
    return q


def quantile(
    input: Tensor,
    target: Tensor,
    quantiles: Tensor | Sequence[float],
    *,
    reduction: Reduction = "mean",
) -> Tensor:
    """Quantile (pinball) loss of ``Q`` predicted quantiles per sample.

    With ``e_nq = y_n − ŷ_nq``: ``ℓ_nq = max(τ_q·e_nq, (τ_q − 1)·e_nq)`` (no factor 2, so
    ``τ = 0.5`` gives half the absolute error); ``"mean"`` averages over the ``N·Q`` entries.

    Args:
        input (Tensor[N, Q]): the predicted quantiles of each sample.
        target (Tensor[N]): the observed values.
        quantiles (Tensor[Q] | Sequence[float]): the levels ``τ_q`` in (0, 1).
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (``(N, Q)``).

    Returns:
        Tensor: the reduced loss, in ``input``'s dtype.

    Raises:
        TypeError: non-float inputs, ``quantiles`` not numbers.
        ValueError: ``input`` not ``(N, Q)`` matching ``target`` ``(N,)`` and ``quantiles``
            ``(Q,)``, a level outside (0, 1), an unknown ``reduction``.

    Reference:
        Koenker and Bassett, "Regression Quantiles", Econometrica, 1978.

    Example:
        >>> import torch
        >>> quantile(torch.tensor([[0.0, 0.0]]), torch.tensor([1.0]), [0.1, 0.9])
        tensor(0.5000)
    """
    fn = "quantile"
    x = check_ndim(fn, "input", check_floating(fn, "input", input), 2, "(N, Q)")
    y = check_shape(
        fn,
        "target",
        check_floating(fn, "target", target),
        (x.shape[0],),
        f"matching input (N={x.shape[0]})",
    )
    q = _check_quantiles(fn, quantiles)
    check_shape(fn, "quantiles", q, (x.shape[1],), f"matching input (Q={x.shape[1]})")
    xc = upcast(x)
    e = y.to(xc.dtype).unsqueeze(1) - xc
    tau = q.to(device=xc.device, dtype=xc.dtype)
    return reduce(torch.maximum(tau * e, (tau - 1.0) * e), reduction, fn=fn, dtype=input.dtype)


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


class _ScaledRobustLoss(_RegressionLoss):
    """A named case of :func:`robust`: stores ``scale``."""

    function: Callable[..., Tensor]

    def __init__(self, *, scale: float = 1.0, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction)
        self.scale = _check_scale(type(self).__name__, scale)

    def extra_repr(self) -> str:
        return f"scale={self.scale}, {super().extra_repr()}"

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return type(self).function(input, target, self.scale, reduction=self.reduction)


@register(robust)
class RobustLoss(_RegressionLoss):
    """Barron's general robust loss with a fixed shape; see :func:`robust`.

    Example:
        >>> import torch
        >>> RobustLoss(alpha=0.0)(torch.tensor([0.0]), torch.tensor([0.0]))
        tensor(0.)
    """

    def __init__(
        self, *, alpha: float = 1.0, scale: float = 1.0, reduction: Reduction = "mean"
    ) -> None:
        super().__init__(reduction=reduction)
        self.alpha = _check_alpha(type(self).__name__, alpha)
        self.scale = _check_scale(type(self).__name__, scale)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, scale={self.scale}, {super().extra_repr()}"

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return robust(input, target, self.alpha, self.scale, reduction=self.reduction)


@register(charbonnier)
class CharbonnierLoss(_ScaledRobustLoss):
    """Charbonnier loss; see :func:`charbonnier`."""

    function = staticmethod(charbonnier)


@register(cauchy)
class CauchyLoss(_ScaledRobustLoss):
    """Cauchy loss; see :func:`cauchy`."""

    function = staticmethod(cauchy)


@register(welsch)
class WelschLoss(_ScaledRobustLoss):
    """Welsch loss; see :func:`welsch`."""

    function = staticmethod(welsch)


@register(quantile)
class QuantileLoss(_RegressionLoss):
    """Quantile (pinball) loss at fixed levels; see :func:`quantile`.

    Example:
        >>> import torch
        >>> QuantileLoss(quantiles=[0.5])(torch.tensor([[0.0]]), torch.tensor([2.0]))
        tensor(1.)
    """

    quantiles: Tensor

    def __init__(
        self, *, quantiles: Tensor | Sequence[float], reduction: Reduction = "mean"
    ) -> None:
        super().__init__(reduction=reduction)
        self.register_buffer("quantiles", _check_quantiles(type(self).__name__, quantiles))

    def extra_repr(self) -> str:
        return f"quantiles={self.quantiles.tolist()}, {super().extra_repr()}"

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return quantile(input, target, self.quantiles, reduction=self.reduction)
