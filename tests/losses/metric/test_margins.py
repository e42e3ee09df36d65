"""Tests of the margin-softmax proxy losses (ArcFace, CosFace, sub-center ArcFace) and ProxyNCA++
against pytorch-metric-learning, a dense float64 formula and the identities that tie them to the
normalised-softmax cross-entropy.

pytorch-metric-learning stores the class weights transposed (``W (D, C)``), takes ArcFace's margin
in degrees and averages over the batch; with ``proxies = W.T`` and the margin in radians the
values and gradients agree to float64 rounding.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from pytorch_metric_learning import losses as pml

import losskit
from losskit.functional import (
    arcface,
    cosface,
    cosine_softmax_cross_entropy,
    proxy_nca,
    subcenter_arcface,
)
from tests.losses.metric._compare import TOL, assert_same
from tests.losses.metric.test_chunked import _LargestTensor

F64 = torch.float64


def make(batch=12, classes=9, dim=5, seed=0, dtype=F64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, dim, generator=g, dtype=dtype)
    proxies = torch.randn(classes, dim, generator=g, dtype=dtype)
    labels = torch.randint(0, classes, (batch,), generator=g)
    return x, labels, proxies


def dense(x, labels, proxies, scale, target, sub_centers=1, reduction="mean"):
    """Textbook: cosines (max-pooled over sub-centers), target logit replaced, F.cross_entropy."""
    cos = F.normalize(x, dim=1) @ F.normalize(proxies, dim=1).T
    cos = cos.unflatten(1, (-1, sub_centers)).amax(dim=2)
    mask = F.one_hot(labels, cos.shape[1]).bool()
    modified = target(cos[mask])
    logits = cos.masked_scatter(mask, modified)
    return F.cross_entropy(scale * logits, labels, reduction=reduction)


def arc_target(m):
    def phi(c):
        theta = torch.acos(c.clamp(-1, 1))
        return torch.where(theta <= math.pi - m, torch.cos(theta + m), c - m * math.sin(m))

    return phi


def pml_module(name, classes, dim, sub_centers=3):
    if name == "arcface":
        return pml.ArcFaceLoss(classes, dim, margin=math.degrees(0.5), scale=64)
    if name == "cosface":
        return pml.CosFaceLoss(num_classes=classes, embedding_size=dim, margin=0.35, scale=64)
    return pml.SubCenterArcFaceLoss(
        num_classes=classes // sub_centers,
        embedding_size=dim,
        margin=math.degrees(0.5),
        scale=64,
        sub_centers=sub_centers,
    )


OURS = {
    "arcface": lambda x, y, p, **kw: arcface(x, y, p, 64.0, 0.5, **kw),
    "cosface": lambda x, y, p, **kw: cosface(x, y, p, 64.0, 0.35, **kw),
    "subcenter_arcface": lambda x, y, p, **kw: subcenter_arcface(x, y, p, 64.0, 0.5, **kw),
}


def grads_vs_pml(ours, reference, weight, x, labels, transposed):
    """``ours(x, proxies)`` against PML's module, whose weights are ``proxies`` (or ``.T``)."""
    x = x.clone().requires_grad_()
    proxies = (weight.T if transposed else weight).detach().clone().requires_grad_()
    out, expected = ours(x, proxies), reference(x, labels)
    torch.testing.assert_close(out, expected, **TOL)
    gx, gp = torch.autograd.grad(out, (x, proxies))
    ex, ew = torch.autograd.grad(expected, (x, weight))
    torch.testing.assert_close(gx, ex, **TOL)
    torch.testing.assert_close(gp, ew.T if transposed else ew, **TOL)


@pytest.mark.parametrize("chunk_size", [None, 3])
@pytest.mark.parametrize("name", sorted(OURS))
def test_matches_pytorch_metric_learning(name, chunk_size):
    x, _, _ = make(classes=9)
    reference = pml_module(name, 9, 5).double()
    classes = 3 if name == "subcenter_arcface" else 9
    labels = torch.randint(0, classes, (12,), generator=torch.Generator().manual_seed(1))
    grads_vs_pml(
        lambda x, p: OURS[name](x, labels, p, chunk_size=chunk_size),
        reference,
        reference.W,
        x,
        labels,
        transposed=True,
    )


