"""Retrieval and clustering metrics of embeddings: Recall@K, precision@1, R-precision, MAP@R,
MRR, NMI and AMI.

Neighbours are ranked by cosine similarity, exactly (no approximate index), on the embeddings'
device, walking the queries in chunks: at most ``chunk_size × M`` similarities exist at a time
(``M`` references), so 10⁵–10⁶ embeddings fit in bounded memory, and each chunk keeps only its
top-``k`` neighbours. No faiss is needed.

Conventions (those of pytorch-metric-learning's ``AccuracyCalculator``; Musgrave et al., "A
Metric Learning Reality Check", ECCV 2020):

- Without ``reference`` the queries search among themselves and each query's own row is left
  out of its neighbours (``AccuracyCalculator``'s query-in-reference case); ``include_self=True``
  keeps it.
- ``R`` of a query is the number of references of its label (itself excluded). A query with
  ``R = 0`` — a "lone" query label — is left out of every k-NN metric; a metric is ``nan``
  when no query has a positive.
- ``recall_at_{k}``: the fraction of queries with a same-label reference among their ``k``
  nearest (the metric-learning Recall@K; ``precision_at_1`` is Recall@1).
  ``r_precision``: the same-label fraction of the ``R`` nearest. ``map_at_r``:
  ``1/R Σ_{i≤R} P(i)·rel(i)``. ``mrr``: the mean of ``1/rank`` of the first same-label
  reference, ranked over all references (``AccuracyCalculator(k=None)``; with its default
  ``k="max_bin_count"`` it counts 0 for a query whose first positive ranks beyond ``max R``).
- ``nmi`` / ``ami``: torch k-means (Lloyd, ``k`` = number of query labels, seeded k-means++
  start, chunked) on the L2-normalised queries against their labels, scored by scikit-learn.
  ``AccuracyCalculator`` clusters the raw queries with faiss, so these two agree with it only up
  to the clustering itself (see :func:`clustering_metrics`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from losskit._checks import (
    check_bool,
    check_floating,
    check_int,
    check_labels,
    check_ndim,
    check_shape,
    fail,
    shape_str,
)
from losskit._kmeans import ITERATIONS as KMEANS_ITERATIONS
from losskit._kmeans import kmeans
from losskit._reduce import upcast
from losskit._scaled import l2_normalize

__all__ = ["clustering_metrics", "retrieval_metrics"]

SIMILARITY_BUDGET = 1 << 24  # similarities held at once by default (64 MiB in float32)
_FN = "retrieval_metrics"


def _check_embeddings(
    fn: str, arg: str, x: object, labels_arg: str, labels: object
) -> tuple[Tensor, Tensor]:
    emb = check_ndim(fn, arg, check_floating(fn, arg, x), 2, "(N, D)")
    lab = check_labels(fn, labels_arg, labels)
    check_shape(fn, labels_arg, lab, (emb.shape[0],), f"matching {arg} (N={emb.shape[0]})")
    if emb.shape[0] == 0:
        fail(fn, arg, "to hold at least one embedding", shape_str(emb.shape))
    return emb, lab.to(emb.device)


def _check_ks(k: object) -> tuple[int, ...]:
    ks = (k,) if isinstance(k, int) else k
    if not isinstance(ks, Sequence) or not ks:
        fail(_FN, "k", "an integer or a non-empty sequence of integers", repr(k), kind=TypeError)
    return tuple(check_int(_FN, "k", v, low=1) for v in ks)


def _neighbour_counts(query_labels: Tensor, reference_labels: Tensor, exclude: bool) -> Tensor:
    """``R`` of each query: the references of its label, minus itself when excluded."""
    _, ids = torch.unique(torch.cat([query_labels, reference_labels]), return_inverse=True)
    q_ids, r_ids = ids[: len(query_labels)], ids[len(query_labels) :]
    counts = torch.bincount(r_ids, minlength=int(ids.max()) + 1)
    return counts[q_ids] - int(exclude)


def retrieval_metrics(
    query: Tensor,
    query_labels: Tensor,
    reference: Tensor | None = None,
    reference_labels: Tensor | None = None,
    k: int | Sequence[int] = (1, 2, 4, 8),
    *,
    include_self: bool = False,
    cluster: bool = True,
    chunk_size: int | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """Retrieval metrics of embeddings by exact cosine k-NN, chunked over the queries.

    Each query ranks the references by cosine similarity (without ``reference``: the other
    queries). See the module notes for the definitions and ``AccuracyCalculator``'s conventions
    they follow (self excluded, lone query labels left out).

    Args:
        query (Tensor[N, D]): query embeddings; the search runs on their device.
        query_labels (Tensor[N]): integer labels.
        reference (Tensor[M, D], optional): the searched embeddings (default: the queries).
        reference_labels (Tensor[M], optional): their labels (required with ``reference``).
        k (int | Sequence[int]): the ``K`` of each Recall@K.
        include_self (bool): without ``reference``, keep each query among its own neighbours.
        cluster (bool): also compute ``nmi`` and ``ami`` (:func:`clustering_metrics`).
        chunk_size (int, optional): queries per similarity block (default: so that a block
            holds at most 2²⁴ similarities).
        seed (int): the k-means seed.

    Returns:
        dict[str, float]: ``recall_at_{k}`` for each ``k``, ``precision_at_1``,
        ``r_precision``, ``map_at_r``, ``mrr``, and with ``cluster`` ``nmi`` and ``ami``.

    Raises:
        TypeError: non-floating embeddings, non-integer labels, ``k`` or ``chunk_size``.
        ValueError: wrong shapes, empty inputs, ``reference`` without its labels (or labels
            without it), ``include_self`` with a ``reference``, ``k`` or ``chunk_size`` < 1.

    Example:
        >>> x = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
        >>> m = retrieval_metrics(x, torch.tensor([0, 0, 1, 1]), k=1, cluster=False)
        >>> m["recall_at_1"], m["map_at_r"], m["mrr"]
        (1.0, 1.0, 1.0)
    """
    q, q_labels = _check_embeddings(_FN, "query", query, "query_labels", query_labels)
    ks = _check_ks(k)
    check_bool(_FN, "include_self", include_self)
    check_bool(_FN, "cluster", cluster)
    check_int(_FN, "seed", seed)
    if reference is None:
        if reference_labels is not None:
            fail(_FN, "reference", "with `reference_labels`", "None")
        r, r_labels, exclude = q, q_labels, not include_self
    else:
        if reference_labels is None:
            fail(_FN, "reference_labels", "with `reference`", "None")
        if include_self:
            fail(_FN, "include_self", "False with a separate `reference`", "True")
        r, r_labels = _check_embeddings(_FN, "reference", reference, "reference_labels",
                                        reference_labels)  # fmt: skip
        if r.shape[1] != q.shape[1]:
            dim = q.shape[1]
            want = f"of shape (M, {dim}) matching query (D={dim})"
            fail(_FN, "reference", want, shape_str(r.shape))
        r, r_labels, exclude = r.to(q.device), r_labels.to(q.device), False
    chunk = (
        max(1, SIMILARITY_BUDGET // r.shape[0])
        if chunk_size is None
        else check_int(_FN, "chunk_size", chunk_size, low=1)
    )
    with torch.no_grad():
        out = _knn_metrics(q, q_labels, r, r_labels, ks, exclude, chunk)
    if cluster:
        out.update(clustering_metrics(q, q_labels, seed=seed))
    return out


def _knn_metrics(
    query: Tensor,
    query_labels: Tensor,
    reference: Tensor,
    reference_labels: Tensor,
    ks: tuple[int, ...],
    exclude_self: bool,
    chunk: int,
) -> dict[str, float]:
    """The k-NN metrics, summed per chunk on the device and read back once."""
    qn = l2_normalize(upcast(query), dim=1)
    rn = qn if reference is query else l2_normalize(upcast(reference).to(qn.dtype), dim=1)
    r = _neighbour_counts(query_labels, reference_labels, exclude_self)
    valid = r > 0
    candidates = reference.shape[0] - int(exclude_self)
    longest = int(r[valid].max()) if bool(valid.any()) else 1
    k_max = max(1, min(max(max(ks), longest), candidates))
    hit_ks = tuple(dict.fromkeys((1, *ks)))  # precision@1 is Recall@1
    names = [f"recall_at_{k}" for k in hit_ks] + ["r_precision", "map_at_r", "mrr"]
    sums = torch.zeros(len(names), dtype=torch.float64, device=query.device)
    rank = torch.arange(1, k_max + 1, device=query.device)
    for start in range(0, query.shape[0], chunk):
        rows = slice(start, start + chunk)
        sims = qn[rows] @ rn.T
        labels = query_labels[rows]
        if exclude_self:
            own = torch.arange(start, start + sims.shape[0], device=sims.device)
            sims[torch.arange(sims.shape[0], device=sims.device), own] = -torch.inf
        rr, ok = r[rows], valid[rows]
        hits = reference_labels[sims.topk(k_max, dim=1).indices] == labels.unsqueeze(1)
        first = _first_positive_rank(sims, labels, reference_labels, hits, ok)
        within = hits & (rank <= rr.unsqueeze(1))
        precision = within.cumsum(dim=1) / rank
        per_query = [hits[:, :k].any(dim=1).double() for k in hit_ks] + [
            within.sum(dim=1) / rr.clamp_min(1),
            (precision * within).sum(dim=1) / rr.clamp_min(1),
            1.0 / first.double(),
        ]
        sums += torch.stack([torch.where(ok, v.double(), 0.0).sum() for v in per_query])
    count = int(valid.sum())
    values = (sums / count).tolist() if count else [float("nan")] * len(names)
    found = dict(zip(names, values))
    out = {f"recall_at_{k}": found[f"recall_at_{k}"] for k in ks}
    out["precision_at_1"] = found["recall_at_1"]
    return out | {name: found[name] for name in ("r_precision", "map_at_r", "mrr")}


def _first_positive_rank(
    sims: Tensor, labels: Tensor, reference_labels: Tensor, hits: Tensor, valid: Tensor
) -> Tensor:
    """Rank of each query's first same-label reference among all references (for MRR).

    From the top-``k`` ``hits`` where one is there; for the other valid queries, 1 + the number
    of references more similar than their most similar same-label one.
    """
    rank = hits.int().argmax(dim=1) + 1
    missing = torch.nonzero(valid & ~hits.any(dim=1)).squeeze(1)
    far = sims[missing]
    same = labels[missing].unsqueeze(1) == reference_labels.unsqueeze(0)
    best = far.masked_fill(~same, -torch.inf).amax(dim=1, keepdim=True)
    return rank.index_put((missing,), 1 + (far > best).sum(dim=1).to(rank.dtype))


def clustering_metrics(
    embeddings: Tensor,
    labels: Tensor,
    *,
    seed: int = 0,
    iterations: int = KMEANS_ITERATIONS,
    chunk_size: int | None = None,
) -> dict[str, float]:
    """NMI and AMI of the labels against a k-means clustering of the L2-normalised embeddings.

    ``k`` is the number of distinct labels. Lloyd's k-means in torch, float32 on the embeddings'
    device: k-means++ picks the ``k`` starts among ``8·k`` random embeddings (all drawn with
    ``seed``), at most ``iterations`` updates follow (an empty cluster restarts at the point
    farthest from its centroid), and it stops early once no point changes cluster; the
    assignment step walks the points in chunks (``argmax_c x·c − ‖c‖²/2``), so no ``(N, k)``
    matrix exists. Then, as scikit-learn's
    ``normalized_mutual_info_score`` (arithmetic normalisation) and
    ``adjusted_mutual_info_score`` compute them (scikit-learn is imported on first use):

    ``NMI = I(Y; C) / ((H(Y) + H(C)) / 2)``,
    ``AMI = (I − E[I]) / ((H(Y) + H(C)) / 2 − E[I])``

    with ``E[I]`` the expected mutual information of random clusterings of the same sizes.
    ``AccuracyCalculator`` computes both scores with the same scikit-learn functions from faiss's
    k-means (random initialisation, 20 iterations, faiss's seed) on the raw, unnormalised queries;
    the two clusterings differ, so the scores agree only as closely as the clusterings do.

    Args:
        embeddings (Tensor[N, D]): embeddings.
        labels (Tensor[N]): integer labels.
        seed (int): the seed of the starting centroids.
        iterations (int): most k-means updates (faiss's default, 25).
        chunk_size (int, optional): points per ``(chunk, k)`` score block (default: so that a
            block holds at most 2²⁴ scores).

    Returns:
        dict[str, float]: ``{"nmi": ..., "ami": ...}``.

    Raises:
        TypeError: non-floating embeddings, non-integer labels, ``seed``, ``iterations`` or
            ``chunk_size``.
        ValueError: wrong shapes, no embeddings, ``iterations`` < 0, ``chunk_size`` < 1.

    Example:
        >>> x = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
        >>> clustering_metrics(x, torch.tensor([0, 0, 1, 1]))
        {'nmi': 1.0, 'ami': 1.0}
    """
    from sklearn.metrics import adjusted_mutual_info_score, normalized_mutual_info_score

    fn = "clustering_metrics"
    x, y = _check_embeddings(fn, "embeddings", embeddings, "labels", labels)
    check_int(fn, "seed", seed)
    check_int(fn, "iterations", iterations, low=0)
    k = len(torch.unique(y))
    chunk = (
        max(1, SIMILARITY_BUDGET // k)
        if chunk_size is None
        else check_int(fn, "chunk_size", chunk_size, low=1)
    )
    with torch.no_grad():
        points = l2_normalize(x.detach().float(), dim=1)
        clusters = kmeans(points, k, seed=seed, iterations=iterations, chunk=chunk)
    classes, found = y.cpu().numpy(), clusters.cpu().numpy()
    return {
        "nmi": float(normalized_mutual_info_score(classes, found)),
        "ami": float(adjusted_mutual_info_score(classes, found)),
    }
