"""Bounding-box regression losses: IoU, GIoU, DIoU and CIoU on paired ``(N, 4)`` boxes.

Boxes are ``(x1, y1, x2, y2)``; row ``i`` of ``boxes1`` is compared with row ``i`` of ``boxes2``
(the losses are symmetric). Every loss is ``1 − IoU`` plus a penalty, with torchvision's
formulas and its ``eps = 1e-7`` (``generalized_box_iou_loss``, ``distance_box_iou_loss``,
``complete_box_iou_loss``)::

    IoU  = inter / (union + eps)
    iou  = 1 − IoU
    giou = 1 − IoU + (area_C − union) / (area_C + eps)       C: smallest enclosing box
    diou = 1 − IoU + ρ² / (c² + eps)                          ρ: distance of the centres,
    ciou = diou + α·v                                         c: diagonal of C
    v = 4/π² · (atan(w₂/h₂) − atan(w₁/h₁))²,   α = v / (1 − IoU + v + eps), computed without
                                                              gradient (as torchvision)

**Degenerate boxes** (``x2 < x1``, ``y2 < y1`` or zero area) are not an error. Widths and heights
are the signed differences ``x2 − x1`` and ``y2 − y1`` (as in torchvision), so:

- the intersection is 0 unless both overlap extents are positive, hence a pair with an inverted
  or zero-area box has IoU 0 and ``iou`` = 1 — also two identical zero-area boxes;
- an inverted box has a negative area in ``union``, so the GIoU penalty can exceed 1 (``giou``
  above 2); values are not clipped;
- the CIoU aspect angle is ``atan(w/h)`` wherever ``h ≠ 0``, its limit ``±π/2`` at ``h = 0``,
  and 0 for a point box (``w = h = 0``, where torchvision's ``atan(0/0)`` is NaN); it is
  computed with ``atan2`` so that gradients stay finite there.

Every value and gradient is finite for finite boxes. ``N = 0`` gives ``0.0`` connected to the
graph for ``"mean"`` and ``"sum"``, and an empty ``(0,)`` tensor for ``"none"``. Half-precision
boxes are computed in float32 (areas overflow fp16 quickly) and the result cast back.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from losskit._checks import check_floating, check_number, check_same_shape, check_shape
from losskit._reduce import Reduction, check_reduction, compute_dtype, reduce
from losskit.registry import register

__all__ = ["CIoULoss", "DIoULoss", "GIoULoss", "IoULoss", "ciou", "diou", "giou", "iou"]

EPS = 1e-7


class _Pair:
    """The geometry of paired boxes, in the compute dtype; every attribute has shape ``(N,)``."""

    def __init__(self, fn: str, boxes1: Tensor, boxes2: Tensor, eps: float, reduction: str) -> None:
        check_floating(fn, "boxes1", boxes1)
        check_floating(fn, "boxes2", boxes2)
        check_shape(fn, "boxes1", boxes1, (None, 4), "(N boxes as x1, y1, x2, y2)")
        check_same_shape(fn, "boxes2", boxes2, "boxes1", boxes1)
        self.eps = check_number(fn, "eps", eps, low=0.0)
        check_reduction(fn, reduction)
        self.out_dtype = torch.promote_types(boxes1.dtype, boxes2.dtype)
        dtype = compute_dtype(self.out_dtype)
        self.x1, self.y1, self.x2, self.y2 = boxes1.to(dtype).unbind(dim=-1)
        self.u1, self.v1, self.u2, self.v2 = boxes2.to(dtype).unbind(dim=-1)

        # Intersection: zero unless both overlap extents are positive.
        iw = torch.minimum(self.x2, self.u2) - torch.maximum(self.x1, self.u1)
        ih = torch.minimum(self.y2, self.v2) - torch.maximum(self.y1, self.v1)
        inter = torch.where((iw > 0) & (ih > 0), iw * ih, 0.0)
        area1 = (self.x2 - self.x1) * (self.y2 - self.y1)
        area2 = (self.u2 - self.u1) * (self.v2 - self.v1)
        self.union = area1 + area2 - inter
        self.iou = inter / (self.union + self.eps)

        # Smallest enclosing box.
        self.cw = torch.maximum(self.x2, self.u2) - torch.minimum(self.x1, self.u1)
        self.ch = torch.maximum(self.y2, self.v2) - torch.minimum(self.y1, self.v1)

    def enclosing_penalty(self) -> Tensor:
        """GIoU's ``(area_C − union) / (area_C + eps)``."""
        area_c = self.cw * self.ch
        return (area_c - self.union) / (area_c + self.eps)

    def centre_penalty(self) -> Tensor:
        """DIoU's ``ρ² / (c² + eps)``: squared centre distance over the squared diagonal of C."""
        dx = (self.x1 + self.x2 - self.u1 - self.u2) / 2
        dy = (self.y1 + self.y2 - self.v1 - self.v2) / 2
        return (dx**2 + dy**2) / (self.cw**2 + self.ch**2 + self.eps)

    def aspect_penalty(self) -> Tensor:
        """CIoU's ``α·v`` with ``α`` detached."""
        diff = _aspect_angle(self.u2 - self.u1, self.v2 - self.v1) - _aspect_angle(
            self.x2 - self.x1, self.y2 - self.y1
        )
        v = (4 / math.pi**2) * diff**2
        with torch.no_grad():
            alpha = v / (1 - self.iou + v + self.eps)
        return alpha * v

    def finish(self, fn: str, loss: Tensor, reduction: str) -> Tensor:
        return reduce(loss, reduction, fn=fn, dtype=self.out_dtype)


