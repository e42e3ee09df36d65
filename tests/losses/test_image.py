"""Image losses: SSIM and MS-SSIM values and gradients against MONAI, total variation against
its formula in float64, gradcheck, identities and every error message."""

from __future__ import annotations

import pytest
import torch
from monai.losses import SSIMLoss as MonaiSSIMLoss
from monai.metrics.regression import compute_ms_ssim
from torch.autograd import gradcheck

import losskit
import losskit.functional as LF


def _images(*shape: int, dtype: torch.dtype = torch.float32):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(*shape, generator=g)
    y = (x + 0.2 * torch.randn(*shape, generator=g)).clamp(0, 1)
    return x.to(dtype).requires_grad_(), y.to(dtype)


def _value_and_grad(f, x, y):
    x = x.detach().clone().requires_grad_()
    out = f(x, y)
    (g,) = torch.autograd.grad(out.sum(), x)
    return out.detach(), g


@pytest.mark.parametrize(
    ("shape", "kw", "monai_kw"),
    [
        ((2, 3, 24, 20), {}, {"spatial_dims": 2}),
        (
            (2, 1, 14, 12, 13),
            {"kernel_size": 7, "sigma": 1.0},
            {"spatial_dims": 3, "win_size": 7, "kernel_sigma": 1.0},
        ),
        (
            (1, 2, 16, 16),
            {"data_range": 255.0, "k1": 0.02},
            {"spatial_dims": 2, "data_range": 255.0, "k1": 0.02},
        ),
    ],
)
def test_ssim_matches_monai(shape, kw, monai_kw):
    x, y = _images(*shape)
    if "data_range" in kw:
        x, y = (255 * x).detach().requires_grad_(), 255 * y
    for reduction in ("mean", "sum", "none"):
        peer = MonaiSSIMLoss(**monai_kw, reduction=reduction)
        ours, g = _value_and_grad(lambda a, b, r=reduction: LF.ssim(a, b, **kw, reduction=r), x, y)
        ref, g_ref = _value_and_grad(lambda a, b, p=peer: p(a, b).view(-1), x, y)
        torch.testing.assert_close(ours.reshape(-1), ref, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(g, g_ref, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize(("shape", "k"), [((2, 1, 96, 88), 5), ((1, 1, 48, 50, 48), 3)])
def test_ms_ssim_matches_monai(shape, k):
    x, y = _images(*shape)
    dims = len(shape) - 2
    ours, g = _value_and_grad(lambda a, b: LF.ms_ssim(a, b, kernel_size=k, reduction="none"), x, y)
    ref, g_ref = _value_and_grad(
        lambda a, b: 1 - compute_ms_ssim(a, b, dims, kernel_size=k).view(-1), x, y
    )
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(g, g_ref, rtol=1e-4, atol=1e-7)


def test_identities_and_gradcheck():
    x, y = _images(1, 2, 7, 7, dtype=torch.float64)
    torch.testing.assert_close(LF.ssim(x, x, kernel_size=5), x.new_tensor(0.0))
    torch.testing.assert_close(
        LF.ms_ssim(x, x, kernel_size=3, weights=(0.5, 0.5)), x.new_tensor(0.0)
    )
    # one scale with exponent 1 is SSIM itself
    torch.testing.assert_close(
        LF.ms_ssim(x, y, kernel_size=5, weights=(1.0,)), LF.ssim(x, y, kernel_size=5)
    )
    assert gradcheck(lambda a: LF.ssim(a, y, kernel_size=5), (x,))
    assert gradcheck(lambda a: LF.ms_ssim(a, y, kernel_size=3, weights=(0.3, 0.7)), (x,))
    assert gradcheck(lambda a: LF.total_variation(a), (x,))


def _tv_reference(x):
    """Anisotropic TV of each image by explicit neighbour differences."""
    n = x.shape[0]
    out = torch.zeros(n, dtype=torch.float64)
    flat = x.detach().double()
    for axis in range(2, x.dim()):
        m = flat.shape[axis]
        for i in range(m - 1):
            diff = flat.narrow(axis, i + 1, 1) - flat.narrow(axis, i, 1)
            out += diff.abs().reshape(n, -1).sum(1)
    return out


@pytest.mark.parametrize("shape", [(2, 3, 5, 4), (1, 2, 3, 4, 5), (3, 1, 7)])
def test_total_variation_matches_the_formula(shape):
    x, _ = _images(*shape, dtype=torch.float64)
    ref = _tv_reference(x)
    torch.testing.assert_close(LF.total_variation(x, reduction="none"), ref)
    torch.testing.assert_close(LF.total_variation(x), ref.mean())
    torch.testing.assert_close(losskit.TotalVariationLoss(reduction="sum")(x), ref.sum())
    assert float(LF.total_variation(torch.ones(shape))) == 0.0


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision(dtype):
    x, y = _images(2, 1, 16, 16, dtype=dtype)
    for out in (LF.ssim(x, y), LF.total_variation(x)):
        assert out.dtype == dtype and torch.isfinite(out)


def test_modules():
    x, y = _images(2, 1, 48, 48)
    torch.testing.assert_close(losskit.SSIMLoss(kernel_size=7)(x, y), LF.ssim(x, y, kernel_size=7))
    module = losskit.MSSSIMLoss(kernel_size=3, weights=(0.5, 0.5))
    torch.testing.assert_close(module(x, y), LF.ms_ssim(x, y, kernel_size=3, weights=(0.5, 0.5)))
    assert "weights=(0.5, 0.5)" in repr(module)


def test_errors():
    x, y = _images(1, 1, 12, 12)
    with pytest.raises(
        ValueError, match=r"ssim: expected `input` with every spatial size >= 13 for kernel_size=13"
    ):
        LF.ssim(x, y, kernel_size=13)
    with pytest.raises(
        ValueError,
        match=r"ms_ssim: expected `input` with every spatial size >= 176 for kernel_size=11 at 5",
    ):
        LF.ms_ssim(x, y)
    with pytest.raises(ValueError, match=r"ssim: expected `kernel_size` to be odd, got 4"):
        LF.ssim(x, y, kernel_size=4)
    with pytest.raises(ValueError, match=r"ssim: expected `input` to be 4-D or 5-D"):
        LF.ssim(x[0], y[0])
    with pytest.raises(ValueError, match=r"ssim: expected `target` of the same shape as `input`"):
        LF.ssim(x, y[..., :10])
    with pytest.raises(ValueError, match=r"SSIMLoss: expected `data_range` in \(0, inf\)"):
        losskit.SSIMLoss(data_range=0.0)
    with pytest.raises(ValueError, match=r"ms_ssim: expected `weights` to be a non-empty sequence"):
        LF.ms_ssim(x, y, weights=())
    with pytest.raises(
        ValueError, match=r"total_variation: expected `input` of shape \(N, C, \*spatial\)"
    ):
        LF.total_variation(x[0, 0])
    with pytest.raises(
        TypeError, match=r"total_variation: expected `input` to be a floating-point"
    ):
        LF.total_variation(torch.zeros(1, 1, 3, dtype=torch.long))
