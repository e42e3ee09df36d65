"""Contract examples for the self-supervised losses."""

from __future__ import annotations

import torch


def _views() -> tuple[torch.Tensor, torch.Tensor]:
    z1 = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    return z1, torch.randn(6, 4, dtype=torch.float64, requires_grad=True)


EXAMPLES = {
    "barlow_twins": lambda: ({"lambda_": 0.01}, _views()),
    "vicreg": lambda: ({"sim_weight": 25.0}, _views()),
    "negative_cosine": lambda: ({}, _views()),
    "dcl": lambda: ({"temperature": 0.2}, _views()),
}
