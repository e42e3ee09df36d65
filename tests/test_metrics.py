"""Retrieval and clustering metrics against pytorch-metric-learning's AccuracyCalculator (with its
torch k-NN, and with faiss where installed), brute-force rankings and scikit-learn."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from pytorch_metric_learning.distances import CosineSimilarity
from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator
from pytorch_metric_learning.utils.inference import CustomKNN

import losskit
import losskit._kmeans
from losskit._kmeans import kmeans
from losskit.metrics import clustering_metrics, retrieval_metrics
from tests.losses.metric.test_chunked import _LargestTensor

PML_KEYS = {
    "precision_at_1": "precision_at_1",
    "r_precision": "r_precision",
    "map_at_r": "mean_average_precision_at_r",
    "mrr": "mean_reciprocal_rank",
}
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device"))]  # fmt: skip


def make(n=300, dim=8, classes=12, seed=0, lone=True):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, classes, (n,), generator=g)
    x = torch.randn(n, dim, generator=g) + F.one_hot(y % dim, dim).float()
    if lone:
        y[0] = 99  # a query label with no other member
    return x, y


def accuracy_calculator(knn_func=None, k=None):
    return AccuracyCalculator(
        include=tuple(PML_KEYS.values()), k=k, knn_func=knn_func, device=torch.device("cpu")
    )


def assert_agrees(ours, theirs):
    for key, pml_key in PML_KEYS.items():
        assert ours[key] == pytest.approx(theirs[pml_key], abs=1e-6), key


@pytest.mark.parametrize("chunk_size", [None, 7])
def test_leave_one_out_agrees_with_accuracy_calculator(chunk_size):
    x, y = make()
    theirs = accuracy_calculator(CustomKNN(CosineSimilarity())).get_accuracy(x, y)
    assert_agrees(retrieval_metrics(x, y, cluster=False, chunk_size=chunk_size), theirs)


def test_query_and_reference_agree_with_accuracy_calculator():
    x, y = make(seed=1)
    q, r, qy, ry = x[:100], x[100:], y[:100], y[100:]
    theirs = accuracy_calculator(CustomKNN(CosineSimilarity())).get_accuracy(q, qy, r, ry)
    assert_agrees(retrieval_metrics(q, qy, r, ry, cluster=False), theirs)


def test_agrees_with_accuracy_calculator_on_faiss():
    pytest.importorskip("faiss")
    x, y = make(seed=2)
    x = F.normalize(x, dim=1)  # faiss's L2 index ranks unit vectors as cosine does
    theirs = accuracy_calculator(k="max_bin_count").get_accuracy(x, y)
    ours = retrieval_metrics(x, y, cluster=False)
    for key in ("precision_at_1", "r_precision", "map_at_r"):
        assert ours[key] == pytest.approx(theirs[PML_KEYS[key]], abs=1e-6), key
    # with k="max_bin_count" a first positive ranked beyond max R counts 0 there
    assert ours["mrr"] >= theirs["mean_reciprocal_rank"] - 1e-6


def test_recall_at_k_and_mrr_match_a_brute_force_ranking():
    x, y = make(n=64, dim=5, classes=4, seed=3, lone=False)
    sims = F.normalize(x, dim=1) @ F.normalize(x, dim=1).T
    sims.fill_diagonal_(-math.inf)
    order = sims.argsort(dim=1, descending=True)[:, :-1]  # self (at -inf) dropped
    hits = y[order] == y[:, None]
    ours = retrieval_metrics(x, y, k=(1, 3, 8), cluster=False)
    for k in (1, 3, 8):
        assert ours[f"recall_at_{k}"] == pytest.approx(hits[:, :k].any(1).float().mean().item())
    first = hits.float().argmax(dim=1) + 1
    assert ours["mrr"] == pytest.approx((1.0 / first).mean().item())
    assert ours["precision_at_1"] == ours["recall_at_1"]
    assert set(ours) == {"recall_at_1", "recall_at_3", "recall_at_8", "precision_at_1",
                         "r_precision", "map_at_r", "mrr"}  # fmt: skip


def test_map_at_r_paper_example_and_include_self():
    # Musgrave et al. 2020, §3.2: R = 10, correct at ranks 1, 2, 4 -> (1 + 1 + 3/4) / 10.
    angles = torch.arange(21, dtype=torch.float64) * math.pi / 180
    points = torch.stack([angles.cos(), angles.sin()], dim=1)
    labels = torch.ones(21, dtype=torch.long)
    labels[[0, 1, 2, 4, 13, 14, 15, 16, 17, 18, 19]] = 0
    ours = retrieval_metrics(points[:1], labels[:1], points[1:], labels[1:], cluster=False)
    assert ours["map_at_r"] == pytest.approx(0.275)
    assert ours["r_precision"] == pytest.approx(0.3)
    with_self = retrieval_metrics(points, labels, k=1, include_self=True, cluster=False)
    assert with_self["recall_at_1"] == 1.0 and with_self["mrr"] == 1.0


def test_mrr_ranks_a_positive_beyond_the_top_k():
    angles = torch.tensor([0.0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 90]) * math.pi / 180
    points = torch.stack([angles.cos(), angles.sin()], dim=1)
    labels = torch.tensor([0] + [1] * 10 + [0])  # query 0's one positive is the farthest
    out = retrieval_metrics(points[:1], labels[:1], points[1:], labels[1:], k=1, cluster=False)
    assert out["mrr"] == pytest.approx(1 / 11) and out["recall_at_1"] == 0.0


def test_no_query_with_a_positive_gives_nan():
    x = torch.eye(3)
    out = retrieval_metrics(x, torch.arange(3), cluster=False)
    assert all(math.isnan(v) for v in out.values())


def separated(classes=4, per_class=25, dim=16, seed=4):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(classes).repeat_interleave(per_class)
    centres = torch.randn(classes, dim, generator=g) * 10
    return centres[y] + 0.1 * torch.randn(len(y), dim, generator=g), y


def test_clustering_metrics():
    x, y = separated()
    assert clustering_metrics(x, y) == {"nmi": 1.0, "ami": 1.0}
    both = retrieval_metrics(x, y)
    assert both["nmi"] == 1.0 and both["ami"] == 1.0 and both["recall_at_1"] == 1.0
    shuffled = y[torch.randperm(100, generator=torch.Generator().manual_seed(4))]
    chance = clustering_metrics(x, shuffled)
    assert abs(chance["ami"]) < 0.05 and chance["nmi"] < 0.2


def test_clustering_agrees_with_accuracy_calculator_on_faiss():
    pytest.importorskip("faiss")
    theirs = AccuracyCalculator(include=("NMI", "AMI"), device=torch.device("cpu"))
    x, y = separated()
    found = theirs.get_accuracy(x, y)
    assert clustering_metrics(x, y) == {"nmi": found["NMI"], "ami": found["AMI"]}
    assert found["NMI"] == found["AMI"] == 1.0
    # Among 30 clusters a uniform random start tends to put two centroids in one cluster
    # (faiss's does here); the k-means++ start finds them all.
    many = clustering_metrics(*separated(classes=30, per_class=40, seed=7))
    assert many == {"nmi": 1.0, "ami": 1.0}


def test_kmeans_is_a_local_optimum_of_lloyd_and_deterministic():
    x, y = make(n=600, dim=6, classes=15, seed=8, lone=False)
    points = F.normalize(x, dim=1)
    found = kmeans(points, 15, seed=3, iterations=200, chunk=64)
    assert torch.equal(found, kmeans(points, 15, seed=3, iterations=200, chunk=64))
    assert not torch.equal(found, kmeans(points, 15, seed=4, iterations=200, chunk=64))
    # Converged: every point is nearest (brute force, float64) to the mean of its own cluster.
    p64 = points.double()
    means = torch.stack([p64[found == c].mean(dim=0) for c in range(15)])
    assert torch.equal(torch.cdist(p64, means).argmin(dim=1), found)
    ours = clustering_metrics(x, y, seed=3, iterations=200)
    from sklearn.metrics import adjusted_mutual_info_score, normalized_mutual_info_score

    assert ours == {
        "nmi": normalized_mutual_info_score(y.numpy(), found.numpy()),
        "ami": adjusted_mutual_info_score(y.numpy(), found.numpy()),
    }


def test_chunk_size_changes_nothing_and_bounds_the_score_block():
    x, y = make(n=2000, dim=4, classes=50, seed=9, lone=False)
    whole = clustering_metrics(x, y, chunk_size=2000)
    with _LargestTensor() as seen:
        assert clustering_metrics(x, y, chunk_size=16) == whole
    assert seen.largest <= 2000 * 4  # the points themselves; a (N, k) block would be 100 000


def test_empty_cluster_restarts_at_the_farthest_point(monkeypatch):
    # Started at rows 0, 1, 2, the coinciding rows 0 and 1 leave one cluster empty; it must
    # restart at the farthest point, row 4, which splits {3, 4}. Left empty, its centroid
    # would tie with row 0's again and rows 3 and 4 would stay together.
    x = torch.tensor([[0.0, 0.0], [0.0, 0.0], [0.1, 0.0], [5.0, 0.0], [9.0, 0.0]])
    monkeypatch.setattr(losskit._kmeans, "_plus_plus", lambda x, norms, k, generator: x[:3])
    found = kmeans(x, 3, seed=0, iterations=25, chunk=2)
    assert torch.bincount(found, minlength=3).min() == 1
    assert found[0] == found[1] == found[2] and found[3] != found[4]


@pytest.mark.parametrize("device", DEVICES)
def test_clustering_runs_on_the_embeddings_device_in_half_precision(device):
    x, y = separated(classes=6, per_class=30, seed=11)
    ours = clustering_metrics(x.to(device, torch.float16), y.to(device), chunk_size=16)
    assert ours == {"nmi": 1.0, "ami": 1.0}
    points = F.normalize(x, dim=1).to(device)
    assert kmeans(points, 6, seed=2, iterations=25, chunk=16).device == points.device


def test_one_cluster():
    x, _ = make(n=50, seed=10, lone=False)
    assert torch.equal(kmeans(x, 1, seed=0, iterations=25, chunk=7), torch.zeros(50, dtype=int))
    assert clustering_metrics(x, torch.zeros(50, dtype=torch.long)) == {"nmi": 1.0, "ami": 1.0}


def test_memory_is_bounded_by_the_chunk():
    x, y = make(n=2000, dim=4, classes=50, seed=5, lone=False)
    with _LargestTensor() as seen:
        retrieval_metrics(x, y, cluster=False, chunk_size=32)
    assert seen.largest <= 32 * 2000


@pytest.mark.parametrize("device", DEVICES)
def test_runs_on_the_embeddings_device_in_half_precision(device):
    x, y = make(seed=6)
    expected = retrieval_metrics(x, y, cluster=False)
    ours = retrieval_metrics(x.to(device, torch.float16), y.to(device), cluster=False)
    for key, value in expected.items():
        assert ours[key] == pytest.approx(value, abs=0.02), key


def test_reachable_from_the_package():
    assert losskit.metrics.retrieval_metrics is retrieval_metrics


@pytest.mark.parametrize(
    "call,error,match",
    [
        (lambda x, y: retrieval_metrics(x[0], y), ValueError, "`query` to be 2-D"),
        (lambda x, y: retrieval_metrics(x.int(), y), TypeError, "`query` to be a floating"),
        (lambda x, y: retrieval_metrics(x, y[:3]), ValueError, r"`query_labels` of shape \(300,\)"),
        (lambda x, y: retrieval_metrics(x[:0], y[:0]), ValueError, "at least one embedding"),
        (lambda x, y: retrieval_metrics(x, y, x), ValueError, "`reference_labels` with"),
        (lambda x, y: retrieval_metrics(x, y, None, y), ValueError, "`reference` with"),
        (
            lambda x, y: retrieval_metrics(x, y, x[:, :2], y),
            ValueError,
            r"`reference` of shape \(M, 8\)",
        ),
        (
            lambda x, y: retrieval_metrics(x, y, x, y, include_self=True),
            ValueError,
            "`include_self` False with a separate",
        ),
        (lambda x, y: retrieval_metrics(x, y, k=0), ValueError, "`k` to be an integer >= 1"),
        (lambda x, y: retrieval_metrics(x, y, k=()), TypeError, "`k` an integer or"),
        (lambda x, y: retrieval_metrics(x, y, chunk_size=0), ValueError, "`chunk_size`"),
        (lambda x, y: retrieval_metrics(x, y, cluster=1), TypeError, "`cluster` to be a bool"),
        (lambda x, y: clustering_metrics(x, y, iterations=-1), ValueError, "`iterations`"),
        (lambda x, y: clustering_metrics(x, y, chunk_size=0), ValueError, "`chunk_size`"),
        (lambda x, y: clustering_metrics(x, y, seed=0.5), TypeError, "`seed` to be an integer"),
        (lambda x, y: clustering_metrics(x, y[:3]), ValueError, r"`labels` of shape \(300,\)"),
    ],
)
def test_errors(call, error, match):
    x, y = make()
    with pytest.raises(error, match=match):
        call(x, y)
