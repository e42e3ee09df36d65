"""Exactness and memory shape of the chunked proxy losses (the proxies walked in chunks)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

import losskit
from losskit.functional import cosine_softmax_cross_entropy, focal_proxy_anchor, proxy_anchor
from losskit.losses.metric._chunked import auto_chunk_size
from tests.losses.metric.test_proxies import textbook

F64 = torch.float64
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device"))]  # fmt: skip


def make(batch, classes, dim=6, present=None, seed=0, dtype=F64, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, dim, generator=g, dtype=dtype)
    proxies = torch.randn(classes, dim, generator=g, dtype=dtype)
    labels = torch.randint(0, present or classes, (batch,), generator=g)
    return (
        x.to(device).requires_grad_(),
        labels.to(device),
        proxies.to(device).requires_grad_(),
    )


def value_and_grads(loss, x, proxies):
    return (loss.detach(), *torch.autograd.grad(loss, (x, proxies)))


def dense_ce(x, labels, proxies, scale, reduction="mean"):
    """Torch core: F.cross_entropy on scaled cosine logits."""
    logits = scale * F.normalize(x, dim=1) @ F.normalize(proxies, dim=1).T
    return F.cross_entropy(logits, labels, reduction=reduction)


LOSSES = {
    "proxy_anchor": (
        lambda x, y, p, **kw: proxy_anchor(x, y, p, 16.0, 0.1, **kw),
        lambda x, y, p: textbook(x, y, p, 16.0, 0.1),
    ),
    "focal_proxy_anchor": (
        lambda x, y, p, **kw: focal_proxy_anchor(x, y, p, 16.0, 0.1, 2.0, 1.5, **kw),
        lambda x, y, p: textbook(x, y, p, 16.0, 0.1, 2.0, 1.5),
    ),
    "cosine_softmax_cross_entropy": (
        lambda x, y, p, **kw: cosine_softmax_cross_entropy(x, y, p, 8.0, **kw),
        lambda x, y, p: dense_ce(x, y, p, 8.0),
    ),
}


@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize(
    "classes,chunk,present",
    [(1, 1, None), (7, 3, None), (50, 16, 5), (133, 64, 20), (133, 1, 133), (40, 40, 1)],
)
def test_chunked_equals_dense_float64(name, classes, chunk, present):
    # present < classes: classes without positives; present=1: a batch of one class.
    loss, reference = LOSSES[name]
    x, labels, proxies = make(17, classes, present=present)
    ours = value_and_grads(loss(x, labels, proxies, chunk_size=chunk), x, proxies)
    expected = value_and_grads(reference(x, labels, proxies), x, proxies)
    for a, b in zip(ours, expected):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_chunked_float32_within_1e5_of_float64(name):
    loss, _ = LOSSES[name]
    x, labels, proxies = make(33, 1000, dim=16, present=40, seed=2)
    expected = value_and_grads(loss(x, labels, proxies, chunk_size=1000), x, proxies)
    x32, p32 = (t.detach().float().requires_grad_() for t in (x, proxies))
    ours = value_and_grads(loss(x32, labels, p32, chunk_size=96), x32, p32)
    for a, b in zip(ours, expected):
        scale = b.abs().max().item()
        torch.testing.assert_close(a.double(), b, rtol=1e-5, atol=1e-5 * scale)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cosine_softmax_cross_entropy_reductions_match_torch(reduction):
    x, labels, proxies = make(9, 23, seed=4)
    ours = cosine_softmax_cross_entropy(x, labels, proxies, 16.0, reduction=reduction, chunk_size=5)
    expected = dense_ce(x, labels, proxies, 16.0, reduction)
    torch.testing.assert_close(ours, expected, rtol=1e-10, atol=1e-10)
    weights = torch.rand_like(ours) + 0.5  # non-uniform upstream gradient for "none"
    for a, b in zip(
        torch.autograd.grad((ours * weights).sum(), (x, proxies)),
        torch.autograd.grad((expected * weights).sum(), (x, proxies)),
    ):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_gradcheck_chunked(name):
    loss, _ = LOSSES[name]
    x, labels, proxies = make(5, 7, dim=3, present=4, seed=5)
    assert torch.autograd.gradcheck(lambda a, b: loss(a, labels, b, chunk_size=3), (x, proxies))


def test_gradcheck_per_sample_cross_entropy():
    x, labels, proxies = make(4, 6, dim=3, seed=6)
    assert torch.autograd.gradcheck(
        lambda a, b: cosine_softmax_cross_entropy(
            a, labels, b, 4.0, reduction="none", chunk_size=4
        ),
        (x, proxies),
    )


def test_upstream_scale_and_retained_graph():
    x, labels, proxies = make(8, 11, present=4)
    loss = proxy_anchor(x, labels, proxies, chunk_size=4)
    gx, gp = torch.autograd.grad(loss, (x, proxies), retain_graph=True)
    gx3, gp3 = torch.autograd.grad(3.0 * loss, (x, proxies), retain_graph=True)  # scaled
    gx_last, gp_last = torch.autograd.grad(-0.5 * loss, (x, proxies))  # scaled in place
    torch.testing.assert_close(gx3, 3 * gx)
    torch.testing.assert_close(gp3, 3 * gp)
    torch.testing.assert_close(gx_last, -0.5 * gx)
    torch.testing.assert_close(gp_last, -0.5 * gp)


def test_uneven_last_chunk_and_chunk_larger_than_classes():
    x, labels, proxies = make(10, 29, present=9)
    results = [
        value_and_grads(proxy_anchor(x, labels, proxies, chunk_size=c), x, proxies)
        for c in (4, 7, 29, 1000)
    ]
    for other in results[1:]:
        for a, b in zip(results[0], other):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


class _LargestTensor(TorchDispatchMode):
    """Records the largest number of elements of any tensor an operation produces."""

    def __init__(self) -> None:
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
        return out


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_never_builds_the_batch_by_classes_matrix(name):
    loss, _ = LOSSES[name]
    batch, classes, dim, chunk = 64, 4096, 8, 256
    x, labels, proxies = make(batch, classes, dim=dim, dtype=torch.float32)
    with _LargestTensor() as seen:
        loss(x, labels, proxies, chunk_size=chunk).backward()
    # Nothing larger than the proxies (their gradient) or one (B, chunk) block.
    assert seen.largest <= max(classes * dim, batch * chunk)
    assert classes * dim < batch * classes  # so a dense (B, C) matrix would have been seen


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_autocast_half_gemms_are_finite_and_close(name, dtype, device):
    loss, _ = LOSSES[name]
    x, labels, proxies = make(24, 300, dim=16, present=12, seed=7, dtype=torch.float32)
    x, labels, proxies = (t.to(device) for t in (x, labels, proxies))
    x, proxies = x.detach().requires_grad_(), proxies.detach().requires_grad_()
    expected = value_and_grads(loss(x, labels, proxies, chunk_size=64), x, proxies)
    with torch.autocast(device, dtype=dtype):
        out = loss(x, labels, proxies, chunk_size=64)
    ours = value_and_grads(out, x, proxies)
    assert out.dtype == torch.float32
    for a, b in zip(ours, expected):
        assert torch.isfinite(a).all() and a.dtype == b.dtype
        torch.testing.assert_close(a, b, rtol=0.05, atol=0.05 * b.abs().max().item())


def test_focal_weights_at_their_clamp_limits():
    # Samples on their own proxy (positive weight 1 − s = 0) or on another class's proxy
    # (negative weight s = 1), and negatives with s ≤ 0 (weight 0): all as the textbook.
    x, labels, proxies = make(12, 6, present=4, seed=8)
    with torch.no_grad():
        x[:4] = proxies[labels[:4]] * 2.0
        x[4:8] = proxies[(labels[4:8] + 1) % 6] * 0.5
    loss, reference = LOSSES["focal_proxy_anchor"]
    ours = value_and_grads(loss(x, labels, proxies, chunk_size=4), x, proxies)
    expected = value_and_grads(reference(x, labels, proxies), x, proxies)
    for a, b in zip(ours, expected):
        assert torch.isfinite(a).all()
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


def test_autocast_leaves_float64_alone():
    x, labels, proxies = make(6, 9, present=3)
    expected = proxy_anchor(x, labels, proxies, chunk_size=4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(proxy_anchor(x, labels, proxies, chunk_size=4), expected)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_batch_of_one(name):
    loss, reference = LOSSES[name]
    x, labels, proxies = make(1, 9)
    ours = value_and_grads(loss(x, labels, proxies, chunk_size=4), x, proxies)
    expected = value_and_grads(reference(x, labels, proxies), x, proxies)
    for a, b in zip(ours, expected):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_inputs_alpha_32_finite(dtype):
    x, labels, proxies = make(16, 100, dim=8, present=3, dtype=dtype)
    with torch.no_grad():
        x[:] = proxies[(labels + 1) % 100]  # negatives at cosine 1: e^{32·1.1} overflows fp16
    out = proxy_anchor(x, labels, proxies, chunk_size=32)
    assert out.dtype == dtype and torch.isfinite(out)
    assert all(torch.isfinite(g).all() for g in torch.autograd.grad(out, (x, proxies)))


def test_automatic_chunk_size_rule():
    assert auto_chunk_size(180, 100_000) == 4096  # 2**20 // 180 = 5825, capped
    assert auto_chunk_size(1024, 10**6) == 1024
    assert auto_chunk_size(700, 10**6) == 1280  # 1497 rounded down to a multiple of 256
    assert auto_chunk_size(8192, 100_000) == 256  # at least 256
    assert auto_chunk_size(180, 500) == 500  # small C: one chunk, the dense computation
    assert auto_chunk_size(1024, 10**6, "cuda") == (1 << 23) // 1024


def test_modules_pass_chunk_size():
    torch.manual_seed(0)
    x, labels = torch.randn(6, 4, dtype=F64), torch.tensor([0, 1, 1, 2, 5, 5])
    for cls, fn in (
        (losskit.ProxyAnchorLoss, proxy_anchor),
        (losskit.FocalStyleProxyAnchorLoss, focal_proxy_anchor),
        (losskit.CosineSoftmaxCrossEntropyLoss, cosine_softmax_cross_entropy),
    ):
        module = cls(7, 4, chunk_size=3).double()
        assert module.chunk_size == 3 and "chunk_size=3" in repr(module)
        torch.testing.assert_close(module(x, labels), fn(x, labels, module.proxies))
    ce = losskit.build_loss("cosine_softmax_cross_entropy", num_classes=7, embedding_dim=4)
    assert ce.scale == 16.0 and ce.reduction == "mean"


@pytest.mark.parametrize(
    "call,error,match",
    [
        (
            lambda x, y, p: proxy_anchor(x, y, p, chunk_size=0),
            ValueError,
            r"`chunk_size` to be an integer >= 1",
        ),
        (lambda x, y, p: proxy_anchor(x, y, p, chunk_size=-5), ValueError, "got -5"),
        (
            lambda x, y, p: focal_proxy_anchor(x, y, p, chunk_size=2.5),
            TypeError,
            "`chunk_size` to be an integer, got float",
        ),
        (lambda x, y, p: proxy_anchor(x, y, p, chunk_size=True), TypeError, "got bool"),
        (
            lambda x, y, p: cosine_softmax_cross_entropy(x, y, p, scale=0.0),
            ValueError,
            "`scale` in",
        ),
        (
            lambda x, y, p: cosine_softmax_cross_entropy(x, y, p, reduction="avg"),
            ValueError,
            "`reduction` one of",
        ),
        (
            lambda x, y, p: cosine_softmax_cross_entropy(x, y - 10, p),
            ValueError,
            r"`labels` in \[0, 6\]",
        ),
        (
            lambda x, y, p: cosine_softmax_cross_entropy(x, y, p[:, :2]),
            ValueError,
            r"`proxies` of shape \(C, 6\)",
        ),
        (
            lambda x, y, p: losskit.ProxyAnchorLoss(7, 6, chunk_size=0),
            ValueError,
            "ProxyAnchorLoss: expected `chunk_size`",
        ),
        (
            lambda x, y, p: losskit.CosineSoftmaxCrossEntropyLoss(7, 6, scale=-1.0),
            ValueError,
            "`scale`",
        ),
    ],
)
def test_errors(call, error, match):
    x, labels, proxies = make(5, 7)
    with pytest.raises(error, match=match):
        call(x, labels, proxies)