def test_proxy_nca_matches_pytorch_metric_learning():
    x, labels, _ = make()
    reference = pml.ProxyNCALoss(9, 5, softmax_scale=9).double()
    grads_vs_pml(
        lambda x, p: proxy_nca(x, labels, p, chunk_size=2),
        reference,
        reference.proxies,
        x,
        labels,
        transposed=False,
    )


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("chunk_size", [None, 1, 4])
def test_arcface_matches_dense_formula_in_both_branches(reduction, chunk_size):
    x, labels, proxies = make(batch=16, classes=7, seed=3)
    with torch.no_grad():  # a third of the samples past θ = π − m, where the fallback applies
        x[:6] = -proxies[labels[:6]] + 0.1 * torch.randn(6, 5, dtype=F64)
    m = 0.5
    cos = F.cosine_similarity(x, proxies[labels])
    assert (cos < -math.cos(m)).sum() >= 4 and (cos > -math.cos(m)).sum() >= 4
    assert_same(
        lambda x, p: arcface(x, labels, p, 30.0, m, reduction=reduction, chunk_size=chunk_size),
        lambda x, p: dense(x, labels, p, 30.0, arc_target(m), reduction=reduction),
        x,
        proxies,
    )


@pytest.mark.parametrize("reduction", ["mean", "none"])
@pytest.mark.parametrize("chunk_size", [None, 2, 5])
def test_subcenter_matches_dense_formula(reduction, chunk_size):
    x, _, proxies = make(batch=10, classes=12, seed=4)
    labels = torch.randint(0, 4, (10,), generator=torch.Generator().manual_seed(2))
    assert_same(
        lambda x, p: subcenter_arcface(
            x, labels, p, 16.0, 0.3, sub_centers=3, reduction=reduction, chunk_size=chunk_size
        ),
        lambda x, p: dense(x, labels, p, 16.0, arc_target(0.3), 3, reduction),
        x,
        proxies,
    )


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cosface_matches_dense_formula(reduction):
    x, labels, proxies = make(seed=5)
    assert_same(
        lambda x, p: cosface(x, labels, p, 20.0, 0.2, reduction=reduction, chunk_size=4),
        lambda x, p: dense(x, labels, p, 20.0, lambda c: c - 0.2, reduction=reduction),
        x,
        proxies,
    )


@pytest.mark.parametrize("loss", [arcface, cosface])
def test_zero_margin_is_the_normalised_softmax_cross_entropy(loss):
    x, labels, proxies = make(seed=6)
    assert_same(
        lambda x, p: loss(x, labels, p, 16.0, 0.0, chunk_size=4),
        lambda x, p: cosine_softmax_cross_entropy(x, labels, p, 16.0),
        x,
        proxies,
    )


def test_one_sub_center_is_arcface_and_proxy_nca_is_a_scaled_cosine_softmax():
    x, labels, proxies = make(seed=7)
    assert_same(
        lambda x, p: subcenter_arcface(x, labels, p, sub_centers=1),
        lambda x, p: arcface(x, labels, p),
        x,
        proxies,
    )
    assert_same(
        lambda x, p: proxy_nca(x, labels, p, temperature=0.2),
        lambda x, p: cosine_softmax_cross_entropy(x, labels, p, 10.0),
        x,
        proxies,
    )


@pytest.mark.parametrize(
    "call",
    [
        lambda x, y, p: arcface(x, y, p, 8.0, 0.4, reduction="none", chunk_size=2),
        lambda x, y, p: cosface(x, y, p, 8.0, 0.3, chunk_size=4),
        lambda x, y, p: subcenter_arcface(x, y % 3, p, 8.0, 0.4, sub_centers=3, chunk_size=3),
        lambda x, y, p: proxy_nca(x, y, p, 0.5, reduction="none", chunk_size=2),
    ],
)
def test_gradcheck(call):
    x, labels, proxies = make(batch=5, classes=9, dim=4, seed=8)
    x.requires_grad_(), proxies.requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: call(a, labels, b), (x, proxies))


def test_embedding_on_its_proxy_has_finite_gradients():
    x, labels, proxies = make(seed=9)
    with torch.no_grad():
        x[:3] = proxies[labels[:3]] * 2.0  # cosine 1: dθ/ds is infinite there
    x.requires_grad_(), proxies.requires_grad_()
    out = arcface(x, labels, proxies)
    gx, gp = torch.autograd.grad(out, (x, proxies))
    assert torch.isfinite(out) and torch.isfinite(gx).all() and torch.isfinite(gp).all()


