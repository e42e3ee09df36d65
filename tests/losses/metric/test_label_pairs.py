"""Tests of SupCon, Multi-Similarity (with its miner), Circle and the cross-batch memory against
pytorch-metric-learning, the papers' formulas written as loops in float64, and identities."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from pytorch_metric_learning import losses as pml
from pytorch_metric_learning import miners as pml_miners

import losskit
from losskit.functional import circle, multi_similarity, multi_similarity_pairs, nt_xent, supcon
from tests.losses.metric._compare import TOL, assert_same, value_and_grads

F64 = torch.float64


def make(batch=16, dim=5, classes=4, seed=0, dtype=F64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, dim, generator=g, dtype=dtype)
    return x, torch.randint(0, classes, (batch,), generator=g)


def supcon_loop(x, labels, t):
    """Khosla et al.'s L_out, one anchor at a time."""
    s = F.normalize(x, dim=1) @ F.normalize(x, dim=1).T / t
    losses = []
    for a in range(len(x)):
        others = [r for r in range(len(x)) if r != a]
        positives = [p for p in others if labels[p] == labels[a]]
        if positives:
            denominator = torch.log(sum(torch.exp(s[a, r]) for r in others))
            losses.append(-sum(s[a, p] - denominator for p in positives) / len(positives))
    return torch.stack(losses).mean()


def circle_loop(x, labels, m, gamma):
    s = F.normalize(x, dim=1) @ F.normalize(x, dim=1).T
    losses = []
    for a in range(len(x)):
        pos = [s[a, p] for p in range(len(x)) if p != a and labels[p] == labels[a]]
        neg = [s[a, n] for n in range(len(x)) if labels[n] != labels[a]]
        if pos and neg:
            lp = [-gamma * max(1 + m - float(v.detach()), 0.0) * (v - (1 - m)) for v in pos]
            ln = [gamma * max(float(v.detach()) + m, 0.0) * (v - m) for v in neg]
            inner = torch.logsumexp(torch.stack(lp), 0) + torch.logsumexp(torch.stack(ln), 0)
            losses.append(F.softplus(inner))
    return torch.stack(losses).mean()


def ms_loop(x, labels, alpha, beta, base):
    s = F.normalize(x, dim=1) @ F.normalize(x, dim=1).T
    total = 0.0
    for a in range(len(x)):
        pos = [s[a, p] for p in range(len(x)) if p != a and labels[p] == labels[a]]
        neg = [s[a, n] for n in range(len(x)) if labels[n] != labels[a]]
        pos_sum = sum((torch.exp(-alpha * (v - base)) for v in pos), torch.tensor(0.0, dtype=F64))
        neg_sum = sum((torch.exp(beta * (v - base)) for v in neg), torch.tensor(0.0, dtype=F64))
        total = total + torch.log1p(pos_sum) / alpha + torch.log1p(neg_sum) / beta
    return total / len(x)


@pytest.mark.parametrize("temperature", [0.1, 0.5])
@pytest.mark.parametrize("classes", [2, 6])
def test_supcon_matches_pytorch_metric_learning_and_the_formula(temperature, classes):
    x, labels = make(classes=classes)
    ours = lambda x: supcon(x, labels, temperature)  # noqa: E731
    assert_same(ours, lambda x: pml.SupConLoss(temperature)(x, labels), x)
    assert_same(ours, lambda x: supcon_loop(x, labels, temperature), x)


def test_supcon_with_one_positive_per_anchor_is_nt_xent():
    x, _ = make(batch=12, seed=1)
    views = torch.cat([torch.arange(6), torch.arange(6)])
    assert_same(
        lambda x: supcon(x, views, 0.3, reduction="none"),
        lambda x: nt_xent(x[:6], x[6:], 0.3, reduction="none"),
        x,
    )


@pytest.mark.parametrize("mining", ["none", "multi_similarity"])
@pytest.mark.parametrize("alpha,beta,base", [(2.0, 50.0, 0.5), (1.0, 10.0, 0.0)])
def test_multi_similarity_matches_pytorch_metric_learning(mining, alpha, beta, base):
    x, labels = make(seed=2)
    reference = pml.MultiSimilarityLoss(alpha=alpha, beta=beta, base=base)
    miner = pml_miners.MultiSimilarityMiner(epsilon=0.1)

    def pml_loss(x):
        return reference(x, labels, miner(x, labels) if mining != "none" else None)

    assert_same(
        lambda x: multi_similarity(x, labels, alpha, beta, base, mining=mining, epsilon=0.1),
        pml_loss,
        x,
    )


def test_multi_similarity_matches_the_formula():
    x, labels = make(batch=10, seed=3)
    assert_same(
        lambda x: multi_similarity(x, labels), lambda x: ms_loop(x, labels, 2.0, 50.0, 0.5), x
    )


