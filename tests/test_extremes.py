"""Every registered loss at the edge of bfloat16 and float16: inputs scaled up to |x| ~ 1e20.

Each contract example's differentiable inputs (both box sets for the box losses) are multiplied
by a scale and rounded to the dtype. The losses that are scale-invariant or homogeneous (boxes,
distances, normalised embeddings) run at the largest scale the dtype holds (1e20 in bfloat16,
1e4 in float16: its maximum is 65504); every other loss at the largest scale of a ladder at which
its float64 value (on the same rounded inputs) fits the dtype. There the half-precision value must
be finite and within a dtype-sized relative tolerance of the float64 one, and its gradients
finite and close in norm. ``pytest -s`` prints the table of every case.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch

import losskit
from tests.test_contract import EXAMPLES
from tests.test_half_precision import FLOAT32_RESULT, GRAPH_EXAMPLES, _cast, _value

DTYPES = (torch.bfloat16, torch.float16)
LADDER = {torch.bfloat16: (1e20, 1e10, 1e4, 1e2, 1.0), torch.float16: (1e4, 1e2, 1e1, 1.0)}
TOLERANCE = {torch.bfloat16: 5e-2, torch.float16: 1e-2}
BOXES = {"iou", "giou", "diou", "ciou"}
# Scale-invariant or homogeneous: run at the top of the ladder, where plain squares overflow.
TOP_SCALE = BOXES | {
    "triplet",
    "online_triplet",
    "arcface",
    "cosface",
    "subcenter_arcface",
    "cosine_softmax_cross_entropy",
    "proxy_anchor",
    "focal_proxy_anchor",
    "multi_proxy_anchor",
    "proxy_nca",
    "info_nce",
    "nt_xent",
    "supcon",
    "cross_batch_memory",
    "multi_similarity",
    "circle",
    "dcl",
    "negative_cosine",
    "barlow_twins",
}
NOT_MEANINGFUL = {
    "ssim": "images in [0, data_range]: C1, C2 fix the scale; 1e20 is no image",
    "ms_ssim": "images in [0, data_range]: C1, C2 fix the scale; 1e20 is no image",
    **{
        name: "scores come from the inputs through a network; a dtype cast cuts that graph"
        for name in GRAPH_EXAMPLES
    },
}
ROWS: list[tuple[str, ...]] = []


@pytest.fixture(scope="module", autouse=True)
def _table():
    """Print every case (shown with ``pytest -s``)."""
    yield
    head = ("loss", "dtype", "scale", "float64", "half", "rel err", "grad err", "status")
    widths = (28, 9, 6, 11, 11, 8, 8, 0)
    print("\n" + " ".join(f"{h:<{w}}" for h, w in zip(head, widths, strict=True)))
    for row in ROWS:
        print(" ".join(f"{c:<{w}}" for c, w in zip(row, widths, strict=True)))


def _scaled(value, scale: float, boxes: bool):
    """``value`` with its differentiable tensors (every float tensor for boxes) times ``scale``."""
    floating = isinstance(value, torch.Tensor) and value.is_floating_point()
    if floating and (value.requires_grad or boxes):
        return (value.detach() * scale).requires_grad_(value.requires_grad)
    if isinstance(value, tuple | list):
        return type(value)(_scaled(v, scale, boxes) for v in value)
    return value


def _leaves(value) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value] if value.requires_grad else []
    if isinstance(value, tuple | list):
        return [leaf for v in value for leaf in _leaves(v)]
    return []


def _run(module, args: tuple) -> tuple[torch.Tensor, list[torch.Tensor]]:
    out = _value(module, args)
    leaves = _leaves(args) + [p for p in module.parameters() if p.requires_grad]
    grads = torch.autograd.grad(out, leaves, allow_unused=True)
    zero = [torch.zeros_like(a) for a in leaves]
    return out.detach(), [z if g is None else g for g, z in zip(grads, zero, strict=True)]


def _case(name: str, dtype: torch.dtype):
    """The scale, the half-precision run and its float64 reference on the same inputs."""
    kwargs, args = EXAMPLES[name]()
    module = losskit.build_loss(name, **kwargs).to(dtype)
    reference = copy.deepcopy(module).double()
    out_dtype = torch.float32 if name in FLOAT32_RESULT else dtype
    ladder = LADDER[dtype][:1] if name in TOP_SCALE else LADDER[dtype]
    for scale in ladder:
        half = _cast(_scaled(args, scale, name in BOXES), dtype)
        expected = _run(reference, _cast(half, torch.float64))
        if abs(float(expected[0])) <= torch.finfo(out_dtype).max:
            return scale, _run(module, half), expected
    return scale, None, expected


def _grad_error(got: list[torch.Tensor], expected: list[torch.Tensor]) -> float:
    diff = math.sqrt(sum(float((g.double() - e).square().sum()) for g, e in zip(got, expected)))
    size = math.sqrt(sum(float(e.square().sum()) for e in expected))
    return diff / max(size, 1e-30) if size > 0 else diff


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_extremes(name, dtype):
    short = str(dtype).removeprefix("torch.")
    if name in NOT_MEANINGFUL:
        ROWS.append((name, short, "-", "-", "-", "-", "-", f"excluded: {NOT_MEANINGFUL[name]}"))
        pytest.skip(NOT_MEANINGFUL[name])
    torch.manual_seed(0)
    scale, got, (value64, grads64) = _case(name, dtype)
    if got is None:  # not even the smallest scale gives a value the dtype holds
        assert name not in TOP_SCALE, f"{name}: {float(value64):.3g} at the top scale"
        row = (name, short, f"{scale:.0e}", f"{float(value64):.4g}", "-", "-", "-", "overflows")
        ROWS.append(row)
        pytest.skip(f"{name}: the float64 value {float(value64):.3g} does not fit {dtype}")
    value, grads = got
    rel = abs(float(value) - float(value64)) / max(abs(float(value64)), 1e-2)
    grads_fit = all(float(g.abs().amax()) <= torch.finfo(dtype).max for g in grads64 if g.numel())
    finite = all(bool(torch.isfinite(g).all()) for g in grads) or not grads_fit
    grad_rel = _grad_error(grads, grads64)
    ok = bool(torch.isfinite(value)) and rel <= TOLERANCE[dtype]
    ok = ok and finite and (grad_rel <= 2 * TOLERANCE[dtype] or not grads_fit)
    ROWS.append(
        (
            name,
            short,
            f"{scale:.0e}",
            f"{float(value64):.4g}",
            f"{float(value):.4g}",
            f"{rel:.1e}",
            f"{grad_rel:.1e}",
            ("ok" if grads_fit else "ok (gradient beyond the dtype)") if ok else "FAIL",
        )
    )
    assert torch.isfinite(value), (name, float(value64), float(value))
    assert rel <= TOLERANCE[dtype], (name, float(value64), float(value))
    assert finite, f"{name}: non-finite gradients"
    assert grad_rel <= 2 * TOLERANCE[dtype] or not grads_fit, (name, grad_rel)