@pytest.mark.parametrize("name", sorted(OURS))
def test_never_builds_the_batch_by_classes_matrix(name):
    batch, classes, dim, chunk = 64, 3072, 8, 192
    x, labels, proxies = make(batch, classes, dim, dtype=torch.float32)
    labels = labels % (classes // 3)
    x.requires_grad_(), proxies.requires_grad_()
    with _LargestTensor() as seen:
        OURS[name](x, labels, proxies, chunk_size=chunk).backward()
    assert seen.largest <= max(classes * dim, batch * chunk)
    assert classes * dim < batch * classes


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("name", sorted(OURS))
def test_half_precision_autocast_and_inputs_are_finite(name, dtype):
    x, labels, proxies = make(24, 300, 16, seed=10, dtype=torch.float32)
    labels = labels % 100
    x.requires_grad_(), proxies.requires_grad_()
    expected = OURS[name](x, labels, proxies, chunk_size=64)
    with torch.autocast("cpu", dtype=dtype):
        out = OURS[name](x, labels, proxies, chunk_size=64)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, expected, rtol=0.05, atol=0.05)
    half = OURS[name](x.detach().to(dtype).requires_grad_(), labels, proxies.to(dtype))
    assert half.dtype == dtype and torch.isfinite(half)


def test_modules_own_their_proxies_and_call_the_functions():
    torch.manual_seed(0)
    x, labels = torch.randn(6, 4, dtype=F64), torch.tensor([0, 1, 1, 2, 4, 4])
    cases = [
        (losskit.ArcFaceLoss(5, 4, scale=30.0, margin=0.2), arcface, (30.0, 0.2), {}),
        (losskit.CosFaceLoss(5, 4, margin=0.1), cosface, (64.0, 0.1), {}),
        (
            losskit.SubCenterArcFaceLoss(5, 4, sub_centers=2, chunk_size=4),
            subcenter_arcface,
            (64.0, 0.5),
            {"sub_centers": 2},
        ),
        (losskit.ProxyNCALoss(5, 4, temperature=0.1), proxy_nca, (0.1,), {}),
    ]
    for module, fn, args, kw in cases:
        module = module.double()
        rows = 10 if kw else 5
        assert module.proxies.shape == (rows, 4)
        torch.testing.assert_close(module(x, labels), fn(x, labels, module.proxies, *args, **kw))
        assert "embedding_dim=4" in repr(module)
    built = losskit.build_loss("subcenter_arcface", num_classes=3, embedding_dim=4)
    assert built.sub_centers == 3 and built.proxies.shape == (9, 4)
    assert losskit.build_loss("arcface", num_classes=3, embedding_dim=4).margin == 0.5


@pytest.mark.parametrize(
    "call,error,match",
    [
        (lambda x, y, p: arcface(x, y, p, margin=math.pi), ValueError, r"`margin` in \[0, 3.14"),
        (lambda x, y, p: arcface(x, y, p, scale=0.0), ValueError, "arcface: expected `scale`"),
        (lambda x, y, p: cosface(x, y, p, margin=-0.1), ValueError, "cosface: expected `margin`"),
        (lambda x, y, p: cosface(x, y, p, reduction="avg"), ValueError, "`reduction` one of"),
        (lambda x, y, p: arcface(x, y + 9, p), ValueError, r"`labels` in \[0, 8\]"),
        (lambda x, y, p: arcface(x, y, p[:, :2]), ValueError, r"`proxies` of shape \(C, 5\)"),
        (lambda x, y, p: cosface(x, y[:3], p), ValueError, r"`labels` of shape \(12,\)"),
        (lambda x, y, p: arcface(x, y, p, chunk_size=0), ValueError, "`chunk_size`"),
        (
            lambda x, y, p: subcenter_arcface(x, y, p, sub_centers=2),
            ValueError,
            "multiple of sub_centers=2",
        ),
        (
            lambda x, y, p: subcenter_arcface(x, y, p, sub_centers=0),
            ValueError,
            "`sub_centers` to be an integer >= 1",
        ),
        (lambda x, y, p: subcenter_arcface(x, y, p, sub_centers=3), ValueError, r"in \[0, 2\]"),
        (lambda x, y, p: proxy_nca(x, y, p, temperature=0), ValueError, "`temperature` in"),
        (lambda x, y, p: proxy_nca(x.int(), y, p), TypeError, "`embeddings` to be a floating"),
        (
            lambda x, y, p: losskit.ArcFaceLoss(5, 4, margin=-1.0),
            ValueError,
            "ArcFaceLoss: expected `margin`",
        ),
        (
            lambda x, y, p: losskit.SubCenterArcFaceLoss(5, 4, sub_centers=1.5),
            TypeError,
            "SubCenterArcFaceLoss: expected `sub_centers` to be an integer",
        ),
        (
            lambda x, y, p: losskit.ProxyNCALoss(5, 4, reduction="max"),
            ValueError,
            "ProxyNCALoss: expected `reduction`",
        ),
    ],
)
def test_errors(call, error, match):
    x, labels, proxies = make()
    with pytest.raises(error, match=match):
        call(x, labels, proxies)
