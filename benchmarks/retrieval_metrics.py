"""Retrieval metrics at N = 60k, D = 512: losskit.metrics against AccuracyCalculator and
scikit-learn.

Every method answers the same leave-one-out question on the same L2-normalised float32
embeddings (N samples of ``N / 60`` classes, each a class centre plus noise): each sample queries
all the others by cosine similarity. Timed, once each, in one run:

- ``losskit`` — :func:`losskit.metrics.retrieval_metrics` (exact, chunked over the queries),
  the k-NN metrics only (``cluster=False``);
- ``AccuracyCalculator`` (pytorch-metric-learning, ``k="max_bin_count"``) on faiss's exact
  ``IndexFlatL2`` (when faiss is installed) and on its torch fallback
  ``CustomKNN(CosineSimilarity(), batch_size=4096)`` (the default would build the 60k × 60k
  matrix, 14 GB), the metrics precision@1, R-precision, MAP@R and MRR;
- scikit-learn ``NearestNeighbors(metric="cosine", algorithm="brute")``: the neighbour search
  alone (``k = max R + 1``), no metrics.

The table gives seconds, the ratio to losskit's k-NN metrics, and the largest difference of
precision@1, R-precision and MAP@R to losskit's (``AccuracyCalculator``'s MRR stops at rank
``max R``; losskit's ranks every reference); each row prints when measured.

A second table times NMI/AMI on the first ``--cluster-n`` samples (default: all; 0 skips it):
:func:`losskit.metrics.clustering_metrics` (torch Lloyd k-means, random start, at most 25
iterations, chunked) against ``AccuracyCalculator(include=("NMI", "AMI"))`` (faiss k-means,
random start and 20 iterations, when faiss is installed), with the ratio to losskit and both
scores (the two clusterings differ, so the scores differ too). ``--only-cluster`` skips the
k-NN table. Run:
``python benchmarks/retrieval_metrics.py [--n 60000] [--cluster-n 60000] [--only-cluster]``.
On 2 heavily shared CPU cores the k-NN table took about 35 minutes at N = 60k.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from losskit.metrics import clustering_metrics, retrieval_metrics

SHARED = {
    "precision_at_1": "precision_at_1",
    "r_precision": "r_precision",
    "map_at_r": "mean_average_precision_at_r",
    "mrr": "mean_reciprocal_rank",
}


# AccuracyCalculator's MRR with k="max_bin_count" counts 0 past rank max R; losskit's ranks all.
COMPARED = ("precision_at_1", "r_precision", "map_at_r")


def embeddings(
    n: int, dim: int, per_class: int, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n // per_class).repeat_interleave(per_class)
    centres = torch.randn(n // per_class, dim, generator=g)
    x = centres[labels] + 1.5 * torch.randn(n, dim, generator=g)
    return F.normalize(x, dim=1), labels


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def accuracy_calculator(x: torch.Tensor, y: torch.Tensor, knn: Any) -> dict[str, float]:
    from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator

    calc = AccuracyCalculator(
        include=tuple(SHARED.values()), k="max_bin_count", knn_func=knn, device=x.device
    )
    return calc.get_accuracy(x, y)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--n", type=int, default=60_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--per-class", type=int, default=60)
    parser.add_argument(
        "--cluster-n", type=int, default=None, help="samples for the NMI/AMI table (0 skips it)"
    )
    parser.add_argument("--only-cluster", action="store_true", help="skip the k-NN table")
    args = parser.parse_args()
    x, y = embeddings(args.n, args.dim, args.per_class)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU, float32; "
          f"N={args.n}, D={args.dim}, {args.n // args.per_class} classes")  # fmt: skip
    if not args.only_cluster:
        knn_table(x, y, args.per_class)
    n_cluster = args.n if args.cluster_n is None else min(args.cluster_n, args.n)
    if n_cluster > 0:
        clustering_table(x[:n_cluster], y[:n_cluster])


def knn_table(x: torch.Tensor, y: torch.Tensor, per_class: int) -> None:
    """The k-NN metrics: losskit against AccuracyCalculator and scikit-learn's search."""
    print("\n| method | seconds | / losskit | max diff to losskit (P@1, R-prec, MAP@R) |")
    print("|---|---|---|---|")
    base, ours = timed(lambda: retrieval_metrics(x, y, cluster=False))

    def row(name: str, seconds: float, found: dict[str, float] | None = None) -> None:
        diff = "—"
        if found is not None and found is not ours:
            diff = f"{max(abs(ours[a] - found[SHARED[a]]) for a in COMPARED):.1e}"
        print(f"| {name} | {seconds:.1f} | {seconds / base:.2f} | {diff} |", flush=True)

    row("losskit retrieval_metrics (k-NN metrics)", base, ours)

    from pytorch_metric_learning.distances import CosineSimilarity
    from pytorch_metric_learning.utils.inference import CustomKNN, FaissKNN

    try:
        import faiss  # noqa: F401
    except ImportError:
        print("| AccuracyCalculator, faiss: not installed | — | — | — |")
    else:
        seconds, pml = timed(lambda: accuracy_calculator(x, y, FaissKNN()))
        row("AccuracyCalculator, faiss IndexFlatL2", seconds, pml)
    knn = CustomKNN(CosineSimilarity(), batch_size=4096)
    seconds, pml = timed(lambda: accuracy_calculator(x, y, knn))
    row("AccuracyCalculator, torch CustomKNN", seconds, pml)

    from sklearn.neighbors import NearestNeighbors

    k = per_class  # max R + 1 (itself)
    seconds, _ = timed(
        lambda: (
            NearestNeighbors(n_neighbors=k, metric="cosine", algorithm="brute")
            .fit(x.numpy())
            .kneighbors(x.numpy())
        )
    )
    row("scikit-learn NearestNeighbors (search only)", seconds)
    print("\nlosskit:", {k: round(v, 4) for k, v in ours.items()})


def clustering_table(x: torch.Tensor, y: torch.Tensor) -> None:
    """NMI/AMI: losskit's torch k-means against AccuracyCalculator's faiss k-means."""
    classes = len(torch.unique(y))
    print(f"\nNMI/AMI on N={len(x)}, {classes} clusters")
    print("\n| method | seconds | / losskit | NMI | AMI |")
    print("|---|---|---|---|---|")
    import sklearn.metrics  # noqa: F401  (outside the timing, as AccuracyCalculator imports it)

    base, ours = timed(lambda: clustering_metrics(x, y))
    print(f"| losskit clustering_metrics (torch k-means) | {base:.1f} | 1.00 | "
          f"{ours['nmi']:.4f} | {ours['ami']:.4f} |", flush=True)  # fmt: skip
    try:
        import faiss  # noqa: F401
    except ImportError:
        print("| AccuracyCalculator, faiss k-means: not installed | — | — | — | — |")
        return
    from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator

    calc = AccuracyCalculator(include=("NMI", "AMI"), device=x.device)
    seconds, pml = timed(lambda: calc.get_accuracy(x, y))
    print(f"| AccuracyCalculator (faiss k-means, 20 iterations) | {seconds:.1f} | "
          f"{seconds / base:.2f} | {pml['NMI']:.4f} | {pml['AMI']:.4f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
