"""Segmentation losses: soft Dice, Tversky, focal Tversky, and cross-entropy + Dice.

They share one core. The activation turns logits ``(N, C, *spatial)`` into probabilities ``p``
(``softmax`` over the channels for one class per pixel, ``sigmoid`` per channel for binary
``(N, 1, ...)`` or multi-label maps); the target becomes a one-hot (or soft) map ``g`` of the same
shape; then, per sample and class (``batch=False``) or per class over the whole batch
(``batch=True``), three sums are taken over the voxels::

    I = Σ p·g        P = Σ p   (Σ p² with squared=True)        G = Σ g   (Σ g²)

Conventions shared by every loss of this module (and checked against MONAI in the tests):

- **logits in**: there is no ``activation="none"`` for probabilities (a softmax applied twice
  is a silent, common bug); inputs that look like probabilities raise a one-time warning.
- **target**: class indices ``(N, *spatial)`` (integers) or a one-hot / soft map of the logits'
  shape ``(N, C, *spatial)`` with values in ``[0, 1]``. With a single channel (binary, sigmoid)
  index targets hold 0 (background) or 1 (foreground) and the channel is the foreground.
- **include_background=False** drops channel 0 from the overlap terms (no effect with a single
  channel, whose channel is the foreground).
- **ignore_index** (index targets only): those voxels are removed from every sum. A sample (or,
  with ``batch=True``, the batch) with no valid voxel has no entry: it is left out of the mean,
  and ``reduction="none"`` shows 0 for it. With nothing valid at all the mean is 0.0, still
  connected to the graph.
- **weight** ``(C,)``: one non-negative weight per channel of the logits (with
  ``include_background=False`` entry 0 is unused). ``"none"`` returns ``w_c·L``, ``"sum"`` their
  sum and ``"mean"`` the weighted mean ``Σ w_c·L / Σ w_c`` over the entries (MONAI's mean divides
  by the number of entries instead).
- **Empty masks**: an empty prediction on an empty target scores a perfect overlap, loss 0. With
  ``smooth > 0`` this follows from the formula (and a nearly empty soft prediction gives nearly
  0); with ``smooth = 0`` the 0/0 case is defined as a perfect overlap (loss 0, gradient finite),
  but any non-zero probability mass on an empty target then gives loss 1.
- Probabilities and sums are computed in float32 for half-precision logits; the result is cast
  back to the logits' dtype.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
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
    check_same_shape,
    check_shape,
    check_tensor,
    check_values,
    fail,
    shape_str,
    warn_if_probabilities,
)
from losskit._reduce import Reduction, check_reduction, compute_dtype, reduce
from losskit.registry import register

__all__ = [
    "CEDiceLoss",
    "DiceLoss",
    "FocalTverskyLoss",
    "TverskyLoss",
    "ce_dice",
    "dice",
    "focal_tversky",
    "tversky",
]

Activation = Literal["sigmoid", "softmax"]
ACTIVATIONS: tuple[str, ...] = ("sigmoid", "softmax")
ClassWeight = Tensor | Sequence[float] | None


# ----------------------------------------------------------------------------------------------
# Shared core
# ----------------------------------------------------------------------------------------------


def _check_weight(fn: str, weight: ClassWeight) -> Tensor | None:
    """``weight`` as a 1-D floating tensor of non-negative class weights (or ``None``)."""
    if weight is None:
        return None
    if not isinstance(weight, Tensor):
        if not isinstance(weight, Sequence) or isinstance(weight, str):
            expected = "to be a tensor or sequence of class weights"
            fail(fn, "weight", expected, type(weight).__name__, kind=TypeError)
        weight = torch.as_tensor(weight, dtype=torch.get_default_dtype())
    if weight.is_complex() or weight.dtype == torch.bool:
        fail(fn, "weight", "to hold real class weights", f"dtype {weight.dtype}", kind=TypeError)
    if weight.dim() != 1:
        fail(fn, "weight", "of shape (C,) (one weight per class)", shape_str(weight.shape))
    w = weight.detach()
    if not w.is_floating_point():
        w = w.to(torch.get_default_dtype())
    return check_values(fn, "weight", w, low=0.0)


def _check_options(
    fn: str,
    *,
    activation: object,
    smooth: object,
    weight: ClassWeight,
    ignore_index: object,
) -> tuple[float, Tensor | None]:
    """Validate the options shared by every segmentation loss; return ``smooth`` and ``weight``."""
    check_choice(fn, "activation", activation, ACTIVATIONS)
    smooth_value = check_number(fn, "smooth", smooth, low=0.0)
    if ignore_index is not None:
        check_int(fn, "ignore_index", ignore_index)
    return smooth_value, _check_weight(fn, weight)


def _check_tversky(fn: str, alpha: object, beta: object) -> tuple[float, float]:
    a = check_number(fn, "alpha", alpha, low=0.0)
    b = check_number(fn, "beta", beta, low=0.0)
    if a + b <= 0:
        fail(fn, "alpha + beta", "> 0", f"{a + b:g} (alpha={alpha!r}, beta={beta!r})")
    return a, b


@dataclass(frozen=True)
class _Maps:
    """Logits, probabilities and target of one call, all ``(N, C, *spatial)`` in compute dtype."""

    logits: Tensor
    probs: Tensor  # zero at ignored voxels
    target: Tensor  # one-hot or soft, zero at ignored voxels
    mask: Tensor | None  # (N, 1, *spatial): 1 at valid voxels; None when nothing is ignored
    weight: Tensor | None  # (C,)
    indexed: bool  # the target came as class indices (not as a one-hot or soft map)
    fn: str  # the loss, for the messages of the options checked later


def _maps(
    fn: str,
    logits: Tensor,
    target: Tensor,
    activation: str,
    weight: Tensor | None,
    ignore_index: int | None,
) -> _Maps:
    """Validate the inputs, apply the activation and bring the target to one-hot form."""
    x = check_floating(fn, "logits", logits)
    if x.dim() < 3:
        fail(
            fn,
            "logits",
            "of shape (N, C, *spatial) with at least one spatial dim",
            shape_str(x.shape),
        )
    n_ch = x.shape[1]
    if activation == "softmax" and n_ch < 2:
        fail(
            fn,
            "logits",
            "with C >= 2 channels for activation='softmax' "
            "(use activation='sigmoid' for a binary (N, 1, ...) map)",
            shape_str(x.shape),
        )
    warn_if_probabilities(fn, "logits", x, dim=1 if activation == "softmax" else None)
    t = check_tensor(fn, "target", target)
    dtype = compute_dtype(x.dtype)
    index_shape = (x.shape[0], *x.shape[2:])
    mask = None
    if t.dim() == x.dim():
        check_same_shape(fn, "target", t, "logits", x)
        if ignore_index is not None:
            fail(
                fn,
                "target",
                "as class indices (N, *spatial) when `ignore_index` is set",
                f"a one-hot target of shape {shape_str(t.shape)}",
            )
        g = check_values(fn, "target", t.to(dtype), low=0.0, high=1.0)
    elif t.dim() == x.dim() - 1 and tuple(t.shape) == index_shape:
        check_labels(fn, "target", t, max(n_ch, 2), ignore_index=ignore_index)
        if ignore_index is not None:
            valid = t != ignore_index
            t = t.masked_fill(~valid, 0)
            mask = valid.unsqueeze(1).to(dtype)
        # A single (sigmoid) channel is the foreground: label 1.
        classes = torch.arange(n_ch, device=t.device) if n_ch > 1 else t.new_ones(1)
        g = (t.unsqueeze(1) == classes.view(1, n_ch, *([1] * (x.dim() - 2)))).to(dtype)
    else:
        fail(
            fn,
            "target",
            f"of shape {shape_str(index_shape)} (class indices) or "
            f"{shape_str(x.shape)} (one-hot) matching `logits`",
            shape_str(t.shape),
        )
    xc = x.to(dtype)
    p = torch.softmax(xc, dim=1) if activation == "softmax" else torch.sigmoid(xc)
    if mask is not None:
        p, g = p * mask, g * mask
    if weight is not None:
        check_shape(fn, "weight", weight, (n_ch,), f"(one weight per channel of logits, C={n_ch})")
        weight = weight.to(device=x.device, dtype=dtype)
    indexed = t.dim() == x.dim() - 1
    return _Maps(logits=xc, probs=p, target=g, mask=mask, weight=weight, indexed=indexed, fn=fn)


@dataclass(frozen=True)
class _Overlap:
    """The sums ``I, P, G`` per entry — ``(N, C')``, or ``(C',)`` with ``batch=True`` — and the
    weight of each entry (0 for an entry without valid voxels)."""

    inter: Tensor
    pred: Tensor
    true: Tensor
    weight: Tensor


def _overlap(m: _Maps, *, include_background: bool, squared: bool, batch: bool) -> _Overlap:
    for name, flag in (("include_background", include_background), ("squared", squared),
                       ("batch", batch)):  # fmt: skip
        check_bool(m.fn, name, flag)
    p, g, w = m.probs, m.target, m.weight
    if not include_background and p.shape[1] > 1:
        p, g = p[:, 1:], g[:, 1:]
        w = None if w is None else w[1:]
    dims = tuple(range(2, p.dim()))
    if batch:
        dims = (0, *dims)
    inter = (p * g).sum(dims)
    pred = (p * p if squared else p).sum(dims)
    true = (g * g if squared else g).sum(dims)
    if m.mask is None:
        entry = torch.ones_like(inter)
    else:
        entry = (m.mask.sum(dims) > 0).to(inter.dtype).expand_as(inter)
    return _Overlap(inter, pred, true, entry if w is None else entry * w)


def _ratio(num: Tensor, den: Tensor) -> Tensor:
    """``num / den``, with 0/0 (empty prediction on an empty target, smooth=0) defined as 1."""
    positive = den > 0
    return torch.where(positive, num / torch.where(positive, den, torch.ones_like(den)), 1.0)


def _finish(fn: str, loss: Tensor, o: _Overlap, reduction: str, dtype: torch.dtype) -> Tensor:
    """Weight each entry's loss and reduce; ``"mean"`` divides by the summed entry weights."""
    return reduce(loss * o.weight, reduction, fn=fn, denominator=o.weight.sum(), dtype=dtype)


