"""Classification losses: (binary) cross-entropy, label smoothing, focal loss, class weights.

All take **logits** (raw scores before sigmoid/softmax); passing probabilities by mistake emits a
one-time ``UserWarning``. Multi-class losses accept ``logits (B, C)`` with ``targets (B,)`` or,
like :func:`torch.nn.functional.cross_entropy`, ``logits (B, C, d1, ...)`` with
``targets (B, d1, ...)`` (segmentation maps, token sequences). Targets equal to ``ignore_index``
are left out: ``"mean"`` divides by the number of valid targets, and a batch with none gives
``0.0`` still connected to the graph (never NaN). Log/exp parts run in float32 for half-precision
logits; the result has the logits' dtype.

Registry names: ``binary_cross_entropy`` (:class:`BCEWithLogitsLoss`), ``cross_entropy``
(:class:`CrossEntropyLoss`), ``label_smoothing_cross_entropy``
(:class:`LabelSmoothingCrossEntropy`), ``focal`` (:class:`FocalLoss`) and ``binary_focal``
(:class:`BinaryFocalLoss`). :func:`class_weights` computes per-class weights for them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from losskit._checks import (
    check_choice,
    check_floating,
    check_int,
    check_labels,
    check_number,
    check_same_shape,
    check_tensor,
    check_values,
    fail,
    shape_str,
    warn_if_probabilities,
)
from losskit._reduce import Reduction, check_reduction, reduce, upcast
from losskit.registry import register

__all__ = [
    "SMOOTHING_CONVENTIONS",
    "AsymmetricLoss",
    "BCEWithLogitsLoss",
    "BinaryFocalLoss",
    "CrossEntropyLoss",
    "FocalLoss",
    "JSDCrossEntropyLoss",
    "LabelSmoothingCrossEntropy",
    "asymmetric_loss",
    "binary_cross_entropy",
    "binary_focal",
    "class_weights",
    "cross_entropy",
    "focal",
    "jsd_cross_entropy",
    "label_smoothing_cross_entropy",
]

SmoothingConvention = Literal["uniform", "others"]
SMOOTHING_CONVENTIONS: tuple[str, ...] = ("uniform", "others")


# --- shared validation -------------------------------------------------------------------------


def _check_class_logits(fn: str, logits: object) -> Tensor:
    """Floating logits ``(B, C)`` or ``(B, C, d1, ...)``, classes on dim 1."""
    t = check_floating(fn, "logits", logits)
    if t.dim() < 2:
        fail(fn, "logits", "of shape (B, C) or (B, C, d1, ...)", shape_str(t.shape))
    return t


def _check_class_targets(fn: str, targets: object, logits: Tensor, ignore_index: int) -> Tensor:
    """Integer class indices of shape ``(B, d1, ...)`` in ``[0, C)`` or ``ignore_index``."""
    t = check_tensor(fn, "targets", targets)
    expected = (logits.shape[0], *logits.shape[2:])
    if tuple(t.shape) != expected:
        fail(
            fn,
            "targets",
            f"of shape {shape_str(expected)} matching `logits` {shape_str(logits.shape)}",
            shape_str(t.shape),
        )
    return check_labels(fn, "targets", t, logits.shape[1], ignore_index=ignore_index)


def _check_class_vector(fn: str, arg: str, v: object, num_classes: int | None = None) -> Tensor:
    """Non-negative floating per-class values ``(C,)`` (class weights, focal α)."""
    t = check_floating(fn, arg, v)
    if t.dim() != 1 or (num_classes is not None and t.shape[0] != num_classes):
        want = "(C,)" if num_classes is None else f"({num_classes},) matching `logits` (C)"
        fail(fn, arg, f"of shape {want}", shape_str(t.shape))
    return check_values(fn, arg, t, low=0.0)


def _as_vector(v: object) -> object:
    """A 0-d tensor as ``(1,)`` (a single value for every class); anything else as it is."""
    return v.reshape(1) if isinstance(v, Tensor) and v.dim() == 0 else v


def _check_gamma(fn: str, gamma: object) -> float:
    return check_number(fn, "gamma", gamma, low=0.0)


def _check_focal_alpha(
    fn: str, alpha: object, num_classes: int | None = None
) -> Tensor | float | None:
    if alpha is None:
        return None
    if isinstance(alpha, Tensor):
        return _check_class_vector(fn, "alpha", alpha, num_classes)
    return check_number(fn, "alpha", alpha, low=0.0)


def _check_binary_alpha(fn: str, alpha: object) -> float | None:
    return None if alpha is None else check_number(fn, "alpha", alpha, high=1.0)


def _check_binary_inputs(fn: str, logits: object, targets: object) -> tuple[Tensor, Tensor]:
    """Floating logits of any shape with floating targets in ``[0, 1]`` of the same shape."""
    x = check_floating(fn, "logits", logits)
    t = check_floating(fn, "targets", targets)
    check_same_shape(fn, "targets", t, "logits", x)
    check_values(fn, "targets", t, low=0.0, high=1.0)
    return x, t


# --- shared computation ------------------------------------------------------------------------


def _valid(targets: Tensor, ignore_index: int) -> tuple[Tensor, Tensor]:
    """The mask of valid targets, and the targets with ignored entries replaced by class 0."""
    valid = targets != ignore_index
    return valid, targets.masked_fill(~valid, 0)


def _focal_factor(one_minus_p: Tensor, gamma: float) -> Tensor:
    """``(1 − p)^γ``; the base is kept above zero so ``γ < 1`` never gives a NaN gradient."""
    return one_minus_p.clamp_min(torch.finfo(one_minus_p.dtype).tiny).pow(gamma)


# --- losses ------------------------------------------------------------------------------------


def binary_cross_entropy(
    logits: Tensor,
    targets: Tensor,
    pos_weight: Tensor | None = None,
    *,
    reduction: Reduction = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """Binary cross-entropy on logits (sigmoid folded in), with an optional positive weight.

    ``ℓ = −[w_p·y·log σ(x) + (1 − y)·log(1 − σ(x))]``, computed as softplus terms (stable for
    any logit). ``pos_weight`` ``w_p`` (one per class, on the last dimension) trades recall for
    precision: ``w_p = n_neg / n_pos`` balances a rare positive class.

    Args:
        logits (Tensor[*, C]): raw scores, any shape.
        targets (Tensor[*, C]): floating targets in ``[0, 1]`` (hard or soft), shape of ``logits``.
        pos_weight (Tensor[C] | None): non-negative weight of the positive term per class
            (broadcast over the last dimension); a single value ``(1,)`` or ``()`` applies to
            all.
        reduction: ``"mean"`` (over all elements), ``"sum"`` or ``"none"`` (shape of ``logits``).
        label_smoothing: ``ε`` in ``[0, 1]``; the target becomes ``y·(1 − ε) + ε/2`` (timm's
            ``BinaryCrossEntropy(smoothing=ε)`` for binary targets).

    Returns:
        Tensor: the reduced loss, in ``logits``' dtype.

    Raises:
        TypeError: ``logits``, ``targets`` or ``pos_weight`` is not a floating-point tensor.
        ValueError: the shapes differ, a target lies outside ``[0, 1]``, ``pos_weight`` has the
            wrong shape or a negative entry, or ``reduction`` is unknown.

    Reference:
        Bishop, "Pattern Recognition and Machine Learning", 2006, §4.3.2.

    Example:
        >>> import torch
        >>> binary_cross_entropy(torch.tensor([0.0, 0.0]), torch.tensor([1.0, 0.0]))
        tensor(0.6931)
    """
    fn = "binary_cross_entropy"
    x, t = _check_binary_inputs(fn, logits, targets)
    smoothing = check_number(fn, "label_smoothing", label_smoothing, low=0.0, high=1.0)
    if smoothing > 0:
        t = t * (1.0 - smoothing) + 0.5 * smoothing
    pw = None
    if pos_weight is not None:
        # A 0-d weight applies to every class, as in torch.
        pw = _check_class_vector(fn, "pos_weight", _as_vector(pos_weight))
        classes = x.shape[-1] if x.dim() else 1
        if pw.numel() not in (1, classes):
            fail(
                fn,
                "pos_weight",
                f"of shape ({classes},) matching the last dimension of `logits`, or (1,)",
                shape_str(pw.shape),
            )
    warn_if_probabilities(fn, "logits", x)
    xc = upcast(x)
    loss = F.binary_cross_entropy_with_logits(
        xc, t.to(xc.dtype), pos_weight=None if pw is None else pw.to(xc), reduction="none"
    )
    return reduce(loss, reduction, fn=fn, dtype=x.dtype)


def cross_entropy(
    logits: Tensor,
    targets: Tensor,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    *,
    reduction: Reduction = "mean",
) -> Tensor:
    """Softmax cross-entropy on logits, with class weights, ignored targets and label smoothing.

    ``ℓ = −w_y·log softmax(x)_y``; with label smoothing ``ε`` the target distribution is
    ``(1 − ε)·onehot(y) + ε/C`` (PyTorch's convention). ``"mean"`` divides by the summed weight
    ``Σ w_y`` of the valid targets (the number of valid targets without ``weight``), as PyTorch
    does; a batch whose targets are all ``ignore_index`` gives ``0.0`` (PyTorch gives NaN).

    ``targets`` may also hold class probabilities (floating, the shape of ``logits``), as in
    :func:`torch.nn.functional.cross_entropy`: ``ℓ = −Σ_c w_c·q_c·log softmax(x)_c``, averaged
    over the samples; ``ignore_index`` does not apply to them.

    Args:
        logits (Tensor[B, C] | Tensor[B, C, d1, ...]): raw scores, classes on dim 1.
        targets (Tensor[B] | Tensor[B, d1, ...]): integer class indices in ``[0, C)`` or
            ``ignore_index``; or class probabilities of the shape of ``logits``.
        weight (Tensor[C] | None): non-negative weight per class (see :func:`class_weights`).
        ignore_index: target value that is left out of the loss and of the mean.
        label_smoothing: ``ε`` in ``[0, 1]``.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (shape of ``targets``, 0 where ignored).

    Returns:
        Tensor: the reduced loss, in ``logits``' dtype.

    Raises:
        TypeError: ``logits`` is not floating; ``targets`` is floating but not of the shape of
            ``logits`` (class indices must be integers).
        ValueError: wrong shapes, a target outside ``[0, C)``, a negative or misshapen
            ``weight``, ``label_smoothing`` outside ``[0, 1]``, or an unknown ``reduction``.

    Reference:
        Goodfellow, Bengio and Courville, "Deep Learning", 2016, §6.2.2.3; label smoothing:
        Szegedy et al., "Rethinking the Inception Architecture for Computer Vision", CVPR 2016.

    Example:
        >>> import torch
        >>> cross_entropy(torch.zeros(2, 4), torch.tensor([1, -100]))
        tensor(1.3863)
    """
    fn = "cross_entropy"
    x = _check_class_logits(fn, logits)
    ignore_index = check_int(fn, "ignore_index", ignore_index)
    smoothing = check_number(fn, "label_smoothing", label_smoothing, low=0.0, high=1.0)
    w = None if weight is None else _check_class_vector(fn, "weight", weight, x.shape[1])
    t = _check_ce_targets(fn, targets, x, ignore_index)
    soft = t.is_floating_point()
    warn_if_probabilities(fn, "logits", x, dim=1)

    xc = upcast(x)
    wc = None if w is None else w.to(xc)
    loss = F.cross_entropy(
        xc,
        t.to(xc.dtype) if soft else t,
        weight=wc,
        ignore_index=ignore_index,
        reduction="none",
        label_smoothing=smoothing,
    )
    if soft:
        return reduce(loss, reduction, fn=fn, dtype=x.dtype)
    valid, safe = _valid(t, ignore_index)
    denominator = valid.sum() if wc is None else (wc[safe] * valid).sum()
    if wc is not None and reduction == "mean":
        # Smoothing spreads weight onto every class: with all valid targets weighted 0 the
        # numerator is not 0 but the weighted count is; that mean is 0, as with no valid target.
        loss = loss * (denominator > 0)
    return reduce(loss, reduction, fn=fn, denominator=denominator, dtype=x.dtype)


def _check_ce_targets(fn: str, targets: Tensor, x: Tensor, ignore_index: int) -> Tensor:
    """Class indices (``ignore_index`` allowed) or probabilities of the shape of ``x``."""
    t = check_tensor(fn, "targets", targets)
    if not t.is_floating_point():
        _check_class_targets(fn, t, x, ignore_index)
        return t
    if t.shape != x.shape:
        fail(
            fn,
            "targets",
            f"to hold integer class indices, or class probabilities of the shape of "
            f"`logits` {shape_str(x.shape)}",
            f"dtype {t.dtype} of shape {shape_str(t.shape)}",
            kind=TypeError,
        )
    check_values(fn, "targets", t, low=0.0, high=1.0)
    return t


def label_smoothing_cross_entropy(
    logits: Tensor,
    targets: Tensor,
    epsilon: float = 0.1,
    convention: SmoothingConvention = "uniform",
    *,
    ignore_index: int = -100,
    reduction: Reduction = "mean",
) -> Tensor:
    """Cross-entropy against a smoothed target distribution (uniform or others convention).

    ``ℓ = −Σ_c q_c·log p_c`` with ``p = softmax(x)``. ``convention="uniform"`` (PyTorch's
    ``label_smoothing``): ``q = (1 − ε)·onehot(y) + ε/C``, so the target class gets
    ``1 − ε + ε/C``. ``convention="others"`` (Szegedy et al.'s text): the target gets exactly
    ``1 − ε`` and each other class ``ε/(C − 1)``. Both reduce to
    ``ℓ = −(q_y − q_o)·log p_y − q_o·Σ_c log p_c`` (``q_o``: an other class's share).
    ``"mean"`` averages over the valid targets.

    Args:
        logits (Tensor[B, C] | Tensor[B, C, d1, ...]): raw scores, classes on dim 1.
        targets (Tensor[B] | Tensor[B, d1, ...]): integer class indices in ``[0, C)`` or
            ``ignore_index``.
        epsilon: smoothing ``ε`` in ``[0, 1)``.
        convention: ``"uniform"`` or ``"others"`` (needs ``C >= 2``).
        ignore_index: target value that is left out of the loss and of the mean.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (shape of ``targets``, 0 where ignored).

    Returns:
        Tensor: the reduced loss, in ``logits``' dtype.

    Raises:
        TypeError: ``logits`` is not floating or ``targets`` is not integer.
        ValueError: wrong shapes, a target outside ``[0, C)``, ``epsilon`` outside ``[0, 1)``,
            an unknown ``convention`` or ``reduction``, or ``"others"`` with one class.

    Reference:
        Szegedy et al., "Rethinking the Inception Architecture for Computer Vision", CVPR 2016;
        Müller, Kornblith and Hinton, "When Does Label Smoothing Help?", NeurIPS 2019.

    Example:
        >>> import torch
        >>> label_smoothing_cross_entropy(torch.zeros(1, 4), torch.tensor([2]), epsilon=0.2)
        tensor(1.3863)
    """
    fn = "label_smoothing_cross_entropy"
    x = _check_class_logits(fn, logits)
    eps = check_number(fn, "epsilon", epsilon, low=0.0, high=1.0, high_open=True)
    conv = check_choice(fn, "convention", convention, SMOOTHING_CONVENTIONS)
    ignore_index = check_int(fn, "ignore_index", ignore_index)
    num_classes = x.shape[1]
    if conv == "others" and num_classes < 2:
        fail(fn, "logits", "to have C >= 2 classes with convention='others'", f"C={num_classes}")
    t = _check_class_targets(fn, targets, x, ignore_index)
    warn_if_probabilities(fn, "logits", x, dim=1)

    if conv == "uniform":
        off, on = eps / num_classes, 1.0 - eps + eps / num_classes
    else:
        off, on = eps / (num_classes - 1), 1.0 - eps
    valid, safe = _valid(t, ignore_index)
    log_p = F.log_softmax(upcast(x), dim=1)
    nll = -log_p.gather(1, safe.unsqueeze(1)).squeeze(1)
    loss = ((on - off) * nll - off * log_p.sum(dim=1)).masked_fill(~valid, 0.0)
    return reduce(loss, reduction, fn=fn, denominator=valid.sum(), dtype=x.dtype)


def focal(
    logits: Tensor,
    targets: Tensor,
    alpha: Tensor | float | None = None,
    gamma: float = 2.0,
    ignore_index: int = -100,
    *,
    reduction: Reduction = "mean",
) -> Tensor:
    """Multi-class focal loss: cross-entropy scaled down on well-classified examples.

    ``ℓ = −α_y·(1 − p_y)^γ·log p_y`` with ``p = softmax(x)``. ``alpha=None`` means no α
    weighting, a float multiplies every term, a ``(C,)`` tensor weights each class. ``γ = 0``
    with ``alpha=None`` is :func:`cross_entropy`. ``"mean"`` divides by the number of valid
    targets (not by ``Σ α_y``, unlike a weighted :func:`cross_entropy`).

    Args:
        logits (Tensor[B, C] | Tensor[B, C, d1, ...]): raw scores, classes on dim 1.
        targets (Tensor[B] | Tensor[B, d1, ...]): integer class indices in ``[0, C)`` or
            ``ignore_index``.
        alpha (Tensor[C] | float | None): class balance; non-negative.
        gamma: focusing parameter ``γ >= 0``.
        ignore_index: target value that is left out of the loss and of the mean.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (shape of ``targets``, 0 where ignored).

    Returns:
        Tensor: the reduced loss, in ``logits``' dtype.

    Raises:
        TypeError: ``logits`` is not floating, ``targets`` is not integer, or ``alpha`` is not
            a number or a floating tensor.
        ValueError: wrong shapes, a target outside ``[0, C)``, ``gamma < 0``, a negative or
            misshapen ``alpha``, or an unknown ``reduction``.

    Reference:
        Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017.

    Example:
        >>> import torch
        >>> focal(torch.zeros(1, 2), torch.tensor([0]), gamma=2.0)
        tensor(0.1733)
    """
    fn = "focal"
    x = _check_class_logits(fn, logits)
    g = _check_gamma(fn, gamma)
    a = _check_focal_alpha(fn, alpha, x.shape[1])
    ignore_index = check_int(fn, "ignore_index", ignore_index)
    t = _check_class_targets(fn, targets, x, ignore_index)
    warn_if_probabilities(fn, "logits", x, dim=1)

    valid, safe = _valid(t, ignore_index)
    log_p_t = F.log_softmax(upcast(x), dim=1).gather(1, safe.unsqueeze(1)).squeeze(1)
    loss = -_focal_factor(-torch.expm1(log_p_t), g) * log_p_t
    if isinstance(a, Tensor):
        loss = loss * a.to(loss)[safe]
    elif a is not None:
        loss = loss * a
    loss = loss.masked_fill(~valid, 0.0)
    return reduce(loss, reduction, fn=fn, denominator=valid.sum(), dtype=x.dtype)


def binary_focal(
    logits: Tensor,
    targets: Tensor,
    alpha: float | None = 0.25,
    gamma: float = 2.0,
    *,
    reduction: Reduction = "mean",
) -> Tensor:
    """Binary (sigmoid) focal loss, as torchvision.ops.sigmoid_focal_loss.

    With ``p = σ(x)`` and ``p_t = p·y + (1 − p)·(1 − y)``:
    ``ℓ = α_t·(1 − p_t)^γ·BCE(x, y)``, ``α_t = α·y + (1 − α)·(1 − y)``. A negative ``alpha`` (or
    ``None``) disables the α weighting, as in torchvision. ``1 − p_t`` is computed as
    ``σ(x)·(1 − y) + σ(−x)·y`` (the same value, without cancellation). Unlike torchvision the
    default reduction is ``"mean"``, as everywhere in losskit.

    Args:
        logits (Tensor[*]): raw scores, any shape.
        targets (Tensor[*]): floating targets in ``[0, 1]``, shape of ``logits``.
        alpha: weight ``α <= 1`` of the positive class; negative or ``None`` for no weighting.
        gamma: focusing parameter ``γ >= 0``.
        reduction: ``"mean"`` (over all elements), ``"sum"`` or ``"none"`` (shape of ``logits``).

    Returns:
        Tensor: the reduced loss, in ``logits``' dtype.

    Raises:
        TypeError: ``logits`` or ``targets`` is not a floating-point tensor.
        ValueError: the shapes differ, a target lies outside ``[0, 1]``, ``alpha > 1``,
            ``gamma < 0``, or ``reduction`` is unknown.

    Reference:
        Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017.

    Example:
        >>> import torch
        >>> binary_focal(torch.zeros(2), torch.tensor([1.0, 0.0]), alpha=-1, gamma=0.0)
        tensor(0.6931)
    """
    fn = "binary_focal"
    x, t = _check_binary_inputs(fn, logits, targets)
    a = _check_binary_alpha(fn, alpha)
    g = _check_gamma(fn, gamma)
    warn_if_probabilities(fn, "logits", x)

    xc = upcast(x)
    tc = t.to(xc.dtype)
    bce = F.binary_cross_entropy_with_logits(xc, tc, reduction="none")
    one_minus_p_t = torch.sigmoid(xc) * (1 - tc) + torch.sigmoid(-xc) * tc
    loss = _focal_factor(one_minus_p_t, g) * bce
    if a is not None and a >= 0:
        loss = (a * tc + (1 - a) * (1 - tc)) * loss
    return reduce(loss, reduction, fn=fn, dtype=x.dtype)


def class_weights(labels: Tensor, num_classes: int) -> Tensor:
    """Inverse-frequency class weights n / (C·n_c); a class absent from ``labels`` gets 0.

    The "balanced" weights of scikit-learn's ``compute_class_weight``: a balanced data set gets
    all ones, and ``Σ_c n_c·w_c = n``. Pass them as ``weight`` to :func:`cross_entropy` or as
    ``alpha`` to :func:`focal`.

    Args:
        labels (Tensor[*]): integer class indices in ``[0, num_classes)``, any shape.
        num_classes: the number of classes ``C >= 1``.

    Returns:
        Tensor[C]: the weights, in the default floating dtype, on ``labels``' device.

    Raises:
        TypeError: ``labels`` is not an integer tensor or ``num_classes`` not an integer.
        ValueError: a label outside ``[0, num_classes)``, or ``num_classes < 1``.

    Reference:
        King and Zeng, "Logistic Regression in Rare Events Data", Political Analysis, 2001.

    Example:
        >>> import torch
        >>> class_weights(torch.tensor([0, 0, 0, 1]), num_classes=3)
        tensor([0.4444, 1.3333, 0.0000])
    """
    fn = "class_weights"
    c = check_int(fn, "num_classes", num_classes, low=1)
    t = check_labels(fn, "labels", labels, c)
    counts = torch.bincount(t.flatten().long(), minlength=c).to(torch.get_default_dtype())
    weights = counts.sum() / (c * counts.clamp_min(1))
    return torch.where(counts > 0, weights, torch.zeros_like(weights))


# --- modules -----------------------------------------------------------------------------------


class _ClassificationLoss(nn.Module):
    """Stores the validated ``reduction``; subclasses add their hyper-parameters."""

    def __init__(self, *, reduction: Reduction = "mean") -> None:
        super().__init__()
        self.reduction: Reduction = check_reduction(type(self).__name__, reduction)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


@register(binary_cross_entropy)
class BCEWithLogitsLoss(_ClassificationLoss):
    """Binary cross-entropy on logits; see :func:`binary_cross_entropy`.

    ``pos_weight`` is a buffer (it follows ``.to(device)`` and is saved in ``state_dict``).

    Example:
        >>> import torch
        >>> BCEWithLogitsLoss()(torch.tensor([0.0, 0.0]), torch.tensor([1.0, 0.0]))
        tensor(0.6931)
    """

    pos_weight: Tensor | None

    def __init__(
        self,
        *,
        pos_weight: Tensor | None = None,
        reduction: Reduction = "mean",
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__(reduction=reduction)
        if pos_weight is not None:
            _check_class_vector(type(self).__name__, "pos_weight", _as_vector(pos_weight))
        self.register_buffer("pos_weight", pos_weight)
        self.label_smoothing = check_number(
            type(self).__name__, "label_smoothing", label_smoothing, low=0.0, high=1.0
        )

    def forward(self, logits: Tensor, targets: Tensor) -> Tensor:
        return binary_cross_entropy(
            logits,
            targets,
            self.pos_weight,
            reduction=self.reduction,
            label_smoothing=self.label_smoothing,
        )


@register(cross_entropy)
class CrossEntropyLoss(_ClassificationLoss):
    """Softmax cross-entropy on logits; see :func:`cross_entropy`.

    ``weight`` is a buffer (it follows ``.to(device)`` and is saved in ``state_dict``).

    Example:
        >>> import torch
        >>> CrossEntropyLoss(label_smoothing=0.1)(torch.zeros(2, 4), torch.tensor([1, 3]))
        tensor(1.3863)
    """

    weight: Tensor | None

    def __init__(
        self,
        *,
        weight: Tensor | None = None,
        ignore_index: int = -100,
        label_smoothing: float = 0.0,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        name = type(self).__name__
        if weight is not None:
            _check_class_vector(name, "weight", weight)
        self.register_buffer("weight", weight)
        self.ignore_index = check_int(name, "ignore_index", ignore_index)
        self.label_smoothing = check_number(
            name, "label_smoothing", label_smoothing, low=0.0, high=1.0
        )

    def extra_repr(self) -> str:
        return (
            f"ignore_index={self.ignore_index}, label_smoothing={self.label_smoothing}, "
            f"{super().extra_repr()}"
        )

    def forward(self, logits: Tensor, targets: Tensor) -> Tensor:
        return cross_entropy(
            logits,
            targets,
            self.weight,
            self.ignore_index,
            self.label_smoothing,
            reduction=self.reduction,
        )


@register(label_smoothing_cross_entropy)
class LabelSmoothingCrossEntropy(_ClassificationLoss):
    """Cross-entropy against smoothed targets; see :func:`label_smoothing_cross_entropy`.

    Example:
        >>> import torch
        >>> loss = LabelSmoothingCrossEntropy(epsilon=0.1, convention="others")
        >>> loss(torch.zeros(2, 4), torch.tensor([1, 3]))
        tensor(1.3863)
    """

    def __init__(
        self,
        *,
        epsilon: float = 0.1,
        convention: SmoothingConvention = "uniform",
        ignore_index: int = -100,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        name = type(self).__name__
        self.epsilon = check_number(name, "epsilon", epsilon, low=0.0, high=1.0, high_open=True)
        self.convention: SmoothingConvention = check_choice(  # type: ignore[assignment]
            name, "convention", convention, SMOOTHING_CONVENTIONS
        )
        self.ignore_index = check_int(name, "ignore_index", ignore_index)

    def extra_repr(self) -> str:
        return (
            f"epsilon={self.epsilon}, convention={self.convention!r}, "
            f"ignore_index={self.ignore_index}, {super().extra_repr()}"
        )

    def forward(self, logits: Tensor, targets: Tensor) -> Tensor:
        return label_smoothing_cross_entropy(
            logits,
            targets,
            self.epsilon,
            self.convention,
            ignore_index=self.ignore_index,
            reduction=self.reduction,
        )


@register(focal)
class FocalLoss(_ClassificationLoss):
    """Multi-class focal loss; see :func:`focal`.

    A tensor ``alpha`` is a buffer (it follows ``.to(device)`` and is saved in ``state_dict``).

    Example:
        >>> import torch
        >>> FocalLoss(gamma=0.0)(torch.zeros(2, 4), torch.tensor([1, 3]))
        tensor(1.3863)
    """

    alpha: Tensor | float | None

    def __init__(
        self,
        *,
        alpha: Tensor | float | None = None,
        gamma: float = 2.0,
        ignore_index: int = -100,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        name = type(self).__name__
        checked = _check_focal_alpha(name, alpha)
        if isinstance(checked, Tensor):
            self.register_buffer("alpha", checked)
        else:
            self.alpha = checked
        self.gamma = _check_gamma(name, gamma)
        self.ignore_index = check_int(name, "ignore_index", ignore_index)

    def extra_repr(self) -> str:
        alpha = "tensor" if isinstance(self.alpha, Tensor) else self.alpha
        return (
            f"alpha={alpha}, gamma={self.gamma}, ignore_index={self.ignore_index}, "
            f"{super().extra_repr()}"
        )

    def forward(self, logits: Tensor, targets: Tensor) -> Tensor:
        return focal(
            logits, targets, self.alpha, self.gamma, self.ignore_index, reduction=self.reduction
        )


@register(binary_focal)
class BinaryFocalLoss(_ClassificationLoss):
    """Binary (sigmoid) focal loss; see :func:`binary_focal`.

    Example:
        >>> import torch
        >>> BinaryFocalLoss(alpha=-1, gamma=0.0)(torch.zeros(2), torch.tensor([1.0, 0.0]))
        tensor(0.6931)
    """

    def __init__(
        self, *, alpha: float | None = 0.25, gamma: float = 2.0, reduction: Reduction = "mean"
    ) -> None:
        super().__init__(reduction=reduction)
        name = type(self).__name__
        self.alpha = _check_binary_alpha(name, alpha)
        self.gamma = _check_gamma(name, gamma)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, gamma={self.gamma}, {super().extra_repr()}"

    def forward(self, logits: Tensor, targets: Tensor) -> Tensor:
        return binary_focal(logits, targets, self.alpha, self.gamma, reduction=self.reduction)


# --- multi-label asymmetric loss and AugMix consistency ----------------------------------------


def _check_asymmetric(
    fn: str, gamma_pos: object, gamma_neg: object, clip: object
) -> tuple[float, float, float]:
    return (
        check_number(fn, "gamma_pos", gamma_pos, low=0.0),
        check_number(fn, "gamma_neg", gamma_neg, low=0.0),
        check_number(fn, "clip", clip, low=0.0, high=1.0),
    )


def asymmetric_loss(
    logits: Tensor,
    targets: Tensor,
    gamma_pos: float = 0.0,
    gamma_neg: float = 4.0,
    clip: float = 0.05,
    *,
    reduction: Reduction = "mean",
) -> Tensor:
    """Asymmetric loss (ASL) for multi-label classification: focusing and shifted negatives.

    With ``p = σ(x)`` and the shifted negative probability ``p_m = min(1 − p + m, 1)``
    (``m = clip``; it discards easy negatives with ``p < m`` entirely)::

        p_t = y·p + (1 − y)·p_m,   γ = y·γ⁺ + (1 − y)·γ⁻
        ℓ   = −[y·log p + (1 − y)·log p_m] · (1 − p_t)^γ

    (timm's ``AsymmetricLossMultiLabel``; soft targets interpolate as there). The focusing
    weights are not detached (timm's default). ``"mean"`` averages over the ``B·C`` elements;
    timm returns the sum. ``log p`` is a log-sigmoid (timm clamps ``p`` at 1e-8 inside the log,
    which zeroes the gradient of extreme logits; the values agree wherever ``p ≥ 1e-8``).

    Args:
        logits (Tensor[B, C]): raw scores (any shape).
        targets (Tensor[B, C]): multi-hot (or soft) targets in [0, 1], shape of ``logits``.
        gamma_pos: focusing ``γ⁺ >= 0`` of the positives.
        gamma_neg: focusing ``γ⁻ >= 0`` of the negatives.
        clip: probability margin ``m`` in [0, 1] of the negatives (0 disables it).
        reduction: ``"mean"`` (over all elements), ``"sum"`` or ``"none"`` (shape of ``logits``).

    Returns:
        Tensor: the reduced loss, in ``logits``' dtype.

    Raises:
        TypeError: non-float inputs.
        ValueError: the shapes differ, a target outside [0, 1], a negative ``gamma_*``,
            ``clip`` outside [0, 1], an unknown ``reduction``.

    Reference:
        Ridnik et al., "Asymmetric Loss For Multi-Label Classification", ICCV 2021.

    Example:
        >>> import torch
        >>> x, y = torch.tensor([[0.0, 0.0]]), torch.tensor([[1.0, 0.0]])
        >>> asymmetric_loss(x, y, gamma_pos=0.0, gamma_neg=0.0, clip=0.0)  # plain BCE
        tensor(0.6931)
    """
    fn = "asymmetric_loss"
    g_pos, g_neg, m = _check_asymmetric(fn, gamma_pos, gamma_neg, clip)
    check_reduction(fn, reduction)
    x, t = _check_binary_inputs(fn, logits, targets)
    warn_if_probabilities(fn, "logits", x)
    xc = upcast(x)
    y = t.to(xc.dtype)
    log_p = F.logsigmoid(xc)
    if m > 0:
        p_neg = (torch.sigmoid(-xc) + m).clamp(max=1.0)
        log_p_neg = torch.log(p_neg)
    else:
        p_neg, log_p_neg = torch.sigmoid(-xc), F.logsigmoid(-xc)
    loss = -(y * log_p + (1.0 - y) * log_p_neg)
    if g_pos > 0 or g_neg > 0:
        p_t = y * torch.sigmoid(xc) + (1.0 - y) * p_neg
        gamma = g_pos * y + g_neg * (1.0 - y)
        base = (1.0 - p_t).clamp_min(torch.finfo(xc.dtype).tiny)
        loss = loss * torch.where(gamma > 0, base.pow(gamma), 1.0)
    return reduce(loss, reduction, fn=fn, dtype=x.dtype)


def _stack_views(fn: str, logits_per_view: object) -> Tensor:
    """A tuple/list of ``(B, C)`` views, or a stacked ``(V, B, C)`` tensor, as ``(V, B, C)``."""
    if isinstance(logits_per_view, (list, tuple)):
        if not logits_per_view:
            fail(fn, "logits_per_view", "to hold at least one view", "an empty sequence")
        views = [check_floating(fn, "logits_per_view", v) for v in logits_per_view]
        first = views[0]
        for v in views[1:]:
            check_same_shape(fn, "logits_per_view", v, "the first view", first)
        stacked = torch.stack(views)
    else:
        stacked = check_floating(fn, "logits_per_view", logits_per_view)
    if stacked.dim() != 3:
        fail(
            fn,
            "logits_per_view",
            "to be (B, C) views or a stacked (V, B, C) tensor",
            f"shape {shape_str(stacked.shape)}",
        )
    return stacked


def jsd_cross_entropy(
    logits_per_view: Tensor | Sequence[Tensor],
    targets: Tensor,
    alpha: float = 12.0,
    *,
    label_smoothing: float = 0.0,
) -> Tensor:
    """AugMix's loss: cross-entropy on the clean view plus the Jensen-Shannon consistency term.

    With ``p_v = softmax(logits_v)`` for the ``V`` views (view 0 = clean) and the mixture
    ``M = (1/V) Σ_v p_v``::

        L = CE(logits_0, y) + α · (1/V) Σ_v KL(p_v ‖ M)

    each KL averaged over the batch ("batchmean"), ``log M`` computed as a log-sum-exp of the
    log-probabilities (timm's ``JsdCrossEntropy`` clamps ``M`` at 1e-7 instead; the values agree
    wherever ``M ≥ 1e-7``). ``label_smoothing`` applies to the cross-entropy term (timm's
    default is 0.1; here 0).

    Args:
        logits_per_view (Sequence[Tensor[B, C]] | Tensor[V, B, C]): logits of each view.
        targets (Tensor[B]): class indices of the clean view.
        alpha: weight ``α >= 0`` of the consistency term.
        label_smoothing: ``ε`` in [0, 1] of the cross-entropy term (PyTorch's convention).

    Returns:
        Tensor: a scalar, in the logits' dtype.

    Raises:
        TypeError: non-float logits, non-integer targets.
        ValueError: views of different shapes, not ``(V, B, C)``, targets not ``(B,)`` or out of
            range, ``alpha < 0``, ``label_smoothing`` outside [0, 1].

    Reference:
        Hendrycks et al., "AugMix: A Simple Data Processing Method to Improve Robustness and
        Uncertainty", ICLR 2020.

    Example:
        >>> import torch
        >>> clean = torch.tensor([[2.0, 0.0]])
        >>> views = (clean, clean.clone(), clean.clone())      # consistent views: JSD = 0
        >>> torch.allclose(jsd_cross_entropy(views, torch.tensor([0])),
        ...                torch.nn.functional.cross_entropy(clean, torch.tensor([0])))
        True
    """
    fn = "jsd_cross_entropy"
    a = check_number(fn, "alpha", alpha, low=0.0)
    smoothing = check_number(fn, "label_smoothing", label_smoothing, low=0.0, high=1.0)
    stacked = _stack_views(fn, logits_per_view)
    n_views, batch, classes = stacked.shape
    t = check_labels(fn, "targets", targets, classes)
    if tuple(t.shape) != (batch,):
        fail(
            fn, "targets", f"of shape ({batch},) matching the views (B={batch})", shape_str(t.shape)
        )
    z = upcast(stacked)
    ce = F.cross_entropy(z[0], t, label_smoothing=smoothing)
    log_p = torch.log_softmax(z, dim=-1)
    log_m = torch.logsumexp(log_p, dim=0) - math.log(n_views)
    kl = (log_p.exp() * (log_p - log_m)).sum(dim=(1, 2)) / max(batch, 1)
    return (ce + a * kl.mean()).to(stacked.dtype)


@register(asymmetric_loss)
class AsymmetricLoss(_ClassificationLoss):
    """Asymmetric multi-label loss; see :func:`asymmetric_loss`.

    Example:
        >>> AsymmetricLoss(gamma_neg=2.0)
        AsymmetricLoss(gamma_pos=0.0, gamma_neg=2.0, clip=0.05, reduction='mean')
    """

    def __init__(
        self,
        *,
        gamma_pos: float = 0.0,
        gamma_neg: float = 4.0,
        clip: float = 0.05,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        self.gamma_pos, self.gamma_neg, self.clip = _check_asymmetric(
            type(self).__name__, gamma_pos, gamma_neg, clip
        )

    def extra_repr(self) -> str:
        hyper = f"gamma_pos={self.gamma_pos}, gamma_neg={self.gamma_neg}, clip={self.clip}"
        return f"{hyper}, {super().extra_repr()}"

    def forward(self, logits: Tensor, targets: Tensor) -> Tensor:
        return asymmetric_loss(
            logits, targets, self.gamma_pos, self.gamma_neg, self.clip, reduction=self.reduction
        )


@register(jsd_cross_entropy)
class JSDCrossEntropyLoss(nn.Module):
    """AugMix cross-entropy + Jensen-Shannon consistency; see :func:`jsd_cross_entropy`."""

    def __init__(self, *, alpha: float = 12.0, label_smoothing: float = 0.0) -> None:
        super().__init__()
        name = type(self).__name__
        self.alpha = check_number(name, "alpha", alpha, low=0.0)
        self.label_smoothing = check_number(
            name, "label_smoothing", label_smoothing, low=0.0, high=1.0
        )

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, label_smoothing={self.label_smoothing}"

    def forward(self, logits_per_view: Tensor | Sequence[Tensor], targets: Tensor) -> Tensor:
        return jsd_cross_entropy(
            logits_per_view, targets, self.alpha, label_smoothing=self.label_smoothing
        )
