"""info_nce and nt_xent against pytorch-metric-learning's NTXentLoss and dense cross-entropy."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from pytorch_metric_learning.losses import NTXentLoss as PMLNTXent
from pytorch_metric_learning.reducers import SumReducer
from torch.autograd import gradcheck

import losskit
from losskit.functional import info_nce, nt_xent
from tests.losses.metric._compare import assert_same

F64 = torch.float64


def _randn(*shape, seed=0):
    return torch.randn(*shape, dtype=F64, generator=torch.Generator().manual_seed(seed))


def _cos(a, b):
    """Cosine similarity of a (B, D) with b (M, D) or (B, M, D), via F.cosine_similarity."""
    other = b.unsqueeze(0) if b.dim() == 2 else b
    return F.cosine_similarity(a.unsqueeze(1), other, dim=-1)


def _dense_info_nce(q, k, neg, tau, reduction):
    """Textbook InfoNCE: logits [s(q, k+), s(q, negatives)] / tau, target 0."""
    pos = F.cosine_similarity(q, k, dim=-1).unsqueeze(1)
    logits = torch.cat([pos, _cos(q, neg)], dim=1) / tau
    return F.cross_entropy(logits, torch.zeros(len(q), dtype=torch.long), reduction=reduction)


# --------------------------------------------------------------------------- nt_xent


@pytest.mark.parametrize("tau", [0.07, 0.5, 2.0])
def test_nt_xent_matches_pml(tau):
    z_i, z_j = _randn(2, 9, 6, seed=1)
    labels = torch.arange(9).repeat(2)
    ref = PMLNTXent(temperature=tau)
    assert_same(
        lambda a, b: nt_xent(a, b, tau),
        lambda a, b: ref(torch.cat([a, b]), labels),
        z_i,
        z_j,
    )


def test_nt_xent_sum_and_none():
    z_i, z_j = _randn(2, 7, 4, seed=2)
    labels = torch.arange(7).repeat(2)
    ref = PMLNTXent(temperature=0.3, reducer=SumReducer())
    assert_same(
        lambda a, b: nt_xent(a, b, 0.3, reduction="sum"),
        lambda a, b: ref(torch.cat([a, b]), labels),
        z_i,
        z_j,
    )
    per_view = nt_xent(z_i, z_j, 0.3, reduction="none")
    assert per_view.shape == (14,)
    # Symmetry: swapping the views swaps the two halves.
    torch.testing.assert_close(nt_xent(z_j, z_i, 0.3, reduction="none"), per_view.roll(7))


def test_nt_xent_is_info_nce_over_both_directions():
    # Row a of NT-Xent is InfoNCE of view a against its partner with the 2N - 2 other views as
    # per-sample negatives.
    z_i, z_j = _randn(2, 5, 3, seed=3)
    z = torch.cat([z_i, z_j])
    partner = torch.cat([z_j, z_i])
    rows = torch.arange(10)
    others = torch.stack([z[(rows != a) & (rows != (a + 5) % 10)] for a in range(10)])
    torch.testing.assert_close(
        nt_xent(z_i, z_j, 0.2, reduction="none"),
        info_nce(z, partner, others, 0.2, reduction="none"),
    )


def test_nt_xent_gradcheck():
    z_i, z_j = (t.requires_grad_(True) for t in _randn(2, 4, 3, seed=4))
    assert gradcheck(lambda a, b: nt_xent(a, b, 0.5), (z_i, z_j))


def test_nt_xent_single_pair_is_zero():
    z = _randn(1, 3).requires_grad_(True)
    loss = nt_xent(z, -z, 0.1)
    loss.backward()
    assert loss.item() == 0.0 and torch.isfinite(z.grad).all()


# --------------------------------------------------------------------------- info_nce


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_info_nce_in_batch_matches_dense_and_pml(reduction):
    q, k = _randn(2, 8, 5, seed=5)

    def dense(a, b):
        logits = _cos(a, b) / 0.1
        return F.cross_entropy(logits, torch.arange(8), reduction=reduction)

    assert_same(lambda a, b: info_nce(a, b, temperature=0.1, reduction=reduction), dense, q, k)
    if reduction == "mean":
        # PML's NT-Xent with a reference set: query i's positive is key i, the other keys are
        # its negatives (a distinct ref_labels object, else PML drops the diagonal pairs).
        ref = PMLNTXent(temperature=0.1)
        labels = torch.arange(8)
        assert_same(
            lambda a, b: info_nce(a, b, temperature=0.1),
            lambda a, b: ref(a, labels, ref_emb=b, ref_labels=labels.clone()),
            q,
            k,
        )


@pytest.mark.parametrize("per_sample", [False, True], ids=["shared(K,D)", "per-sample(B,K,D)"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_info_nce_explicit_negatives(per_sample, reduction):
    q, k = _randn(2, 6, 4, seed=6)
    neg = _randn(6, 5, 4, seed=7) if per_sample else _randn(5, 4, seed=7)
    assert_same(
        lambda a, b, n: info_nce(a, b, n, 0.07, reduction=reduction),
        lambda a, b, n: _dense_info_nce(a, b, n, 0.07, reduction),
        q,
        k,
        neg,
    )


def test_info_nce_shared_equals_repeated_per_sample():
    q, k = _randn(2, 4, 3, seed=8)
    neg = _randn(6, 3, seed=9)
    torch.testing.assert_close(info_nce(q, k, neg), info_nce(q, k, neg.expand(4, 6, 3)))


def test_info_nce_gradcheck():
    q, k = (t.requires_grad_(True) for t in _randn(2, 4, 3, seed=10))
    n2 = _randn(5, 3, seed=11).requires_grad_(True)
    n3 = _randn(4, 2, 3, seed=12).requires_grad_(True)
    assert gradcheck(lambda a, b: info_nce(a, b, temperature=0.3), (q, k))
    assert gradcheck(lambda a, b, n: info_nce(a, b, n, 0.3), (q, k, n2))
    assert gradcheck(lambda a, b, n: info_nce(a, b, n, 0.3), (q, k, n3))


# --------------------------------------------------------------------------- precision, modules


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("tau", [0.01, 0.001])
def test_half_precision_small_temperature(dtype, tau):
    q, k = _randn(2, 16, 32, seed=13) * 50
    neg = _randn(16, 8, 32, seed=14) * 50
    cases = [
        (lambda *t: info_nce(*t, temperature=tau), (q, k)),
        (lambda *t: info_nce(*t, temperature=tau), (q, k, neg)),
        (lambda *t: nt_xent(*t, temperature=tau), (q, k)),
    ]
    for fn, inputs in cases:
        half = [t.to(dtype).requires_grad_(True) for t in inputs]
        out = fn(*half)
        out.backward()
        assert out.dtype == dtype and torch.isfinite(out)
        assert all(torch.isfinite(t.grad).all() for t in half)
        ref = fn(*(t.to(dtype).double() for t in inputs))
        torch.testing.assert_close(out.double(), ref, rtol=0.02, atol=0.02 / tau)


def test_modules_and_registry():
    q, k = _randn(2, 5, 3, seed=15)
    neg = _randn(4, 3, seed=16)
    m = losskit.build_loss("info_nce", temperature=0.2, reduction="sum")
    assert isinstance(m, losskit.InfoNCELoss) and "temperature=0.2" in repr(m)
    torch.testing.assert_close(m(q, k, neg), info_nce(q, k, neg, 0.2, reduction="sum"))
    torch.testing.assert_close(m(q, k), info_nce(q, k, temperature=0.2, reduction="sum"))
    n = losskit.build_loss("nt_xent", temperature=0.1, reduction="none")
    assert isinstance(n, losskit.NTXentLoss)
    torch.testing.assert_close(n(q, k), nt_xent(q, k, 0.1, reduction="none"))


def test_errors():
    q, k = _randn(2, 4, 3)
    with pytest.raises(ValueError, match=r"info_nce: expected `temperature` in \(0, inf\), got 0"):
        info_nce(q, k, temperature=0)
    with pytest.raises(
        ValueError, match=r"nt_xent: expected `temperature` in \(0, inf\), got -0.5"
    ):
        nt_xent(q, k, temperature=-0.5)
    with pytest.raises(TypeError, match=r"expected `temperature` to be a real number, got str"):
        info_nce(q, k, temperature="0.1")  # type: ignore[arg-type]
    with pytest.raises(
        ValueError,
        match=r"info_nce: expected `negative_keys` to be 2-D or 3-D \(K, D\) or \(B, K, D\), "
        r"got shape \(3,\)",
    ):
        info_nce(q, k, q[0])
    with pytest.raises(
        ValueError, match=r"expected `negative_keys` to be 2-D or 3-D .* got shape \(1, 4, 2, 3\)"
    ):
        info_nce(q, k, q.view(1, 4, 1, 3).expand(1, 4, 2, 3))
    with pytest.raises(
        ValueError,
        match=r"expected `negative_keys` of shape \(\*, 3\) matching query \(4, 3\), got \(5, 2\)",
    ):
        info_nce(q, k, torch.zeros(5, 2, dtype=F64))
    with pytest.raises(
        ValueError,
        match=r"`negative_keys` of shape \(4, \*, 3\) matching query \(4, 3\), got \(2, 5, 3\)",
    ):
        info_nce(q, k, torch.zeros(2, 5, 3, dtype=F64))
    with pytest.raises(
        ValueError,
        match=r"info_nce: expected `positive_key` of the same shape as `query` \(4, 3\), "
        r"got \(3, 3\)",
    ):
        info_nce(q, k[:3])
    with pytest.raises(
        ValueError, match=r"info_nce: expected `query` to be 2-D \(B, D\), got shape \(3,\)"
    ):
        info_nce(q[0], k[0])
    with pytest.raises(
        TypeError, match=r"info_nce: expected `negative_keys` to be a floating-point"
    ):
        info_nce(q, k, torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(
        ValueError,
        match=r"nt_xent: expected `z_j` of the same shape as `z_i` \(4, 3\), got \(4, 2\)",
    ):
        nt_xent(q, k[:, :2])
    with pytest.raises(ValueError, match=r"nt_xent: expected `z_i` to be 2-D \(N, D\)"):
        nt_xent(q[0], k[0])
    with pytest.raises(
        ValueError, match=r"InfoNCELoss: expected `temperature` in \(0, inf\), got 0.0"
    ):
        losskit.InfoNCELoss(temperature=0.0)
    with pytest.raises(
        ValueError, match=r"NTXentLoss: expected `reduction` one of .*\(did you mean 'sum'\?\)"
    ):
        losskit.NTXentLoss(reduction="summ")  # type: ignore[arg-type]