def _smoothing(fn: str, smooth: float, smooth_nr: object, smooth_dr: object) -> tuple[float, float]:
    """Numerator and denominator smoothing: ``smooth`` unless given separately."""
    nr = smooth if smooth_nr is None else check_number(fn, "smooth_nr", smooth_nr, low=0.0)
    dr = smooth if smooth_dr is None else check_number(fn, "smooth_dr", smooth_dr, low=0.0)
    return nr, dr


def _dice_complement(
    o: _Overlap, smooth: float, smooth_dr: float | None = None, jaccard: bool = False
) -> Tensor:
    """``1 − (2I + s_nr)/(P + G + s_dr)``; with ``jaccard`` the denominator is ``2(P + G − I)``."""
    dr = smooth if smooth_dr is None else smooth_dr
    total = o.pred + o.true
    den = 2.0 * (total - o.inter) if jaccard else total
    return 1.0 - _ratio(2.0 * o.inter + smooth, den + dr)


def _tversky_complement(
    o: _Overlap, alpha: float, beta: float, smooth_nr: float, smooth_dr: float, jaccard: bool
) -> Tensor:
    """``1 − (TP + s_nr)/(TP + α·FP + β·FN + s_dr)``; ``jaccard`` doubles ``α`` and ``β``."""
    scale = 2.0 if jaccard else 1.0
    false_pos = o.pred - o.inter  # Σ p·(1 − g)
    false_neg = o.true - o.inter  # Σ (1 − p)·g
    den = o.inter + scale * (alpha * false_pos + beta * false_neg)
    return 1.0 - _ratio(o.inter + smooth_nr, den + smooth_dr)


