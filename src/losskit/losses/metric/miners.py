"""Online triplet mining from a distance matrix and labels, vectorised with masks.

Each miner looks at a ``(B, B)`` distance matrix (smaller = closer) of a batch with class
``labels`` and returns **indices and validity masks**, chosen without gradient; the loss then
gathers the chosen distances from the differentiable matrix. No miner loops over anchors in
Python, and none synchronises with the device (no data-dependent shapes).

- :func:`batch_hard_triplets` — per anchor, the farthest positive and the closest negative
  (Hermans et al., 2017).
- :func:`semi_hard_negatives` — per (anchor, positive) pair, the closest negative farther than the
  positive, else the farthest negative (Schroff et al., 2015, as in TensorFlow's
  ``triplet_semihard_loss``); found by sorting and ``searchsorted``, in ``O(B² log B)``.
- :func:`batch_all_triplets` — the mask of every valid (anchor, positive, negative) triplet.
- :func:`multi_similarity_pairs` — the informative pairs of Multi-Similarity mining (Wang et
  al., 2019), from a similarity matrix (larger = closer).
"""

from __future__ import annotations

import torch
from torch import Tensor

from losskit._checks import check_floating, check_labels, check_ndim, check_shape

__all__ = [
    "batch_all_triplets",
    "batch_hard_triplets",
    "label_masks",
    "multi_similarity_pairs",
    "semi_hard_negatives",
]


def check_embeddings_and_labels(
    fn: str, embeddings: object, labels: object
) -> tuple[Tensor, Tensor]:
    """``embeddings`` a floating ``(B, D)`` tensor and ``labels`` ``(B,)`` integer class indices."""
    emb = check_ndim(fn, "embeddings", check_floating(fn, "embeddings", embeddings), 2, "(B, D)")
    lab = check_labels(fn, "labels", labels)
    check_shape(fn, "labels", lab, (emb.shape[0],), f"matching embeddings (B={emb.shape[0]})")
    return emb, lab


def _check_distances(fn: str, distances: object, labels: object) -> tuple[Tensor, Tensor]:
    """``distances`` a floating ``(B, B)`` matrix over the ``B`` integer ``labels``."""
    lab = check_ndim(fn, "labels", check_labels(fn, "labels", labels), 1, "(B,)")
    b = lab.shape[0]
    d = check_floating(fn, "distances", distances)
    check_shape(fn, "distances", d, (b, b), f"matching labels (B={b})")
    return d, lab


def label_masks(labels: Tensor) -> tuple[Tensor, Tensor]:
    """Boolean masks of the positive and negative pairs of a batch.

    ``positive[i, j] = labels[i] == labels[j] and i != j``;
    ``negative[i, j] = labels[i] != labels[j]``.

    Args:
        labels (Tensor[B]): integer class labels.

    Returns:
        tuple[Tensor[B, B], Tensor[B, B]]: ``(positive, negative)``.

    Example:
        >>> pos, neg = label_masks(torch.tensor([0, 0, 1]))
        >>> pos.int().tolist(), neg.int().tolist()
        ([[0, 1, 0], [1, 0, 0], [0, 0, 0]], [[0, 0, 1], [0, 0, 1], [1, 1, 0]])
    """
    same = labels.unsqueeze(0) == labels.unsqueeze(1)
    eye = torch.eye(labels.shape[0], dtype=torch.bool, device=labels.device)
    return same & ~eye, ~same


