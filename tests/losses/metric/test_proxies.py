"""Tests of the Proxy-Anchor family against pytorch-metric-learning and the textbook formula.

pytorch-metric-learning's ``ProxyAnchorLoss(C, D, margin=δ, alpha=α)`` follows the same
conventions as ours (divisors ``|P⁺|`` and ``C``, absent classes add only their negative term,
a proxy without negatives adds 0), so values and gradients agree to float64 rounding; the
differences (half-precision arithmetic, in-place cast of its proxies, miners and regularisers)
are listed in the module docstring of ``losskit.losses.metric.proxies``.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from pytorch_metric_learning.losses import ProxyAnchorLoss as PMLProxyAnchorLoss

import losskit
from losskit.functional import (
    focal_proxy_anchor,
    multi_proxy_anchor,
    nearest_proxy,
    proxy_anchor,
    proxy_similarity,
)

F64 = torch.float64


def textbook_from_similarity(s, labels, alpha=32.0, delta=0.1, pos_gamma=0.0, neg_gamma=0.0):
    """DESIGN §2 written literally: raw exp, a loop over proxies, clamp**gamma weights."""
    num_classes = s.shape[1]
    pos_terms, neg_terms = [], []
    for p in range(num_classes):
        is_pos = labels == p
        sp, sn = s[is_pos, p], s[~is_pos, p]
        wp = (1 - sp).clamp(0, 1) ** pos_gamma
        wn = sn.clamp(0, 1) ** neg_gamma
        if is_pos.any():
            pos_terms.append(torch.log(1 + (wp * torch.exp(-alpha * (sp - delta))).sum()))
        neg_terms.append(torch.log(1 + (wn * torch.exp(alpha * (sn + delta))).sum()))
    return torch.stack(pos_terms).mean() + torch.stack(neg_terms).sum() / num_classes


def cosine(x, proxies):
    return F.cosine_similarity(x.unsqueeze(1), proxies.unsqueeze(0), dim=2)


def textbook(x, labels, proxies, *args):
    return textbook_from_similarity(cosine(x, proxies), labels, *args)


def make(batch=12, classes=7, dim=5, present=4, seed=0, dtype=F64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, dim, generator=g, dtype=dtype).requires_grad_()
    proxies = torch.randn(classes, dim, generator=g, dtype=dtype).requires_grad_()
    labels = torch.randint(0, present, (batch,), generator=g)
    return x, labels, proxies


def grads(loss, *inputs):
    return torch.autograd.grad(loss, inputs)


def assert_close_with_grads(a, b, inputs, atol=1e-6, rtol=1e-6):
    torch.testing.assert_close(a, b, atol=atol, rtol=rtol)
    for ga, gb in zip(grads(a, *inputs), grads(b, *inputs)):
        torch.testing.assert_close(ga, gb, atol=atol, rtol=rtol)


@pytest.mark.parametrize("alpha,delta", [(32.0, 0.1), (8.0, 0.0), (16.0, 0.3)])
@pytest.mark.parametrize("present", [1, 3, 7])
@pytest.mark.parametrize("chunk_size", [None, 2])
def test_proxy_anchor_matches_pytorch_metric_learning(alpha, delta, present, chunk_size):
    x, labels, _ = make(present=present)
    reference = PMLProxyAnchorLoss(7, 5, margin=delta, alpha=alpha).double()
    proxies = reference.proxies
    ours = proxy_anchor(x, labels, proxies, alpha, delta, chunk_size=chunk_size)
    assert_close_with_grads(ours, reference(x, labels), (x, proxies))


@pytest.mark.parametrize("present", [1, 4, 7])
def test_proxy_anchor_matches_textbook(present):
    x, labels, proxies = make(present=present)
    assert_close_with_grads(
        proxy_anchor(x, labels, proxies), textbook(x, labels, proxies), (x, proxies)
    )


@pytest.mark.parametrize("pos_gamma,neg_gamma", [(2.0, 2.0), (1.0, 0.5), (0.0, 3.0)])
def test_focal_proxy_anchor_matches_textbook(pos_gamma, neg_gamma):
    x, labels, proxies = make(present=5, seed=3)
    ours = focal_proxy_anchor(x, labels, proxies, 16.0, 0.1, pos_gamma, neg_gamma)
    reference = textbook(x, labels, proxies, 16.0, 0.1, pos_gamma, neg_gamma)
    assert_close_with_grads(ours, reference, (x, proxies))


def test_focal_with_zero_gammas_is_proxy_anchor_exactly():
    x, labels, proxies = make()
    focal = focal_proxy_anchor(x, labels, proxies, pos_gamma=0.0, neg_gamma=0.0)
    plain = proxy_anchor(x, labels, proxies)
    assert torch.equal(focal, plain)
    for a, b in zip(grads(focal, x, proxies), grads(plain, x, proxies)):
        assert torch.equal(a, b)


def test_gradcheck():
    x, labels, proxies = make(batch=6, classes=4, dim=3, present=3)
    for fn in (proxy_anchor, focal_proxy_anchor):
        assert torch.autograd.gradcheck(lambda a, b, f=fn: f(a, labels, b, 4.0, 0.1), (x, proxies))


def test_multi_proxy_with_one_proxy_per_class_is_proxy_anchor():
    x, labels, proxies = make()
    for pooling in ("softmax", "max"):
        multi = multi_proxy_anchor(x, labels, proxies, proxies_per_class=1, pooling=pooling)
        assert_close_with_grads(multi, proxy_anchor(x, labels, proxies), (x, proxies), 1e-12, 0)


@pytest.mark.parametrize("pooling", ["softmax", "max"])
def test_multi_proxy_pools_each_class_then_applies_proxy_anchor(pooling):
    x, labels, proxies = make(classes=12)  # 4 classes of 3 proxies each, class-major rows
    s = cosine(x, proxies).unflatten(1, (4, 3))
    pooled = s.amax(dim=2) if pooling == "max" else (torch.softmax(s / 0.2, dim=2) * s).sum(2)
    multi = multi_proxy_anchor(
        x, labels, proxies, 16.0, 0.1, proxies_per_class=3, pooling=pooling, temperature=0.2
    )
    reference = textbook_from_similarity(pooled, labels, 16.0, 0.1)
    assert_close_with_grads(multi, reference, (x, proxies))


def test_similarity_and_nearest_proxy():
    x, _, proxies = make(classes=9)
    expected = F.cosine_similarity(x.unsqueeze(1), proxies.unsqueeze(0), dim=2)
    torch.testing.assert_close(proxy_similarity(x, proxies), expected)
    assert torch.equal(nearest_proxy(x, proxies, chunk_size=4), expected.argmax(dim=1))
    logits = torch.randn(12, 9, dtype=F64)
    blend = 0.7 * logits + 0.3 * expected
    got = nearest_proxy(x, proxies, logits, logits_weight=0.7, chunk_size=2)
    assert torch.equal(got, blend.argmax(dim=1))


def test_modules_own_kaiming_fan_out_proxies():
    torch.manual_seed(0)
    loss = losskit.ProxyAnchorLoss(2000, 64)
    assert loss.proxies.shape == (2000, 64) and loss.proxies.requires_grad
    assert abs(loss.proxies.std().item() - (2 / 2000) ** 0.5) < 1e-3
    multi = losskit.MultiProxyAnchorLoss(10, 8, proxies_per_class=4)
    assert multi.proxies.shape == (40, 8)
    focal = losskit.build_loss("focal_proxy_anchor", num_classes=3, embedding_dim=2)
    assert isinstance(focal, losskit.FocalStyleProxyAnchorLoss)


def test_module_forward_calls_function():
    loss = losskit.FocalStyleProxyAnchorLoss(5, 4, alpha=10.0, delta=0.2, pos_gamma=1.0)
    x, labels = torch.randn(6, 4), torch.tensor([0, 1, 1, 2, 3, 3])
    expected = focal_proxy_anchor(x, labels, loss.proxies, 10.0, 0.2, 1.0, 2.0)
    assert torch.equal(loss(x, labels), expected)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_alpha_32_is_finite(dtype):
    x, labels, proxies = make(dtype=dtype, seed=1)
    loss = proxy_anchor(x, labels, proxies)
    assert loss.dtype == dtype and torch.isfinite(loss)
    gx, gp = grads(loss, x, proxies)
    assert torch.isfinite(gx).all() and torch.isfinite(gp).all()
    x32, p32 = x.detach().float(), proxies.detach().float()
    torch.testing.assert_close(loss.float(), proxy_anchor(x32, labels, p32), rtol=1e-2, atol=0)


def test_fp16_textbook_exp_overflows_where_ours_does_not():
    # Negatives with cosine ≈ 1: e^{α(s+δ)} = e^{35.2} > 65504, the fp16 maximum.
    x, labels, proxies = make(dtype=torch.float16, seed=1, present=1)
    with torch.no_grad():
        x[:] = proxies[1]  # every sample of class 0 sits on proxy 1
    naive = textbook(x, labels, proxies)
    assert torch.isinf(naive)
    ours = proxy_anchor(x, labels, proxies)
    assert torch.isfinite(ours)
    gx, gp = grads(ours, x, proxies)
    assert torch.isfinite(gx).all() and torch.isfinite(gp).all()
    reference = textbook(x.detach().double(), labels, proxies.detach().double())
    torch.testing.assert_close(ours.double(), reference, rtol=2e-3, atol=0)


@pytest.mark.parametrize(
    "call,error,match",
    [
        (lambda x, y, p: proxy_anchor(x[0], y, p), ValueError, "`embeddings` to be 2-D"),
        (lambda x, y, p: proxy_anchor(x, y, p[:0]), ValueError, "at least one proxy"),
        (lambda x, y, p: proxy_anchor(x.int(), y, p), TypeError, "`embeddings` to be a floating"),
        (lambda x, y, p: proxy_anchor(x, y, p.tolist()), TypeError, "`proxies` to be a torch"),
        (lambda x, y, p: proxy_anchor(x, y.float(), p), TypeError, "`labels` to hold integer"),
        (lambda x, y, p: proxy_anchor(x, y[:3], p), ValueError, r"`labels` of shape \(12,\)"),
        (lambda x, y, p: proxy_anchor(x, y + 7, p), ValueError, r"`labels` in \[0, 6\]"),
        (lambda x, y, p: proxy_anchor(x, y, p[:, :3]), ValueError, r"`proxies` of shape \(C, 5\)"),
        (lambda x, y, p: proxy_anchor(x, y, p, alpha=0.0), ValueError, "`alpha` in"),
        (lambda x, y, p: focal_proxy_anchor(x, y, p, pos_gamma=-1.0), ValueError, "`pos_gamma`"),
        (
            lambda x, y, p: multi_proxy_anchor(x, y, p, proxies_per_class=2),
            ValueError,
            "multiple of proxies_per_class=2",
        ),
        (
            lambda x, y, p: multi_proxy_anchor(x, y, p, proxies_per_class=1, pooling="mean"),
            ValueError,
            "`pooling` one of",
        ),
        (lambda x, y, p: nearest_proxy(x, p, chunk_size=0), ValueError, "`chunk_size`"),
        (lambda x, y, p: nearest_proxy(x, p, x), ValueError, "`logits` of shape"),
        (lambda x, y, p: nearest_proxy(x[0], p), ValueError, "nearest_proxy: expected `features`"),
        (lambda x, y, p: proxy_similarity(x, p[:, :2]), ValueError, r"matching features \(D=5\)"),
    ],
)
def test_errors(call, error, match):
    x, labels, proxies = make()
    with pytest.raises(error, match=match):
        call(x, labels, proxies)
