"""The trainer: config, data, models, objective, loop, evaluation and logging.

>>> from losskit.train import TrainConfig, train
>>> TrainConfig(loss_type="proxy").lambda_combined
0.5

``train(TrainConfig(...))`` runs what ``losskit train`` runs and returns ``results.json``'s
content. The names below are imported on first use, so ``losskit.train.data`` and the command
line stay light.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["LoadedRun", "TrainConfig", "load_config", "load_run", "train"]

_WHERE = {
    "TrainConfig": "losskit.train.config",
    "load_config": "losskit.train.config",
    "train": "losskit.train.loop",
    "LoadedRun": "losskit.train.assembly",
    "load_run": "losskit.train.assembly",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'losskit.train' has no attribute {name!r}")
