"""Image losses: structural similarity (SSIM, MS-SSIM) and total variation.

Images are ``(N, C, H, W)`` (2-D) or ``(N, C, D, H, W)`` (3-D). SSIM uses a normalised Gaussian
window applied separably per channel with "valid" filtering (no padding: every window lies
inside the image), the constants ``C1 = (k1·L)²`` and ``C2 = (k2·L)²`` with ``L = data_range``,
and biased local (co)variances — MONAI's ``SSIMLoss`` / ``compute_ms_ssim`` conventions. The
losses return ``1 − SSIM`` (so ``ssim(x, x) = 0``), one value per image (the mean of the SSIM
map over channels and positions) before the reduction. Half-precision images are computed in
float32 and the result cast back to the input's dtype.

Registry names: ``ssim`` (:class:`SSIMLoss`), ``ms_ssim`` (:class:`MSSSIMLoss`) and
``total_variation`` (:class:`TotalVariationLoss`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from losskit._checks import (
    check_floating,
    check_int,
    check_ndim,
    check_number,
    check_same_shape,
    fail,
    shape_str,
)
from losskit._reduce import Reduction, check_reduction, reduce, upcast
from losskit.registry import register

__all__ = [
    "MS_SSIM_WEIGHTS",
    "MSSSIMLoss",
    "SSIMLoss",
    "TotalVariationLoss",
    "ms_ssim",
    "ssim",
    "total_variation",
]

# Wang, Simoncelli and Bovik (2003): the exponents of the five scales, finest first.
MS_SSIM_WEIGHTS: tuple[float, ...] = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def _check_window(fn: str, kernel_size: object, sigma: object) -> tuple[int, float]:
    size = check_int(fn, "kernel_size", kernel_size, low=1)
    if size % 2 == 0:
        fail(fn, "kernel_size", "to be odd", repr(size))
    return size, check_number(fn, "sigma", sigma, low=0.0, low_open=True)


def _check_constants(fn: str, data_range: object, k1: object, k2: object) -> tuple[float, float]:
    """``C1``, ``C2`` from the data range and the stability constants."""
    span = check_number(fn, "data_range", data_range, low=0.0, low_open=True)
    a = check_number(fn, "k1", k1, low=0.0, low_open=True)
    b = check_number(fn, "k2", k2, low=0.0, low_open=True)
    return (a * span) ** 2, (b * span) ** 2


def _images(fn: str, input: object, target: object) -> tuple[Tensor, Tensor]:
    x = check_floating(fn, "input", input)
    check_ndim(fn, "input", x, (4, 5), "(N, C, H, W) or (N, C, D, H, W)")
    t = check_floating(fn, "target", target)
    check_same_shape(fn, "target", t, "input", x)
    xc = upcast(x)
    return xc, t.to(xc.dtype)


def _gaussian(size: int, sigma: float, like: Tensor) -> Tensor:
    r = torch.arange(size, dtype=like.dtype, device=like.device) - (size - 1) / 2
    g = torch.exp(-0.5 * (r / sigma) ** 2)
    return g / g.sum()


def _filter(x: Tensor, window: Tensor) -> Tensor:
    """Depthwise "valid" filtering of ``(N, C, *spatial)`` by ``window`` along each spatial axis."""
    n, c, *spatial = x.shape
    out = x.reshape(n * c, 1, *spatial)
    conv = F.conv2d if len(spatial) == 2 else F.conv3d
    for axis in range(len(spatial)):
        shape = [1] * len(spatial)
        shape[axis] = window.numel()
        out = conv(out, window.view(1, 1, *shape))
    return out.reshape(n, c, *out.shape[2:])


def _ssim_and_cs(
    x: Tensor, y: Tensor, window: Tensor, c1: float, c2: float
) -> tuple[Tensor, Tensor]:
    """Per-image mean SSIM and mean contrast-structure term, each ``(N,)``."""
    mu_x, mu_y = _filter(x, window), _filter(y, window)
    var_x = _filter(x * x, window) - mu_x * mu_x
    var_y = _filter(y * y, window) - mu_y * mu_y
    cov = _filter(x * y, window) - mu_x * mu_y
    cs = (2 * cov + c2) / (var_x + var_y + c2)
    luminance = (2 * mu_x * mu_y + c1) / (mu_x * mu_x + mu_y * mu_y + c1)
    return (luminance * cs).flatten(1).mean(1), cs.flatten(1).mean(1)


def _check_fits(fn: str, x: Tensor, size: int, scales: int) -> None:
    smallest = min(x.shape[2:]) // 2 ** (scales - 1)
    if smallest < size:
        need = size * 2 ** (scales - 1)
        per = f" at {scales} scales" if scales > 1 else ""
        fail(
            fn,
            "input",
            f"with every spatial size >= {need} for kernel_size={size}{per} ('valid' filtering)",
            f"shape {shape_str(x.shape)}",
        )


def ssim(
    input: Tensor,
    target: Tensor,
    *,
    data_range: float = 1.0,
    kernel_size: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
    reduction: Reduction = "mean",
) -> Tensor:
    """SSIM loss: one minus the structural similarity of two images (2-D or 3-D).

    With local Gaussian-weighted means ``μ``, variances ``σ²`` and covariance ``σ_xy``::

        SSIM = mean over channels and positions of
               (2μ_xμ_y + C1)(2σ_xy + C2) / ((μ_x² + μ_y² + C1)(σ_x² + σ_y² + C2))
        ℓ    = 1 − SSIM                                   (one value per image)

    Args:
        input (Tensor[N, C, H, W] | Tensor[N, C, D, H, W]): predicted images.
        target (Tensor): reference images, the same shape.
        data_range: the value range ``L`` of the images (1.0 for [0, 1], 255 for 8-bit).
        kernel_size: the odd width of the Gaussian window (on every axis).
        sigma: the window's standard deviation.
        k1, k2: the stability constants (``C1 = (k1·L)²``, ``C2 = (k2·L)²``).
        reduction: ``"mean"`` over images, ``"sum"`` or ``"none"`` (``(N,)``).

    Returns:
        Tensor: the reduced loss, in ``input``'s dtype.

    Raises:
        TypeError: non-float images.
        ValueError: not 4-D/5-D, different shapes, an image smaller than the window, an even
            ``kernel_size``, a non-positive ``data_range``/``sigma``/``k1``/``k2``, an unknown
            ``reduction``.

    Reference:
        Wang et al., "Image Quality Assessment: From Error Visibility to Structural Similarity",
        IEEE TIP 2004.

    Example:
        >>> import torch
        >>> x = torch.rand(2, 1, 16, 16)
        >>> float(ssim(x, x))
        0.0
    """
    fn = "ssim"
    size, s = _check_window(fn, kernel_size, sigma)
    c1, c2 = _check_constants(fn, data_range, k1, k2)
    check_reduction(fn, reduction)
    x, y = _images(fn, input, target)
    _check_fits(fn, x, size, 1)
    value, _ = _ssim_and_cs(x, y, _gaussian(size, s, x), c1, c2)
    return reduce(1.0 - value, reduction, fn=fn, dtype=input.dtype)


def ms_ssim(
    input: Tensor,
    target: Tensor,
    *,
    data_range: float = 1.0,
    kernel_size: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
    weights: Sequence[float] = MS_SSIM_WEIGHTS,
    reduction: Reduction = "mean",
) -> Tensor:
    """Multi-scale SSIM loss: one minus the weighted product of SSIM terms over scales.

    At scale ``j = 1 … S`` (the image average-pooled by 2 between scales), ``cs_j`` is the mean
    contrast-structure term and ``SSIM_S`` the full SSIM at the coarsest scale::

        MS-SSIM = SSIM_S^{w_S} · Π_{j<S} cs_j^{w_j}       (each term clamped at 0 first)
        ℓ       = 1 − MS-SSIM                               (one value per image)

    (MONAI's ``compute_ms_ssim``). Every spatial size must be at least
    ``kernel_size · 2^(S−1)``.

    Args:
        input (Tensor[N, C, H, W] | Tensor[N, C, D, H, W]): predicted images.
        target (Tensor): reference images, the same shape.
        data_range, kernel_size, sigma, k1, k2: as in :func:`ssim`.
        weights: the exponents ``w_j``, finest scale first (default: the paper's five).
        reduction: ``"mean"`` over images, ``"sum"`` or ``"none"`` (``(N,)``).

    Returns:
        Tensor: the reduced loss, in ``input``'s dtype.

    Raises:
        TypeError: non-float images, ``weights`` not numbers.
        ValueError: as :func:`ssim`; also empty or negative ``weights``.

    Reference:
        Wang, Simoncelli and Bovik, "Multiscale structural similarity for image quality
        assessment", Asilomar 2003.

    Example:
        >>> import torch
        >>> x = torch.rand(1, 1, 48, 48)
        >>> float(ms_ssim(x, x, kernel_size=3))
        0.0
    """
    fn = "ms_ssim"
    size, s = _check_window(fn, kernel_size, sigma)
    c1, c2 = _check_constants(fn, data_range, k1, k2)
    w = _check_weights(fn, weights)
    check_reduction(fn, reduction)
    x, y = _images(fn, input, target)
    _check_fits(fn, x, size, len(w))
    window = _gaussian(size, s, x)
    pool = F.avg_pool2d if x.dim() == 4 else F.avg_pool3d
    tiny = torch.finfo(x.dtype).tiny
    product = x.new_ones(x.shape[0])
    for j, exponent in enumerate(w):
        value, cs = _ssim_and_cs(x, y, window, c1, c2)
        term = value if j == len(w) - 1 else cs
        product = product * term.clamp_min(tiny).pow(exponent)
        x, y = pool(x, kernel_size=2), pool(y, kernel_size=2)
    return reduce(1.0 - product, reduction, fn=fn, dtype=input.dtype)


def _check_weights(fn: str, weights: object) -> tuple[float, ...]:
    if not isinstance(weights, Sequence) or isinstance(weights, str) or not weights:
        fail(fn, "weights", "to be a non-empty sequence of exponents", repr(weights))
    return tuple(check_number(fn, "weights", v, low=0.0) for v in weights)


def total_variation(input: Tensor, *, reduction: Reduction = "mean") -> Tensor:
    """Total variation of images: the summed absolute differences of neighbouring pixels.

    Anisotropic (L1) form, per image ``n``::

        TV_n = Σ_c Σ_axes Σ |x[n, c, …, i+1, …] − x[n, c, …, i, …]|

    over every spatial axis (2-D or 3-D, or any number of them), the sum over channels and
    positions as in kornia's ``total_variation``; the reduction is over images.

    Args:
        input (Tensor[N, C, *spatial]): images, at least one spatial axis.
        reduction: ``"mean"`` over images, ``"sum"`` or ``"none"`` (``(N,)``).

    Returns:
        Tensor: the reduced total variation, in ``input``'s dtype.

    Raises:
        TypeError: non-float images.
        ValueError: fewer than 3 dimensions, an unknown ``reduction``.

    Reference:
        Rudin, Osher and Fatemi, "Nonlinear total variation based noise removal algorithms",
        Physica D, 1992.

    Example:
        >>> import torch
        >>> total_variation(torch.tensor([[[[0.0, 1.0], [1.0, 1.0]]]]))
        tensor(2.)
    """
    fn = "total_variation"
    check_reduction(fn, reduction)
    x = check_floating(fn, "input", input)
    if x.dim() < 3:
        fail(fn, "input", "of shape (N, C, *spatial) with a spatial axis", shape_str(x.shape))
    xc = upcast(x)
    per_image = xc.new_zeros(x.shape[0])
    for axis in range(2, x.dim()):
        per_image = per_image + xc.diff(dim=axis).abs().flatten(1).sum(1)
    return reduce(per_image, reduction, fn=fn, dtype=input.dtype)


class _SSIMOptions(nn.Module):
    """Stores and validates the window, constants and reduction shared by the SSIM losses."""

    def __init__(
        self,
        *,
        data_range: float,
        kernel_size: int,
        sigma: float,
        k1: float,
        k2: float,
        reduction: Reduction,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        self.kernel_size, self.sigma = _check_window(name, kernel_size, sigma)
        _check_constants(name, data_range, k1, k2)
        self.data_range, self.k1, self.k2 = float(data_range), float(k1), float(k2)
        self.reduction: Reduction = check_reduction(name, reduction)

    def options(self) -> dict[str, float | int | str]:
        return {
            "data_range": self.data_range,
            "kernel_size": self.kernel_size,
            "sigma": self.sigma,
            "k1": self.k1,
            "k2": self.k2,
            "reduction": self.reduction,
        }

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.options().items())


@register(ssim)
class SSIMLoss(_SSIMOptions):
    """SSIM loss; see :func:`ssim`.

    Example:
        >>> SSIMLoss(data_range=255.0)
        SSIMLoss(data_range=255.0, kernel_size=11, sigma=1.5, k1=0.01, k2=0.03, reduction='mean')
    """

    def __init__(
        self,
        *,
        data_range: float = 1.0,
        kernel_size: int = 11,
        sigma: float = 1.5,
        k1: float = 0.01,
        k2: float = 0.03,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(
            data_range=data_range,
            kernel_size=kernel_size,
            sigma=sigma,
            k1=k1,
            k2=k2,
            reduction=reduction,
        )

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return ssim(input, target, **self.options())  # type: ignore[arg-type]


@register(ms_ssim)
class MSSSIMLoss(_SSIMOptions):
    """Multi-scale SSIM loss; see :func:`ms_ssim`."""

    def __init__(
        self,
        *,
        data_range: float = 1.0,
        kernel_size: int = 11,
        sigma: float = 1.5,
        k1: float = 0.01,
        k2: float = 0.03,
        weights: Sequence[float] = MS_SSIM_WEIGHTS,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(
            data_range=data_range,
            kernel_size=kernel_size,
            sigma=sigma,
            k1=k1,
            k2=k2,
            reduction=reduction,
        )
        self.weights = _check_weights(type(self).__name__, weights)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, weights={self.weights!r}"

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return ms_ssim(input, target, weights=self.weights, **self.options())  # type: ignore[arg-type]


@register(total_variation)
class TotalVariationLoss(nn.Module):
    """Total variation; see :func:`total_variation`. Takes one image batch."""

    def __init__(self, *, reduction: Reduction = "mean") -> None:
        super().__init__()
        self.reduction: Reduction = check_reduction(type(self).__name__, reduction)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"

    def forward(self, input: Tensor) -> Tensor:
        return total_variation(input, reduction=self.reduction)
