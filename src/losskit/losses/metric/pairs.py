"""Pair and triplet losses: contrastive, triplet, and triplet with online mining.

Distances are Euclidean on the embeddings as given (no normalisation unless asked), computed in
float32 or wider under half precision, with a zero (sub)gradient at zero distance, never ``NaN``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from losskit._checks import (
    check_bool,
    check_choice,
    check_floating,
    check_ndim,
    check_number,
    check_same_shape,
    check_shape,
    check_tensor,
    check_values,
)
from losskit._reduce import Reduction, check_reduction, reduce, upcast
from losskit._scaled import l2_normalize, pow2_scale, scaled_vector_norm
from losskit.distributed import all_gather
from losskit.losses.metric.distances import pairwise_euclidean
from losskit.losses.metric.miners import (
    batch_all_triplets,
    batch_hard_triplets,
    check_embeddings_and_labels,
    semi_hard_negatives,
)
from losskit.registry import register

__all__ = [
    "ContrastiveLoss",
    "OnlineTripletLoss",
    "TripletLoss",
    "contrastive",
    "online_triplet",
    "triplet",
]

MINING: tuple[str, ...] = ("batch_hard", "semi_hard", "batch_all")


def _check_margin(fn: str, margin: object) -> float:
    return check_number(fn, "margin", margin, low=0.0)


def _check_p(fn: str, p: object) -> float:
    return check_number(fn, "p", p, low=0.0, low_open=True)


def _paired_distance(a: Tensor, b: Tensor, p: float, squared: bool) -> Tensor:
    """``||a_i - b_i||_p`` per row (squared if asked); its gradient at a zero distance is 0."""
    d = scaled_vector_norm(a - b, ord=p, dim=1)
    return d.pow(2) if squared else d


def contrastive(
    x1: Tensor,
    x2: Tensor,
    similar: Tensor,
    margin: float = 1.0,
    *,
    reduction: Reduction = "mean",
) -> Tensor:
    """Contrastive loss of embedding pairs: pull similar pairs together, push others past a margin.

    ``L_i = y_i·d_i² + (1 - y_i)·max(0, m - d_i)²`` with ``d_i = ||x1_i - x2_i||₂`` (no factor
    ½; pytorch-metric-learning's ``ContrastiveLoss`` uses unsquared hinges instead).

    Args:
        x1 (Tensor[B, D]): first embeddings of each pair.
        x2 (Tensor[B, D]): second embeddings.
        similar (Tensor[B]): ``1``/``True`` for a similar pair, ``0``/``False`` otherwise (floats
            in ``[0, 1]`` weigh the two terms).
        margin: ``m >= 0``, the distance dissimilar pairs are pushed beyond.
        reduction: ``"mean"`` (over pairs), ``"sum"`` or ``"none"``.

    Returns:
        Tensor: the reduced loss, or ``Tensor[B]`` with ``"none"``; dtype of ``x1``.

    Raises:
        TypeError: ``x1`` / ``x2`` not floating point, ``similar`` not a tensor.
        ValueError: ``x1`` not 2-D, shapes that do not match, ``similar`` outside ``[0, 1]``,
            ``margin < 0``, bad ``reduction``.

    Reference:
        Hadsell, Chopra, LeCun, "Dimensionality Reduction by Learning an Invariant Mapping",
        CVPR 2006.

    Example:
        >>> x1 = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
        >>> x2 = torch.tensor([[0.6, 0.8], [0.3, 0.4]])
        >>> contrastive(x1, x2, torch.tensor([1, 0]), margin=1.0, reduction="none")
        tensor([1.0000, 0.2500])
    """
    fn = "contrastive"
    x1 = check_ndim(fn, "x1", check_floating(fn, "x1", x1), 2, "(B, D)")
    check_same_shape(fn, "x2", check_floating(fn, "x2", x2), "x1", x1)
    batch = x1.shape[0]
    check_shape(fn, "similar", check_tensor(fn, "similar", similar), (batch,), f"(B={batch})")
    m = _check_margin(fn, margin)
    check_reduction(fn, reduction)
    d = _paired_distance(upcast(x1), upcast(x2), 2.0, False)
    y = check_values(fn, "similar", similar.to(d.dtype), low=0.0, high=1.0)
    loss = y * d.pow(2) + (1.0 - y) * F.relu(m - d).pow(2)
    return reduce(loss, reduction, fn=fn, dtype=x1.dtype)


def triplet(
    anchor: Tensor,
    positive: Tensor,
    negative: Tensor,
    margin: float = 1.0,
    p: float = 2.0,
    squared: bool = False,
    *,
    reduction: Reduction = "mean",
) -> Tensor:
    """Triplet margin loss of explicit (anchor, positive, negative) triplets.

    ``L_i = max(0, d(a_i, p_i) - d(a_i, n_i) + m)`` with ``d(u, v) = ||u - v||_p`` (squared when
    ``squared=True``). With ``squared=False`` it equals ``torch.nn.TripletMarginLoss(margin, p,
    eps=0)``; PyTorch's default ``eps=1e-6`` adds ``eps`` to every difference, which moves values by
    ``O(eps)``. The gradient at a zero distance is ``0`` (no ``eps`` needed).

    Args:
        anchor (Tensor[B, D]): anchor embeddings.
        positive (Tensor[B, D]): embeddings of the anchors' class.
        negative (Tensor[B, D]): embeddings of other classes.
        margin: ``m >= 0``.
        p: the norm's order, ``p > 0``.
        squared: use ``d²`` instead of ``d``.
        reduction: ``"mean"`` (over triplets), ``"sum"`` or ``"none"``.

    Returns:
        Tensor: the reduced loss, or ``Tensor[B]`` with ``"none"``; dtype of ``anchor``.

    Raises:
        TypeError: an input is not floating point, ``squared`` is not a bool.
        ValueError: ``anchor`` not 2-D, shapes that differ, ``margin < 0``, ``p <= 0``, bad
            ``reduction``.

    Reference:
        Schroff, Kalenichenko, Philbin, "FaceNet: A Unified Embedding for Face Recognition and
        Clustering", CVPR 2015.

    Example:
        >>> a = torch.zeros(1, 2)
        >>> triplet(a, torch.tensor([[3.0, 4.0]]), torch.tensor([[0.0, 5.5]]), margin=1.0)
        tensor(0.5000)
    """
    fn = "triplet"
    anchor = check_ndim(fn, "anchor", check_floating(fn, "anchor", anchor), 2, "(B, D)")
    check_same_shape(fn, "positive", check_floating(fn, "positive", positive), "anchor", anchor)
    check_same_shape(fn, "negative", check_floating(fn, "negative", negative), "anchor", anchor)
    m, order = _check_margin(fn, margin), _check_p(fn, p)
    check_bool(fn, "squared", squared)
    check_reduction(fn, reduction)
    a = upcast(anchor)
    d_ap = _paired_distance(a, upcast(positive), order, squared)
    d_an = _paired_distance(a, upcast(negative), order, squared)
    loss = F.relu(d_ap - d_an + m)
    return reduce(loss, reduction, fn=fn, dtype=anchor.dtype)


def online_triplet(
    embeddings: Tensor,
    labels: Tensor,
    margin: float = 1.0,
    mining: str = "batch_hard",
    *,
    squared: bool = False,
    normalize: bool = False,
    reduction: Reduction = "mean",
    gather_distributed: bool = False,
) -> Tensor:
    """Triplet loss with triplets mined online from a labelled batch (vectorised, no loops).

    With ``D`` the pairwise Euclidean distances of the batch (squared when ``squared``, on
    L2-normalised embeddings when ``normalize``) and ``[·]₊ = max(0, ·)``:

    - ``"batch_hard"``: ``L_a = [D[a, p(a)] - D[a, n(a)] + m]₊`` with the farthest positive and the
      closest negative; ``"mean"`` averages over the anchors that have both (``"none"``:
      ``Tensor[B]``, zero for the others).
    - ``"semi_hard"`` (FaceNet): ``L_ap = [D[a, p] - D[a, n(a, p)] + m]₊`` for every positive pair,
      with the closest negative farther than ``p`` (the farthest negative when none is);
      ``"mean"`` averages over the positive pairs whose anchor has a negative (``"none"``:
      ``Tensor[B, B]`` indexed ``(a, p)``).
    - ``"batch_all"``: ``L_apn = [D[a, p] - D[a, n] + m]₊`` for every valid triplet; ``"mean"``
      averages over the triplets with a **positive** loss (``"none"``: ``Tensor[B, B, B]``; this
      needs ``B³`` memory).

    A batch with nothing to mine (one class only, no two samples of a class, or no sample at all)
    gives ``0.0`` connected to the graph in every mining mode.

    Args:
        embeddings (Tensor[B, D]): embeddings.
        labels (Tensor[B]): integer class labels.
        margin: ``m >= 0``.
        mining: ``"batch_hard"``, ``"semi_hard"`` or ``"batch_all"``.
        squared: use squared Euclidean distances.
        normalize: L2-normalise the embeddings first.
        reduction: ``"mean"`` (as above), ``"sum"`` or ``"none"``.
        gather_distributed: compute the loss of the global batch (every rank's rows, in rank
            order) on every rank, see :mod:`losskit.distributed`; a no-op without a process
            group.

    Returns:
        Tensor: the reduced loss, or the per-anchor / per-pair / per-triplet losses; dtype of
        ``embeddings``.

    Raises:
        TypeError: ``embeddings`` not floating point, ``labels`` not integers, a flag not a bool.
        ValueError: ``embeddings`` not 2-D, ``labels`` not ``(B,)``, ``margin < 0``, unknown
            ``mining`` or ``reduction``.

    Reference:
        Hermans, Beyer, Leibe, "In Defense of the Triplet Loss for Person Re-Identification",
        2017 (batch-hard, batch-all); Schroff et al., "FaceNet", CVPR 2015 (semi-hard).

    Example:
        >>> x = torch.tensor([[0.0, 0.0], [0.0, 1.0], [0.0, 1.5]])
        >>> online_triplet(x, torch.tensor([0, 0, 1]), margin=1.0)
        tensor(1.)
    """
    fn = "online_triplet"
    embeddings, labels = check_embeddings_and_labels(fn, embeddings, labels)
    m = _check_margin(fn, margin)
    strategy = check_choice(fn, "mining", mining, MINING)
    check_bool(fn, "squared", squared)
    check_bool(fn, "normalize", normalize)
    check_reduction(fn, reduction)
    if check_bool(fn, "gather_distributed", gather_distributed):
        embeddings, labels = all_gather(embeddings), all_gather(labels)

    x = upcast(embeddings)
    if normalize:
        x = l2_normalize(x, dim=1)
    loss, count = _mined_triplet_losses(x, labels, m, strategy, squared)
    return reduce(loss, reduction, fn=fn, denominator=count, dtype=embeddings.dtype)


def _mined_triplet_losses(
    x: Tensor, labels: Tensor, m: float, strategy: str, squared: bool
) -> tuple[Tensor, Tensor]:
    """The triplet losses of one mining mode and the count ``"mean"`` divides by."""
    zero = x.new_zeros(())
    if strategy == "batch_hard":
        # Mine on squared distances without gradient (the root does not change the argmax), of
        # the rows divided by a power of two (the same order, without overflow), then
        # differentiate only the 2B chosen distances, from the embeddings directly.
        with torch.no_grad():
            pos_idx, neg_idx, valid = batch_hard_triplets(
                pairwise_euclidean(x / pow2_scale(x), squared=True), labels
            )
        d_ap = _paired_distance(x, x[pos_idx], 2.0, squared)
        d_an = _paired_distance(x, x[neg_idx], 2.0, squared)
        loss = torch.where(valid, F.relu(d_ap - d_an + m), zero)
        count = valid.sum()
    elif strategy == "semi_hard":
        dist = pairwise_euclidean(x, squared=squared)
        neg_idx, valid = semi_hard_negatives(dist, labels)
        loss = torch.where(valid, F.relu(dist - dist.gather(1, neg_idx) + m), zero)
        count = valid.sum()
    else:  # batch_all
        dist = pairwise_euclidean(x, squared=squared)
        valid = batch_all_triplets(labels)
        loss = torch.where(valid, F.relu(dist.unsqueeze(2) - dist.unsqueeze(1) + m), zero)
        count = (loss > 0).sum()
    return loss, count


@register(contrastive)
class ContrastiveLoss(nn.Module):
    """Contrastive loss of embedding pairs (module form of :func:`contrastive`).

    Args:
        margin: ``m >= 0``.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.

    Example:
        >>> loss = ContrastiveLoss(margin=2.0)
        >>> float(loss(torch.zeros(2, 3), torch.ones(2, 3), torch.tensor([1, 1])))
        3.0
    """

    def __init__(self, *, margin: float = 1.0, reduction: Reduction = "mean") -> None:
        super().__init__()
        self.margin = _check_margin(type(self).__name__, margin)
        self.reduction: Reduction = check_reduction(type(self).__name__, reduction)

    def forward(self, x1: Tensor, x2: Tensor, similar: Tensor) -> Tensor:
        return contrastive(x1, x2, similar, self.margin, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"margin={self.margin}, reduction={self.reduction!r}"


@register(triplet)
class TripletLoss(nn.Module):
    """Triplet margin loss of explicit triplets (module form of :func:`triplet`).

    Args:
        margin: ``m >= 0``.
        p: the norm's order, ``p > 0``.
        squared: use squared distances.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.

    Example:
        >>> loss = TripletLoss(margin=1.0)
        >>> a = torch.zeros(1, 2)
        >>> float(loss(a, a, torch.tensor([[0.0, 0.25]])))
        0.75
    """

    def __init__(
        self,
        *,
        margin: float = 1.0,
        p: float = 2.0,
        squared: bool = False,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__()
        name = type(self).__name__
        self.margin = _check_margin(name, margin)
        self.p = _check_p(name, p)
        self.squared = check_bool(name, "squared", squared)
        self.reduction: Reduction = check_reduction(name, reduction)

    def forward(self, anchor: Tensor, positive: Tensor, negative: Tensor) -> Tensor:
        return triplet(
            anchor, positive, negative, self.margin, self.p, self.squared, reduction=self.reduction
        )

    def extra_repr(self) -> str:
        return (
            f"margin={self.margin}, p={self.p}, squared={self.squared}, "
            f"reduction={self.reduction!r}"
        )


@register(online_triplet)
class OnlineTripletLoss(nn.Module):
    """Triplet loss with online mining in the batch (module form of :func:`online_triplet`).

    Args:
        margin: ``m >= 0``.
        mining: ``"batch_hard"``, ``"semi_hard"`` or ``"batch_all"``.
        squared: use squared Euclidean distances.
        normalize: L2-normalise the embeddings first.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
        gather_distributed: the loss of the global batch (see :func:`online_triplet`).

    Example:
        >>> loss = OnlineTripletLoss(margin=0.5, mining="batch_all")
        >>> x = torch.tensor([[0.0], [0.1], [0.2]])
        >>> round(float(loss(x, torch.tensor([0, 0, 1]))), 4)
        0.45
    """

    def __init__(
        self,
        *,
        margin: float = 1.0,
        mining: str = "batch_hard",
        squared: bool = False,
        normalize: bool = False,
        reduction: Reduction = "mean",
        gather_distributed: bool = False,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        self.gather_distributed = check_bool(name, "gather_distributed", gather_distributed)
        self.margin = _check_margin(name, margin)
        self.mining = check_choice(name, "mining", mining, MINING)
        self.squared = check_bool(name, "squared", squared)
        self.normalize = check_bool(name, "normalize", normalize)
        self.reduction: Reduction = check_reduction(name, reduction)

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        return online_triplet(
            embeddings,
            labels,
            self.margin,
            self.mining,
            squared=self.squared,
            normalize=self.normalize,
            reduction=self.reduction,
            gather_distributed=self.gather_distributed,
        )

    def extra_repr(self) -> str:
        return (
            f"margin={self.margin}, mining={self.mining!r}, squared={self.squared}, "
            f"normalize={self.normalize}, reduction={self.reduction!r}, "
            f"gather_distributed={self.gather_distributed}"
        )
