"""Box losses against torchvision's formulas, hand-derived cases, degenerate and empty input."""

from __future__ import annotations

import doctest
import math

import pytest
import torch

import losskit
import losskit.functional as LF
import losskit.losses.detection as det_module

LOSSES = {"iou": LF.iou, "giou": LF.giou, "diou": LF.diou, "ciou": LF.ciou}
EPS = 1e-7


def _reference(boxes1, boxes2, kind, *, eps=EPS, detach_alpha=True):
    """The per-box loss as torchvision's ``*_box_iou_loss`` writes it (``1 − IoU`` for "iou")."""
    x1, y1, x2, y2 = boxes1.unbind(-1)
    a1, b1, a2, b2 = boxes2.unbind(-1)
    left, right = torch.max(x1, a1), torch.min(x2, a2)
    top, bottom = torch.max(y1, b1), torch.min(y2, b2)
    inter = torch.zeros_like(x1)
    overlap = (right > left) & (bottom > top)
    inter[overlap] = (right[overlap] - left[overlap]) * (bottom[overlap] - top[overlap])
    union = (x2 - x1) * (y2 - y1) + (a2 - a1) * (b2 - b1) - inter
    iou = inter / (union + eps)
    if kind == "iou":
        return 1 - iou
    cw = torch.max(x2, a2) - torch.min(x1, a1)
    ch = torch.max(y2, b2) - torch.min(y1, b1)
    if kind == "giou":
        area_c = cw * ch
        return 1 - iou + (area_c - union) / (area_c + eps)
    centre_dist = ((x1 + x2) / 2 - (a1 + a2) / 2) ** 2 + ((y1 + y2) / 2 - (b1 + b2) / 2) ** 2
    diou = 1 - iou + centre_dist / (cw**2 + ch**2 + eps)
    if kind == "diou":
        return diou
    v = (4 / math.pi**2) * (
        torch.atan((a2 - a1) / (b2 - b1)) - torch.atan((x2 - x1) / (y2 - y1))
    ) ** 2
    alpha = v / (1 - iou + v + eps)
    if detach_alpha:
        alpha = alpha.detach()
    return diou + alpha * v


def _boxes(n: int, seed: int, *, degenerate: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)

    def make():
        xy = torch.rand(n, 2, generator=g, dtype=torch.float64) * 4
        wh = torch.rand(n, 2, generator=g, dtype=torch.float64) * 3 + 0.2
        if degenerate:  # invert about half of the widths and heights
            wh = wh * torch.where(torch.rand(n, 2, generator=g) < 0.5, -1.0, 1.0).double()
        return torch.cat([xy, xy + wh], dim=1)

    return make(), make()


def _tensor(*rows):
    return torch.tensor(rows, dtype=torch.float64)


# ----------------------------------------------------------------------------------------------
# Against torchvision's formulas
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("degenerate", [False, True])
@pytest.mark.parametrize("kind", list(LOSSES))
def test_matches_torchvision_formulas(kind, degenerate):
    b1, b2 = _boxes(64, seed=3, degenerate=degenerate)
    p1, r1 = b1.clone().requires_grad_(), b1.clone().requires_grad_()
    p2, r2 = b2.clone().requires_grad_(), b2.clone().requires_grad_()
    ours = LOSSES[kind](p1, p2, reduction="none")
    ref = _reference(r1, r2, kind)
    torch.testing.assert_close(ours, ref, atol=1e-12, rtol=1e-10)
    (ours * torch.linspace(0.5, 1.5, 64, dtype=torch.float64)).sum().backward()
    (ref * torch.linspace(0.5, 1.5, 64, dtype=torch.float64)).sum().backward()
    torch.testing.assert_close(p1.grad, r1.grad, atol=1e-12, rtol=1e-10)
    torch.testing.assert_close(p2.grad, r2.grad, atol=1e-12, rtol=1e-10)


def test_ciou_alpha_carries_no_gradient():
    b1, b2 = _tensor([0.0, 0.0, 2.0, 1.0]), _tensor([0.0, 0.0, 1.0, 2.0])  # different aspect
    grads = {}
    for name, fn in {
        "ours": lambda x: LF.ciou(x, b2),
        "detached": lambda x: _reference(x, b2, "ciou").sum(),
        "attached": lambda x: _reference(x, b2, "ciou", detach_alpha=False).sum(),
    }.items():
        x = b1.clone().requires_grad_()
        fn(x).backward()
        grads[name] = x.grad
    torch.testing.assert_close(grads["ours"], grads["detached"])
    assert not torch.allclose(grads["ours"], grads["attached"])


