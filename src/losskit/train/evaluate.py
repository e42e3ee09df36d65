"""Evaluation: classification metrics, retrieval metrics and the model pass that feeds them.

Classification (same classes in train and test): accuracy, macro-F1, the per-class report and the
confusion matrix (scikit-learn), plus Recall@K of the test embeddings. Retrieval (unseen test
classes): Recall@1/2/4/8, MAP@R and NMI.

Retrieval definitions (Musgrave et al., "A Metric Learning Reality Check", ECCV 2020): neighbours
by cosine similarity; each test sample queries the other test samples (or, where the data set
defines queries and a gallery, each query searches the gallery). ``Recall@K`` is the fraction of
queries with a same-class sample among their K nearest neighbours; ``MAP@R`` averages
``1/R Σ_{i≤R} P(i)·rel(i)`` over queries, ``R`` being the number of same-class gallery samples.
Queries without any same-class gallery sample are left out of both. Both come from
:func:`losskit.metrics.retrieval_metrics` (chunked matrix products: at most ``chunk_size × N``
similarities exist at a time, never ``N × N``). NMI clusters with the chunked torch k-means of
:func:`losskit.metrics.clustering_metrics` and is skipped above ``MAX_NMI_CLASSES`` test classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader

from losskit import distributed
from losskit import metrics as embedding_metrics

__all__ = [
    "EvalResult",
    "classification_metrics",
    "confusion_figure",
    "embed",
    "evaluate",
    "nmi",
    "retrieval_metrics",
]

RECALL_KS: tuple[int, ...] = (1, 2, 4, 8)
# k-means costs N·k·D per iteration: with more clusters than this (SOP's 11,316, In-shop's
# 3,985) minutes on a CPU; NMI is left out of those evaluations.
MAX_NMI_CLASSES = 1000


@dataclass
class EvalResult:
    """What one evaluation found: scalar ``metrics`` and what the figures and reports need."""

    metrics: dict[str, float]
    features: Tensor
    labels: Tensor
    predictions: Tensor | None = None
    confusion: np.ndarray | None = None
    report: dict[str, Any] = field(default_factory=dict)


@torch.no_grad()
def embed(
    model: torch.nn.Module,
    loader: DataLoader[Any],
    device: torch.device,
    *,
    amp_dtype: torch.dtype | None = None,
    with_logits: bool = True,
) -> tuple[Tensor, Tensor, Tensor]:
    """``features (N, D)``, ``logits (N, C)`` (float32, CPU) and ``labels (N,)`` of a loader.

    ``with_logits=False`` keeps no logits (an empty ``(0, C)`` tensor): retrieval needs none, and
    for data sets of many classes they would outweigh the features many times. In a
    multi-process run each process embeds its part of the split and every process returns the
    rows of all, in rank order (:func:`losskit.distributed.all_gather`)."""
    was_training = model.training
    model.eval()
    feats, logits, labels = [], [], []
    for x, y in loader:
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            f, z = model(x.to(device, non_blocking=True))
        feats.append(f.float().cpu())
        logits.append(z.float().cpu() if with_logits else z.new_empty(0, z.shape[1]).cpu())
        labels.append(torch.as_tensor(y))
    model.train(was_training)
    parts = (torch.cat(feats), torch.cat(logits), torch.cat(labels).long())
    if not distributed.is_distributed():
        return parts
    return tuple(distributed.all_gather(t.to(device)).cpu() for t in parts)  # type: ignore[return-value]


def retrieval_metrics(
    features: Tensor,
    labels: Tensor,
    ks: Sequence[int] = RECALL_KS,
    *,
    query_mask: Tensor | None = None,
    map_at_r: bool = True,
    chunk_size: int | None = None,
) -> dict[str, float]:
    """``recall_at_<k>`` for each ``k`` and ``map_at_r``, by cosine k-NN in chunks
    (:func:`losskit.metrics.retrieval_metrics`).

    Args:
        features: ``(N, D)`` embeddings; the search runs on their device.
        labels: ``(N,)`` class of each embedding.
        ks: the K of each Recall@K.
        query_mask: optional ``(N,)`` bool; ``True`` rows query the ``False`` rows (a gallery).
            Without it every row queries all the others.
        map_at_r: also compute MAP@R (its neighbour list is as long as the largest class).
        chunk_size: queries per matrix product; by default so that a chunk holds at most 2**24
            similarities.

    Returns:
        ``{"recall_at_1": ..., ..., "map_at_r": ...}``; ``nan`` where no query has a positive.
    """
    if query_mask is None:
        found = embedding_metrics.retrieval_metrics(
            features, labels, k=ks, cluster=False, chunk_size=chunk_size
        )
    else:
        mask = query_mask.to(features.device)
        labels = labels.to(features.device)
        found = embedding_metrics.retrieval_metrics(
            features[mask],
            labels[mask],
            features[~mask],
            labels[~mask],
            k=ks,
            cluster=False,
            chunk_size=chunk_size,
        )
    keys = [f"recall_at_{k}" for k in ks] + (["map_at_r"] if map_at_r else [])
    return {key: found[key] for key in keys}


def nmi(features: Tensor, labels: Tensor, *, seed: int = 0) -> float:
    """NMI between the classes and a k-means clustering (k = number of classes) of the
    L2-normalised features (:func:`losskit.metrics.clustering_metrics`)."""
    return embedding_metrics.clustering_metrics(features, labels, seed=seed)["nmi"]


def classification_metrics(
    labels: Tensor, predictions: Tensor, class_names: Sequence[str]
) -> tuple[dict[str, float], np.ndarray, dict[str, Any]]:
    """Accuracy, macro-F1, the confusion matrix and the per-class report (scikit-learn)."""
    from sklearn.metrics import accuracy_score, classification_report, confusion_matrix, f1_score

    y, p = labels.numpy(), predictions.numpy()
    classes = list(range(len(class_names)))
    metrics = {
        "accuracy": float(accuracy_score(y, p)),
        "macro_f1": float(f1_score(y, p, labels=classes, average="macro", zero_division=0)),
    }
    cm = confusion_matrix(y, p, labels=classes)
    report = classification_report(
        y,
        p,
        labels=classes,
        target_names=[str(c) for c in class_names],
        zero_division=0,
        output_dict=True,
    )
    return metrics, cm, report


def evaluate(
    model: torch.nn.Module,
    objective: torch.nn.Module,
    loader: DataLoader[Any],
    *,
    protocol: str,
    class_names: Sequence[str],
    device: torch.device,
    query_mask: Tensor | None = None,
    amp_dtype: torch.dtype | None = None,
    seed: int = 0,
) -> EvalResult:
    """Run the model over ``loader`` and compute the metrics of ``protocol``."""
    retrieval = protocol == "retrieval"
    features, logits, labels = embed(
        model, loader, device, amp_dtype=amp_dtype, with_logits=not retrieval
    )
    if retrieval:  # the k-NN search runs on the model's device
        metrics = retrieval_metrics(features.to(device), labels, query_mask=query_mask)
        if len(torch.unique(labels)) <= MAX_NMI_CLASSES:
            metrics["nmi"] = nmi(features, labels, seed=seed)
        return EvalResult(metrics, features, labels)
    proxies = getattr(objective, "proxies", None)
    on = proxies.device if proxies is not None else torch.device("cpu")
    scores = objective.scores(features.to(on), logits.to(on)).cpu()  # type: ignore[operator]
    predictions = scores.argmax(dim=1)
    metrics, cm, report = classification_metrics(labels, predictions, class_names)
    metrics.update(retrieval_metrics(features, labels, map_at_r=False))
    return EvalResult(metrics, features, labels, predictions, cm, report)


def confusion_figure(confusion: np.ndarray, class_names: Sequence[str]) -> Any:
    """A matplotlib figure of the confusion matrix (scikit-learn ``ConfusionMatrixDisplay``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    n = len(class_names)
    size = min(4 + 0.35 * n, 20)
    fig, ax = plt.subplots(figsize=(size, size))
    names = [str(c) for c in class_names] if n <= 50 else None
    ConfusionMatrixDisplay(confusion, display_labels=names).plot(
        ax=ax, include_values=n <= 20, colorbar=False, xticks_rotation="vertical"
    )
    ax.set_title("Confusion matrix (test)")
    fig.tight_layout()
    return fig
