"""Contract examples for the loss-weighting modules."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _pred_target() -> tuple[torch.Tensor, torch.Tensor]:
    pred = torch.randn(5, dtype=torch.float64, requires_grad=True)
    return pred, torch.randn(5, dtype=torch.float64)


def _task_losses() -> list[torch.Tensor]:
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    return [(x[i] ** 2).mean() * (i + 1) for i in range(3)]


def _gradnorm_args() -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    shared = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    h = torch.tanh(torch.randn(6, 3, dtype=torch.float64) @ shared.T)
    return [h[:, 0].pow(2).mean(), 10 * h[:, 1].pow(2).mean(), h[:, 2:].abs().mean()], [shared]


EXAMPLES = {
    "combined": lambda: (
        {"parts": {"mse": (F.mse_loss, 0.7), "l1": (torch.nn.L1Loss(), 0.3)}},
        _pred_target(),
    ),
    "uncertainty_weighting": lambda: ({"num_tasks": 3}, (_task_losses(),)),
    "gradnorm": lambda: ({"num_tasks": 3, "alpha": 1.5}, _gradnorm_args()),
    "curriculum": lambda: (
        {"base_loss": lambda p, t: (p - t).abs(), "threshold": 1.5, "growth": 1.2},
        _pred_target(),
    ),
}