@pytest.mark.parametrize("kind", list(LOSSES))
def test_symmetric(kind):
    b1, b2 = _boxes(16, seed=5)
    torch.testing.assert_close(
        LOSSES[kind](b1, b2, reduction="none"), LOSSES[kind](b2, b1, reduction="none")
    )


# ----------------------------------------------------------------------------------------------
# Hand-derived cases
# ----------------------------------------------------------------------------------------------

AB_DIFF = math.atan(2.0) - math.atan(0.5)  # aspect angles of a 1 x 2 and a 2 x 1 box
V = 4 / math.pi**2 * AB_DIFF**2

HAND = [
    # boxes1, boxes2, {loss: value}
    ([1.0, 2.0, 4.0, 3.0], [1.0, 2.0, 4.0, 3.0], {"iou": 0, "giou": 0, "diou": 0, "ciou": 0}),
    # half overlap: inter 2, union 6, C = 3 x 2 = union, centres 1 apart, c² = 9 + 4
    (
        [0.0, 0.0, 2.0, 2.0],
        [1.0, 0.0, 3.0, 2.0],
        {"iou": 2 / 3, "giou": 2 / 3, "diou": 2 / 3 + 1 / 13, "ciou": 2 / 3 + 1 / 13},
    ),
    # disjoint: union 2, C = 3 x 1, centres 2 apart, c² = 9 + 1
    (
        [0.0, 0.0, 1.0, 1.0],
        [2.0, 0.0, 3.0, 1.0],
        {"iou": 1, "giou": 4 / 3, "diou": 1.4, "ciou": 1.4},
    ),
    # far apart: GIoU tends to 2
    ([0.0, 0.0, 1.0, 1.0], [99.0, 0.0, 100.0, 1.0], {"giou": 1 + 98 / 100}),
    # nested, same centre and aspect: IoU = 4 / 16, C is the outer box
    (
        [0.0, 0.0, 4.0, 4.0],
        [1.0, 1.0, 3.0, 3.0],
        {"iou": 0.75, "giou": 0.75, "diou": 0.75, "ciou": 0.75},
    ),
    # crossed 2 x 1 and 1 x 2: IoU = 1/3, ρ² = 0.5, c² = 8, v from the aspect angles
    (
        [0.0, 0.0, 2.0, 1.0],
        [0.0, 0.0, 1.0, 2.0],
        {"iou": 2 / 3, "diou": 2 / 3 + 1 / 16, "ciou": 2 / 3 + 1 / 16 + V * V / (2 / 3 + V)},
    ),
]


@pytest.mark.parametrize(("box1", "box2", "expected"), HAND)
def test_hand_derived_values(box1, box2, expected):
    for kind, value in expected.items():
        got = LOSSES[kind](_tensor(box1), _tensor(box2))
        assert float(got) == pytest.approx(value, abs=1e-6), kind


def test_disjoint_boxes_keep_a_gradient_under_giou_and_diou():
    b2 = _tensor([2.0, 0.0, 3.0, 1.0])
    for fn in (LF.giou, LF.diou):
        x = _tensor([0.0, 0.0, 1.0, 1.0]).requires_grad_()
        fn(x, b2).backward()
        assert x.grad[0, 2] < 0  # growing the box to the right lowers the loss
    x = _tensor([0.0, 0.0, 1.0, 1.0]).requires_grad_()
    LF.iou(x, b2).backward()
    assert torch.equal(x.grad, torch.zeros_like(x))  # plain IoU has none


# ----------------------------------------------------------------------------------------------
# Degenerate and empty input
# ----------------------------------------------------------------------------------------------


def test_inverted_box_values():
    # boxes1 has x2 < x1 (width −2, area −4); boxes2 is the same square the right way round.
    b1, b2 = _tensor([2.0, 0.0, 0.0, 2.0]), _tensor([0.0, 0.0, 2.0, 2.0])
    assert float(LF.iou(b1, b2)) == 1.0  # no intersection
    assert float(LF.giou(b1, b2)) == pytest.approx(2.0)  # union 0, C = 2 x 2
    assert float(LF.diou(b1, b2)) == pytest.approx(1.0)  # same centre
    # Aspect angles atan(−1) and atan(1): v = 1, α = 1 / (1 + 1).
    assert float(LF.ciou(b1, b2)) == pytest.approx(1.5)