def _cross_entropy(fn: str, m: _Maps, activation: str) -> Tensor:
    """Mean cross-entropy over the valid voxels, as ``F.cross_entropy`` (BCE per channel under
    sigmoid): weighted by the target classes' weights for class indices, per voxel for maps."""
    shape = (1, -1, *([1] * (m.logits.dim() - 2)))
    w = 1.0 if m.weight is None else m.weight.view(shape)
    if activation == "softmax":
        terms = -(m.target * torch.log_softmax(m.logits, dim=1)) * w
        if not m.indexed:  # a map has no ignored voxels: its mean is over all of them
            return reduce(terms, "mean", fn=fn, denominator=m.target[:, 0].numel())
        mass = m.target * w
    else:
        valid = torch.ones_like(m.logits) if m.mask is None else m.mask.expand_as(m.logits)
        bce = F.binary_cross_entropy_with_logits(m.logits, m.target, reduction="none")
        terms, mass = bce * valid * w, valid * w
    return reduce(terms, "mean", fn=fn, denominator=mass.sum())


# ----------------------------------------------------------------------------------------------
# Losses
# ----------------------------------------------------------------------------------------------


def dice(
    logits: Tensor,
    target: Tensor,
    *,
    activation: Activation = "softmax",
    include_background: bool = True,
    smooth: float = 1.0,
    squared: bool = False,
    batch: bool = False,
    weight: ClassWeight = None,
    ignore_index: int | None = None,
    reduction: Reduction = "mean",
    jaccard: bool = False,
    smooth_nr: float | None = None,
    smooth_dr: float | None = None,
) -> Tensor:
    """Soft Dice loss on segmentation logits (binary, multi-label or multi-class; 2-D or 3-D).

    Formula, per sample and class (per class over the batch with ``batch=True``)::

        L = 1 − (2·Σ p·g + smooth_nr) / (Σ p + Σ g + smooth_dr)   (Σ p², Σ g² with squared=True)
        L = 1 − (2·Σ p·g + smooth_nr) / (2·(Σ p + Σ g − Σ p·g) + smooth_dr)    (jaccard=True)

    (``smooth_nr`` and ``smooth_dr`` default to ``smooth``; ``jaccard=True`` is MONAI's soft
    Jaccard form, equal to ``1 − I/U`` without smoothing.) Soft (probability) targets are used as
    they are.

    with ``p = softmax(logits)`` over the channels or ``sigmoid(logits)``, ``g`` the one-hot
    target. An empty prediction on an empty target gives 0 (also with ``smooth=0``). See the
    module docstring for the target, ``ignore_index`` and ``weight`` conventions.

    Args:
        logits (Tensor[N, C, *spatial]): raw scores; ``C = 1`` for binary maps (sigmoid).
        target (Tensor[N, *spatial] | Tensor[N, C, *spatial]): class indices, or a one-hot /
            soft map with values in [0, 1].
        activation: ``"softmax"`` (one class per voxel, C >= 2) or ``"sigmoid"`` (binary or
            multi-label).
        include_background: keep channel 0 in the loss.
        smooth: added to numerator and denominator (>= 0).
        squared: square ``p`` and ``g`` in the denominator (V-Net).
        batch: sum over the batch before dividing (one Dice per class).
        weight (Tensor[C] | None): non-negative class weights.
        ignore_index: label (index targets) whose voxels are left out.
        reduction: ``"mean"`` (weighted mean over entries), ``"sum"`` or ``"none"``.
        jaccard: use the Jaccard (IoU) denominator ``2·(P + G − I)``.
        smooth_nr, smooth_dr: numerator / denominator smoothing (>= 0), ``smooth`` when None.

    Returns:
        Tensor: a scalar, or with ``"none"`` ``(N, C')`` (``(C',)`` with ``batch=True``), where
        ``C' = C − 1`` without background.

    Raises:
        TypeError: non-float logits, non-integer index targets.
        ValueError: mismatched shapes, labels out of range, unknown ``activation`` or
            ``reduction``, negative ``smooth``, ``weight`` not ``(C,)`` or negative, softmax on
            one channel, ``ignore_index`` with a one-hot target.

    Reference:
        Milletari et al., "V-Net: Fully Convolutional Neural Networks for Volumetric Medical
        Image Segmentation", 3DV 2016.

    Example:
        >>> import torch
        >>> target = torch.tensor([[[0, 1], [1, 2]]])            # (N=1, H=2, W=2)
        >>> logits = 20.0 * torch.nn.functional.one_hot(target, 3).permute(0, 3, 1, 2).float()
        >>> round(float(dice(logits, target)), 4)               # near-perfect prediction
        0.0
    """
    fn = "dice"
    smooth_value, w = _check_options(
        fn, activation=activation, smooth=smooth, weight=weight, ignore_index=ignore_index
    )
    nr, dr = _smoothing(fn, smooth_value, smooth_nr, smooth_dr)
    check_bool(fn, "jaccard", jaccard)
    check_reduction(fn, reduction)
    m = _maps(fn, logits, target, activation, w, ignore_index)
    o = _overlap(m, include_background=include_background, squared=squared, batch=batch)
    return _finish(fn, _dice_complement(o, nr, dr, jaccard), o, reduction, logits.dtype)


