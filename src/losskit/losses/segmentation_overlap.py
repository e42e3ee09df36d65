"""More segmentation losses: Generalized Dice, Dice + focal, soft Jaccard, MCC and Lovász.

The region losses (``generalized_dice``, ``dice_focal``, ``jaccard``, ``mcc``) share the core of
:mod:`losskit.losses.segmentation`: logits ``(N, C, *spatial)``, targets as class indices or
one-hot / soft maps, ``activation``, ``include_background``, ``batch`` and ``ignore_index`` mean
what they mean for :func:`~losskit.losses.segmentation.dice`. The Lovász losses are the convex
surrogates of the Jaccard index of Berman et al.; they take ``per_image`` (one loss per image,
then the mean) and average over the classes present in the target.

Registry names: ``generalized_dice``, ``dice_focal``, ``jaccard``, ``mcc``, ``lovasz_softmax``,
``lovasz_hinge`` (family ``segmentation``).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from losskit._checks import (
    check_bool,
    check_choice,
    check_floating,
    check_int,
    check_labels,
    check_number,
    check_shape,
    fail,
    shape_str,
)
from losskit._reduce import Reduction, check_reduction, compute_dtype, reduce
from losskit.losses.segmentation import (
    Activation,
    _check_options,
    _dice_complement,
    _finish,
    _Maps,
    _maps,
    _Overlap,
    _overlap,
    _ratio,
)
from losskit.registry import register

FAMILY = "segmentation"

__all__ = [
    "GENERALIZED_DICE_WEIGHTS",
    "DiceFocalLoss",
    "GeneralizedDiceLoss",
    "JaccardLoss",
    "LovaszHingeLoss",
    "LovaszSoftmaxLoss",
    "MCCLoss",
    "dice_focal",
    "generalized_dice",
    "jaccard",
    "lovasz_hinge",
    "lovasz_softmax",
    "mcc",
]

WeightType = Literal["square", "simple", "uniform"]
GENERALIZED_DICE_WEIGHTS: tuple[str, ...] = ("square", "simple", "uniform")


def _region(
    fn: str,
    logits: Tensor,
    target: Tensor,
    *,
    activation: str,
    include_background: bool,
    batch: bool,
    ignore_index: int | None,
    squared: bool = False,
) -> tuple[_Maps, _Overlap]:
    """Validated maps and their overlap sums (no class weights)."""
    _check_options(fn, activation=activation, smooth=0.0, weight=None, ignore_index=ignore_index)
    m = _maps(fn, logits, target, activation, None, ignore_index)
    return m, _overlap(m, include_background=include_background, squared=squared, batch=batch)


def generalized_dice(
    logits: Tensor,
    target: Tensor,
    *,
    activation: Activation = "softmax",
    include_background: bool = True,
    weight_type: WeightType = "square",
    smooth_nr: float = 1e-5,
    smooth_dr: float = 1e-5,
    batch: bool = False,
    ignore_index: int | None = None,
    reduction: Reduction = "mean",
) -> Tensor:
    """Generalized Dice loss: Dice with class weights inversely proportional to class volume.

    Per sample (over the batch with ``batch=True``), with ``w_c = 1/(Σ g_c)²`` (``"square"``),
    ``1/Σ g_c`` (``"simple"``) or 1 (``"uniform"``)::

        L = 1 − (2·Σ_c w_c·Σ p·g + smooth_nr) / (Σ_c w_c·(Σ p + Σ g) + smooth_dr)

    A class absent from the target (infinite weight) gets the largest finite weight of that
    sample instead (MONAI's ``GeneralizedDiceLoss``).

    Args:
        logits (Tensor[N, C, *spatial]): raw scores.
        target (Tensor[N, *spatial] | Tensor[N, C, *spatial]): class indices or one-hot / soft map.
        activation, include_background, batch, ignore_index: as in :func:`losskit.functional.dice`.
        weight_type: ``"square"``, ``"simple"`` or ``"uniform"``.
        smooth_nr, smooth_dr: numerator / denominator smoothing (>= 0).
        reduction: ``"mean"`` over samples, ``"sum"`` or ``"none"`` (``(N,)``; a scalar with
            ``batch=True``).

    Returns:
        Tensor: the reduced loss, in ``logits``' dtype.

    Raises:
        TypeError, ValueError: as :func:`losskit.functional.dice`; also an unknown
            ``weight_type`` or negative smoothing.

    Reference:
        Sudre et al., "Generalised Dice overlap as a deep learning loss function for highly
        unbalanced segmentations", DLMIA 2017.

    Example:
        >>> import torch
        >>> target = torch.tensor([[[0, 1], [1, 1]]])
        >>> logits = 20.0 * torch.nn.functional.one_hot(target, 2).permute(0, 3, 1, 2).float()
        >>> round(float(generalized_dice(logits, target)), 4)
        0.0
    """
    fn = "generalized_dice"
    check_choice(fn, "weight_type", weight_type, GENERALIZED_DICE_WEIGHTS)
    nr = check_number(fn, "smooth_nr", smooth_nr, low=0.0)
    dr = check_number(fn, "smooth_dr", smooth_dr, low=0.0)
    check_reduction(fn, reduction)
    _, o = _region(
        fn,
        logits,
        target,
        activation=activation,
        include_background=include_background,
        batch=batch,
        ignore_index=ignore_index,
    )
    volume = o.true.detach()
    if weight_type == "uniform":
        w = torch.ones_like(volume)
    else:
        w = 1.0 / (volume.square() if weight_type == "square" else volume)
    absent = torch.isinf(w)
    w = w.masked_fill(absent, 0.0)
    largest = w.max(dim=-1, keepdim=True).values
    w = torch.where(absent, largest.expand_as(w), w)
    num = 2.0 * (o.inter * w).sum(-1) + nr
    den = ((o.pred + o.true) * w).sum(-1) + dr
    return reduce(1.0 - _ratio(num, den), reduction, fn=fn, dtype=logits.dtype)


def _focal_term(m: _Maps, activation: str, gamma: float) -> Tensor:
    """The focal term: per voxel summed over classes (softmax) or per element (sigmoid), mean."""
    if activation == "softmax":
        log_p = torch.log_softmax(m.logits, dim=1)
        terms = (-(1.0 - log_p.exp()).clamp_min(0.0).pow(gamma) * log_p * m.target).sum(1)
        per = 1
    else:
        bce = F.binary_cross_entropy_with_logits(m.logits, m.target, reduction="none")
        log_one_minus_pt = F.logsigmoid(-m.logits * (2.0 * m.target - 1.0))
        terms = torch.exp(gamma * log_one_minus_pt) * bce
        per = terms.shape[1]
    if m.mask is None:
        return reduce(terms, "mean", fn="dice_focal")  # 0.0 for an empty batch, not NaN
    mask = m.mask.squeeze(1) if activation == "softmax" else m.mask
    return reduce(terms * mask, "mean", fn="dice_focal", denominator=mask.sum() * per)


def dice_focal(
    logits: Tensor,
    target: Tensor,
    *,
    gamma: float = 2.0,
    dice_weight: float = 1.0,
    focal_weight: float = 1.0,
    activation: Activation = "softmax",
    include_background: bool = True,
    smooth: float = 1.0,
    squared: bool = False,
    batch: bool = False,
    ignore_index: int | None = None,
) -> Tensor:
    """Dice plus focal loss: region overlap and a focused voxel-wise term.

    Formula::

        L     = dice_weight · Dice + focal_weight · Focal
        Focal = mean over voxels of Σ_c −g_c·(1 − p_c)^γ·log p_c           (softmax)
        Focal = mean over (samples, channels, voxels) of (1 − p_t)^γ·BCE   (sigmoid)

    ``Dice`` is :func:`losskit.functional.dice` with the same options (``reduction="mean"``).
    Under softmax the focal term is the softmax focal loss of each voxel (``gamma = 0`` gives
    the cross-entropy, as in :func:`losskit.functional.ce_dice`); MONAI's ``DiceFocalLoss``
    always uses the sigmoid focal term, which is what ``activation="sigmoid"`` gives here.
    ``include_background`` acts on the Dice term only. With ``ignore_index`` the focal mean runs
    over the valid voxels.

    Args:
        logits (Tensor[N, C, *spatial]): raw scores.
        target (Tensor[N, *spatial] | Tensor[N, C, *spatial]): class indices or one-hot / soft map.
        gamma: focusing exponent (>= 0).
        dice_weight, focal_weight: weights (>= 0) of the two terms.
        activation, include_background, smooth, squared, batch, ignore_index: as in
            :func:`losskit.functional.dice`.

    Returns:
        Tensor: a scalar, in ``logits``' dtype.

    Raises:
        TypeError, ValueError: as :func:`losskit.functional.dice`; also a negative ``gamma`` or
            weight.

    Reference:
        Zhu et al., "AnatomyNet: Deep learning for fast and fully automated whole-volume
        segmentation of head and neck anatomy", Medical Physics 2019.

    Example:
        >>> import torch
        >>> logits, target = torch.zeros(1, 2, 2, 2), torch.tensor([[[0, 1], [1, 0]]])
        >>> round(float(dice_focal(logits, target, dice_weight=0.0, gamma=0.0)), 4)  # log 2
        0.6931
    """
    fn = "dice_focal"
    g = check_number(fn, "gamma", gamma, low=0.0)
    wd = check_number(fn, "dice_weight", dice_weight, low=0.0)
    wf = check_number(fn, "focal_weight", focal_weight, low=0.0)
    smooth_value, _ = _check_options(
        fn, activation=activation, smooth=smooth, weight=None, ignore_index=ignore_index
    )
    m = _maps(fn, logits, target, activation, None, ignore_index)
    o = _overlap(m, include_background=include_background, squared=squared, batch=batch)
    dice_term = _finish(fn, _dice_complement(o, smooth_value), o, "mean", m.logits.dtype)
    return (wd * dice_term + wf * _focal_term(m, activation, g)).to(logits.dtype)


def jaccard(
    logits: Tensor,
    target: Tensor,
    *,
    activation: Activation = "softmax",
    include_background: bool = True,
    smooth: float = 0.0,
    batch: bool = False,
    ignore_index: int | None = None,
    reduction: Reduction = "mean",
) -> Tensor:
    """Soft Jaccard (IoU) loss on segmentation logits.

    Per sample and class (per class over the batch with ``batch=True``), with ``I = Σ p·g`` and
    ``U = Σ p + Σ g − I``::

        L = 1 − (I + smooth) / (U + smooth)

    (segmentation_models_pytorch's ``soft_jaccard_score``; it sums over the batch, which is
    ``batch=True`` here). Without smoothing ``J = D/(2 − D)`` for the Dice score ``D``. An empty
    prediction on an empty target gives 0.

    Args:
        logits (Tensor[N, C, *spatial]): raw scores.
        target (Tensor[N, *spatial] | Tensor[N, C, *spatial]): class indices or one-hot / soft map.
        activation, include_background, batch, ignore_index: as in
            :func:`losskit.functional.dice`.
        smooth: added to numerator and denominator (>= 0).
        reduction: ``"mean"`` over entries, ``"sum"`` or ``"none"`` (``(N, C')`` or ``(C',)``).

    Returns:
        Tensor: the reduced loss, in ``logits``' dtype.

    Raises:
        TypeError, ValueError: as :func:`losskit.functional.dice`.

    Reference:
        Rahman and Wang, "Optimizing Intersection-Over-Union in Deep Neural Networks for Image
        Segmentation", ISVC 2016.

    Example:
        >>> import torch
        >>> logits = torch.zeros(1, 1, 2, 2)                      # p = 0.5 everywhere
        >>> target = torch.tensor([[[1, 1], [0, 0]]])
        >>> round(float(jaccard(logits, target, activation="sigmoid")), 4)  # 1 − 1/3
        0.6667
    """
    fn = "jaccard"
    s = check_number(fn, "smooth", smooth, low=0.0)
    check_reduction(fn, reduction)
    _, o = _region(
        fn,
        logits,
        target,
        activation=activation,
        include_background=include_background,
        batch=batch,
        ignore_index=ignore_index,
    )
    loss = 1.0 - _ratio(o.inter + s, o.pred + o.true - o.inter + s)
    return _finish(fn, loss, o, reduction, logits.dtype)


def mcc(
    logits: Tensor,
    target: Tensor,
    *,
    activation: Activation = "sigmoid",
    include_background: bool = True,
    eps: float = 1e-5,
    batch: bool = True,
    ignore_index: int | None = None,
    reduction: Reduction = "mean",
) -> Tensor:
    """Matthews correlation coefficient loss: one minus the soft MCC of each class map.

    With soft counts ``TP = Σ p·g``, ``FP = Σ p·(1−g)``, ``FN = Σ (1−p)·g``,
    ``TN = Σ (1−p)·(1−g)`` (each plus ``eps``)::

        MCC = (TP·TN − FP·FN) / sqrt((TP + FP)(TP + FN)(TN + FP)(TN + FN))
        L   = 1 − MCC                                 (in [0, 2])

    By default the counts run over the whole batch (``batch=True``, as
    segmentation_models_pytorch's ``MCCLoss``) and the map is binary (sigmoid).

    Args:
        logits (Tensor[N, C, *spatial]): raw scores (``C = 1`` for a binary map).
        target (Tensor[N, *spatial] | Tensor[N, C, *spatial]): class indices or one-hot / soft map.
        activation, include_background, batch, ignore_index: as in
            :func:`losskit.functional.dice`.
        eps: added to each count (> 0).
        reduction: ``"mean"`` over entries, ``"sum"`` or ``"none"`` (``(C',)``, or ``(N, C')``
            with ``batch=False``).

    Returns:
        Tensor: the reduced loss, in ``logits``' dtype.

    Raises:
        TypeError, ValueError: as :func:`losskit.functional.dice`; also ``eps <= 0``.

    Reference:
        Abhishek and Hamarneh, "Matthews Correlation Coefficient Loss for Deep Convolutional
        Networks: Application to Skin Lesion Segmentation", ISBI 2021.

    Example:
        >>> import torch
        >>> target = torch.tensor([[[1, 0], [0, 1]]])
        >>> logits = 30.0 * (2.0 * target.float() - 1.0).unsqueeze(1)
        >>> round(float(mcc(logits, target)), 4)                  # perfect: MCC = 1
        0.0
    """
    fn = "mcc"
    e = check_number(fn, "eps", eps, low=0.0, low_open=True)
    check_reduction(fn, reduction)
    m, o = _region(
        fn,
        logits,
        target,
        activation=activation,
        include_background=include_background,
        batch=batch,
        ignore_index=ignore_index,
    )
    dims = tuple(range(2, m.probs.dim()))
    if batch:
        dims = (0, *dims)
    voxels = (torch.ones_like(m.probs[:, :1]) if m.mask is None else m.mask).sum(
        dims
    )  # (N, 1) or (1,)
    tp = o.inter + e
    fp = o.pred - o.inter + e
    fn_ = o.true - o.inter + e
    tn = voxels - o.pred - o.true + o.inter + e
    score = (tp * tn - fp * fn_) / torch.sqrt((tp + fp) * (tp + fn_) * (tn + fp) * (tn + fn_))
    return _finish(fn, 1.0 - score, o, reduction, logits.dtype)


# --- Lovász ------------------------------------------------------------------------------------


def _lovasz_grad(sorted_fg: Tensor) -> Tensor:
    """Gradient of the Lovász extension of the Jaccard loss at the foreground indicator, sorted
    along dim 0 (one column per class)."""
    total = sorted_fg.sum(0)
    inter = total - sorted_fg.cumsum(0)
    union = total + (1.0 - sorted_fg).cumsum(0)
    jac = 1.0 - inter / union
    return torch.cat([jac[:1], jac[1:] - jac[:-1]])


def _lovasz(errors: Tensor, fg: Tensor, keep: Tensor | None) -> Tensor:
    """``⟨sort(errors)↓, ∇Δ_J⟩`` along dim 0 of ``errors`` and foreground indicator ``fg``.

    The pixels outside ``keep`` (ignored) get error 0 and no foreground: sorted after every
    positive error, they change neither the positive errors' weights nor the sum, and the
    shapes never depend on the labels.
    """
    if keep is not None:
        keep = keep.view(-1, *([1] * (errors.dim() - 1)))
        errors, fg = torch.where(keep, errors, 0.0), torch.where(keep, fg, 0.0)
    ordered, perm = torch.sort(errors, dim=0, descending=True)
    return (ordered * _lovasz_grad(fg.gather(0, perm))).sum(0)


def _check_lovasz_target(
    fn: str, logits: Tensor, target: object, classes: int, ignore_index: int | None
) -> Tensor:
    index_shape = (logits.shape[0], *logits.shape[2:])
    t = check_labels(fn, "target", target, classes, ignore_index=ignore_index)
    if tuple(t.shape) != index_shape:
        fail(
            fn,
            "target",
            f"of shape {shape_str(index_shape)} (class indices matching `logits`)",
            shape_str(t.shape),
        )
    return t


def _per_image(per_image: bool, n: int, loss_of: Any) -> Tensor:
    """The mean of ``loss_of(sample)`` over images, or ``loss_of(None)`` over the whole batch."""
    if not per_image or n == 0:  # an empty batch: the whole-batch loss (0.0)
        return loss_of(None)
    return torch.stack([loss_of(i) for i in range(n)]).mean()


def lovasz_softmax(
    logits: Tensor,
    target: Tensor,
    *,
    per_image: bool = False,
    ignore_index: int | None = None,
) -> Tensor:
    """Lovász-softmax loss: a convex surrogate of the mean Jaccard loss over classes.

    With ``p = softmax(logits)``, for each class ``c`` present in the target, the errors
    ``e_i = |[y_i = c] − p_ic|`` sorted in decreasing order are weighted by the increments of
    the Jaccard loss of the growing set of mispredicted pixels::

        L_c = Σ_i e_(i) · (Δ_J({1..i}) − Δ_J({1..i−1})),     L = mean over present classes

    over all pixels of the batch, or per image then averaged (``per_image=True``). A perfect
    prediction gives 0; an image with no valid pixel counts 0.

    Args:
        logits (Tensor[N, C, *spatial]): raw scores, ``C >= 2``.
        target (Tensor[N, *spatial]): class indices.
        per_image: compute the loss per image and average.
        ignore_index: label whose pixels are left out.

    Returns:
        Tensor: a scalar, in ``logits``' dtype.

    Raises:
        TypeError: non-float logits, non-integer target.
        ValueError: logits not ``(N, C >= 2, *spatial)``, a target of another shape or out of
            range.

    Reference:
        Berman, Rannen Triki and Blaschko, "The Lovász-Softmax loss: A tractable surrogate for
        the optimization of the intersection-over-union measure in neural networks", CVPR 2018.

    Example:
        >>> import torch
        >>> target = torch.tensor([[[0, 1], [1, 2]]])
        >>> logits = 30.0 * torch.nn.functional.one_hot(target, 3).permute(0, 3, 1, 2).float()
        >>> round(float(lovasz_softmax(logits, target)), 6)
        0.0
    """
    fn = "lovasz_softmax"
    check_bool(fn, "per_image", per_image)
    if ignore_index is not None:
        check_int(fn, "ignore_index", ignore_index)
    x = check_floating(fn, "logits", logits)
    if x.dim() < 3 or x.shape[1] < 2:
        fail(fn, "logits", "of shape (N, C >= 2, *spatial)", shape_str(x.shape))
    t = _check_lovasz_target(fn, x, target, x.shape[1], ignore_index)
    probs = torch.softmax(x.to(compute_dtype(x.dtype)), dim=1).movedim(1, -1)  # (N, *spatial, C)

    def loss_of(image: int | None) -> Tensor:
        p = (probs if image is None else probs[image]).reshape(-1, x.shape[1])
        labels = (t if image is None else t[image]).reshape(-1)
        keep = None if ignore_index is None else labels != ignore_index
        fg = (labels.unsqueeze(1) == torch.arange(x.shape[1], device=p.device)).to(p.dtype)
        terms = _lovasz((fg - p).abs(), fg, keep)  # (C,), one per class
        present = (fg if keep is None else fg * keep.unsqueeze(1)).sum(0) > 0
        return torch.where(present, terms, 0.0).sum() / present.sum().clamp_min(1)

    return _per_image(per_image, x.shape[0], loss_of).to(x.dtype)


def lovasz_hinge(
    logits: Tensor,
    target: Tensor,
    *,
    per_image: bool = False,
    ignore_index: int | None = None,
) -> Tensor:
    """Lovász hinge loss: a convex surrogate of the binary Jaccard loss, on logits.

    With signs ``s_i = 2y_i − 1`` and hinge errors ``e_i = max(0, 1 − s_i·x_i)`` sorted in
    decreasing order, ``L = Σ_i e_(i)·(Δ_J({1..i}) − Δ_J({1..i−1}))`` (the Jaccard loss of the
    foreground), over the batch or per image then averaged (``per_image=True``). An image with no
    valid pixel counts 0.

    Args:
        logits (Tensor[N, *spatial] | Tensor[N, 1, *spatial]): raw scores of the foreground.
        target (Tensor[N, *spatial]): 0 (background) or 1 (foreground), integers.
        per_image: compute the loss per image and average.
        ignore_index: label whose pixels are left out.

    Returns:
        Tensor: a scalar, in ``logits``' dtype.

    Raises:
        TypeError: non-float logits, non-integer target.
        ValueError: a target not matching ``logits`` or outside {0, 1}.

    Reference:
        Berman, Rannen Triki and Blaschko, CVPR 2018 (see :func:`lovasz_softmax`).

    Example:
        >>> import torch
        >>> target = torch.tensor([[[0, 1], [1, 1]]])
        >>> logits = 5.0 * (2.0 * target.float() - 1.0)       # margins >= 1 everywhere
        >>> float(lovasz_hinge(logits, target))
        0.0
    """
    fn = "lovasz_hinge"
    check_bool(fn, "per_image", per_image)
    if ignore_index is not None:
        check_int(fn, "ignore_index", ignore_index)
    x = check_floating(fn, "logits", logits)
    t = check_labels(fn, "target", target, 2, ignore_index=ignore_index)
    if x.dim() == t.dim() + 1 and x.shape[1] == 1:
        x = x.squeeze(1)
    check_shape(fn, "target", t, tuple(x.shape), "(0/1 labels matching `logits`)")
    xc = x.to(compute_dtype(x.dtype))

    def loss_of(image: int | None) -> Tensor:
        scores = (xc if image is None else xc[image]).reshape(-1)
        labels = (t if image is None else t[image]).reshape(-1)
        keep = None if ignore_index is None else labels != ignore_index
        fg = labels.to(scores.dtype)
        errors = F.relu(1.0 - scores * (2.0 * fg - 1.0))
        return _lovasz(errors, fg, keep)

    return _per_image(per_image, x.shape[0], loss_of).to(x.dtype)


# --- modules -----------------------------------------------------------------------------------


class _OptionsLoss(nn.Module):
    """Stores validated keyword options and passes them to ``function`` in ``forward``."""

    function: Any

    def __init__(self, **options: Any) -> None:
        super().__init__()
        name = type(self).__name__
        if "reduction" in options:
            check_reduction(name, options["reduction"])
        if "activation" in options:
            check_choice(name, "activation", options["activation"], ("sigmoid", "softmax"))
        if "per_image" in options:
            check_bool(name, "per_image", options["per_image"])
        self.options = options

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.options.items())

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return type(self).function(logits, target, **self.options)


@register(generalized_dice)
class GeneralizedDiceLoss(_OptionsLoss):
    """Generalized Dice loss; see :func:`generalized_dice`."""

    function = staticmethod(generalized_dice)

    def __init__(
        self,
        *,
        activation: Activation = "softmax",
        include_background: bool = True,
        weight_type: WeightType = "square",
        smooth_nr: float = 1e-5,
        smooth_dr: float = 1e-5,
        batch: bool = False,
        ignore_index: int | None = None,
        reduction: Reduction = "mean",
    ) -> None:
        check_choice(type(self).__name__, "weight_type", weight_type, GENERALIZED_DICE_WEIGHTS)
        super().__init__(
            activation=activation,
            include_background=include_background,
            weight_type=weight_type,
            smooth_nr=check_number(type(self).__name__, "smooth_nr", smooth_nr, low=0.0),
            smooth_dr=check_number(type(self).__name__, "smooth_dr", smooth_dr, low=0.0),
            batch=batch,
            ignore_index=ignore_index,
            reduction=reduction,
        )


@register(dice_focal)
class DiceFocalLoss(_OptionsLoss):
    """Dice + focal loss; see :func:`dice_focal`."""

    function = staticmethod(dice_focal)

    def __init__(
        self,
        *,
        gamma: float = 2.0,
        dice_weight: float = 1.0,
        focal_weight: float = 1.0,
        activation: Activation = "softmax",
        include_background: bool = True,
        smooth: float = 1.0,
        squared: bool = False,
        batch: bool = False,
        ignore_index: int | None = None,
    ) -> None:
        name = type(self).__name__
        super().__init__(
            gamma=check_number(name, "gamma", gamma, low=0.0),
            dice_weight=check_number(name, "dice_weight", dice_weight, low=0.0),
            focal_weight=check_number(name, "focal_weight", focal_weight, low=0.0),
            activation=activation,
            include_background=include_background,
            smooth=check_number(name, "smooth", smooth, low=0.0),
            squared=squared,
            batch=batch,
            ignore_index=ignore_index,
        )


@register(jaccard)
class JaccardLoss(_OptionsLoss):
    """Soft Jaccard loss; see :func:`jaccard`."""

    function = staticmethod(jaccard)

    def __init__(
        self,
        *,
        activation: Activation = "softmax",
        include_background: bool = True,
        smooth: float = 0.0,
        batch: bool = False,
        ignore_index: int | None = None,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(
            activation=activation,
            include_background=include_background,
            smooth=check_number(type(self).__name__, "smooth", smooth, low=0.0),
            batch=batch,
            ignore_index=ignore_index,
            reduction=reduction,
        )


@register(mcc)
class MCCLoss(_OptionsLoss):
    """Matthews correlation coefficient loss; see :func:`mcc`."""

    function = staticmethod(mcc)

    def __init__(
        self,
        *,
        activation: Activation = "sigmoid",
        include_background: bool = True,
        eps: float = 1e-5,
        batch: bool = True,
        ignore_index: int | None = None,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(
            activation=activation,
            include_background=include_background,
            eps=check_number(type(self).__name__, "eps", eps, low=0.0, low_open=True),
            batch=batch,
            ignore_index=ignore_index,
            reduction=reduction,
        )


@register(lovasz_softmax)
class LovaszSoftmaxLoss(_OptionsLoss):
    """Lovász-softmax loss; see :func:`lovasz_softmax`."""

    function = staticmethod(lovasz_softmax)

    def __init__(self, *, per_image: bool = False, ignore_index: int | None = None) -> None:
        super().__init__(per_image=per_image, ignore_index=ignore_index)


@register(lovasz_hinge)
class LovaszHingeLoss(_OptionsLoss):
    """Lovász hinge loss; see :func:`lovasz_hinge`."""

    function = staticmethod(lovasz_hinge)

    def __init__(self, *, per_image: bool = False, ignore_index: int | None = None) -> None:
        super().__init__(per_image=per_image, ignore_index=ignore_index)
