"""Pairwise distances: values and gradients against torch.cdist, safety at zero distance."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.autograd import gradcheck

from losskit.functional import (
    pairwise_cosine_distance,
    pairwise_cosine_similarity,
    pairwise_euclidean,
    safe_sqrt,
)

F64 = torch.float64


def _grads(fn, *inputs):
    """Value of ``fn(*inputs)`` and the gradients of a fixed random projection of it."""
    leaves = [x.detach().clone().requires_grad_(True) for x in inputs]
    out = fn(*leaves)
    weights = torch.linspace(-1.0, 1.0, out.numel(), dtype=out.dtype).reshape(out.shape)
    (out * weights).sum().backward()
    return out.detach(), [x.grad for x in leaves]


def _diff_norm(x, y):
    """Reference: norms of the explicit (N, M, D) differences (autograd-safe at zero)."""
    return torch.linalg.vector_norm(x.unsqueeze(1) - y.unsqueeze(0), dim=-1)


@pytest.mark.parametrize("with_y", [False, True])
@pytest.mark.parametrize("squared", [False, True])
def test_euclidean_matches_cdist(with_y, squared):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(7, 5, dtype=F64, generator=g)
    y = torch.randn(4, 5, dtype=F64, generator=g) if with_y else None
    power = 2 if squared else 1

    def ours(a, *b):
        return pairwise_euclidean(a, *b, squared=squared)

    def ref(a, *b):
        return torch.cdist(a, b[0] if b else a).pow(power)

    inputs = (x, y) if with_y else (x,)
    v1, g1 = _grads(ours, *inputs)
    v2, g2 = _grads(ref, *inputs)
    torch.testing.assert_close(v1, v2, rtol=1e-6, atol=1e-6)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)


def test_euclidean_diagonal_is_exactly_zero():
    x = torch.randn(6, 3) * 100
    assert torch.equal(pairwise_euclidean(x).diagonal(), torch.zeros(6))


@pytest.mark.parametrize("squared", [False, True])
def test_euclidean_gradcheck(squared):
    x = torch.randn(5, 3, dtype=F64, requires_grad=True)
    y = torch.randn(4, 3, dtype=F64, requires_grad=True)
    assert gradcheck(lambda a, b: pairwise_euclidean(a, b, squared=squared), (x, y))
    assert gradcheck(lambda a: pairwise_euclidean(a, squared=squared), (x,))


def test_coincident_embeddings_have_finite_gradients():
    x = torch.randn(5, 4, dtype=F64)
    x[1] = x[0]
    x[3] = x[0]
    v1, (g1,) = _grads(pairwise_euclidean, x)
    v2, (g2,) = _grads(lambda a: _diff_norm(a, a), x)
    assert torch.isfinite(g1).all()
    assert v1[0, 1] == 0 and v1[0, 3] == 0
    torch.testing.assert_close(v1, v2, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(g1, g2, rtol=1e-6, atol=1e-6)
    # The textbook sqrt of a sum of squares gives NaN there: the reason for safe_sqrt.
    naive = x.clone().requires_grad_(True)
    (naive.unsqueeze(1) - naive.unsqueeze(0)).pow(2).sum(-1).sqrt().sum().backward()
    assert torch.isnan(naive.grad).any()


def test_safe_sqrt_value_and_gradient():
    x = torch.tensor([0.0, -1e-12, 4.0, 9.0], dtype=F64, requires_grad=True)
    y = safe_sqrt(x)
    y.sum().backward()
    torch.testing.assert_close(y.detach(), torch.tensor([0.0, 0.0, 2.0, 3.0], dtype=F64))
    torch.testing.assert_close(x.grad, torch.tensor([0.0, 0.0, 0.25, 1 / 6], dtype=F64))
    z = torch.rand(6, dtype=F64, requires_grad=True)
    assert gradcheck(safe_sqrt, (z + 0.1,))


@pytest.mark.parametrize("with_y", [False, True])
def test_cosine_matches_torch(with_y):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(6, 4, dtype=F64, generator=g)
    y = torch.randn(3, 4, dtype=F64, generator=g) if with_y else None
    inputs = (x, y) if with_y else (x,)

    def ref(a, *b):
        other = b[0] if b else a
        return F.cosine_similarity(a.unsqueeze(1), other.unsqueeze(0), dim=-1)

    v1, g1 = _grads(pairwise_cosine_similarity, *inputs)
    v2, g2 = _grads(ref, *inputs)
    torch.testing.assert_close(v1, v2, rtol=1e-6, atol=1e-6)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(pairwise_cosine_distance(*inputs), 1 - v2)
    assert gradcheck(pairwise_cosine_distance, tuple(t.requires_grad_() for t in inputs))


def test_cosine_zero_row_is_finite():
    x = torch.randn(3, 4, dtype=F64)
    x[0] = 0
    x.requires_grad_(True)
    s = pairwise_cosine_similarity(x)
    s.sum().backward()
    assert torch.equal(s[0].detach(), torch.zeros(3, dtype=F64))
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision(dtype):
    # Large norms: the squared norms overflow fp16, the Gram form cancels in bf16.
    x = torch.randn(8, 16, dtype=F64) * 60
    ref = torch.cdist(x, x)
    out = pairwise_euclidean(x.to(dtype))
    assert out.dtype == dtype and torch.isfinite(out).all()
    torch.testing.assert_close(
        out.double(), torch.cdist(x.to(dtype).double(), x.to(dtype).double()), rtol=1e-2, atol=0.5
    )
    assert (out.double() - ref).abs().max() < 0.02 * ref.max()
    assert pairwise_cosine_similarity(x.to(dtype)).dtype == dtype


def test_errors():
    with pytest.raises(TypeError, match=r"pairwise_euclidean: expected `x` to be a torch.Tensor"):
        pairwise_euclidean([[0.0]])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"expected `x` to be a floating-point tensor"):
        pairwise_euclidean(torch.zeros(2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"expected `x` to be 2-D \(N, D\), got shape \(3,\)"):
        pairwise_euclidean(torch.zeros(3))
    with pytest.raises(
        ValueError, match=r"expected `y` of shape \(M, 3\) matching `x`, got \(2, 4\)"
    ):
        pairwise_euclidean(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"pairwise_cosine_distance: expected `y` to be 2-D"):
        pairwise_cosine_distance(torch.zeros(2, 3), torch.zeros(3))
    with pytest.raises(TypeError, match=r"pairwise_cosine_similarity: expected `y` to be a float"):
        pairwise_cosine_similarity(torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.int32))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_euclidean_beyond_the_square_range_matches_float64(dtype):
    """Entries at 1e20 have squares beyond float32/bfloat16; the distances (~1e20) do not."""
    torch.manual_seed(0)
    x = (torch.randn(6, 4, dtype=torch.float64) * 1e20).to(dtype).requires_grad_()
    y = (torch.randn(5, 4, dtype=torch.float64) * 1e20).to(dtype)
    tol = 1e-4 if dtype == torch.float32 else 2e-2
    ref = torch.cdist(x.detach().double(), y.double())
    torch.testing.assert_close(pairwise_euclidean(x, y).double(), ref, rtol=tol, atol=0.0)
    d = pairwise_euclidean(x)
    assert torch.isfinite(d).all() and not d.diagonal().any()
    (grad,) = torch.autograd.grad(d.sum(), x)
    assert torch.isfinite(grad).all()
    # Squared distances (~1e40) do not fit: inf off the diagonal, still 0 on it (never NaN).
    sq = pairwise_euclidean(x.detach(), squared=True)
    assert torch.isinf(sq[~torch.eye(6, dtype=torch.bool)]).all() and not sq.diagonal().any()