def test_multi_similarity_miner_matches_pytorch_metric_learning_pairs():
    x, labels = make(batch=20, seed=4)
    s = F.normalize(x, dim=1) @ F.normalize(x, dim=1).T
    same = labels[:, None] == labels[None, :]
    positive, negative = same & ~torch.eye(20, dtype=torch.bool), ~same
    pos, neg = multi_similarity_pairs(s, positive, negative, epsilon=0.05)
    a1, p, a2, n = pml_miners.MultiSimilarityMiner(epsilon=0.05)(x, labels)
    assert set(zip(a1.tolist(), p.tolist())) == set(map(tuple, pos.nonzero().tolist()))
    assert set(zip(a2.tolist(), n.tolist())) == set(map(tuple, neg.nonzero().tolist()))
    assert 0 < pos.sum() < positive.sum() and 0 < neg.sum() < negative.sum()


@pytest.mark.parametrize("margin,gamma", [(0.25, 256.0), (0.4, 80.0)])
def test_circle_matches_pytorch_metric_learning_and_the_formula(margin, gamma):
    x, labels = make(seed=5)
    ours = lambda x: circle(x, labels, margin, gamma)  # noqa: E731
    assert_same(ours, lambda x: pml.CircleLoss(m=margin, gamma=gamma)(x, labels), x)
    assert_same(ours, lambda x: circle_loop(x, labels, margin, gamma), x)


LOSSES = {  # circle's pair weights are constants (detached), so gradcheck leaves it out
    "supcon": lambda x, y, **kw: supcon(x, y, 0.5, **kw),
    "multi_similarity": lambda x, y, **kw: multi_similarity(x, y, 2.0, 10.0, **kw),
    "multi_similarity_mined": lambda x, y, **kw: multi_similarity(
        x, y, mining="multi_similarity", epsilon=0.3, **kw
    ),
    "circle": lambda x, y, **kw: circle(x, y, 0.25, 8.0, **kw),
}


@pytest.mark.parametrize("name", sorted(set(LOSSES) - {"circle"}))
def test_gradcheck(name):
    x, labels = make(batch=7, dim=3, classes=3, seed=6)
    assert torch.autograd.gradcheck(
        lambda x: LOSSES[name](x, labels, reduction="none"), (x.requires_grad_(),)
    )


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_explicit_reference_with_self_index_equals_the_batch_default(name):
    x, labels = make(seed=7)
    loss = LOSSES[name]
    default = value_and_grads(lambda x: loss(x, labels, reduction="none"), x)
    explicit = value_and_grads(
        lambda x: loss(
            x,
            labels,
            reference=x,
            reference_labels=labels,
            self_index=torch.arange(16),
            reduction="none",
        ),
        x,
    )
    torch.testing.assert_close(default[0], explicit[0], **TOL)
    torch.testing.assert_close(default[1][0], explicit[1][0], **TOL)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_reductions_and_anchors_without_pairs(name):
    x, _ = make(batch=5, seed=8)
    labels = torch.tensor([0, 0, 1, 1, 2])  # the last anchor has no positive
    per_anchor = LOSSES[name](x, labels, reduction="none")
    assert per_anchor.shape == (5,)
    torch.testing.assert_close(LOSSES[name](x, labels, reduction="sum"), per_anchor.sum())
    denominator = 5 if name.startswith("multi_similarity") else 4
    if name != "multi_similarity":  # the last anchor adds 0 (Multi-Similarity: its negatives)
        assert per_anchor[4] == 0
    torch.testing.assert_close(LOSSES[name](x, labels), per_anchor.sum() / denominator)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_one_sample_is_zero_and_connected(name):
    x = torch.randn(1, 3, requires_grad=True)
    out = LOSSES[name](x, torch.tensor([0]))
    out.backward()
    assert out == 0 and torch.isfinite(x.grad).all()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_half_precision_is_finite(name, dtype):
    x, labels = make(dtype=dtype, seed=9)
    x.requires_grad_()
    out = LOSSES[name](x, labels)
    (grad,) = torch.autograd.grad(out, x)
    assert out.dtype == dtype and torch.isfinite(out) and torch.isfinite(grad).all()


def test_modules_call_the_functions():
    x, labels = make(seed=10)
    ref, ref_labels = make(batch=9, seed=11)
    cases = [
        (losskit.SupConLoss(temperature=0.2), lambda *a, **k: supcon(*a, 0.2, **k)),
        (
            losskit.MultiSimilarityLoss(alpha=1.0, mining="multi_similarity", epsilon=0.2),
            lambda *a, **k: multi_similarity(*a, 1.0, mining="multi_similarity", epsilon=0.2, **k),
        ),
        (losskit.CircleLoss(margin=0.3, gamma=64.0), lambda *a, **k: circle(*a, 0.3, 64.0, **k)),
    ]
    for module, fn in cases:
        torch.testing.assert_close(module(x, labels), fn(x, labels))
        kw = {"reference": ref, "reference_labels": ref_labels}
        torch.testing.assert_close(module(x, labels, **kw), fn(x, labels, **kw))
        assert "reduction='mean'" in repr(module)


