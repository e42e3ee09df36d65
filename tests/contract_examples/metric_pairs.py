"""Contract examples for the pair, triplet and InfoNCE-family losses (`losskit.losses.metric`)."""

from __future__ import annotations

import torch

import losskit


def _emb(*shape: int) -> torch.Tensor:
    return torch.randn(*shape, dtype=torch.float64, requires_grad=True)


EXAMPLES = {
    "contrastive": lambda: ({"margin": 2.0}, (_emb(4, 3), _emb(4, 3), torch.tensor([1, 0, 1, 0]))),
    "triplet": lambda: ({"margin": 1.0}, (_emb(4, 3), _emb(4, 3), _emb(4, 3))),
    "online_triplet": lambda: (
        {"margin": 1.0, "mining": "batch_hard"},
        (_emb(6, 3), torch.tensor([0, 0, 1, 1, 2, 2])),
    ),
    "info_nce": lambda: ({"temperature": 0.1}, (_emb(4, 3), _emb(4, 3), _emb(5, 3))),
    "nt_xent": lambda: ({"temperature": 0.5}, (_emb(4, 3), _emb(4, 3))),
    "supcon": lambda: ({"temperature": 0.1}, (_emb(6, 3), torch.tensor([0, 0, 1, 1, 2, 2]))),
    "multi_similarity": lambda: (
        {"mining": "multi_similarity", "epsilon": 0.5},
        (_emb(6, 3), torch.tensor([0, 0, 1, 1, 2, 2])),
    ),
    "circle": lambda: (
        {"margin": 0.25, "gamma": 32.0},
        (_emb(6, 3), torch.tensor([0, 0, 1, 1, 2, 2])),
    ),
    "cross_batch_memory": lambda: (
        {"loss": losskit.SupConLoss(), "embedding_dim": 3, "memory_size": 16},
        (_emb(6, 3), torch.tensor([0, 0, 1, 1, 2, 2])),
    ),
}
