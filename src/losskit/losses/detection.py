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

Every value and gradient is finite for finite boxes, at any scale: each pair is divided by a
power of two near its largest coordinate before areas are formed (and ``eps`` by its square), so
the result is that of the formulas above bit for bit wherever they neither overflow nor underflow,
and still finite and accurate for bfloat16/float32 coordinates beyond ~1e19. ``N = 0`` gives
``0.0`` connected to the graph for ``"mean"`` and ``"sum"``, and an empty ``(0,)`` tensor for
``"none"``. Half-precision
boxes are computed in float32 (areas overflow fp16 quickly) and the result cast back.

**Inputs**: besides ``(N, 4)`` floating boxes, every loss accepts a single box ``(4,)`` on both
sides (then ``"none"`` gives a 0-d tensor) and integer boxes, which are computed in float32
(float64 for int64 coordinates beyond 2²⁴ would need the caller's cast). Boolean and complex
boxes are refused. :func:`box_iou_matrix` gives the pairwise ``(N, M)`` IoU, GIoU, DIoU or CIoU
of two sets of boxes (the similarities, ``1 −`` the losses).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor, nn

from losskit._checks import (
    check_choice,
    check_floating,
    check_number,
    check_same_shape,
    check_shape,
    check_tensor,
    fail,
)
from losskit._reduce import Reduction, check_reduction, compute_dtype, reduce
from losskit._scaled import pow2_scale
from losskit.registry import register

__all__ = [
    "BOX_IOU_KINDS",
    "CIoULoss",
    "DIoULoss",
    "GIoULoss",
    "IoULoss",
    "box_iou_matrix",
    "ciou",
    "diou",
    "giou",
    "iou",
]

EPS = 1e-7


def _as_float_boxes(fn: str, arg: str, boxes: object) -> Tensor:
    """Integer boxes in float32; bool and complex boxes refused; floats unchanged."""
    t = check_tensor(fn, arg, boxes)
    if t.dtype == torch.bool or t.is_complex():
        fail(fn, arg, "to hold real box coordinates", f"dtype {t.dtype}", kind=TypeError)
    return t if t.is_floating_point() else t.to(torch.float32)


BoxLoss = Callable[..., Tensor]


def _box_inputs(loss: BoxLoss) -> BoxLoss:
    """Let a paired box loss take a single ``(4,)`` box per side and integer coordinates."""

    @functools.wraps(loss)
    def wrapper(boxes1: Tensor, boxes2: Tensor, **kwargs: object) -> Tensor:
        fn = loss.__name__
        b1 = _as_float_boxes(fn, "boxes1", boxes1)
        b2 = _as_float_boxes(fn, "boxes2", boxes2)
        single = b1.dim() == 1 and b2.dim() == 1
        if single:
            check_shape(fn, "boxes1", b1, (4,), "(one box as x1, y1, x2, y2)")
            check_shape(fn, "boxes2", b2, (4,), "(one box as x1, y1, x2, y2)")
            b1, b2 = b1.unsqueeze(0), b2.unsqueeze(0)
        out = loss(b1, b2, **kwargs)
        return out.squeeze(0) if single and out.dim() == 1 else out

    return wrapper


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
        b1, b2 = boxes1.to(dtype), boxes2.to(dtype)
        # Every ratio below is scale-invariant: divide each pair by a power of two near its
        # largest coordinate (exact), and ``eps`` (an area) by its square, so areas cannot overflow.
        s = pow2_scale(torch.cat([b1, b2], dim=1), dim=1)
        self.area_eps = self.eps / s.squeeze(1) / s.squeeze(1)
        self.x1, self.y1, self.x2, self.y2 = (b1 / s).unbind(dim=-1)
        self.u1, self.v1, self.u2, self.v2 = (b2 / s).unbind(dim=-1)

        # Intersection: zero unless both overlap extents are positive.
        iw = torch.minimum(self.x2, self.u2) - torch.maximum(self.x1, self.u1)
        ih = torch.minimum(self.y2, self.v2) - torch.maximum(self.y1, self.v1)
        inter = torch.where((iw > 0) & (ih > 0), iw * ih, 0.0)
        area1 = (self.x2 - self.x1) * (self.y2 - self.y1)
        area2 = (self.u2 - self.u1) * (self.v2 - self.v1)
        self.union = area1 + area2 - inter
        self.iou = inter / (self.union + self.area_eps)

        # Smallest enclosing box.
        self.cw = torch.maximum(self.x2, self.u2) - torch.minimum(self.x1, self.u1)
        self.ch = torch.maximum(self.y2, self.v2) - torch.minimum(self.y1, self.v1)

    def enclosing_penalty(self) -> Tensor:
        """GIoU's ``(area_C − union) / (area_C + eps)``."""
        area_c = self.cw * self.ch
        return (area_c - self.union) / (area_c + self.area_eps)

    def centre_penalty(self) -> Tensor:
        """DIoU's ``ρ² / (c² + eps)``: squared centre distance over the squared diagonal of C."""
        dx = (self.x1 + self.x2 - self.u1 - self.u2) / 2
        dy = (self.y1 + self.y2 - self.v1 - self.v2) / 2
        return (dx**2 + dy**2) / (self.cw**2 + self.ch**2 + self.area_eps)

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


@_box_inputs
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


@_box_inputs
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


@_box_inputs
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


@_box_inputs
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


BoxIoUKind = Literal["iou", "giou", "diou", "ciou"]
BOX_IOU_KINDS: tuple[str, ...] = ("iou", "giou", "diou", "ciou")


def box_iou_matrix(
    boxes1: Tensor, boxes2: Tensor, kind: BoxIoUKind = "iou", *, eps: float = EPS
) -> Tensor:
    """Pairwise IoU (or GIoU, DIoU, CIoU) of every box of one set with every box of another.

    Entry ``(i, j)`` is ``1 − loss(boxes1[i], boxes2[j])`` for the loss named by ``kind``
    (:func:`iou`, :func:`giou`, :func:`diou`, :func:`ciou`), so the formulas, ``eps`` and the
    degenerate-box conventions are those of the module docstring — torchvision's ``box_iou``,
    ``generalized_box_iou``, ``distance_box_iou`` and ``complete_box_iou`` up to ``eps``.
    Differentiable; memory ``O(N·M)``.

    Args:
        boxes1 (Tensor[N, 4]): boxes ``(x1, y1, x2, y2)``, float or integer.
        boxes2 (Tensor[M, 4]): boxes, float or integer.
        kind: ``"iou"``, ``"giou"``, ``"diou"`` or ``"ciou"``.
        eps: added to the denominators (>= 0).

    Returns:
        Tensor: ``(N, M)``, in the boxes' (promoted) dtype, float32 for integer boxes.

    Raises:
        TypeError: bool or complex boxes.
        ValueError: boxes not ``(*, 4)``, an unknown ``kind``, negative ``eps``.

    Reference:
        Rezatofighi et al., "Generalized Intersection over Union", CVPR 2019; Zheng et al.,
        "Distance-IoU Loss", AAAI 2020.

    Example:
        >>> import torch
        >>> a = torch.tensor([[0, 0, 2, 2], [0, 0, 1, 1]])
        >>> box_iou_matrix(a, torch.tensor([[0, 0, 2, 2]]))
        tensor([[1.0000],
                [0.2500]])
    """
    fn = "box_iou_matrix"
    check_choice(fn, "kind", kind, BOX_IOU_KINDS)
    b1 = _as_float_boxes(fn, "boxes1", boxes1)
    b2 = _as_float_boxes(fn, "boxes2", boxes2)
    check_shape(fn, "boxes1", b1, (None, 4), "(N boxes as x1, y1, x2, y2)")
    check_shape(fn, "boxes2", b2, (None, 4), "(M boxes as x1, y1, x2, y2)")
    n, m = b1.shape[0], b2.shape[0]
    loss = {"iou": iou, "giou": giou, "diou": diou, "ciou": ciou}[kind]
    rows = b1.unsqueeze(1).expand(n, m, 4).reshape(n * m, 4)
    cols = b2.unsqueeze(0).expand(n, m, 4).reshape(n * m, 4)
    return (1 - loss(rows, cols, eps=eps, reduction="none")).view(n, m)


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
