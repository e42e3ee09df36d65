"""Fuzzing the core losses with bounded random inputs: any outcome but a value or a ValueError /
TypeError naming the problem is a crash."""

from __future__ import annotations

import hypothesis.strategies as st
import torch
from hypothesis import HealthCheck, given, settings

import losskit.functional as LF

FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,  # the same examples on every run, whatever ran before
    suppress_health_check=list(HealthCheck),
)
_FLOATS = st.floats(-1e4, 1e4, width=32) | st.sampled_from([float("nan"), float("inf"), 0.0, 1.0])
_DTYPES = st.sampled_from(
    [torch.float32, torch.float64, torch.bfloat16, torch.float16, torch.int64]
)
_REDUCTIONS = st.sampled_from(["mean", "sum", "none", "avg"])


@st.composite
def _tensor(draw, max_dims=3):
    shape = draw(st.lists(st.integers(0, 4), min_size=0, max_size=max_dims))
    values = draw(st.lists(_FLOATS, min_size=1, max_size=8))
    n = 1
    for d in shape:
        n *= d
    flat = torch.tensor((values * (n // len(values) + 1))[:n], dtype=torch.float64)
    dtype = draw(_DTYPES)
    x = flat.reshape(shape)
    return x.round().to(dtype) if dtype == torch.int64 else x.to(dtype)


CORE = {
    "mse": lambda a, b, kw: LF.mse(a, b, **kw),
    "huber": lambda a, b, kw: LF.huber(a, b, **kw),
    "binary_cross_entropy": lambda a, b, kw: LF.binary_cross_entropy(a, b, **kw),
    "cross_entropy": lambda a, b, kw: LF.cross_entropy(a, b.long() if b.dim() else b, **kw),
    "focal": lambda a, b, kw: LF.focal(a, b.long(), **kw),
    "contrastive": lambda a, b, kw: LF.contrastive(
        a, b, b[:, 0] if b.dim() == 2 and b.shape[1] else b, **kw
    ),
    "triplet": lambda a, b, kw: LF.triplet(a, b, b.flip(0), **kw),
    "online_triplet": lambda a, b, kw: LF.online_triplet(a, b.long().flatten()[: len(a)], **kw),
    "info_nce": lambda a, b, kw: LF.info_nce(a, b, **kw),
    "nt_xent": lambda a, b, kw: LF.nt_xent(a, b, **kw),
    "giou": lambda a, b, kw: LF.giou(a, b, **kw),
    "dice": lambda a, b, kw: LF.dice(a, b.long(), **kw),
}


@FUZZ
@given(name=st.sampled_from(sorted(CORE)), a=_tensor(), b=_tensor(), reduction=_REDUCTIONS)
def test_core_losses_fail_only_with_value_or_type_errors(name, a, b, reduction):
    try:
        out = CORE[name](a, b, {"reduction": reduction})
    except (ValueError, TypeError):
        return
    assert isinstance(out, torch.Tensor)