def _aspect_angle(w: Tensor, h: Tensor) -> Tensor:
    """``atan(w / h)``, extended to ``h = 0`` (``±π/2``) and a point box (0), finite gradients."""
    # atan2 of the point mirrored into h >= 0 equals atan(w / h) for every h != 0.
    sign = 1 - 2 * (h < 0).to(h.dtype)
    w, h = w * sign, h * sign
    point = (w == 0) & (h == 0)
    return torch.atan2(w, torch.where(point, torch.ones_like(h), h))


def iou(
    boxes1: Tensor, boxes2: Tensor, *, eps: float = EPS, reduction: Reduction = "mean"
) -> Tensor:
    """IoU loss: one minus the intersection over union of paired boxes.

    Formula: ``L = 1 − inter / (union + eps)``; 0 for identical boxes, 1 for disjoint ones.
    See the module docstring for degenerate boxes.

    Args:
        boxes1 (Tensor[N, 4]): predicted boxes ``(x1, y1, x2, y2)``.
        boxes2 (Tensor[N, 4]): target boxes, same shape.
        eps: added to the union (>= 0).
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (``(N,)``).

    Returns:
        Tensor: a scalar, or ``(N,)`` with ``"none"``.

    Raises:
        TypeError: non-float boxes.
        ValueError: boxes not ``(N, 4)`` or of different shapes, negative ``eps``, unknown
            ``reduction``.

    Reference:
        Yu et al., "UnitBox: An Advanced Object Detection Network", ACM MM 2016.

    Example:
        >>> import torch
        >>> a = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
        >>> b = torch.tensor([[1.0, 0.0, 3.0, 2.0]])       # IoU = 2 / 6
        >>> round(float(iou(a, b)), 4)
        0.6667
    """
    pair = _Pair("iou", boxes1, boxes2, eps, reduction)
    return pair.finish("iou", 1 - pair.iou, reduction)


def giou(
    boxes1: Tensor, boxes2: Tensor, *, eps: float = EPS, reduction: Reduction = "mean"
) -> Tensor:
    """Generalized IoU loss: IoU loss plus the empty share of the smallest enclosing box.

    Formula: ``L = 1 − IoU + (area_C − union) / (area_C + eps)``, ``C`` the smallest box enclosing
    both; in ``[0, 2)`` for proper boxes and above 1 for disjoint ones, so it still has a gradient
    when the boxes do not overlap. Matches ``torchvision.ops.generalized_box_iou_loss``.

    Args:
        boxes1 (Tensor[N, 4]): predicted boxes ``(x1, y1, x2, y2)``.
        boxes2 (Tensor[N, 4]): target boxes, same shape.
        eps: added to the union and to ``area_C`` (>= 0).
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (``(N,)``).

    Returns:
        Tensor: a scalar, or ``(N,)`` with ``"none"``.

    Raises:
        TypeError, ValueError: as :func:`iou`.

    Reference:
        Rezatofighi et al., "Generalized Intersection over Union: A Metric and A Loss for
        Bounding Box Regression", CVPR 2019.

    Example:
        >>> import torch
        >>> a = torch.tensor([[0.0, 0.0, 1.0, 1.0]])
        >>> b = torch.tensor([[2.0, 0.0, 3.0, 1.0]])       # disjoint: C is 3 x 1, union 2
        >>> round(float(giou(a, b)), 4)                  # 1 − 0 + (3 − 2) / 3
        1.3333
    """
    pair = _Pair("giou", boxes1, boxes2, eps, reduction)
    return pair.finish("giou", 1 - pair.iou + pair.enclosing_penalty(), reduction)


