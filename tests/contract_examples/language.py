"""Contract examples for the language, preference and diffusion losses."""

from __future__ import annotations

import torch


def _lm() -> tuple[torch.Tensor, torch.Tensor]:
    logits = torch.randn(2, 5, 7, dtype=torch.float64, requires_grad=True)
    tokens = torch.randint(0, 7, (2, 5))
    tokens[0, 3] = -100
    return logits, tokens


def _rewards() -> tuple[torch.Tensor, torch.Tensor]:
    chosen = torch.randn(6, dtype=torch.float64, requires_grad=True)
    return chosen, torch.randn(6, dtype=torch.float64, requires_grad=True)


def _noise() -> tuple[torch.Tensor, torch.Tensor]:
    pred = torch.randn(3, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    return pred, torch.randn(3, 2, 4, 4, dtype=torch.float64)


EXAMPLES = {
    "next_token_cross_entropy": lambda: ({}, _lm()),
    "perplexity": lambda: ({"ignore_index": -100}, _lm()),
    "bradley_terry": lambda: ({"margin": 0.5}, _rewards()),
    "diffusion_noise_mse": lambda: ({}, _noise()),
}