@pytest.mark.parametrize(
    "loss,reference",
    [
        (lambda: losskit.SupConLoss(temperature=0.1), lambda: pml.SupConLoss(0.1)),
        (lambda: losskit.MultiSimilarityLoss(), lambda: pml.MultiSimilarityLoss()),
        (
            lambda: losskit.CircleLoss(margin=0.4, gamma=80.0),
            lambda: pml.CircleLoss(m=0.4, gamma=80),
        ),
    ],
)
def test_cross_batch_memory_matches_pytorch_metric_learning(loss, reference):
    ours = losskit.CrossBatchMemory(loss(), 5, memory_size=20).double()
    theirs = pml.CrossBatchMemory(reference(), 5, memory_size=20)
    g = torch.Generator().manual_seed(12)
    for step in range(5):  # the queue fills at the fourth batch, then wraps around
        x = torch.randn(6, 5, generator=g, dtype=F64)
        labels = torch.randint(0, 3, (6,), generator=g)
        assert_same(lambda x, y=labels: ours(x, y), lambda x, y=labels: theirs(x, y), x)
        assert len(ours) == min(6 * (step + 1), 20)


def test_cross_batch_memory_queue_and_state():
    xbm = losskit.CrossBatchMemory(losskit.SupConLoss(), 3, memory_size=5)
    x = torch.arange(12, dtype=torch.float32).reshape(4, 3)
    xbm(x, torch.tensor([0, 1, 0, 1]))
    assert len(xbm) == 4 and torch.equal(xbm.memory[:4], x)
    slots = xbm.enqueue(x[:3] + 100, torch.tensor([2, 2, 2]))
    assert slots.tolist() == [4, 0, 1] and len(xbm) == 5
    assert xbm.memory_labels.tolist() == [2, 2, 0, 1, 2]
    state = xbm.state_dict()
    restored = losskit.CrossBatchMemory(losskit.SupConLoss(), 3, memory_size=5)
    restored.load_state_dict(state)
    assert len(restored) == 5 and restored._next == 2
    assert torch.equal(restored.memory, xbm.memory)
    xbm.reset()
    assert len(xbm) == 0
    batch = torch.randn(2, 3, dtype=F64, requires_grad=True)
    xbm(batch, torch.tensor([0, 0])).backward()
    assert xbm.memory.dtype == F64 and not xbm.memory.requires_grad and batch.grad is not None


@pytest.mark.parametrize(
    "call,error,match",
    [
        (lambda x, y: supcon(x, y, temperature=0.0), ValueError, "supcon: expected `temperature`"),
        (lambda x, y: supcon(x, y[:3]), ValueError, r"`labels` of shape \(16,\)"),
        (lambda x, y: supcon(x.int(), y), TypeError, "`embeddings` to be a floating"),
        (lambda x, y: supcon(x, y, reference=x), ValueError, "`reference_labels` with"),
        (
            lambda x, y: supcon(x, y, reference_labels=y),
            ValueError,
            "`reference` with `reference_labels`",
        ),
        (
            lambda x, y: supcon(x, y, reference=x[:, :2], reference_labels=y),
            ValueError,
            r"`reference` of shape \(M, 5\)",
        ),
        (
            lambda x, y: supcon(x, y, reference=x, reference_labels=y[:2]),
            ValueError,
            r"`reference_labels` of shape \(16,\)",
        ),
        (
            lambda x, y: supcon(x, y, reference=x, reference_labels=y, self_index=y + 16),
            ValueError,
            r"`self_index` in \[-1, 15\]",
        ),
        (lambda x, y: multi_similarity(x, y, alpha=0.0), ValueError, "`alpha` in"),
        (lambda x, y: multi_similarity(x, y, mining="hard"), ValueError, "`mining` one of"),
        (lambda x, y: multi_similarity(x, y, epsilon=-1.0), ValueError, "`epsilon` in"),
        (lambda x, y: circle(x, y, gamma=0.0), ValueError, "circle: expected `gamma`"),
        (lambda x, y: circle(x, y, reduction="avg"), ValueError, "`reduction` one of"),
        (
            lambda x, y: losskit.MultiSimilarityLoss(mining="ms"),
            ValueError,
            "MultiSimilarityLoss: expected `mining`",
        ),
        (
            lambda x, y: losskit.CrossBatchMemory(losskit.TripletLoss(), 5),
            TypeError,
            "CrossBatchMemory: expected `loss` a pair loss",
        ),
        (
            lambda x, y: losskit.CrossBatchMemory(losskit.SupConLoss(), 5, memory_size=0),
            ValueError,
            "`memory_size` to be an integer >= 1",
        ),
        (
            lambda x, y: losskit.CrossBatchMemory(losskit.SupConLoss(), 5, memory_size=8)(x, y),
            ValueError,
            r"`embeddings` of shape \(B, 5\) with B <= memory_size=8, got \(16, 5\)",
        ),
    ],
)
def test_errors(call, error, match):
    x, labels = make()
    with pytest.raises(error, match=match):
        call(x, labels)
