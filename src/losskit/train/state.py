"""The one typed state of a run, shared by the loop's phases and read by the callbacks."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from losskit.train.config import TrainConfig
from losskit.train.data import Splits
from losskit.train.evaluate import EvalResult
from losskit.train.models import EmbeddingNet
from losskit.train.objective import Objective
from losskit.train.run_folder import RunFolder
from losskit.train.runtime import Runtime

__all__ = ["RESULT_KEYS", "EvalSplit", "RunState", "Selection"]

# The metrics of results.json (DESIGN §4), those that apply to the protocol.
RESULT_KEYS: tuple[str, ...] = (
    "accuracy",
    "macro_f1",
    "recall_at_1",
    "recall_at_2",
    "recall_at_4",
    "recall_at_8",
    "map_at_r",
    "nmi",
)


@dataclass
class Selection:
    """Which model the run reports: the last evaluation whose validation score is within one
    standard error of the best so far (``split="validation"``), or the last evaluated one
    (``split="none"``, without a validation split).

    The scores are proportions (accuracy, Recall@1) over the ``samples`` of the validation
    split, so a score ``p`` is known to about ``sqrt(p·(1−p)/samples)``: on digits' 143
    validation samples, 0.014 at 0.97, two samples. Scores that close cannot tell the models
    apart; of those the later one, trained longer down the learning-rate schedule, is taken
    (the one-standard-error rule of Breiman et al., "Classification and Regression Trees",
    1984, with the longest-trained model in place of the simplest). ``value`` is the best
    score; ``stale`` counts the evaluations since it was last beaten (for ``patience``);
    ``val`` and ``test`` hold the metrics of the selected model.
    """

    metric: str
    split: str
    value: float | None = None
    epoch: int | None = None
    stale: int = 0
    val: dict[str, float] = field(default_factory=dict)
    test: dict[str, float] = field(default_factory=dict)
    samples: int = 0

    def tolerance(self) -> float:
        """One standard error of the best score, ``sqrt(p·(1−p)/samples)`` (0 without one)."""
        if self.value is None or self.samples < 1:
            return 0.0
        p = min(max(self.value, 0.0), 1.0)
        return math.sqrt(p * (1.0 - p) / self.samples)

    def update(self, epoch: int, val: dict[str, float], test: dict[str, float]) -> bool:
        """Take this evaluation if its validation score is within :meth:`tolerance` of the
        best so far (always, without a validation split); return whether it was taken."""
        if self.split == "none":
            self.value, self.epoch, self.val, self.test = test[self.metric], epoch, {}, dict(test)
            return True
        found = val.get(self.metric)
        score = 0.0 if found is None or math.isnan(found) else float(found)  # nan: no positives
        if self.value is None or score > self.value:
            self.value, self.stale = score, 0
        else:
            self.stale += 1
        taken = score >= self.value - self.tolerance()
        if taken:
            self.epoch, self.val, self.test = epoch, dict(val), dict(test)
        return taken

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class EvalSplit:
    """A split to evaluate on: its name (``validation`` / ``test``), loader and classes."""

    name: str
    loader: DataLoader[Any]
    class_names: list[str]
    query_mask: torch.Tensor | None = None


@dataclass
class RunState:
    """Everything a run is: what it trains, with what, where it writes, and how far it got.

    Callbacks may read it; changing it changes the run.
    """

    config: TrainConfig
    folder: RunFolder
    runtime: Runtime
    data: Splits
    model: EmbeddingNet
    network: torch.nn.Module
    """What the training steps call: ``model``, in ``DistributedDataParallel`` under torchrun."""
    objective: Objective
    optimizer: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    train_loader: DataLoader[Any]
    test: EvalSplit
    val: EvalSplit | None
    selection: Selection
    steps_per_epoch: int
    epoch: int = 0
    global_step: int = 0
    resumed_from: int | None = None
    schedule_changes: list[str] = field(default_factory=list)
    epoch_started: float = 0.0
    epoch_sums: dict[str, float] = field(default_factory=dict)
    """Sums over the epoch's optimiser steps of the ``Loss/*`` values."""
    checkpoint_epoch: int | None = None
    """The epoch of ``last.pt`` (written or resumed from), ``None`` before the first."""
    evaluation: EvalResult | None = None
    val_evaluation: EvalResult | None = None
    final: EvalResult | None = None
    final_proxies: torch.Tensor | None = None
    """All the proxies of the selected model (gathered when sharded), for the run's files."""

    @property
    def run_dir(self) -> Path:
        return self.folder.path

    @property
    def is_main(self) -> bool:
        return self.runtime.is_main

    @property
    def num_classes(self) -> int:
        return self.data.num_classes

    @property
    def class_names(self) -> list[str]:
        return list(self.data.class_names)

    @property
    def stopped_early(self) -> bool:
        """``patience`` evaluations passed without a better validation score."""
        patience = self.config.patience
        return patience is not None and self.selection.stale >= patience
