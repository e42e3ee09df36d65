"""What the user sees of a run: the banner, TensorBoard, ``metrics.jsonl``, console lines.

Each extra is a small :class:`Callback`; the loop calls every callback's hooks in order and knows
nothing of what they do. Only the main process (rank 0) gets the writing callbacks.
"""

from __future__ import annotations

import json
import math
import sys
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import torch

from losskit.train.checkpoint import atomic_write
from losskit.train.config import TrainConfig
from losskit.train.objective import LossParts

__all__ = [
    "Callback",
    "ConsoleLog",
    "FirstStepCheck",
    "MetricsFile",
    "RunState",
    "TensorBoardLog",
    "banner",
    "summary_table",
]

LOSS_TAGS: tuple[str, ...] = ("Loss/Total", "Loss/CE", "Loss/Proxy")


def banner(config: TrainConfig) -> str:
    """The ``TRAINING CONFIGURATION`` banner (DESIGN §4): the lines that apply to the loss.

    Proxy lines appear for ``proxy`` and ``combined``, the λ lines for ``combined``; extras that
    the guide's banner has no line for (focal γ, per-proxy γ, proxies per class) follow them.
    """
    lines = ["TRAINING CONFIGURATION", "=" * 70, f"Loss Type: {config.loss_type}"]
    if config.uses_proxies:
        lines += [
            f"Proxy Type: {config.proxy_type}",
            f"Proxy α (alpha): {config.proxy_alpha}",
            f"Proxy δ (delta): {config.proxy_delta}",
        ]
    if config.loss_type == "combined":
        lam = config.lambda_combined
        lines += [
            f"λ (lambda): {lam:.2f}",
            f"  → CE weight: {lam:.2f}",
            f"  → Proxy weight: {1 - lam:.2f}",
        ]
    if config.uses_proxies and config.proxy_type == "FocalStyleProxyAnchorLoss":
        lines.append(
            f"Proxy γ (pos/neg gamma): {config.proxy_pos_gamma} / {config.proxy_neg_gamma}"
        )
    if config.uses_proxies and config.proxy_type == "MultiProxyAnchorLoss":
        lines.append(f"Proxies per class: {config.proxies_per_class}")
    if config.loss_type == "focal":
        lines.append(f"Focal γ (gamma): {config.focal_gamma}")
    return "\n".join(lines)


def summary_table(metrics: Mapping[str, float], *, title: str) -> str:
    """A two-column table of ``metrics``."""
    width = max((len(k) for k in metrics), default=6)
    rule = "-" * (width + 12)
    rows = [f"{k:<{width}}  {v:>8.4f}" for k, v in metrics.items()]
    return "\n".join([title, rule, *rows, rule])


@dataclass
class RunState:
    """What callbacks may read: the run's config, folder, progress, data description, and the
    model and objective being trained (read them; changing them changes the run)."""

    config: TrainConfig
    run_dir: Path
    num_classes: int
    class_names: list[str]
    epoch: int = 0
    global_step: int = 0
    steps_per_epoch: int = 0
    is_main: bool = True
    best: dict[str, Any] = field(default_factory=dict)
    model: Any = None
    objective: Any = None


class Callback:
    """Hooks the loop calls; override the ones you need."""

    def on_train_start(self, run: RunState) -> None:
        """Before the first step (after a resume, before the first new step)."""

    def on_step_end(self, run: RunState, parts: LossParts, values: dict[str, float]) -> None:
        """After each optimiser step; ``values`` holds the float ``Loss/*`` and ``lr``."""

    def on_epoch_end(self, run: RunState, record: dict[str, float], evaluation: Any) -> None:
        """After each epoch's evaluation and checkpoint; ``record`` is its metrics.jsonl line."""

    def on_train_end(self, run: RunState, results: dict[str, Any]) -> None:
        """After the final evaluation."""


