"""contrastive, triplet and online_triplet against torch core and pytorch-metric-learning."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from pytorch_metric_learning import losses as pml_losses
from pytorch_metric_learning.distances import LpDistance
from pytorch_metric_learning.miners import BatchHardMiner
from pytorch_metric_learning.reducers import MeanReducer, SumReducer
from pytorch_metric_learning.utils import loss_and_miner_utils as lmu
from torch.autograd import gradcheck

import losskit
from losskit.functional import contrastive, online_triplet, triplet
from tests.losses.metric._compare import assert_same

F64 = torch.float64


def _batch(seed: int, b: int = 16, classes: int = 4, dim: int = 5):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, dim, dtype=F64, generator=g)
    labels = torch.randint(0, classes, (b,), generator=g)
    return x, labels


# --------------------------------------------------------------------------- contrastive


def _contrastive_ref(x1, x2, y, margin, reduction):
    d = F.pairwise_distance(x1, x2, eps=0.0)
    loss = y * d.pow(2) + (1 - y) * torch.clamp(margin - d, min=0).pow(2)
    return {"mean": loss.mean(), "sum": loss.sum(), "none": loss}[reduction]


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_contrastive_matches_formula(reduction):
    g = torch.Generator().manual_seed(0)
    x1, x2 = torch.randn(2, 12, 3, dtype=F64, generator=g) * 0.6
    y = torch.randint(0, 2, (12,), generator=g)
    assert_same(
        lambda a, b: contrastive(a, b, y, 1.5, reduction=reduction),
        lambda a, b: _contrastive_ref(a, b, y.double(), 1.5, reduction),
        x1,
        x2,
    )
    assert bool((F.pairwise_distance(x1, x2)[y == 0] < 1.5).any())  # the hinge is active


def test_contrastive_positive_term_matches_pml():
    # PML's ContrastiveLoss is relu(d - m_pos) on positive pairs and relu(m_neg - d) on negative
    # pairs. With squared distances (power=2), m_pos = 0 and m_neg = 0 its loss is the mean of d²
    # over the positive pairs: our similar-pair term. (Its negative hinge is not squared.)
    x, labels = _batch(1, b=10, classes=3)
    a, p, _, _ = lmu.get_all_pairs_indices(labels)
    pml = pml_losses.ContrastiveLoss(
        pos_margin=0.0,
        neg_margin=0.0,
        distance=LpDistance(normalize_embeddings=False, power=2),
        reducer=MeanReducer(),
    )
    assert_same(
        lambda e: contrastive(e[a], e[p], torch.ones(len(a)), margin=1.0),
        lambda e: pml(e, labels),
        x,
    )


def test_contrastive_soft_labels_interpolate():
    x1, x2 = torch.randn(2, 5, 3, dtype=F64)
    half = contrastive(x1, x2, torch.full((5,), 0.5, dtype=F64), reduction="none")
    both = contrastive(x1, x2, torch.ones(5), reduction="none") + contrastive(
        x1, x2, torch.zeros(5, dtype=torch.bool), reduction="none"
    )
    torch.testing.assert_close(half, both / 2)


def test_contrastive_coincident_pairs():
    x = torch.randn(2, 3, dtype=F64, requires_grad=True)
    loss = contrastive(x, x.detach().clone(), torch.tensor([1, 0]), margin=2.0, reduction="none")
    loss.sum().backward()
    torch.testing.assert_close(loss.detach(), torch.tensor([0.0, 4.0], dtype=F64))
    assert torch.equal(x.grad, torch.zeros_like(x))  # zero subgradient, never NaN


def test_contrastive_gradcheck():
    x1, x2 = (torch.randn(6, 3, dtype=F64, requires_grad=True) for _ in range(2))
    y = torch.tensor([1, 0, 1, 0, 0, 1])
    assert gradcheck(lambda a, b: contrastive(a, b, y, margin=3.0), (x1, x2))


# --------------------------------------------------------------------------- triplet


@pytest.mark.parametrize("p", [1.0, 2.0, 3.0])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_triplet_matches_torch(p, reduction):
    g = torch.Generator().manual_seed(2)
    a, pos, neg = torch.randn(3, 10, 4, dtype=F64, generator=g)
    ref = torch.nn.TripletMarginLoss(margin=1.0, p=p, eps=0.0, reduction=reduction)
    assert_same(lambda *t: triplet(*t, margin=1.0, p=p, reduction=reduction), ref, a, pos, neg)
    # PyTorch's default eps=1e-6 moves the distances by O(eps) only.
    torch.testing.assert_close(
        triplet(a, pos, neg, p=p, reduction=reduction),
        torch.nn.TripletMarginLoss(p=p, reduction=reduction)(a, pos, neg),
        rtol=1e-5,
        atol=1e-5,
    )


def test_triplet_squared_matches_torch_with_distance():
    a, pos, neg = torch.randn(3, 10, 4, dtype=F64)
    ref = torch.nn.TripletMarginWithDistanceLoss(
        distance_function=lambda u, v: F.pairwise_distance(u, v, eps=0.0).pow(2), margin=2.0
    )
    assert_same(lambda *t: triplet(*t, margin=2.0, squared=True), ref, a, pos, neg)


def test_triplet_gradcheck_and_coincidence():
    a, pos, neg = (torch.randn(5, 3, dtype=F64, requires_grad=True) for _ in range(3))
    assert gradcheck(lambda *t: triplet(*t, margin=5.0, p=2.0), (a, pos, neg))
    same = a.detach().clone().requires_grad_(True)
    loss = triplet(same, same, same, margin=1.0)
    loss.backward()
    assert loss.item() == 1.0 and torch.isfinite(same.grad).all()


# --------------------------------------------------------------------------- online_triplet


def _pml_triplet(margin, squared, normalize, reducer=None):
    distance = LpDistance(normalize_embeddings=normalize, power=2 if squared else 1)
    kwargs = {"reducer": reducer} if reducer is not None else {}
    return pml_losses.TripletMarginLoss(margin=margin, distance=distance, **kwargs), distance


@pytest.mark.parametrize(("squared", "normalize"), [(False, False), (True, False), (False, True)])
@pytest.mark.parametrize("seed", [0, 1])
def test_batch_hard_matches_pml(squared, normalize, seed):
    x, labels = _batch(seed)
    margin = 0.3 if normalize else 1.0
    loss_fn, distance = _pml_triplet(margin, squared, normalize, MeanReducer())
    miner = BatchHardMiner(distance=distance)

    def ours(e):
        return online_triplet(e, labels, margin, squared=squared, normalize=normalize)

    assert_same(ours, lambda e: loss_fn(e, labels, miner(e, labels)), x)


def test_batch_hard_sum_and_none():
    x, labels = _batch(3)
    loss_fn, distance = _pml_triplet(1.0, False, False, SumReducer())
    miner = BatchHardMiner(distance=distance)
    assert_same(
        lambda e: online_triplet(e, labels, reduction="sum"),
        lambda e: loss_fn(e, labels, miner(e, labels)),
        x,
    )
    per_anchor = online_triplet(x, labels, reduction="none")
    d = torch.cdist(x, x)
    for a in range(len(labels)):
        pos = [k for k in range(len(labels)) if labels[k] == labels[a] and k != a]
        neg = [k for k in range(len(labels)) if labels[k] != labels[a]]
        want = max(d[a, pos].max() - d[a, neg].min() + 1.0, 0.0) if pos and neg else 0.0
        torch.testing.assert_close(per_anchor[a], torch.as_tensor(want, dtype=F64))


@pytest.mark.parametrize("squared", [False, True])
def test_batch_all_matches_pml(squared):
    x, labels = _batch(4, b=12, classes=3)
    loss_fn, _ = _pml_triplet(1.0, squared, False)  # AvgNonZeroReducer: mean of positive losses
    assert_same(
        lambda e: online_triplet(e, labels, 1.0, "batch_all", squared=squared),
        lambda e: loss_fn(e, labels),
        x,
    )
    assert online_triplet(x, labels, mining="batch_all", reduction="none").shape == (12, 12, 12)


def _semi_hard_reference(x, labels, margin):
    """FaceNet / TensorFlow semi-hard, brute force: one negative per positive pair."""
    d = torch.cdist(x, x).detach()
    b = len(labels)
    triplets = []
    for a, p in itertools.product(range(b), repeat=2):
        negatives = [k for k in range(b) if labels[k] != labels[a]]
        if labels[a] != labels[p] or a == p or not negatives:
            continue
        farther = [k for k in negatives if d[a, k] > d[a, p]]
        n = (
            min(farther, key=lambda k: d[a, k])
            if farther
            else max(negatives, key=lambda k: d[a, k])
        )
        triplets.append((a, p, n))
    a, p, n = (list(t) for t in zip(*triplets))
    return F.triplet_margin_loss(x[a], x[p], x[n], margin=margin, eps=0.0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_semi_hard_matches_brute_force(seed):
    x, labels = _batch(seed, b=10, classes=3)
    assert_same(
        lambda e: online_triplet(e, labels, 0.5, "semi_hard"),
        lambda e: _semi_hard_reference(e, labels, 0.5),
        x,
    )


@pytest.mark.parametrize("mining", ["batch_hard", "semi_hard", "batch_all"])
def test_online_gradcheck(mining):
    x, labels = _batch(7, b=8, classes=2, dim=3)
    x.requires_grad_(True)
    assert gradcheck(lambda e: online_triplet(e, labels, 2.0, mining), (x,))
    assert gradcheck(lambda e: online_triplet(e, labels, 2.0, mining, squared=True), (x,))


@pytest.mark.parametrize("mining", ["batch_hard", "semi_hard", "batch_all"])
@pytest.mark.parametrize("labels", [[1, 1, 1, 1], [0, 1, 2, 3]], ids=["one-class", "distinct"])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_nothing_to_mine_gives_connected_zero(mining, labels, reduction):
    x = torch.randn(4, 3, dtype=F64, requires_grad=True)
    loss = online_triplet(x, torch.tensor(labels), mining=mining, reduction=reduction)
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert torch.equal(x.grad, torch.zeros_like(x))


@pytest.mark.parametrize("mining", ["batch_hard", "semi_hard", "batch_all"])
def test_coincident_embeddings(mining):
    # Every embedding equal: every distance is 0 and every triplet loss is the margin.
    x = torch.ones(6, 4, dtype=F64, requires_grad=True)
    loss = online_triplet(x, torch.tensor([0, 0, 0, 1, 1, 2]), 0.7, mining)
    loss.backward()
    assert loss.item() == pytest.approx(0.7)
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("mining", ["batch_hard", "semi_hard", "batch_all"])
def test_half_precision(dtype, mining):
    x, labels = _batch(0, b=32, classes=4, dim=16)
    x = x * 40  # squared norms beyond fp16's range
    ref = online_triplet(x, labels, 5.0, mining)
    xh = x.to(dtype).requires_grad_(True)
    out = online_triplet(xh, labels, 5.0, mining)
    out.backward()
    assert out.dtype == dtype and torch.isfinite(out) and torch.isfinite(xh.grad).all()
    torch.testing.assert_close(out.double(), ref, rtol=0.05, atol=0.5)


def test_modules_and_registry():
    x, labels = _batch(0)
    m = losskit.build_loss("online_triplet", margin=0.5, mining="batch_all", squared=True)
    assert isinstance(m, losskit.OnlineTripletLoss)
    torch.testing.assert_close(
        m(x, labels), online_triplet(x, labels, 0.5, "batch_all", squared=True)
    )
    t = losskit.TripletLoss(margin=0.2, p=1.0, reduction="sum")
    torch.testing.assert_close(
        t(x, x.flip(0), x.roll(1, 0)),
        triplet(x, x.flip(0), x.roll(1, 0), 0.2, 1.0, reduction="sum"),
    )
    c = losskit.ContrastiveLoss(margin=2.0, reduction="none")
    y = labels % 2
    torch.testing.assert_close(
        c(x, x.flip(0), y), contrastive(x, x.flip(0), y, 2.0, reduction="none")
    )
    assert "mining='batch_all'" in repr(m)


def test_errors():
    x, labels = _batch(0, b=4)
    with pytest.raises(
        ValueError,
        match=r"online_triplet: expected `embeddings` to be 2-D \(B, D\), got shape \(4,\)",
    ):
        online_triplet(x[:, 0], labels)
    with pytest.raises(TypeError, match=r"online_triplet: expected `embeddings` to be a floating"):
        online_triplet(labels.view(4, 1), labels)
    with pytest.raises(
        TypeError, match=r"expected `labels` to hold integer class indices, got dtype torch.float64"
    ):
        online_triplet(x, labels.double())
    with pytest.raises(
        ValueError,
        match=r"expected `labels` of shape \(4,\) matching embeddings \(B=4\), got \(3,\)",
    ):
        online_triplet(x, labels[:3])
    with pytest.raises(
        ValueError,
        match=r"expected `mining` one of .* got 'batch_hrd' \(did you mean 'batch_hard'\?\)",
    ):
        online_triplet(x, labels, mining="batch_hrd")
    with pytest.raises(
        ValueError, match=r"online_triplet: expected `margin` in \[0, inf\), got -1.0"
    ):
        online_triplet(x, labels, margin=-1.0)
    with pytest.raises(TypeError, match=r"expected `squared` to be a bool, got int"):
        online_triplet(x, labels, squared=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"expected `reduction` one of"):
        online_triplet(x, labels, reduction="avg")  # type: ignore[arg-type]
    with pytest.raises(
        ValueError,
        match=r"triplet: expected `negative` of the same shape as `anchor` \(4, 5\), got \(3, 5\)",
    ):
        triplet(x, x, x[:3])
    with pytest.raises(ValueError, match=r"triplet: expected `p` in \(0, inf\), got 0"):
        triplet(x, x, x, p=0)
    with pytest.raises(ValueError, match=r"triplet: expected `margin` in \[0, inf\), got -0.5"):
        triplet(x, x, x, margin=-0.5)
    with pytest.raises(ValueError, match=r"contrastive: expected `x2` of the same shape as `x1`"):
        contrastive(x, x[:, :2], labels)
    with pytest.raises(
        ValueError, match=r"contrastive: expected `similar` of shape \(4,\) \(B=4\), got \(4, 1\)"
    ):
        contrastive(x, x, labels.view(4, 1))
    with pytest.raises(ValueError, match=r"contrastive: expected `margin` in \[0, inf\), got -2"):
        contrastive(x, x, labels, margin=-2)
    with pytest.raises(
        ValueError, match=r"OnlineTripletLoss: expected `mining` one of .*'semi_hard'\?\)"
    ):
        losskit.OnlineTripletLoss(mining="semihard")
    with pytest.raises(ValueError, match=r"TripletLoss: expected `margin` in \[0, inf\), got -1"):
        losskit.TripletLoss(margin=-1)
    with pytest.raises(ValueError, match=r"ContrastiveLoss: expected `reduction` one of"):
        losskit.ContrastiveLoss(reduction="mena")  # type: ignore[arg-type]