def _tversky_loss(
    fn: str,
    logits: Tensor,
    target: Tensor,
    alpha: float,
    beta: float,
    gamma: float | None,
    *,
    activation: str,
    include_background: bool,
    smooth: float,
    batch: bool,
    weight: ClassWeight,
    ignore_index: int | None,
    reduction: str,
    smooth_nr: float | None = None,
    smooth_dr: float | None = None,
    jaccard: bool = False,
) -> Tensor:
    """Tversky loss per entry, raised to ``gamma`` when given (focal Tversky), then reduced."""
    a, b = _check_tversky(fn, alpha, beta)
    g = None if gamma is None else check_number(fn, "gamma", gamma, low=0.0, low_open=True)
    smooth_value, w = _check_options(
        fn, activation=activation, smooth=smooth, weight=weight, ignore_index=ignore_index
    )
    check_reduction(fn, reduction)
    m = _maps(fn, logits, target, activation, w, ignore_index)
    o = _overlap(m, include_background=include_background, squared=False, batch=batch)
    nr, dr = _smoothing(fn, smooth_value, smooth_nr, smooth_dr)
    check_bool(fn, "jaccard", jaccard)
    loss = _tversky_complement(o, a, b, nr, dr, jaccard)
    if g is not None:
        # A perfect entry (1 − TI = 0) gives 0 with a zero gradient, also for gamma < 1.
        base = loss.clamp_min(0.0)
        loss = torch.where(base > 0, base.clamp_min(torch.finfo(base.dtype).tiny).pow(g), 0.0)
    return _finish(fn, loss, o, reduction, logits.dtype)


