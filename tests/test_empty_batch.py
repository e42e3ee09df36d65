"""The empty-batch rule, over every registered loss.

An empty batch (``B = 0``) gives ``0.0`` connected to the graph, with zero gradients for the
inputs and every learnable parameter (proxies), as every loss with no valid element does
(DESIGN §2); ``reduction="none"`` gives an empty ``(0,)``. The exceptions are listed below with
their reason: losses whose formula needs batch statistics refuse a too-small batch with a
ValueError naming the count, and a few have another value by their own definition.
"""

from __future__ import annotations

import pytest
import torch

import losskit
from tests.test_contract import EXAMPLES
from tests.test_extremes import _leaves

# A standard deviation over the batch, or the other samples as the negatives.
NEEDS_TWO_ROWS = {"barlow_twins", "vicreg", "dcl"}
REFUSED = {
    "kto": "its mean runs over the answers of both kinds: it needs at least one",
}
OTHER_VALUE = {
    "mcc": (1.0, "1 − MCC, and the MCC of an empty confusion matrix is 0"),
    "perplexity": (1.0, "exp of the mean token loss, which is 0 with no token"),
}
NOT_A_BATCH = {
    "uncertainty_weighting": "its input is one loss per task, not a batch",
    "gradnorm": "its input is one loss per task, not a batch",
    "combined": "the value of its parts (here torch's F.mse_loss, NaN on an empty input)",
    "r1_penalty": "the example builds its scores from `real` (tested on its own below)",
    "jsd_cross_entropy": "the example stacks views on dim 0; the batch is dim 1",
}
# Mining modes and reductions beyond the contract examples' own settings.
VARIANTS = {
    "online_triplet": [{"mining": m} for m in ("batch_hard", "semi_hard", "batch_all")],
    "multi_similarity": [{"mining": m} for m in ("none", "multi_similarity")],
    "arcface": [{"reduction": r} for r in ("mean", "sum", "none")],
    "proxy_nca": [{"reduction": r} for r in ("mean", "sum", "none")],
}


def _empty(value):
    """Every tensor argument cut to 0 rows (inputs keep their requires_grad)."""
    if isinstance(value, torch.Tensor) and value.dim() >= 1:
        return value.detach()[:0].clone().requires_grad_(value.requires_grad)
    if isinstance(value, tuple | list):
        return type(value)(_empty(v) for v in value)
    return value


def _cases():
    for name in sorted(losskit.list_losses()):
        if name in NOT_A_BATCH:
            continue
        for extra in VARIANTS.get(name, [{}]):
            yield pytest.param(name, extra, id=f"{name}-{extra}" if extra else name)


def test_every_exception_is_a_registered_loss():
    listed = NEEDS_TWO_ROWS | set(REFUSED) | set(OTHER_VALUE) | set(NOT_A_BATCH)
    assert listed <= set(losskit.list_losses())


@pytest.mark.parametrize(("name", "extra"), list(_cases()))
def test_empty_batch(name, extra):
    torch.manual_seed(0)
    kwargs, args = EXAMPLES[name]()
    module = losskit.build_loss(name, **{**kwargs, **extra})
    args = _empty(args)
    if name in NEEDS_TWO_ROWS:
        with pytest.raises(ValueError, match=f"{name}: expected `z1` with at least 2 rows.*got 0"):
            module(*args)
        return
    if name in REFUSED:
        with pytest.raises(ValueError, match=f"{name}: expected .*at least one"):
            module(*args)
        return
    out = module(*args)
    out = out[0] if isinstance(out, tuple) else out
    if extra.get("reduction") == "none":
        assert out.shape == (0,)
        out = out.sum()
    expected = OTHER_VALUE.get(name, (0.0, ""))[0]
    assert out.shape == () and float(out.detach()) == expected and out.requires_grad
    inputs = _leaves(args)
    params = [p for p in module.parameters() if p.requires_grad]
    grads = torch.autograd.grad(out, inputs + params, allow_unused=True)
    for grad in grads:
        assert grad is None or (torch.isfinite(grad).all() and not grad.any())
    # The proxies are in the graph: an optimiser step sees a zero gradient, not a missing one.
    assert all(grad is not None for grad in grads[len(inputs) :])


def test_r1_penalty_empty_batch():
    critic = torch.nn.Linear(3, 1)
    real = torch.zeros(0, 3, requires_grad=True)
    out = losskit.functional.r1_penalty(critic(real), real)
    (grad,) = torch.autograd.grad(out, critic.weight)  # ∇ₓD does not involve the bias
    assert float(out.detach()) == 0.0 and not grad.any()
