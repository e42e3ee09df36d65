"""Samplers: class balance, M-per-class batch composition, determinism and errors."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import scipy.stats
import torch
from torch.utils.data import DataLoader, TensorDataset

from losskit.train.samplers import (
    ClassBalancedSampler,
    MPerClassSampler,
    class_counts,
    make_sampler,
)

# 90 / 9 / 1 samples: heavily imbalanced, and one class smaller than m.
IMBALANCED = torch.tensor([0] * 90 + [1] * 9 + [2] * 1)


def test_random_means_no_sampler():
    assert make_sampler("random", IMBALANCED, batch_size=8) is None


def test_class_counts_matches_numpy_bincount():
    labels = torch.tensor([4, 0, 4, 2, 4])
    assert class_counts(labels).tolist() == np.bincount(labels.numpy()).tolist()
    assert class_counts(labels, 7).tolist() == np.bincount(labels.numpy(), minlength=7).tolist()
    with pytest.raises(ValueError, match=r"class_counts: expected `labels` in \[0, 2\]"):
        class_counts(labels, 3)


def test_balanced_sampler_draws_each_class_equally_often():
    sampler = make_sampler("balanced", IMBALANCED, batch_size=8, seed=0)
    assert isinstance(sampler, ClassBalancedSampler) and len(sampler) == len(IMBALANCED)
    draws = []
    for epoch in range(60):
        sampler.set_epoch(epoch)
        draws += list(sampler)
    assert min(draws) >= 0 and max(draws) < len(IMBALANCED)
    shares = torch.bincount(IMBALANCED[torch.tensor(draws)]).double() / len(draws)
    # 6,000 draws, p = 1/3 each: the standard error is 0.006.
    torch.testing.assert_close(
        shares, torch.full((3,), 1 / 3, dtype=torch.double), atol=0.03, rtol=0
    )
    # Within a class, samples are equally likely: a chi-square test of class 0's draws.
    per_sample = np.bincount([i for i in draws if i < 90], minlength=90)
    assert scipy.stats.chisquare(per_sample).pvalue > 0.01


def test_balanced_sampler_is_deterministic_per_seed_and_epoch():
    a, b = ClassBalancedSampler(IMBALANCED, seed=1), ClassBalancedSampler(IMBALANCED, seed=1)
    assert list(a) == list(b) == list(a)
    a.set_epoch(1)
    assert list(a) != list(b)
    assert list(ClassBalancedSampler(IMBALANCED, seed=2)) != list(b)


def _batches(sampler: MPerClassSampler) -> list[list[int]]:
    order = list(sampler)
    assert len(order) == len(sampler) and len(order) % sampler.batch_size == 0
    return [order[i : i + sampler.batch_size] for i in range(0, len(order), sampler.batch_size)]


@pytest.mark.parametrize(("batch_size", "m"), [(12, 4), (6, 2), (3, 1)])
def test_m_per_class_batches_hold_m_samples_of_distinct_classes(batch_size, m):
    labels = torch.tensor([0] * 40 + [1] * 9 + [2] * 1 + [3] * 20 + [4] * 3)
    sampler = make_sampler("m_per_class", labels, batch_size=batch_size, m_per_class=m, seed=3)
    assert isinstance(sampler, MPerClassSampler)
    batches = _batches(sampler)
    assert len(batches) == len(labels) // batch_size
    seen = set()
    for batch in batches:
        counts = Counter(labels[batch].tolist())
        assert len(counts) == batch_size // m and set(counts.values()) == {m}
        for c in counts:
            picked = [i for i in batch if int(labels[i]) == c]
            if int((labels == c).sum()) >= m:  # enough samples: no repeats
                assert len(set(picked)) == m
        seen |= set(counts)
    assert seen == {0, 1, 2, 3, 4}


def test_m_per_class_with_a_dataloader_and_determinism():
    labels = torch.arange(30) % 5
    dataset = TensorDataset(torch.arange(30), labels)
    sampler = make_sampler("m_per_class", labels, batch_size=8, m_per_class=4, seed=7)
    loader = DataLoader(dataset, batch_size=8, sampler=sampler)
    first = [y.tolist() for _, y in loader]
    assert all(sorted(Counter(b).values()) == [4, 4] for b in first)
    assert first == [y.tolist() for _, y in loader]  # same epoch, same order
    sampler.set_epoch(1)
    assert first != [y.tolist() for _, y in loader]
    again = MPerClassSampler(labels, batch_size=8, m=4, seed=7)
    assert list(again) == [
        i for idx, _ in DataLoader(dataset, 8, sampler=again) for i in idx.tolist()
    ]


def test_m_per_class_small_data_gives_one_batch():
    sampler = MPerClassSampler(torch.tensor([0, 1, 1]), batch_size=4, m=2)
    assert len(_batches(sampler)) == 1


@pytest.mark.parametrize("kind", ["balanced", "m_per_class"])
def test_replicas_take_disjoint_blocks_of_one_shared_draw(kind):
    labels = torch.arange(50) % 5
    orders = [
        list(
            make_sampler(kind, labels, batch_size=4, m_per_class=2, seed=5, num_replicas=3, rank=r)
        )
        for r in range(3)
    ]
    block = 4 if kind == "m_per_class" else 1
    assert len({len(o) for o in orders}) == 1 and orders[0] != orders[1]
    # Interleaving the ranks' blocks (batches, or single indices) gives one shared draw.
    interleaved = [
        i
        for start in range(0, len(orders[0]), block)
        for o in orders
        for i in o[start : start + block]
    ]
    if kind == "balanced":
        assert len(orders[0]) == 17  # ceil(50 / 3)
        generator = torch.Generator().manual_seed(5)
        weights = 1.0 / torch.bincount(labels).double()[labels]
        assert interleaved == torch.multinomial(weights, 51, True, generator=generator).tolist()
    else:
        # 50 // (4 * 3) = 4 batches each: the 12 batches one process draws for 50 // 4 = 12.
        assert len(orders[0]) == 16
        assert interleaved == list(MPerClassSampler(labels, batch_size=4, m=2, seed=5))


@pytest.mark.parametrize(
    ("kwargs", "labels", "error", "match"),
    [
        (
            {"kind": "balance"},
            IMBALANCED,
            ValueError,
            r"make_sampler: expected `kind` one of .* \(did you mean 'balanced'\?\)",
        ),
        (
            {"kind": "m_per_class", "batch_size": 10},
            IMBALANCED,
            ValueError,
            r"MPerClassSampler: expected `batch_size` a multiple of m=4, got 10",
        ),
        (
            {"kind": "m_per_class", "batch_size": 16},
            IMBALANCED,
            ValueError,
            r"expected `labels` at least batch_size / m = 4 classes, got 3",
        ),
        (
            {"kind": "m_per_class", "batch_size": 2},
            IMBALANCED,
            ValueError,
            r"expected `batch_size` to be an integer >= 4, got 2",
        ),
        (
            {"kind": "balanced"},
            IMBALANCED.float(),
            TypeError,
            r"ClassBalancedSampler: expected `labels` to hold integer class indices",
        ),
        (
            {"kind": "balanced"},
            IMBALANCED.view(10, 10),
            ValueError,
            r"expected `labels` to be 1-D \(N,\), got shape \(10, 10\)",
        ),
        (
            {"kind": "balanced"},
            torch.tensor([0, -1]),
            ValueError,
            r"expected `labels` non-negative class indices, got a label -1",
        ),
        (
            {"kind": "balanced"},
            torch.tensor([], dtype=torch.long),
            ValueError,
            r"expected `labels` at least one label, got none",
        ),
        (
            {"kind": "balanced", "num_replicas": 2, "rank": 2},
            IMBALANCED,
            ValueError,
            r"ClassBalancedSampler: expected `rank` in \[0, 1\] \(num_replicas=2\), got 2",
        ),
        (
            {"kind": "m_per_class", "num_replicas": 0},
            IMBALANCED,
            ValueError,
            r"MPerClassSampler: expected `num_replicas` to be an integer >= 1, got 0",
        ),
    ],
)
def test_sampler_errors(kwargs, labels, error, match):
    options = {"batch_size": 8, **kwargs}
    with pytest.raises(error, match=match):
        make_sampler(options.pop("kind"), labels, **options)