class TensorBoardLog(Callback):
    """``Loss/*`` and ``LR`` every step, ``Eval/*`` every evaluation, and the confusion-matrix
    figure at each evaluation that sets a new best and at the last epoch (drawing it takes longer
    than a small model's whole epoch)."""

    def __init__(self) -> None:
        self.writer: Any = None

    def on_train_start(self, run: RunState) -> None:
        from torch.utils.tensorboard import SummaryWriter

        # After a resume, events past the checkpoint (an interrupted epoch) are dropped.
        purge = run.global_step + 1 if run.global_step else None
        self.writer = SummaryWriter(log_dir=str(run.run_dir), purge_step=purge)

    def on_step_end(self, run: RunState, parts: LossParts, values: dict[str, float]) -> None:
        for tag, value in values.items():
            self.writer.add_scalar(tag if tag in LOSS_TAGS else "LR", value, run.global_step)

    def on_epoch_end(self, run: RunState, record: dict[str, float], evaluation: Any) -> None:
        for tag, value in record.items():
            if tag.startswith("Eval/"):
                self.writer.add_scalar(tag, value, run.global_step)
        drawn = run.best.get("epoch") == run.epoch or run.epoch == run.config.epochs
        if drawn and evaluation is not None and evaluation.confusion is not None:
            from losskit.train.evaluate import confusion_figure

            fig = confusion_figure(evaluation.confusion, run.class_names)
            self.writer.add_figure("Eval/confusion_matrix", fig, run.global_step, close=True)
        self.writer.flush()

    def on_train_end(self, run: RunState, results: dict[str, Any]) -> None:
        self.writer.close()


class MetricsFile(Callback):
    """``metrics.jsonl``: one JSON object per epoch (epoch means of the losses, lr, ``Eval/*``)."""

    def on_train_start(self, run: RunState) -> None:
        self.path = run.run_dir / "metrics.jsonl"
        if self.path.exists():  # a resume: keep only the epochs the checkpoint has
            kept = [
                line
                for line in self.path.read_text(encoding="utf-8").splitlines()
                if line.strip() and json.loads(line)["epoch"] <= run.epoch
            ]
            text = "".join(line + "\n" for line in kept).encode("utf-8")
            atomic_write(self.path, lambda f: f.write(text))

    def on_epoch_end(self, run: RunState, record: dict[str, float], evaluation: Any) -> None:
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")


class ConsoleLog(Callback):
    """One line per epoch: the epoch's mean losses and the evaluation's headline metrics."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stdout

    def on_epoch_end(self, run: RunState, record: dict[str, float], evaluation: Any) -> None:
        width = len(str(run.config.epochs))
        parts = [f"epoch {int(record['epoch']):>{width}}/{run.config.epochs}"]
        parts.append(f"loss {record['Loss/Total']:.4f}")
        if run.config.loss_type == "combined":
            parts.append(f"(CE {record['Loss/CE']:.4f}, proxy {record['Loss/Proxy']:.4f})")
        shown = ("accuracy", "macro_f1", "recall_at_1", "map_at_r", "nmi")
        parts += [f"{k} {record[f'Eval/{k}']:.4f}" for k in shown if f"Eval/{k}" in record]
        parts.append(f"[{record['time_s']:.1f}s]")
        print("  ".join(parts), file=self.stream, flush=True)


class FirstStepCheck(Callback):
    """Warns at the first step when a loss starts far from where it should.

    Cross-entropy of a fresh linear classifier should be near ``log C``
    (:func:`losskit.debug.expected_initial_loss`; a cosine classifier's scaled logits start
    wider by design, so it is not checked); a combined objective whose parts differ in
    scale by orders of magnitude mostly trains one of them
    (:func:`losskit.debug.warn_if_combined_scales_differ`).
    """

    def on_step_end(self, run: RunState, parts: LossParts, values: dict[str, float]) -> None:
        if run.global_step != 1:
            return
        from losskit import debug

        ce, config = values["Loss/CE"], run.config
        linear_ce = config.loss_type in ("CE", "combined") and config.classifier == "linear"
        if linear_ce and not config.class_weighted:
            expected = debug.expected_initial_loss(run.num_classes)
            if math.isfinite(ce) and ce > 3 * expected + 1:
                warnings.warn(
                    f"first-step cross-entropy {ce:.3f} is far above log C = {expected:.3f}: "
                    "the classifier starts confidently wrong (check the inputs' scale)",
                    UserWarning,
                    stacklevel=2,
                )
        if config.loss_type == "combined":
            debug.warn_if_combined_scales_differ({"ce": ce, "proxy": values["Loss/Proxy"]})


def loss_values(parts: LossParts, lr: float) -> dict[str, float]:
    """The step's ``Loss/*`` values as floats (one device sync) and the learning rate."""
    total, ce, proxy = torch.stack(
        [parts.total.detach().float(), parts.ce.float(), parts.proxy.float()]
    ).tolist()
    return {"Loss/Total": total, "Loss/CE": ce, "Loss/Proxy": proxy, "lr": lr}