def test_negative_union_lets_giou_exceed_two():
    b1, b2 = _tensor([3.0, 0.0, 0.0, 3.0]), _tensor([0.0, 0.0, 1.0, 1.0])  # union −9 + 1
    assert float(LF.giou(b1, b2)) == pytest.approx(1 + (3 + 8) / 3)  # C = 1 x 3


@pytest.mark.parametrize(
    ("box1", "box2"),
    [
        ([1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0]),  # identical points
        ([0.0, 0.0, 2.0, 0.0], [0.0, 0.0, 2.0, 0.0]),  # identical lines (h = 0)
        ([0.0, 0.0, 0.0, 2.0], [0.0, 0.0, 0.0, 2.0]),  # identical lines (w = 0)
    ],
)
def test_identical_zero_area_boxes_give_one_with_finite_gradients(box1, box2):
    for kind, fn in LOSSES.items():
        x = _tensor(box1).requires_grad_()
        y = _tensor(box2).requires_grad_()
        loss = fn(x, y)
        loss.backward()
        assert loss.item() == pytest.approx(1.0), kind
        assert torch.isfinite(x.grad).all() and torch.isfinite(y.grad).all(), kind


def test_ciou_zero_height_box_is_finite_where_torchvision_is_not():
    b1, b2 = _tensor([0.0, 0.0, 2.0, 0.0]), _tensor([0.0, 0.0, 2.0, 1.0])
    x = b1.clone().requires_grad_()
    loss = LF.ciou(x, b2)
    loss.backward()
    torch.testing.assert_close(loss, _reference(b1, b2, "ciou").mean())  # same value: atan(inf)
    assert torch.isfinite(x.grad).all()
    r = b1.clone().requires_grad_()
    _reference(r, b2, "ciou").sum().backward()
    assert torch.isnan(r.grad).any()  # atan(w / h) at h = 0 has no usable gradient


@pytest.mark.parametrize("kind", list(LOSSES))
def test_empty_input(kind):
    fn = LOSSES[kind]
    x = torch.zeros(0, 4, dtype=torch.float64, requires_grad=True)
    y = torch.zeros(0, 4, dtype=torch.float64)
    mean = fn(x, y)
    assert mean.item() == 0.0 and mean.requires_grad
    mean.backward()
    assert x.grad.shape == (0, 4)
    assert fn(x, y, reduction="sum").item() == 0.0
    assert fn(x, y, reduction="none").shape == (0,)


# ----------------------------------------------------------------------------------------------
# Reductions, gradcheck, half precision
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(LOSSES))
def test_reductions(kind):
    b1, b2 = _boxes(10, seed=7)
    none = LOSSES[kind](b1, b2, reduction="none")
    assert none.shape == (10,)
    torch.testing.assert_close(LOSSES[kind](b1, b2, reduction="sum"), none.sum())
    torch.testing.assert_close(LOSSES[kind](b1, b2), none.mean())


@pytest.mark.parametrize("kind", ["iou", "giou", "diou"])
def test_gradcheck(kind):
    b1, b2 = _boxes(4, seed=11)
    x, y = b1.requires_grad_(), b2.requires_grad_()
    assert torch.autograd.gradcheck(lambda p, q: LOSSES[kind](p, q, reduction="none"), (x, y))


