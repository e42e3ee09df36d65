"""Lloyd's k-means in torch, chunked over the points (for NMI/AMI of embeddings).

Only a ``(chunk, k)`` block of scores exists at a time, so memory stays
``O(N·D + k·D + chunk·k)``; everything runs on the points' device.
"""

from __future__ import annotations

import torch
from torch import Tensor

ITERATIONS = 25  # faiss's default (``ClusteringParameters.niter``)
POOL_PER_CLUSTER = 8  # k-means++ draws its starts from 8·k random points


def kmeans(x: Tensor, k: int, *, seed: int, iterations: int, chunk: int) -> Tensor:
    """The cluster (``0 … k−1``) of each row of ``x`` after Lloyd's k-means.

    Starts at ``k`` rows chosen by k-means++ (:func:`_plus_plus`) among ``8·k`` random rows,
    all drawn by a CPU ``torch.Generator`` seeded with ``seed``; then up to ``iterations``
    times: each centroid moves to the mean of its points (an empty cluster restarts at the
    point farthest from its centroid), and each point joins its nearest centroid, stopping as
    soon as no point changes cluster. The result depends only on ``seed`` and the data (on
    CUDA, bit for bit under ``torch.use_deterministic_algorithms(True)``, which orders
    ``index_add_``'s float sums).

    Args:
        x (Tensor[N, D]): floating points, ``N >= k``.
        k (int): number of clusters, ``>= 1``.
        seed (int): seed of the initial draw.
        iterations (int): most centroid updates.
        chunk (int): rows per ``(chunk, k)`` score block.
    """
    norms = x.square().sum(dim=1)
    starts = _plus_plus(x, norms, k, torch.Generator().manual_seed(seed))
    assigned, gap = _nearest(x, norms, starts, chunk)
    for _ in range(iterations):
        moved, gap = _nearest(x, norms, _means(x, assigned, gap, k), chunk)
        if torch.equal(moved, assigned):
            break
        assigned = moved
    return assigned


def _plus_plus(x: Tensor, norms: Tensor, k: int, generator: torch.Generator) -> Tensor:
    """``k`` starting centroids by k-means++ D² sampling (Arthur & Vassilvitskii, SODA 2007)
    within a pool of ``8·k`` distinct random rows: the first uniformly, each next one with
    probability proportional to its squared distance to the nearest one chosen so far.

    The uniform numbers are drawn on the CPU up front and turned into rows by ``searchsorted``
    on the running distances, so the walk stays on the device without a host round trip.
    """
    draw = torch.randperm(x.shape[0], generator=generator)[: POOL_PER_CLUSTER * k]
    pool, pool_norms = x[draw.to(x.device)], norms[draw.to(x.device)]
    u = torch.rand(k, generator=generator, dtype=torch.float64).to(x.device)
    chosen = [(u[0] * len(pool)).long().clamp_max(len(pool) - 1)]
    nearest = torch.full_like(pool_norms, torch.inf)
    for i in range(1, k):
        c = pool[chosen[-1]]
        nearest = torch.minimum(nearest, (pool_norms - 2 * (pool @ c) + c @ c).clamp_min(0))
        total = nearest.double().cumsum(dim=0)
        pick = torch.searchsorted(total, u[i] * total[-1], right=True)
        chosen.append(pick.clamp_max(len(pool) - 1))
    return pool[torch.stack(chosen)]


def _nearest(x: Tensor, norms: Tensor, centroids: Tensor, chunk: int) -> tuple[Tensor, Tensor]:
    """Each row's nearest centroid and its squared distance (``norms``: ``‖x‖²``), ``chunk`` rows
    at a time.

    ``argmin_c ‖x − c‖² = argmax_c (x·c − ‖c‖²/2)``: one GEMM per chunk, no ``(N, k, D)``
    difference and no ``(N, k)`` matrix.
    """
    half_norms = centroids.square().sum(dim=1) / 2
    best = torch.empty(x.shape[0], dtype=x.dtype, device=x.device)
    assigned = torch.empty(x.shape[0], dtype=torch.long, device=x.device)
    for start in range(0, x.shape[0], chunk):
        rows = slice(start, start + chunk)
        scores = torch.addmm(half_norms, x[rows], centroids.T, beta=-1)
        best[rows], assigned[rows] = scores.max(dim=1)
    return assigned, norms - 2 * best


def _means(x: Tensor, assigned: Tensor, gap: Tensor, k: int) -> Tensor:
    """Each cluster's mean; the ``m`` empty clusters take the ``m`` points farthest from their
    centroids (``gap``: squared distances), in order."""
    sums = torch.zeros(k, x.shape[1], dtype=x.dtype, device=x.device).index_add_(0, assigned, x)
    counts = torch.bincount(assigned, minlength=k)
    centroids = sums / counts.clamp_min(1).unsqueeze(1).to(x.dtype)
    empty = torch.nonzero(counts == 0).squeeze(1)
    if len(empty):
        centroids[empty] = x[gap.topk(len(empty)).indices]
    return centroids
