"""Evaluation metrics against hand-computed cases, scikit-learn and pytorch-metric-learning."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from losskit.train.evaluate import (
    classification_metrics,
    confusion_figure,
    nmi,
    retrieval_metrics,
)


def _line(positions: list[float]) -> torch.Tensor:
    """2-D unit vectors at the given angles (degrees): cosine ranks them by angle distance."""
    a = torch.tensor(positions, dtype=torch.float64) * math.pi / 180
    return torch.stack([a.cos(), a.sin()], dim=1)


def test_recall_and_map_at_r_on_a_known_ranking() -> None:
    # Query 0 (class 0) at 0°; gallery ranked by angle: 10° (class 1), 20° (class 0),
    # 30° (class 1), 40° (class 0). R = 2 for query 0: hits at ranks 2 and 4 (4 > R).
    features = _line([0, 10, 20, 30, 40])
    labels = torch.tensor([0, 1, 0, 1, 0])
    query = torch.tensor([True, False, False, False, False])
    m = retrieval_metrics(features, labels, ks=(1, 2, 4), query_mask=query)
    assert m["recall_at_1"] == 0.0
    assert m["recall_at_2"] == 1.0
    assert m["recall_at_4"] == 1.0
    # MAP@R = 1/R * sum_{i<=R} P(i) rel(i) = 1/2 * (0 + 1/2) = 0.25
    assert m["map_at_r"] == pytest.approx(0.25)


def test_map_at_r_paper_example() -> None:
    # Musgrave et al. 2020, §3.2: R = 10, correct at ranks 1, 2, 4 -> (1 + 1 + 3/4) / 10.
    angles = [0.0] + [float(i) for i in range(1, 21)]
    labels = torch.zeros(21, dtype=torch.long)
    labels[1:] = 1
    for rank in (1, 2, 4, 13, 14, 15, 16, 17, 18, 19):  # 10 same-class samples -> R = 10
        labels[rank] = 0
    query = torch.zeros(21, dtype=torch.bool)
    query[0] = True
    m = retrieval_metrics(_line(angles), labels, ks=(1,), query_mask=query)
    assert m["map_at_r"] == pytest.approx(0.275)
    assert m["recall_at_1"] == 1.0


def test_leave_one_out_matches_pytorch_metric_learning() -> None:
    from pytorch_metric_learning.distances import CosineSimilarity
    from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator
    from pytorch_metric_learning.utils.inference import CustomKNN

    g = torch.Generator().manual_seed(0)
    x = torch.randn(120, 6, generator=g)
    y = torch.randint(0, 5, (120,), generator=g)
    x = x + 1.5 * torch.nn.functional.one_hot(y, 6).float()  # some structure
    reference = AccuracyCalculator(
        include=("precision_at_1", "mean_average_precision_at_r"),
        k="max_bin_count",
        knn_func=CustomKNN(CosineSimilarity()),
    ).get_accuracy(x, y)
    m = retrieval_metrics(x, y)
    assert m["recall_at_1"] == pytest.approx(reference["precision_at_1"])
    assert m["map_at_r"] == pytest.approx(reference["mean_average_precision_at_r"], abs=1e-6)


def test_recall_at_k_matches_brute_force_and_chunking() -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(64, 5, generator=g)
    y = torch.randint(0, 4, (64,), generator=g)
    xn = torch.nn.functional.normalize(x, dim=1)
    sims = xn @ xn.T
    sims.fill_diagonal_(-float("inf"))
    order = sims.argsort(dim=1, descending=True)
    for k in (1, 2, 4, 8):
        expected = (y[order[:, :k]] == y[:, None]).any(dim=1).float().mean().item()
        assert retrieval_metrics(x, y)[f"recall_at_{k}"] == pytest.approx(expected)
    assert retrieval_metrics(x, y, chunk_size=7) == pytest.approx(retrieval_metrics(x, y))


def test_queries_without_positives_are_left_out() -> None:
    x = _line([0, 5, 90])
    y = torch.tensor([0, 0, 1])  # the class-1 sample has no other member
    m = retrieval_metrics(x, y, ks=(1,))
    assert m == {"recall_at_1": 1.0, "map_at_r": 1.0}


def test_nmi_of_separated_clusters_is_one() -> None:
    g = torch.Generator().manual_seed(2)
    centres = torch.eye(3) * 10
    y = torch.arange(3).repeat_interleave(20)
    x = centres[y] + 0.01 * torch.randn(60, 3, generator=g)
    assert nmi(x, y) == pytest.approx(1.0)


def test_classification_metrics_hand_computed() -> None:
    y = torch.tensor([0, 0, 1, 1, 2, 2])
    p = torch.tensor([0, 1, 1, 1, 2, 0])
    metrics, cm, report = classification_metrics(y, p, ["a", "b", "c"])
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    # per-class F1: a: P=1/2 R=1/2 -> 1/2; b: P=2/3 R=1 -> 4/5; c: P=1 R=1/2 -> 2/3
    assert metrics["macro_f1"] == pytest.approx((1 / 2 + 4 / 5 + 2 / 3) / 3)
    np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 2, 0], [1, 0, 1]])
    assert report["b"]["recall"] == 1.0
    fig = confusion_figure(cm, ["a", "b", "c"])
    assert fig.axes[0].get_title() == "Confusion matrix (test)"
