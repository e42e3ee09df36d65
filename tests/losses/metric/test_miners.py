"""Triplet miners against pytorch-metric-learning's miners and brute-force definitions."""

from __future__ import annotations

import itertools

import pytest
import torch
from pytorch_metric_learning.distances import LpDistance
from pytorch_metric_learning.miners import BatchHardMiner, TripletMarginMiner
from pytorch_metric_learning.utils import loss_and_miner_utils as lmu

from losskit.functional import pairwise_euclidean
from losskit.losses.metric.miners import (
    batch_all_triplets,
    batch_hard_triplets,
    label_masks,
    semi_hard_negatives,
)

F64 = torch.float64


def _batch(seed: int, b: int = 12, classes: int = 3, dim: int = 4):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, dim, dtype=F64, generator=g)
    labels = torch.randint(0, classes, (b,), generator=g)
    return x, labels


def test_label_masks_brute_force():
    labels = torch.tensor([2, 0, 2, 1, 0])
    pos, neg = label_masks(labels)
    for i, j in itertools.product(range(5), repeat=2):
        assert pos[i, j] == (labels[i] == labels[j] and i != j)
        assert neg[i, j] == (labels[i] != labels[j])


@pytest.mark.parametrize("seed", range(4))
def test_batch_hard_matches_pml(seed):
    x, labels = _batch(seed)
    p, n, valid = batch_hard_triplets(pairwise_euclidean(x), labels)
    a_ref, p_ref, n_ref = BatchHardMiner(distance=LpDistance(normalize_embeddings=False))(x, labels)
    anchors = torch.arange(len(labels))[valid]
    assert torch.equal(anchors, a_ref)
    assert torch.equal(p[valid], p_ref)
    assert torch.equal(n[valid], n_ref)


@pytest.mark.parametrize("seed", range(4))
def test_semi_hard_brute_force_and_pml(seed):
    x, labels = _batch(seed, b=10, classes=3)
    d = pairwise_euclidean(x)
    n_idx, valid = semi_hard_negatives(d, labels)
    margin = 0.5
    pml = TripletMarginMiner(
        margin=margin, type_of_triplets="semihard", distance=LpDistance(normalize_embeddings=False)
    )
    a_s, p_s, n_s = pml(x, labels)
    b = len(labels)
    for a, p in itertools.product(range(b), repeat=2):
        negatives = [k for k in range(b) if labels[k] != labels[a]]
        is_pair = labels[a] == labels[p] and a != p
        assert bool(valid[a, p]) == (is_pair and bool(negatives))
        if not valid[a, p]:
            continue
        farther = [k for k in negatives if d[a, k] > d[a, p]]
        expected = (
            min(farther, key=lambda k: d[a, k])
            if farther
            else max(negatives, key=lambda k: d[a, k])
        )
        assert n_idx[a, p] == expected
        # PML's semi-hard triplets (d_ap < d_an <= d_ap + margin) of this pair: ours is the closest.
        in_pml = n_s[(a_s == a) & (p_s == p)]
        if len(in_pml):
            assert n_idx[a, p] == in_pml[d[a, in_pml].argmin()]


def test_batch_all_matches_pml():
    _, labels = _batch(5, b=9)
    mask = batch_all_triplets(labels)
    ours = set(map(tuple, mask.nonzero().tolist()))
    ref = set(zip(*(t.tolist() for t in lmu.get_all_triplets_indices(labels))))
    assert ours == ref and ours


@pytest.mark.parametrize("labels", [[3, 3, 3, 3], [0, 1, 2, 3]], ids=["one-class", "distinct"])
def test_nothing_to_mine(labels):
    lab = torch.tensor(labels)
    d = pairwise_euclidean(torch.randn(4, 2))
    assert not batch_hard_triplets(d, lab)[2].any()
    n_idx, valid = semi_hard_negatives(d, lab)
    assert not valid.any() and ((n_idx >= 0) & (n_idx < 4)).all()
    assert not batch_all_triplets(lab).any()


def test_miners_do_not_track_gradients():
    x, labels = _batch(0)
    d = pairwise_euclidean(x.requires_grad_(True))
    outs = [*batch_hard_triplets(d, labels), *semi_hard_negatives(d, labels)]
    assert all(not t.requires_grad for t in outs)
