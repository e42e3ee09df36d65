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


def _head() -> tuple[torch.Tensor, ...]:
    hidden = torch.randn(2, 5, 4, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(9, 4, dtype=torch.float64, requires_grad=True)
    targets = torch.randint(0, 9, (2, 5))
    targets[1, 2] = -100
    return hidden, weight, targets, torch.randn(9, dtype=torch.float64, requires_grad=True)


def _sequences(n: int = 4) -> tuple[torch.Tensor, ...]:
    chosen, rejected = (-torch.rand(n, dtype=torch.float64) - 0.1 for _ in range(2))
    reference = (-torch.rand(n, dtype=torch.float64) - 0.1 for _ in range(2))
    return chosen.requires_grad_(), rejected.requires_grad_(), *reference


def _distill() -> tuple[torch.Tensor, ...]:
    student = torch.randn(2, 3, 6, dtype=torch.float64, requires_grad=True)
    return student, torch.randn(2, 3, 6, dtype=torch.float64), torch.randint(0, 6, (2, 3))


EXAMPLES = {
    "next_token_cross_entropy": lambda: ({}, _lm()),
    "perplexity": lambda: ({"ignore_index": -100}, _lm()),
    "bradley_terry": lambda: ({"margin": 0.5}, _rewards()),
    "diffusion_noise_mse": lambda: ({}, _noise()),
    "linear_cross_entropy": lambda: ({"shift": True, "z_loss": 1e-3, "chunk_size": 4}, _head()),
    "dpo": lambda: ({"beta": 0.2, "label_smoothing": 0.1}, _sequences()),
    "simpo": lambda: (
        {},
        (*_sequences()[:2], torch.tensor([3, 4, 5, 6]), torch.tensor([2, 2, 7, 1])),
    ),
    "orpo": lambda: ({"lambda_": 0.2}, _sequences()[:2]),
    "kto": lambda: ({"return_rewards": True}, _sequences()),
    "kl_divergence": lambda: ({"temperature": 2.0}, _distill()),
    "jsd": lambda: ({"beta": 0.3}, _distill()),
}