def tversky(
    logits: Tensor,
    target: Tensor,
    alpha: float = 0.3,
    beta: float = 0.7,
    *,
    activation: Activation = "softmax",
    include_background: bool = True,
    smooth: float = 1.0,
    batch: bool = False,
    weight: ClassWeight = None,
    ignore_index: int | None = None,
    reduction: Reduction = "mean",
    smooth_nr: float | None = None,
    smooth_dr: float | None = None,
    jaccard: bool = False,
) -> Tensor:
    """Tversky loss: Dice with separate weights for false positives (α) and false negatives (β).

    Formula, per sample and class (per class over the batch with ``batch=True``)::

        TP = Σ p·g,  FP = Σ p·(1 − g),  FN = Σ (1 − p)·g
        L  = 1 − (TP + smooth_nr) / (TP + α·FP + β·FN + smooth_dr)
        L  = 1 − (TP + smooth_nr) / (TP + 2α·FP + 2β·FN + smooth_dr)      (jaccard=True)

    ``α = β = ½`` gives Dice: ``tversky(α=½, β=½, smooth=s) == dice(smooth=2s)`` (equal at
    ``s = 0``), and with ``jaccard=True`` on both sides it gives the soft Jaccard (IoU) loss of
    ``dice(jaccard=True)`` in the same way: ``jaccard=True`` puts α and β on the Jaccard scale
    (``α + β = 1`` weighs FP and FN as IoU does, where they weigh as Dice does without it), the
    denominator change of MONAI's ``DiceLoss(jaccard=True)``. β > α favours recall (small
    structures). Unlike :func:`dice` there is no ``squared`` option (Tversky has no standard
    squared form). Soft (probability) targets are used as they are. Other options as in
    :func:`dice`.

    Args:
        logits (Tensor[N, C, *spatial]): raw scores.
        target (Tensor[N, *spatial] | Tensor[N, C, *spatial]): class indices, or a one-hot /
            soft map with values in [0, 1].
        alpha: weight of false positives (>= 0).
        beta: weight of false negatives (>= 0); ``alpha + beta`` must be > 0 (``α = β = 1`` is
            the Jaccard loss).
        activation, include_background, smooth, batch, weight: as in :func:`dice`.
        ignore_index, reduction, smooth_nr, smooth_dr: as in :func:`dice`.
        jaccard: double the weights of false positives and negatives (see above).

    Returns:
        Tensor: a scalar, or ``(N, C')`` / ``(C',)`` with ``reduction="none"``.

    Raises:
        TypeError, ValueError: as :func:`dice`; also negative ``alpha``/``beta`` or
            ``alpha + beta <= 0``.

    Reference:
        Salehi et al., "Tversky loss function for image segmentation using 3D fully
        convolutional deep networks", MLMI 2017.

    Example:
        >>> import torch
        >>> logits = torch.zeros(1, 1, 2, 2)                      # p = 0.5 everywhere
        >>> target = torch.tensor([[[1, 1], [0, 0]]])
        >>> float(tversky(logits, target, alpha=0.5, beta=0.5, activation="sigmoid", smooth=0.0))
        0.5
    """
    return _tversky_loss(
        "tversky",
        logits,
        target,
        alpha,
        beta,
        None,
        activation=activation,
        include_background=include_background,
        smooth=smooth,
        batch=batch,
        weight=weight,
        ignore_index=ignore_index,
        reduction=reduction,
        smooth_nr=smooth_nr,
        smooth_dr=smooth_dr,
        jaccard=jaccard,
    )


