"""Softmax losses over proxies with a margin on the target: ArcFace, CosFace, sub-center
ArcFace, and ProxyNCA++.

Every loss here is a cross-entropy over scaled cosines ``σ·s(x, p_c)`` of the L2-normalised
embedding and the L2-normalised proxies (class weight vectors), in which only the **target**
logit changes: ``σ·φ(s_y)`` with ``φ(s) = cos(θ + m)`` (ArcFace, ``θ = arccos s``) or
``φ(s) = s − m`` (CosFace). The non-target logits are plain scaled cosines, so one walk serves
these and :func:`~losskit.functional.cosine_softmax_cross_entropy` (``φ(s) = s``)
(:mod:`._chunked`): a first pass accumulates each sample's log-sum-exp over the non-target
classes online, starting from the target logit; a second pass forms the gradients (4 GEMMs in
all, no ``(B, C)`` matrix beyond a chunk, exact). The target term is handled apart, from the
``B`` target cosines.

Several processes: ``gather_distributed=True`` computes the loss of the global batch on every
rank; the modules' ``shard_proxies=True`` keeps on each rank only its block of classes (with
their sub-centers), the target logit being formed on the rank that holds the class and each
sample's log-sum-exp combined over the ranks (:mod:`._chunked`). An empty (global) batch gives
``0.0`` connected to the graph of the embeddings and proxies (``(0,)`` for ``"none"``).

Compared with pytorch-metric-learning (``ArcFaceLoss``, ``CosFaceLoss``,
``SubCenterArcFaceLoss``, ``ProxyNCALoss``), with the same proxies (PML stores them transposed,
``W = proxies.T``) the values and gradients agree, with these differences:

- ArcFace's margin is in **radians** here (``margin=0.5``), in degrees in PML (``28.6``).
- Both use the fallback ``φ = s − m·sin m`` where ``θ > π − m`` (keeping the target logit
  decreasing in ``θ``); neither offers the "easy margin" variant (``φ = s`` where ``s < 0``).
- At ``s = ±1`` (an embedding exactly on a proxy's direction) ``dθ/ds`` is infinite; the
  derivative of ``φ`` is taken as ``cos m`` there (finite), where PML's ``acos`` gives ``inf``
  or ``NaN``.
- The log-sum-exps run in float32 for half-precision inputs; no miner weights, no weight
  regularisers; out-of-range labels raise a clear error.
- ProxyNCA++'s ``temperature=T`` is PML ``ProxyNCALoss(softmax_scale=1/T)``. PML drops samples
  whose target probability underflows to 0 from its mean; here every sample counts (the
  log-sum-exp never underflows).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from torch import Tensor

from losskit._checks import check_int, check_number
from losskit._reduce import Reduction, check_reduction
from losskit.losses.metric._chunked import ArcFaceTarget, CosFaceTarget, Target
from losskit.losses.metric.proxies import (
    PLAIN,
    _check_module_chunk_size,
    _margin_softmax,
    _ProxyModule,
)
from losskit.registry import register

__all__ = [
    "ArcFaceLoss",
    "CosFaceLoss",
    "ProxyNCALoss",
    "SubCenterArcFaceLoss",
    "arcface",
    "cosface",
    "proxy_nca",
    "subcenter_arcface",
]


# --------------------------------------------------------------------------------------------
# Functions
# --------------------------------------------------------------------------------------------


def _check_scale(fn: str, scale: object) -> float:
    return check_number(fn, "scale", scale, low=0.0, low_open=True)


def _check_arc_margin(fn: str, margin: object) -> float:
    return check_number(fn, "margin", margin, low=0.0, high=math.pi, high_open=True)


def _check_cos_margin(fn: str, margin: object) -> float:
    return check_number(fn, "margin", margin, low=0.0)


def _check_sub_centers(fn: str, sub_centers: object) -> int:
    return check_int(fn, "sub_centers", sub_centers, low=1)


def _check_temperature(fn: str, temperature: object) -> float:
    return check_number(fn, "temperature", temperature, low=0.0, low_open=True)


def arcface(
    embeddings: Tensor,
    labels: Tensor,
    proxies: Tensor,
    scale: float = 64.0,
    margin: float = 0.5,
    *,
    reduction: Reduction = "mean",
    chunk_size: int | None = None,
    gather_distributed: bool = False,
) -> Tensor:
    """ArcFace (additive angular margin): cross-entropy with the target angle widened by ``m``.

    With ``s_c = cos θ_c`` the cosine of the embedding and proxy ``c`` and ``σ = scale``:

    ``ℓ_i = −log( e^{σ φ(s_{y})} / (e^{σ φ(s_{y})} + Σ_{c≠y} e^{σ s_c}) )``,
    ``φ(s) = cos(θ + m)`` for ``θ ≤ π − m``, else ``cos θ − m·sin m``

    (the fallback keeps the target logit decreasing in ``θ``; no "easy margin"). ``margin`` is
    in **radians** (pytorch-metric-learning takes degrees: its ``28.6`` is ``0.5`` here);
    ``margin=0`` gives :func:`~losskit.functional.cosine_softmax_cross_entropy`. Computed
    exactly in chunks of proxies, gradients formed in the forward pass, never holding the
    ``(B, C)`` matrix (see the module notes).

    Args:
        embeddings (Tensor[B, D]): embeddings (normalised inside).
        labels (Tensor[B]): integer class indices in ``[0, C)``.
        proxies (Tensor[C, D]): one proxy (class weight vector) per class, normalised inside.
        scale (float): ``σ > 0``.
        margin (float): ``m`` in ``[0, π)``, radians.
        reduction (str): ``"mean"`` | ``"sum"`` | ``"none"``.
        chunk_size (int, optional): proxies per chunk (default: automatic, as for
            :func:`~losskit.functional.proxy_anchor`).
        gather_distributed (bool): compute the loss of the global batch, all ranks' rows in
            rank order, on every rank (see :mod:`losskit.distributed`); a no-op without a
            process group.

    Returns:
        Tensor: the scalar loss, or ``Tensor[B]`` for ``reduction="none"``, in the embeddings'
        dtype.

    Raises:
        TypeError: a non-tensor or non-floating input, non-integer labels or ``chunk_size``.
        ValueError: wrong shapes, a label outside ``[0, C)``, ``scale`` ≤ 0, ``margin`` outside
            ``[0, π)``, ``chunk_size`` < 1, an unknown ``reduction``.

    Reference:
        Deng et al., "ArcFace: Additive Angular Margin Loss for Deep Face Recognition",
        CVPR 2019.

    Example:
        >>> import torch
        >>> x, p, y = torch.randn(4, 8), torch.randn(10, 8), torch.tensor([0, 3, 3, 9])
        >>> from losskit.functional import cosine_softmax_cross_entropy
        >>> bool(arcface(x, y, p) > cosine_softmax_cross_entropy(x, y, p, scale=64.0))
        True
    """
    fn = "arcface"
    target = ArcFaceTarget(_check_arc_margin(fn, margin))
    sigma = _check_scale(fn, scale)
    return _margin_softmax(
        fn, embeddings, labels, proxies, target, sigma, 1, reduction, chunk_size, gather_distributed
    )


def cosface(
    embeddings: Tensor,
    labels: Tensor,
    proxies: Tensor,
    scale: float = 64.0,
    margin: float = 0.35,
    *,
    reduction: Reduction = "mean",
    chunk_size: int | None = None,
    gather_distributed: bool = False,
) -> Tensor:
    """CosFace (large margin cosine loss): cross-entropy with ``m`` taken off the target cosine.

    ``ℓ_i = −log( e^{σ(s_y − m)} / (e^{σ(s_y − m)} + Σ_{c≠y} e^{σ s_c}) )`` with ``s_c`` the
    cosine of the embedding and proxy ``c`` and ``σ = scale``; ``margin=0`` gives
    :func:`~losskit.functional.cosine_softmax_cross_entropy`. Computed in chunks like
    :func:`arcface`.

    Args:
        embeddings (Tensor[B, D]): embeddings (normalised inside).
        labels (Tensor[B]): integer class indices in ``[0, C)``.
        proxies (Tensor[C, D]): one proxy per class, normalised inside.
        scale (float): ``σ > 0``.
        margin (float): ``m ≥ 0``.
        reduction (str): ``"mean"`` | ``"sum"`` | ``"none"``.
        chunk_size (int, optional): proxies per chunk (default: automatic).
        gather_distributed (bool): the loss of the global batch, on every rank (as for
            :func:`arcface`).

    Returns:
        Tensor: the scalar loss, or ``Tensor[B]`` for ``reduction="none"``, in the embeddings'
        dtype.

    Raises:
        TypeError: a non-tensor or non-floating input, non-integer labels or ``chunk_size``.
        ValueError: wrong shapes, a label outside ``[0, C)``, ``scale`` ≤ 0, ``margin`` < 0,
            ``chunk_size`` < 1, an unknown ``reduction``.

    Reference:
        Wang et al., "CosFace: Large Margin Cosine Loss for Deep Face Recognition", CVPR 2018.

    Example:
        >>> import torch
        >>> x, p, y = torch.randn(4, 8), torch.randn(10, 8), torch.tensor([0, 3, 3, 9])
        >>> cosface(x, y, p, reduction="none").shape
        torch.Size([4])
    """
    fn = "cosface"
    target = CosFaceTarget(_check_cos_margin(fn, margin))
    sigma = _check_scale(fn, scale)
    return _margin_softmax(
        fn, embeddings, labels, proxies, target, sigma, 1, reduction, chunk_size, gather_distributed
    )


def subcenter_arcface(
    embeddings: Tensor,
    labels: Tensor,
    proxies: Tensor,
    scale: float = 64.0,
    margin: float = 0.5,
    *,
    sub_centers: int = 3,
    reduction: Reduction = "mean",
    chunk_size: int | None = None,
    gather_distributed: bool = False,
) -> Tensor:
    """Sub-center ArcFace: ArcFace over ``K`` proxies per class, each class scored by its closest.

    The proxies are stored class-major: rows ``c·K … c·K + K − 1`` are class ``c``'s
    sub-centers. With ``s_c = max_k cos(x, p_{c,k})``, the loss is :func:`arcface` on these
    pooled cosines (the gradient of each max goes to its most similar sub-center); ``K = 1`` is
    :func:`arcface`. Computed in chunks of whole classes (``chunk_size`` rounded down to a
    multiple of ``K``).

    Args:
        embeddings (Tensor[B, D]): embeddings (normalised inside).
        labels (Tensor[B]): integer class indices in ``[0, C)``.
        proxies (Tensor[C·K, D]): ``K = sub_centers`` proxies per class, class-major.
        scale (float): ``σ > 0``.
        margin (float): ``m`` in ``[0, π)``, radians.
        sub_centers (int): ``K ≥ 1``.
        reduction (str): ``"mean"`` | ``"sum"`` | ``"none"``.
        chunk_size (int, optional): proxies per chunk (default: automatic).
        gather_distributed (bool): the loss of the global batch, on every rank (as for
            :func:`arcface`).

    Returns:
        Tensor: the scalar loss, or ``Tensor[B]`` for ``reduction="none"``, in the embeddings'
        dtype.

    Raises:
        TypeError: a non-tensor or non-floating input, non-integer labels, ``sub_centers`` or
            ``chunk_size``.
        ValueError: wrong shapes, proxies rows not a multiple of ``K``, a label outside
            ``[0, C)``, ``scale`` ≤ 0, ``margin`` outside ``[0, π)``, ``K`` or ``chunk_size``
            < 1, an unknown ``reduction``.

    Reference:
        Deng et al., "Sub-center ArcFace: Boosting Face Recognition by Large-scale Noisy Web
        Faces", ECCV 2020.

    Example:
        >>> import torch
        >>> x, p, y = torch.randn(4, 8), torch.randn(30, 8), torch.tensor([0, 3, 3, 9])
        >>> subcenter_arcface(x, y, p, sub_centers=3).shape
        torch.Size([])
    """
    fn = "subcenter_arcface"
    target = ArcFaceTarget(_check_arc_margin(fn, margin))
    sigma = _check_scale(fn, scale)
    k = _check_sub_centers(fn, sub_centers)
    return _margin_softmax(
        fn, embeddings, labels, proxies, target, sigma, k, reduction, chunk_size, gather_distributed
    )


def proxy_nca(
    embeddings: Tensor,
    labels: Tensor,
    proxies: Tensor,
    temperature: float = 1 / 9,
    *,
    reduction: Reduction = "mean",
    chunk_size: int | None = None,
    gather_distributed: bool = False,
) -> Tensor:
    """ProxyNCA++: softmax over negative squared distances to normalised proxies.

    ``ℓ_i = −log softmax_c(−‖x̂_i − p̂_c‖² / T)[y_i]`` with ``x̂``, ``p̂`` L2-normalised. Since
    ``‖x̂ − p̂‖² = 2 − 2 s(x, p)``, this is
    :func:`~losskit.functional.cosine_softmax_cross_entropy` with ``scale = 2/T`` exactly, and
    is computed by the same chunked walk. pytorch-metric-learning's
    ``ProxyNCALoss(softmax_scale=1/T)`` gives the same value and gradients.

    Args:
        embeddings (Tensor[B, D]): embeddings (normalised inside).
        labels (Tensor[B]): integer class indices in ``[0, C)``.
        proxies (Tensor[C, D]): one proxy per class, normalised inside.
        temperature (float): ``T > 0`` (the paper's default ``1/9``).
        reduction (str): ``"mean"`` | ``"sum"`` | ``"none"``.
        chunk_size (int, optional): proxies per chunk (default: automatic).
        gather_distributed (bool): the loss of the global batch, on every rank (as for
            :func:`arcface`).

    Returns:
        Tensor: the scalar loss, or ``Tensor[B]`` for ``reduction="none"``, in the embeddings'
        dtype.

    Raises:
        TypeError: a non-tensor or non-floating input, non-integer labels or ``chunk_size``.
        ValueError: wrong shapes, a label outside ``[0, C)``, ``temperature`` ≤ 0,
            ``chunk_size`` < 1, an unknown ``reduction``.

    Reference:
        Teh, DeVries, Taylor, "ProxyNCA++: Revisiting and Revitalizing Proxy Neighborhood
        Component Analysis", ECCV 2020; Movshovitz-Attias et al., "No Fuss Distance Metric
        Learning using Proxies", ICCV 2017.

    Example:
        >>> import torch
        >>> x, p, y = torch.randn(4, 8), torch.randn(10, 8), torch.tensor([0, 3, 3, 9])
        >>> from losskit.functional import cosine_softmax_cross_entropy
        >>> a, b = proxy_nca(x, y, p, temperature=0.25), cosine_softmax_cross_entropy(x, y, p, 8.0)
        >>> bool(torch.isclose(a, b))
        True
    """
    fn = "proxy_nca"
    sigma = 2.0 / _check_temperature(fn, temperature)
    return _margin_softmax(
        fn, embeddings, labels, proxies, PLAIN, sigma, 1, reduction, chunk_size, gather_distributed
    )


# --------------------------------------------------------------------------------------------
# Modules
# --------------------------------------------------------------------------------------------


class _SoftmaxProxyModule(_ProxyModule):
    """A proxy module with a ``reduction`` and a ``chunk_size``."""

    def __init__(
        self,
        num_classes: int,
        embedding_dim: int,
        reduction: Reduction,
        chunk_size: int | None,
        proxies_per_class: int = 1,
        *,
        gather_distributed: bool,
        shard_proxies: bool,
    ) -> None:
        super().__init__(
            num_classes,
            embedding_dim,
            proxies_per_class,
            gather_distributed=gather_distributed,
            shard_proxies=shard_proxies,
        )
        fn = type(self).__name__
        self.reduction: Reduction = check_reduction(fn, reduction)
        self.chunk_size = _check_module_chunk_size(fn, chunk_size)

    def _loss(
        self, fn: str, embeddings: Tensor, labels: Tensor, target: Target, scale: float
    ) -> Tensor:
        """The margin softmax of ``fn`` over this module's proxies (its block when sharded)."""
        return _margin_softmax(
            fn,
            embeddings,
            labels,
            self.proxies,
            target,
            scale,
            self.proxies_per_class,
            self.reduction,
            self.chunk_size,
            self.gather_distributed,
            self.block,
        )

    def _repr(self, **hyper: object) -> str:
        extra = "".join(f", {k}={v!r}" for k, v in hyper.items())
        return (
            f"num_classes={self.num_classes}, embedding_dim={self.embedding_dim}{extra}, "
            f"reduction={self.reduction!r}, chunk_size={self.chunk_size}" + self._distributed_repr()
        )


class _MarginModule(_SoftmaxProxyModule):
    """A margin-softmax module: validated ``scale`` and ``margin`` besides the above."""

    def __init__(
        self,
        num_classes: int,
        embedding_dim: int,
        scale: float,
        margin: float,
        check_margin: Callable[[str, object], float],
        reduction: Reduction,
        chunk_size: int | None,
        sub_centers: int = 1,
        **distributed: bool,
    ) -> None:
        super().__init__(
            num_classes, embedding_dim, reduction, chunk_size, sub_centers, **distributed
        )
        fn = type(self).__name__
        self.scale, self.margin = _check_scale(fn, scale), check_margin(fn, margin)

    def extra_repr(self) -> str:
        return self._repr(scale=self.scale, margin=self.margin)


@register(arcface)
class ArcFaceLoss(_MarginModule):
    """ArcFace owning its proxies; see :func:`losskit.functional.arcface`.

    Args:
        num_classes (int): ``C``, one proxy per class.
        embedding_dim (int): ``D``.
        scale (float): ``σ > 0``.
        margin (float): ``m`` in ``[0, π)``, radians.
        reduction (str): ``"mean"`` | ``"sum"`` | ``"none"``.
        chunk_size (int, optional): proxies per chunk (default: automatic).
        gather_distributed (bool): the loss of the global batch (see
            :class:`~losskit.ProxyAnchorLoss`).
        shard_proxies (bool): hold only this rank's block of classes (with
            ``gather_distributed``).

    Example:
        >>> import torch
        >>> loss = ArcFaceLoss(10, 8, scale=30.0, margin=0.3)
        >>> loss(torch.randn(4, 8), torch.tensor([0, 1, 2, 3])).shape
        torch.Size([])
    """

    def __init__(
        self,
        num_classes: int,
        embedding_dim: int,
        *,
        scale: float = 64.0,
        margin: float = 0.5,
        reduction: Reduction = "mean",
        chunk_size: int | None = None,
        gather_distributed: bool = False,
        shard_proxies: bool = False,
    ) -> None:
        super().__init__(
            num_classes,
            embedding_dim,
            scale,
            margin,
            _check_arc_margin,
            reduction,
            chunk_size,
            gather_distributed=gather_distributed,
            shard_proxies=shard_proxies,
        )

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        return self._loss("arcface", embeddings, labels, ArcFaceTarget(self.margin), self.scale)


@register(cosface)
class CosFaceLoss(_MarginModule):
    """CosFace owning its proxies; see :func:`losskit.functional.cosface`.

    Args:
        num_classes (int): ``C``, one proxy per class.
        embedding_dim (int): ``D``.
        scale (float): ``σ > 0``.
        margin (float): ``m ≥ 0``.
        reduction (str): ``"mean"`` | ``"sum"`` | ``"none"``.
        chunk_size (int, optional): proxies per chunk (default: automatic).
        gather_distributed (bool): the loss of the global batch (see
            :class:`~losskit.ProxyAnchorLoss`).
        shard_proxies (bool): hold only this rank's block of classes (with
            ``gather_distributed``).

    Example:
        >>> import torch
        >>> loss = CosFaceLoss(10, 8)
        >>> loss(torch.randn(4, 8), torch.tensor([0, 1, 2, 3])).shape
        torch.Size([])
    """

    def __init__(
        self,
        num_classes: int,
        embedding_dim: int,
        *,
        scale: float = 64.0,
        margin: float = 0.35,
        reduction: Reduction = "mean",
        chunk_size: int | None = None,
        gather_distributed: bool = False,
        shard_proxies: bool = False,
    ) -> None:
        super().__init__(
            num_classes,
            embedding_dim,
            scale,
            margin,
            _check_cos_margin,
            reduction,
            chunk_size,
            gather_distributed=gather_distributed,
            shard_proxies=shard_proxies,
        )

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        return self._loss("cosface", embeddings, labels, CosFaceTarget(self.margin), self.scale)


@register(subcenter_arcface)
class SubCenterArcFaceLoss(_MarginModule):
    """Sub-center ArcFace owning its ``C·K`` proxies (class-major); see
    :func:`losskit.functional.subcenter_arcface`.

    Args:
        num_classes (int): ``C``.
        embedding_dim (int): ``D``.
        sub_centers (int): ``K ≥ 1`` proxies per class.
        scale (float): ``σ > 0``.
        margin (float): ``m`` in ``[0, π)``, radians.
        reduction (str): ``"mean"`` | ``"sum"`` | ``"none"``.
        chunk_size (int, optional): proxies per chunk (default: automatic).
        gather_distributed (bool): the loss of the global batch (see
            :class:`~losskit.ProxyAnchorLoss`).
        shard_proxies (bool): hold only this rank's block of classes (with
            ``gather_distributed``).

    Example:
        >>> import torch
        >>> loss = SubCenterArcFaceLoss(10, 8, sub_centers=2)
        >>> loss.proxies.shape, loss(torch.randn(4, 8), torch.tensor([0, 1, 2, 3])).shape
        (torch.Size([20, 8]), torch.Size([]))
    """

    def __init__(
        self,
        num_classes: int,
        embedding_dim: int,
        *,
        sub_centers: int = 3,
        scale: float = 64.0,
        margin: float = 0.5,
        reduction: Reduction = "mean",
        chunk_size: int | None = None,
        gather_distributed: bool = False,
        shard_proxies: bool = False,
    ) -> None:
        k = _check_sub_centers(type(self).__name__, sub_centers)
        super().__init__(
            num_classes,
            embedding_dim,
            scale,
            margin,
            _check_arc_margin,
            reduction,
            chunk_size,
            k,
            gather_distributed=gather_distributed,
            shard_proxies=shard_proxies,
        )

    @property
    def sub_centers(self) -> int:
        """``K``, the proxies per class."""
        return self.proxies_per_class

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        target = ArcFaceTarget(self.margin)
        return self._loss("subcenter_arcface", embeddings, labels, target, self.scale)

    def extra_repr(self) -> str:
        return self._repr(sub_centers=self.sub_centers, scale=self.scale, margin=self.margin)


@register(proxy_nca)
class ProxyNCALoss(_SoftmaxProxyModule):
    """ProxyNCA++ owning its proxies; see :func:`losskit.functional.proxy_nca`.

    Args:
        num_classes (int): ``C``, one proxy per class.
        embedding_dim (int): ``D``.
        temperature (float): ``T > 0``.
        reduction (str): ``"mean"`` | ``"sum"`` | ``"none"``.
        chunk_size (int, optional): proxies per chunk (default: automatic).
        gather_distributed (bool): the loss of the global batch (see
            :class:`~losskit.ProxyAnchorLoss`).
        shard_proxies (bool): hold only this rank's block of classes (with
            ``gather_distributed``).

    Example:
        >>> import torch
        >>> loss = ProxyNCALoss(10, 8)
        >>> loss(torch.randn(4, 8), torch.tensor([0, 1, 2, 3])).shape
        torch.Size([])
    """

    def __init__(
        self,
        num_classes: int,
        embedding_dim: int,
        *,
        temperature: float = 1 / 9,
        reduction: Reduction = "mean",
        chunk_size: int | None = None,
        gather_distributed: bool = False,
        shard_proxies: bool = False,
    ) -> None:
        super().__init__(
            num_classes,
            embedding_dim,
            reduction,
            chunk_size,
            gather_distributed=gather_distributed,
            shard_proxies=shard_proxies,
        )
        self.temperature = _check_temperature(type(self).__name__, temperature)

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        return self._loss("proxy_nca", embeddings, labels, PLAIN, 2.0 / self.temperature)

    def extra_repr(self) -> str:
        return self._repr(temperature=self.temperature)