def test_ciou_gradient_is_the_finite_difference_with_alpha_held_fixed():
    # CIoU's α is a constant for autograd, so its gradient is that of diou + α₀·v with α₀ frozen
    # at the evaluation point; compare with central differences of that function.
    b1, b2 = _boxes(4, seed=11)
    a1, c1, a2, c2 = b2.unbind(-1)

    def v_of(p):
        w, h = p[:, 2] - p[:, 0], p[:, 3] - p[:, 1]
        return 4 / math.pi**2 * (torch.atan((a2 - a1) / (c2 - c1)) - torch.atan(w / h)) ** 2

    iou0 = 1 - LF.iou(b1, b2, reduction="none")
    alpha0 = v_of(b1) / (1 - iou0 + v_of(b1) + EPS)

    def frozen(p):
        return (LF.diou(p, b2, reduction="none") + alpha0 * v_of(p)).sum()

    x = b1.clone().requires_grad_()
    LF.ciou(x, b2, reduction="sum").backward()
    h = 1e-6
    numeric = torch.zeros_like(b1)
    for i in range(b1.shape[0]):
        for j in range(4):
            step = torch.zeros_like(b1)
            step[i, j] = h
            numeric[i, j] = (frozen(b1 + step) - frozen(b1 - step)) / (2 * h)
    torch.testing.assert_close(x.grad, numeric, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("kind", list(LOSSES))
def test_half_precision_pixel_boxes(kind, dtype):
    # Boxes of several hundred pixels: their areas overflow float16 (max 65504).
    b1, b2 = _boxes(8, seed=13)
    b1, b2 = (b1 * 150).to(dtype), (b2 * 150).to(dtype)
    x = b1.clone().requires_grad_()
    loss = LOSSES[kind](x, b2)
    loss.backward()
    assert loss.dtype == dtype and x.grad.dtype == dtype
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all()
    ref = LOSSES[kind](b1.double(), b2.double())
    torch.testing.assert_close(loss.double(), ref, atol=1e-2, rtol=1e-2)


# ----------------------------------------------------------------------------------------------
# Modules
# ----------------------------------------------------------------------------------------------

MODULES = {"iou": "IoULoss", "giou": "GIoULoss", "diou": "DIoULoss", "ciou": "CIoULoss"}


@pytest.mark.parametrize("kind", list(LOSSES))
def test_modules(kind):
    b1, b2 = _boxes(6, seed=17)
    module = losskit.build_loss(kind, eps=1e-6, reduction="sum")
    assert type(module).__name__ == MODULES[kind]
    assert repr(module) == f"{MODULES[kind]}(eps=1e-06, reduction='sum')"
    torch.testing.assert_close(module(b1, b2), LOSSES[kind](b1, b2, eps=1e-6, reduction="sum"))


def test_docstring_examples():
    assert doctest.testmod(det_module).failed == 0


# ----------------------------------------------------------------------------------------------
# Errors
# ----------------------------------------------------------------------------------------------

_B = torch.rand(3, 4)
ERRORS = [
    (
        TypeError,
        r"iou: expected `boxes1` to hold real box coordinates, got dtype torch.bool",
        lambda: LF.iou(torch.zeros(3, 4, dtype=torch.bool), _B),
    ),
    (
        TypeError,
        r"giou: expected `boxes2` to hold real box coordinates, got dtype torch.complex64",
        lambda: LF.giou(_B, torch.zeros(3, 4, dtype=torch.complex64)),
    ),
    (
        ValueError,
        r"giou: expected `boxes1` of shape \(\*, 4\) \(N boxes as x1, y1, x2, y2\), got \(3, 5\)",
        lambda: LF.giou(torch.rand(3, 5), torch.rand(3, 5)),
    ),
    (
        ValueError,
        r"diou: expected `boxes1` of shape \(\*, 4\) .*, got \(4,\)",
        lambda: LF.diou(torch.rand(4), torch.rand(1, 4)),
    ),
    (
        ValueError,
        r"ciou: expected `boxes2` of the same shape as `boxes1` \(3, 4\), got \(2, 4\)",
        lambda: LF.ciou(_B, torch.rand(2, 4)),
    ),
    (
        ValueError,
        r"iou: expected `eps` in \[0, inf\), got -1e-07",
        lambda: LF.iou(_B, _B, eps=-1e-7),
    ),
    (
        ValueError,
        r"ciou: expected `reduction` one of 'mean', 'sum', 'none', got 'sun' "
        r"\(did you mean 'sum'\?\)",
        lambda: LF.ciou(_B, _B, reduction="sun"),
    ),
    (ValueError, r"CIoULoss: expected `eps` in \[0, inf\)", lambda: losskit.CIoULoss(eps=-1.0)),
    (
        ValueError,
        r"IoULoss: expected `reduction` one of",
        lambda: losskit.IoULoss(reduction="avg"),
    ),
]


@pytest.mark.parametrize(("kind", "match", "call"), ERRORS)
def test_errors(kind, match, call):
    with pytest.raises(kind, match=match):
        call()


# ---- pairwise matrices, single boxes, integer boxes ------------------------------------------


@pytest.mark.parametrize("kind", sorted(LOSSES))
def test_box_iou_matrix_matches_the_pairwise_reference(kind):
    b1, _ = _boxes(4, 1)
    _, b2 = _boxes(3, 2)
    b1.requires_grad_()
    matrix = LF.box_iou_matrix(b1, b2, kind)
    expected = torch.stack(
        [
            torch.cat([1 - _reference(b1[i : i + 1], b2[j : j + 1], kind) for j in range(3)])
            for i in range(4)
        ]
    )
    torch.testing.assert_close(matrix, expected)
    (g,) = torch.autograd.grad(matrix.sum(), b1)
    (g_ref,) = torch.autograd.grad(expected.sum(), b1)
    torch.testing.assert_close(g, g_ref)
    if kind != "ciou":  # CIoU's alpha is detached, so its gradient is not the numerical one
        assert torch.autograd.gradcheck(lambda a: LF.box_iou_matrix(a, b2, kind), (b1,))


def test_box_iou_matrix_identities_and_empty_sets():
    b, _ = _boxes(5, 3)
    torch.testing.assert_close(
        torch.diagonal(LF.box_iou_matrix(b, b)), torch.ones(5, dtype=torch.float64)
    )
    assert LF.box_iou_matrix(b[:0], b).shape == (0, 5)
    ints = torch.tensor([[0, 0, 4, 4], [2, 2, 6, 6]])
    out = LF.box_iou_matrix(ints, ints, "giou")
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, LF.box_iou_matrix(ints.float(), ints.float(), "giou"))


