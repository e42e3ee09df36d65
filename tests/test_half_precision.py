"""Every registered loss in bfloat16 and float16: finite where the float64 value (on the same
rounded inputs) fits the dtype, and close to it."""

from __future__ import annotations

import copy

import pytest
import torch

import losskit
from tests.test_contract import EXAMPLES

TOLERANCE = {torch.bfloat16: 5e-2, torch.float16: 1e-2}
# Their examples build scores from the inputs with a graph that a cast would cut.
GRAPH_EXAMPLES = {"r1_penalty", "gradient_penalty", "gradnorm"}
# They return float32 for half inputs (a known gap: the dtype should follow the input).
FLOAT32_RESULT = {"perplexity"}


def _cast(value, dtype):
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return value.detach().to(dtype).requires_grad_(value.requires_grad)
    if isinstance(value, tuple | list):
        return type(value)(_cast(v, dtype) for v in value)
    if isinstance(value, dict):
        return {k: _cast(v, dtype) for k, v in value.items()}
    return value


def _value(module, args):
    out = module(*args)
    return out[0] if isinstance(out, tuple) else out


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_half_precision_matches_float64(name, dtype):
    if name in GRAPH_EXAMPLES:
        pytest.skip(f"{name}'s example differentiates through its own graph")
    torch.manual_seed(0)
    kwargs, args = EXAMPLES[name]()
    module = losskit.build_loss(name, **kwargs)
    half_args = _cast(args, dtype)
    # The reference: float64 on the very inputs the half-precision run sees.
    ref_module = copy.deepcopy(module).to(dtype).double()
    try:
        module = module.to(dtype)
        got = _value(module, half_args)
    except (TypeError, RuntimeError) as err:  # a loss whose inputs must be float32 or wider
        pytest.skip(f"{name} does not take {dtype}: {err}")
    expected = _value(ref_module, _cast(half_args, torch.float64)).detach()
    assert got.dtype == (torch.float32 if name in FLOAT32_RESULT else dtype)
    if abs(float(expected)) <= torch.finfo(dtype).max:
        assert torch.isfinite(got), (name, float(expected), float(got))
        scale = max(abs(float(expected)), 1e-2)
        assert abs(float(got) - float(expected)) <= TOLERANCE[dtype] * scale, (
            name,
            float(expected),
            float(got),
        )