def diou(
    boxes1: Tensor, boxes2: Tensor, *, eps: float = EPS, reduction: Reduction = "mean"
) -> Tensor:
    """Distance IoU loss: IoU loss plus the normalised squared distance of the box centres.

    Formula: ``L = 1 − IoU + ρ² / (c² + eps)``, ``ρ`` the distance between the centres and ``c``
    the diagonal of the smallest enclosing box. Matches
    ``torchvision.ops.distance_box_iou_loss``.

    Args:
        boxes1 (Tensor[N, 4]): predicted boxes ``(x1, y1, x2, y2)``.
        boxes2 (Tensor[N, 4]): target boxes, same shape.
        eps: added to the union and to ``c²`` (>= 0).
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (``(N,)``).

    Returns:
        Tensor: a scalar, or ``(N,)`` with ``"none"``.

    Raises:
        TypeError, ValueError: as :func:`iou`.

    Reference:
        Zheng et al., "Distance-IoU Loss: Faster and Better Learning for Bounding Box
        Regression", AAAI 2020.

    Example:
        >>> import torch
        >>> a = torch.tensor([[0.0, 0.0, 1.0, 1.0]])
        >>> b = torch.tensor([[2.0, 0.0, 3.0, 1.0]])       # ρ² = 4, c² = 9 + 1
        >>> round(float(diou(a, b)), 4)
        1.4
    """
    pair = _Pair("diou", boxes1, boxes2, eps, reduction)
    return pair.finish("diou", 1 - pair.iou + pair.centre_penalty(), reduction)


def ciou(
    boxes1: Tensor, boxes2: Tensor, *, eps: float = EPS, reduction: Reduction = "mean"
) -> Tensor:
    """Complete IoU loss: DIoU loss plus an aspect-ratio consistency term.

    Formula::

        L = 1 − IoU + ρ² / (c² + eps) + α·v
        v = 4/π² · (atan(w₂/h₂) − atan(w₁/h₁))²,    α = v / (1 − IoU + v + eps)

    ``α`` is a weight computed without gradient (as in torchvision's ``complete_box_iou_loss``
    and the authors' code): the gradient of the last term is ``α·∂v``. Matches
    ``torchvision.ops.complete_box_iou_loss`` for boxes with positive height; unlike it, a box
    with zero height or a point box keeps finite values and gradients (module docstring).

    Args:
        boxes1 (Tensor[N, 4]): predicted boxes ``(x1, y1, x2, y2)``.
        boxes2 (Tensor[N, 4]): target boxes, same shape.
        eps: added to the union, to ``c²`` and to the denominator of ``α`` (>= 0).
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (``(N,)``).

    Returns:
        Tensor: a scalar, or ``(N,)`` with ``"none"``.

    Raises:
        TypeError, ValueError: as :func:`iou`.

    Reference:
        Zheng et al., "Distance-IoU Loss: Faster and Better Learning for Bounding Box
        Regression", AAAI 2020.

    Example:
        >>> import torch
        >>> a = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
        >>> b = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
        >>> float(ciou(a, b))                            # identical boxes
        0.0
    """
    pair = _Pair("ciou", boxes1, boxes2, eps, reduction)
    loss = 1 - pair.iou + pair.centre_penalty() + pair.aspect_penalty()
    return pair.finish("ciou", loss, reduction)


class _BoxLoss(nn.Module):
    """Stores and validates ``eps`` and ``reduction`` for the box losses."""

    def __init__(self, *, eps: float = EPS, reduction: Reduction = "mean") -> None:
        super().__init__()
        name = type(self).__name__
        self.eps = check_number(name, "eps", eps, low=0.0)
        self.reduction: Reduction = check_reduction(name, reduction)

    def extra_repr(self) -> str:
        return f"eps={self.eps!r}, reduction={self.reduction!r}"


@register(iou)
class IoULoss(_BoxLoss):
    """Module form of :func:`iou`."""

    def forward(self, boxes1: Tensor, boxes2: Tensor) -> Tensor:
        return iou(boxes1, boxes2, eps=self.eps, reduction=self.reduction)


@register(giou)
class GIoULoss(_BoxLoss):
    """Module form of :func:`giou`."""

    def forward(self, boxes1: Tensor, boxes2: Tensor) -> Tensor:
        return giou(boxes1, boxes2, eps=self.eps, reduction=self.reduction)


@register(diou)
class DIoULoss(_BoxLoss):
    """Module form of :func:`diou`."""

    def forward(self, boxes1: Tensor, boxes2: Tensor) -> Tensor:
        return diou(boxes1, boxes2, eps=self.eps, reduction=self.reduction)


@register(ciou)
class CIoULoss(_BoxLoss):
    """Module form of :func:`ciou`."""

    def forward(self, boxes1: Tensor, boxes2: Tensor) -> Tensor:
        return ciou(boxes1, boxes2, eps=self.eps, reduction=self.reduction)