def focal_tversky(
    logits: Tensor,
    target: Tensor,
    alpha: float = 0.3,
    beta: float = 0.7,
    gamma: float = 0.75,
    *,
    activation: Activation = "softmax",
    include_background: bool = True,
    smooth: float = 1.0,
    batch: bool = False,
    weight: ClassWeight = None,
    ignore_index: int | None = None,
    reduction: Reduction = "mean",
) -> Tensor:
    """Focal Tversky loss: the Tversky loss raised to a power γ.

    Formula, per entry: ``L = (1 − TI)^γ`` with ``TI`` the Tversky index of :func:`tversky`.
    ``γ`` is the exponent itself: the paper writes ``(1 − TI)^(1/γ')`` and recommends
    ``γ' = 4/3``, which is the default ``gamma = 0.75`` here. ``γ < 1`` raises the loss and
    gradient of entries that are already well overlapped relative to :func:`tversky` (the
    paper's choice, which keeps training going as the overlap nears 1); ``γ > 1`` lowers them and
    focuses on poorly segmented entries; ``γ = 1`` gives :func:`tversky`. A perfect entry
    (``1 − TI = 0``) gives 0 with, by convention, a zero gradient (the derivative is infinite
    there for ``γ < 1``).

    Args:
        logits, target, alpha, beta: as in :func:`tversky`.
        gamma: exponent (> 0).
        activation, include_background, smooth, batch: as in :func:`tversky`.
        weight, ignore_index, reduction: as in :func:`tversky`.

    Returns:
        Tensor: a scalar, or ``(N, C')`` / ``(C',)`` with ``reduction="none"``.

    Raises:
        TypeError, ValueError: as :func:`tversky`; also ``gamma <= 0``.

    Reference:
        Abraham & Khan, "A Novel Focal Tversky Loss Function with Improved Attention U-Net for
        Lesion Segmentation", ISBI 2019.

    Example:
        >>> import torch
        >>> logits = torch.zeros(1, 1, 2, 2)
        >>> target = torch.tensor([[[1, 1], [0, 0]]])
        >>> kw = dict(alpha=0.5, beta=0.5, activation="sigmoid", smooth=0.0)
        >>> float(focal_tversky(logits, target, gamma=2.0, **kw))  # 0.5 ** 2
        0.25
    """
    return _tversky_loss(
        "focal_tversky",
        logits,
        target,
        alpha,
        beta,
        gamma,
        activation=activation,
        include_background=include_background,
        smooth=smooth,
        batch=batch,
        weight=weight,
        ignore_index=ignore_index,
        reduction=reduction,
    )


