"""``losskit train`` under ``torchrun`` in which process 1 alone fails from its second batch on.

``python -m torch.distributed.run --nproc_per_node 2 tests/train/torchrun_failing.py MODE ARGS``
with MODE ``nan`` (its loss becomes NaN, as from a bad batch of its own) or ``raise`` (its step
raises); ARGS go to ``losskit``. The test replaces the objective here; the product has no hook.
"""

from __future__ import annotations

import sys

import torch

from losskit import distributed
from losskit.cli import main
from losskit.train.objective import LossParts, Objective

_forward = Objective.forward
_calls = [0]


def _failing_forward(
    self: Objective, features: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor
) -> LossParts:
    _calls[0] += 1
    if distributed.rank() == 1 and _calls[0] >= 2:
        if MODE == "raise":
            raise RuntimeError("a bad batch on process 1")
        features, logits = features * float("nan"), logits * float("nan")
    return _forward(self, features, logits, labels)


if __name__ == "__main__":  # imported (pytest's doctest collection), it changes nothing
    MODE = sys.argv.pop(1)
    Objective.forward = _failing_forward  # type: ignore[method-assign]
    sys.exit(main(sys.argv[1:]))