@pytest.mark.parametrize("kind", sorted(LOSSES))
def test_single_and_integer_boxes(kind):
    loss = LOSSES[kind]
    a, b = torch.tensor([0, 0, 4, 3]), torch.tensor([1, 1, 5, 5])
    for r in ("mean", "sum", "none"):
        single = loss(a, b, reduction=r)
        batched = loss(a.float().unsqueeze(0), b.float().unsqueeze(0), reduction=r)
        assert single.dim() == 0 and single.dtype == torch.float32
        torch.testing.assert_close(single, batched.squeeze(0))
    module = losskit.build_loss(kind, reduction="none")
    assert module(a.double(), b.double()).shape == ()


def test_box_iou_matrix_errors():
    b, _ = _boxes(2, 0)
    with pytest.raises(
        ValueError, match=r"box_iou_matrix: expected `kind` one of .* \(did you mean 'giou'\?\)"
    ):
        LF.box_iou_matrix(b, b, "gio")
    with pytest.raises(
        ValueError, match=r"box_iou_matrix: expected `boxes2` of shape \(\*, 4\) \(M boxes"
    ):
        LF.box_iou_matrix(b, b[:, :3])
    with pytest.raises(
        TypeError, match=r"box_iou_matrix: expected `boxes1` to hold real box coordinates"
    ):
        LF.box_iou_matrix(b.bool(), b)
    with pytest.raises(ValueError, match=r"iou: expected `boxes2` of shape \(4,\) \(one box"):
        LF.iou(torch.rand(4), torch.rand(5))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("kind", sorted(LOSSES))
def test_coordinates_beyond_the_square_range_match_float64(kind, dtype):
    """Areas of boxes at 1e20 overflow float32/bfloat16 (1e40); the scaled form does not."""
    b1, b2 = (b * 1e20 for b in _boxes(16, seed=3))
    h1, h2 = b1.to(dtype).requires_grad_(), b2.to(dtype)
    got = LOSSES[kind](h1, h2, reduction="none")
    r1 = h1.detach().double().requires_grad_()
    ref = _reference(r1, h2.double(), kind)
    tol = 1e-5 if dtype == torch.float32 else 2e-2
    torch.testing.assert_close(got.double(), ref, rtol=tol, atol=tol)
    (grad,) = torch.autograd.grad(got.sum(), h1)
    (ref_grad,) = torch.autograd.grad(ref.sum(), r1)
    assert torch.isfinite(grad).all()
    assert float((grad.double() - ref_grad).norm() / ref_grad.norm()) < 5 * tol
    matrix = LF.box_iou_matrix(h1.detach(), h2, kind)
    assert torch.isfinite(matrix).all()
    torch.testing.assert_close(matrix.diagonal().double(), 1 - ref.detach(), rtol=tol, atol=tol)