def ce_dice(
    logits: Tensor,
    target: Tensor,
    *,
    ce_weight: float = 1.0,
    dice_weight: float = 1.0,
    activation: Activation = "softmax",
    include_background: bool = True,
    smooth: float = 1.0,
    squared: bool = False,
    batch: bool = False,
    weight: ClassWeight = None,
    ignore_index: int | None = None,
) -> Tensor:
    """Cross-entropy plus soft Dice: voxel-wise calibration and region overlap together.

    Formula::

        L  = ce_weight · CE + dice_weight · Dice
        CE = Σ_voxels Σ_c −w_c·g_c·log p_c / Σ_valid voxels w_y      (softmax, class indices y)
        CE = Σ_voxels Σ_c −w_c·g_c·log p_c / number of voxels        (softmax, one-hot/soft map)
        CE = mean over valid voxels and channels of w_c·BCE(logit_c, g_c)  (sigmoid)

    ``Dice`` is :func:`dice` with the same options and ``reduction="mean"``. The softmax CE is
    :func:`~losskit.functional.cross_entropy` (and ``F.cross_entropy(logits, target,
    weight=weight, ignore_index=...)``) on the same target: class indices give the weighted mean
    (divided by the summed weights of the targets), a map is taken as probability targets, whose
    mean is over the voxels (as torch and MONAI's ``DiceCELoss``), so with class weights a one-hot
    map and the same labels as indices give different values; without weights they agree;
    ``include_background`` acts on the Dice term only (the cross-entropy needs every class).
    Both terms are means, so the result is a scalar (there is no ``reduction`` option). With
    no valid voxel the result is 0.0, connected to the graph.

    Args:
        logits (Tensor[N, C, *spatial]): raw scores.
        target (Tensor[N, *spatial] | Tensor[N, C, *spatial]): class indices or one-hot map.
        ce_weight: weight of the cross-entropy term (>= 0).
        dice_weight: weight of the Dice term (>= 0).
        activation, include_background, smooth, squared, batch, weight, ignore_index: as in
            :func:`dice`; ``weight`` weighs the classes in both terms.

    Returns:
        Tensor: a scalar.

    Raises:
        TypeError, ValueError: as :func:`dice`; also negative ``ce_weight``/``dice_weight``.

    Reference:
        Isensee et al., "nnU-Net: a self-configuring method for deep learning-based biomedical
        image segmentation", Nature Methods 2021 (the CE + Dice objective).

    Example:
        >>> import torch
        >>> logits = torch.zeros(1, 2, 2, 2)                     # p = 0.5 for both classes
        >>> target = torch.tensor([[[0, 1], [1, 0]]])
        >>> round(float(ce_dice(logits, target, dice_weight=0.0)), 4)  # log 2
        0.6931
    """
    fn = "ce_dice"
    wc = check_number(fn, "ce_weight", ce_weight, low=0.0)
    wd = check_number(fn, "dice_weight", dice_weight, low=0.0)
    smooth_value, w = _check_options(
        fn, activation=activation, smooth=smooth, weight=weight, ignore_index=ignore_index
    )
    m = _maps(fn, logits, target, activation, w, ignore_index)
    o = _overlap(m, include_background=include_background, squared=squared, batch=batch)
    dice_term = _finish(fn, _dice_complement(o, smooth_value), o, "mean", m.logits.dtype)
    total = wc * _cross_entropy(fn, m, activation) + wd * dice_term
    return total.to(logits.dtype)


# ----------------------------------------------------------------------------------------------
# Modules
# ----------------------------------------------------------------------------------------------


class _SegmentationLoss(nn.Module):
    """Stores and validates the options every segmentation loss shares."""

    weight: Tensor | None

    def __init__(
        self,
        fn: str,
        *,
        activation: Activation,
        include_background: bool,
        smooth: float,
        batch: bool,
        weight: ClassWeight,
        ignore_index: int | None,
    ) -> None:
        super().__init__()
        smooth_value, w = _check_options(
            fn, activation=activation, smooth=smooth, weight=weight, ignore_index=ignore_index
        )
        self.activation: Activation = activation
        self.include_background = include_background
        self.smooth = smooth_value
        self.batch = batch
        self.ignore_index = ignore_index
        self.register_buffer("weight", w)

    def _options(self) -> dict[str, Any]:
        return {
            "activation": self.activation,
            "include_background": self.include_background,
            "smooth": self.smooth,
            "batch": self.batch,
            "weight": self.weight,
            "ignore_index": self.ignore_index,
        }

    def _extra(self) -> dict[str, Any]:
        """Hyper-parameters of the subclass, shown first in ``repr``."""
        return {}

    def extra_repr(self) -> str:
        items = {**self._extra(), **self._options()}
        if self.weight is not None:
            items["weight"] = self.weight.tolist()
        return ", ".join(f"{k}={v!r}" for k, v in items.items())


@register(dice)
class DiceLoss(_SegmentationLoss):
    """Module form of :func:`dice`.

    Example:
        >>> import torch
        >>> loss = DiceLoss(activation="sigmoid")
        >>> empty = torch.zeros(1, 4, 4, dtype=torch.long)
        >>> round(float(loss(torch.full((1, 1, 4, 4), -30.0), empty)), 6)  # empty on empty
        0.0
    """

    def __init__(
        self,
        *,
        activation: Activation = "softmax",
        include_background: bool = True,
        smooth: float = 1.0,
        squared: bool = False,
        batch: bool = False,
        weight: ClassWeight = None,
        ignore_index: int | None = None,
        reduction: Reduction = "mean",
        jaccard: bool = False,
        smooth_nr: float | None = None,
        smooth_dr: float | None = None,
    ) -> None:
        super().__init__(
            "DiceLoss",
            activation=activation,
            include_background=include_background,
            smooth=smooth,
            batch=batch,
            weight=weight,
            ignore_index=ignore_index,
        )
        self.squared = squared
        self.reduction: Reduction = check_reduction("DiceLoss", reduction)
        self.jaccard = check_bool("DiceLoss", "jaccard", jaccard)
        _smoothing("DiceLoss", self.smooth, smooth_nr, smooth_dr)
        self.smooth_nr, self.smooth_dr = smooth_nr, smooth_dr

    def _extra(self) -> dict[str, Any]:
        return {
            "squared": self.squared,
            "reduction": self.reduction,
            "jaccard": self.jaccard,
            "smooth_nr": self.smooth_nr,
            "smooth_dr": self.smooth_dr,
        }

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return dice(logits, target, **self._options(), **self._extra())


