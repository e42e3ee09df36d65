"""Contract examples for the regression losses (`losskit.losses.regression`)."""

from __future__ import annotations

import torch


def _pair() -> tuple[torch.Tensor, torch.Tensor]:
    prediction = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    return prediction, torch.randn(4, 3, dtype=torch.float64)


EXAMPLES = {
    "mse": lambda: ({}, _pair()),
    "mae": lambda: ({}, _pair()),
    "huber": lambda: ({"delta": 0.5}, _pair()),
    "smooth_l1": lambda: ({"beta": 0.5}, _pair()),
    "log_cosh": lambda: ({}, _pair()),
    "asymmetric_mse": lambda: ({"over_penalty": 3.0}, _pair()),
}

EXAMPLES.update(
    {
        "robust": lambda: ({"alpha": 0.5, "scale": 2.0}, _pair()),
        "charbonnier": lambda: ({"scale": 0.5}, _pair()),
        "cauchy": lambda: ({}, _pair()),
        "welsch": lambda: ({"scale": 2.0}, _pair()),
        "quantile": lambda: (
            {"quantiles": [0.1, 0.5, 0.9]},
            (
                torch.randn(4, 3, dtype=torch.float64, requires_grad=True),
                torch.randn(4, dtype=torch.float64),
            ),
        ),
    }
)