def batch_hard_triplets(distances: Tensor, labels: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Batch-hard mining: each anchor's farthest positive and closest negative.

    ``p(a) = argmax_{p: y_p = y_a, p ≠ a} D[a, p]``, ``n(a) = argmin_{n: y_n ≠ y_a} D[a, n]``.

    Args:
        distances (Tensor[B, B]): pairwise distances (not differentiated here).
        labels (Tensor[B]): integer class labels.

    Returns:
        tuple[Tensor[B], Tensor[B], Tensor[B]]: ``(positive_index, negative_index, valid)``;
        ``valid[a]`` is ``True`` where the anchor has both a positive and a negative (the indices
        of other anchors are arbitrary).

    Reference:
        Hermans, Beyer, Leibe, "In Defense of the Triplet Loss for Person Re-Identification", 2017.

    Example:
        >>> d = torch.tensor([[0.0, 1.0, 2.0], [1.0, 0.0, 3.0], [2.0, 3.0, 0.0]])
        >>> p, n, valid = batch_hard_triplets(d, torch.tensor([0, 0, 1]))
        >>> p.tolist(), n.tolist(), valid.tolist()
        ([1, 0, 0], [2, 2, 0], [True, True, False])
    """
    distances, labels = _check_distances("batch_hard_triplets", distances, labels)
    positive, negative = label_masks(labels)
    d = distances.detach()
    if d.shape[1] == 0:  # an empty batch: nothing to mine (argmax needs a non-empty row)
        none = labels.new_zeros((0,), dtype=torch.long)
        return none, none, positive.new_zeros((0,))
    positive_index = d.masked_fill(~positive, -torch.inf).argmax(dim=1)
    negative_index = d.masked_fill(~negative, torch.inf).argmin(dim=1)
    valid = positive.any(dim=1) & negative.any(dim=1)
    return positive_index, negative_index, valid


def semi_hard_negatives(distances: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """Semi-hard mining: a negative for every (anchor, positive) pair.

    ``n(a, p) = argmin_{n: y_n ≠ y_a, D[a, n] > D[a, p]} D[a, n]`` — the closest negative farther
    than the positive; where no negative is farther, the farthest negative (the one closest to
    being semi-hard), as TensorFlow's ``triplet_semihard_loss`` does.

    Args:
        distances (Tensor[B, B]): pairwise distances (not differentiated here).
        labels (Tensor[B]): integer class labels.

    Returns:
        tuple[Tensor[B, B], Tensor[B, B]]: ``(negative_index, valid)``; ``negative_index[a, p]``
        is the negative mined for the pair, ``valid[a, p]`` is ``True`` where ``p`` is a positive
        of ``a`` and ``a`` has a negative.

    Reference:
        Schroff, Kalenichenko, Philbin, "FaceNet: A Unified Embedding for Face Recognition and
        Clustering", CVPR 2015.

    Example:
        >>> d = torch.tensor([[0.0, 1.0, 2.0], [1.0, 0.0, 0.5], [2.0, 0.5, 0.0]])
        >>> n, valid = semi_hard_negatives(d, torch.tensor([0, 0, 1]))
        >>> n[0, 1].item(), n[1, 0].item(), valid.int().tolist()
        (2, 2, [[0, 1, 0], [1, 0, 0], [0, 0, 0]])
    """
    distances, labels = _check_distances("semi_hard_negatives", distances, labels)
    positive, negative = label_masks(labels)
    d = distances.detach()
    # Each anchor's negatives in increasing distance, the non-negatives pushed to the end.
    sorted_d, order = d.masked_fill(~negative, torch.inf).sort(dim=1)
    count = negative.sum(dim=1, keepdim=True)
    # First negative strictly farther than D[a, p]; past the last one, the farthest negative.
    rank = torch.searchsorted(sorted_d, d, right=True)
    rank = torch.minimum(rank, (count - 1).clamp_min(0))
    negative_index = order.gather(1, rank)
    valid = positive & (count > 0)
    return negative_index, valid


def batch_all_triplets(labels: Tensor) -> Tensor:
    """Mask of every valid triplet: ``T[a, p, n] = (y_p = y_a, p ≠ a) and y_n ≠ y_a``.

    Args:
        labels (Tensor[B]): integer class labels.

    Returns:
        Tensor[B, B, B]: boolean mask indexed ``(anchor, positive, negative)`` (``B³`` entries).

    Example:
        >>> batch_all_triplets(torch.tensor([0, 0, 1])).nonzero().tolist()
        [[0, 1, 2], [1, 0, 2]]
    """
    positive, negative = label_masks(labels)
    return positive.unsqueeze(2) & negative.unsqueeze(1)


def multi_similarity_pairs(
    similarities: Tensor, positive: Tensor, negative: Tensor, epsilon: float = 0.1
) -> tuple[Tensor, Tensor]:
    """Multi-Similarity mining: keep the positives and negatives that are hard given the other.

    For an anchor ``a`` with similarities ``S[a, ·]`` (larger = closer), a positive ``p`` is
    kept when ``S[a, p] − ε < max_{n} S[a, n]`` and a negative ``n`` when
    ``S[a, n] + ε > min_{p} S[a, p]`` (over the anchor's candidate negatives / positives). An
    anchor without negatives keeps no positive, one without positives no negative. This is
    pytorch-metric-learning's ``MultiSimilarityMiner(epsilon)``, as masks rather than indices.

    Args:
        similarities (Tensor[B, M]): anchor-reference similarities (not differentiated here).
        positive (Tensor[B, M]): bool mask of the candidate positive pairs.
        negative (Tensor[B, M]): bool mask of the candidate negative pairs.
        epsilon: the margin ``ε ≥ 0``.

    Returns:
        tuple[Tensor[B, M], Tensor[B, M]]: the kept ``(positive, negative)`` masks.

    Reference:
        Wang et al., "Multi-Similarity Loss with General Pair Weighting for Deep Metric
        Learning", CVPR 2019.

    Example:
        >>> s = torch.tensor([[0.9, 0.3, 0.5, 0.1]])
        >>> pos = torch.tensor([[True, True, False, False]])
        >>> [m.int().tolist() for m in multi_similarity_pairs(s, pos, ~pos, epsilon=0.1)]
        [[[0, 1, 0, 0]], [[0, 0, 1, 0]]]
    """
    s = similarities.detach()
    if s.shape[1] == 0:  # no reference: nothing to keep (amax needs a non-empty row)
        return positive, negative
    hardest_negative = s.masked_fill(~negative, -torch.inf).amax(dim=1, keepdim=True)
    easiest_positive = s.masked_fill(~positive, torch.inf).amin(dim=1, keepdim=True)
    return positive & (s - epsilon < hardest_negative), negative & (s + epsilon > easiest_positive)