@register(tversky)
class TverskyLoss(_SegmentationLoss):
    """Module form of :func:`tversky`."""

    def __init__(
        self,
        *,
        alpha: float = 0.3,
        beta: float = 0.7,
        activation: Activation = "softmax",
        include_background: bool = True,
        smooth: float = 1.0,
        batch: bool = False,
        weight: ClassWeight = None,
        ignore_index: int | None = None,
        reduction: Reduction = "mean",
        smooth_nr: float | None = None,
        smooth_dr: float | None = None,
        jaccard: bool = False,
    ) -> None:
        super().__init__(
            "TverskyLoss",
            activation=activation,
            include_background=include_background,
            smooth=smooth,
            batch=batch,
            weight=weight,
            ignore_index=ignore_index,
        )
        self.alpha, self.beta = _check_tversky("TverskyLoss", alpha, beta)
        self.reduction: Reduction = check_reduction("TverskyLoss", reduction)
        _smoothing("TverskyLoss", self.smooth, smooth_nr, smooth_dr)
        self.smooth_nr, self.smooth_dr = smooth_nr, smooth_dr
        self.jaccard = check_bool("TverskyLoss", "jaccard", jaccard)

    def _extra(self) -> dict[str, Any]:
        return {
            "alpha": self.alpha,
            "beta": self.beta,
            "reduction": self.reduction,
            "smooth_nr": self.smooth_nr,
            "smooth_dr": self.smooth_dr,
            "jaccard": self.jaccard,
        }

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return tversky(logits, target, **self._options(), **self._extra())


@register(focal_tversky)
class FocalTverskyLoss(_SegmentationLoss):
    """Module form of :func:`focal_tversky`."""

    def __init__(
        self,
        *,
        alpha: float = 0.3,
        beta: float = 0.7,
        gamma: float = 0.75,
        activation: Activation = "softmax",
        include_background: bool = True,
        smooth: float = 1.0,
        batch: bool = False,
        weight: ClassWeight = None,
        ignore_index: int | None = None,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(
            "FocalTverskyLoss",
            activation=activation,
            include_background=include_background,
            smooth=smooth,
            batch=batch,
            weight=weight,
            ignore_index=ignore_index,
        )
        self.alpha, self.beta = _check_tversky("FocalTverskyLoss", alpha, beta)
        self.gamma = check_number("FocalTverskyLoss", "gamma", gamma, low=0.0, low_open=True)
        self.reduction: Reduction = check_reduction("FocalTverskyLoss", reduction)

    def _extra(self) -> dict[str, Any]:
        return {
            "alpha": self.alpha,
            "beta": self.beta,
            "gamma": self.gamma,
            "reduction": self.reduction,
        }

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return focal_tversky(logits, target, **self._options(), **self._extra())


@register(ce_dice)
class CEDiceLoss(_SegmentationLoss):
    """Module form of :func:`ce_dice`."""

    def __init__(
        self,
        *,
        ce_weight: float = 1.0,
        dice_weight: float = 1.0,
        activation: Activation = "softmax",
        include_background: bool = True,
        smooth: float = 1.0,
        squared: bool = False,
        batch: bool = False,
        weight: ClassWeight = None,
        ignore_index: int | None = None,
    ) -> None:
        super().__init__(
            "CEDiceLoss",
            activation=activation,
            include_background=include_background,
            smooth=smooth,
            batch=batch,
            weight=weight,
            ignore_index=ignore_index,
        )
        self.ce_weight = check_number("CEDiceLoss", "ce_weight", ce_weight, low=0.0)
        self.dice_weight = check_number("CEDiceLoss", "dice_weight", dice_weight, low=0.0)
        self.squared = squared

    def _extra(self) -> dict[str, Any]:
        return {
            "ce_weight": self.ce_weight,
            "dice_weight": self.dice_weight,
            "squared": self.squared,
        }

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return ce_dice(logits, target, **self._options(), **self._extra())
