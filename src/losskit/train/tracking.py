"""Everything a run writes and prints besides its checkpoints, as small callbacks.

The banner, the progress bar, the epoch lines, TensorBoard, ``metrics.jsonl``, the result files
(``results.json``, ``embeddings.npz``, the confusion matrix and per-class report) and the final
summary are each a :class:`Callback`; the loop calls every callback's hooks in order and knows
nothing of what they do. Only the main process (rank 0) gets the writing and printing callbacks
(:func:`standard_callbacks`).
"""

from __future__ import annotations

import inspect
import json
import math
import sys
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

import losskit
from losskit._files import atomic_write
from losskit.train.config import TrainConfig
from losskit.train.evaluate import EvalResult
from losskit.train.objective import LossParts
from losskit.train.state import RESULT_KEYS, RunState, Selection

__all__ = [
    "Banner",
    "Callback",
    "ConsoleLog",
    "FailureNote",
    "FirstStepCheck",
    "MetricsFile",
    "Progress",
    "RunFiles",
    "RunState",
    "StepValues",
    "Summary",
    "TensorBoardLog",
    "banner",
    "standard_callbacks",
    "summary_table",
    "write_outputs",
]

MAX_SAVED_EMBEDDINGS = 5000
LOSS_TAGS: tuple[str, ...] = ("Loss/Total", "Loss/CE", "Loss/Proxy")
# Proxy types the trainer builds with their own defaults (no config key): parameter -> symbol.
_DEFAULT_PARAMETERS: dict[str, dict[str, str]] = {
    "ArcFaceLoss": {"scale": "s", "margin": "m"},
    "CosFaceLoss": {"scale": "s", "margin": "m"},
    "SubCenterArcFaceLoss": {"scale": "s", "margin": "m"},
    "ProxyNCALoss": {"temperature": "T"},
}


def _proxy_parameter_lines(config: TrainConfig) -> list[str]:
    """The hyper-parameters the chosen proxy loss runs with: α/δ of the Proxy-Anchor family from
    the config, the margin losses' and ProxyNCA's at their defaults."""
    symbols = _DEFAULT_PARAMETERS.get(config.proxy_type)
    if symbols is None:
        return [
            f"Proxy α (alpha): {config.proxy_alpha}",
            f"Proxy δ (delta): {config.proxy_delta}",
        ]
    defaults = inspect.signature(getattr(losskit, config.proxy_type)).parameters
    return [
        f"Proxy {sym} ({name}): {round(defaults[name].default, 4)}" for name, sym in symbols.items()
    ]


def banner(config: TrainConfig) -> str:
    """The ``TRAINING CONFIGURATION`` banner (DESIGN §4): the lines that apply to the loss.

    Proxy lines appear for ``proxy`` and ``combined`` (α and δ for the Proxy-Anchor family, the
    scale and margin or the temperature that the other proxy types use), the λ lines for
    ``combined``; extras that the guide's banner has no line for (focal γ, per-proxy γ, proxies
    per class) follow them.
    """
    lines = ["TRAINING CONFIGURATION", "=" * 70, f"Loss Type: {config.loss_type}"]
    if config.uses_proxies:
        lines += [f"Proxy Type: {config.proxy_type}", *_proxy_parameter_lines(config)]
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
    if config.uses_proxies and config.proxy_type == "SubCenterArcFaceLoss":
        lines.append(f"Sub-centers per class: {config.proxies_per_class}")
    if config.loss_type == "focal":
        lines.append(f"Focal γ (gamma): {config.focal_gamma}")
    return "\n".join(lines)


def _sharding_lines(run: RunState) -> list[str]:
    """The banner's line on sharded proxies (none when every process holds them all)."""
    if run.objective.sharded_rows is None:
        return []
    world, classes = run.runtime.world_size, run.num_classes
    return [
        f"Proxies: sharded over {world} processes (at most {-(-classes // world)} of the "
        f"{classes} classes each)"
    ]


def run_lines(run: RunState) -> list[str]:
    """The banner's lines about the run itself: data, device, precision, schedule, folder."""
    config, data = run.config, run.data
    sizes = [f"{len(data.train_labels)} train"]
    if data.val_labels is not None:
        sizes.append(f"{len(data.val_labels)} validation")
    sizes.append(f"{len(data.test_labels)} test")
    lines = [
        f"Dataset: {config.dataset} ({data.protocol}; {' / '.join(sizes)})",
        f"Device: {run.runtime.device} ({run.runtime.precision})",
        f"World size: {run.runtime.world_size} (global batch "
        f"{run.runtime.world_size * config.batch_size}: {config.batch_size} per process)",
        *_sharding_lines(run),
        f"Epochs: {config.epochs}",
        f"Output folder: {run.run_dir}",
    ]
    if run.resumed_from is not None:
        lines.append(f"Resuming from: epoch {run.resumed_from} ({run.folder.last})")
    if run.schedule_changes:
        lines.append(f"Changed on resume: {'; '.join(run.schedule_changes)}")
    return lines


def summary_table(metrics: Mapping[str, float], *, title: str) -> str:
    """A two-column table of ``metrics``."""
    width = max((len(k) for k in metrics), default=6)
    rule = "-" * (width + 12)
    rows = [f"{k:<{width}}  {v:>8.4f}" for k, v in metrics.items()]
    return "\n".join([title, rule, *rows, rule])


class Callback:
    """Hooks the loop calls; override the ones you need."""

    def on_train_start(self, run: RunState) -> None:
        """Before the first step (after a resume, before the first new step)."""

    def on_epoch_start(self, run: RunState) -> None:
        """Before each epoch's first step (``run.epoch`` is the new epoch)."""

    def on_step_end(self, run: RunState, parts: LossParts, values: StepValues) -> None:
        """After each optimiser step; ``values`` holds the float ``Loss/*`` and ``lr``.

        Reading a loss from ``values`` copies it from the device (a host sync on a GPU each
        step); :meth:`on_log` gets every step's values with one copy.
        """

    def on_log(self, run: RunState, steps: list[tuple[int, dict[str, float]]]) -> None:
        """Every ``log_every`` optimiser steps and at each epoch's last step: ``(global step,
        values)`` of each step since the last call, ``values`` as in :meth:`on_step_end`."""

    def on_epoch_end(self, run: RunState, record: dict[str, float], evaluation: Any) -> None:
        """After each epoch's evaluation and checkpoint; ``record`` is its metrics.jsonl line."""

    def on_train_end(self, run: RunState, results: dict[str, Any]) -> None:
        """After the final evaluation (``run.final``) of the selected model."""

    def on_train_error(self, run: RunState, error: BaseException) -> None:
        """When the run stops with ``error`` (then the error propagates)."""


class Banner(Callback):
    """The ``TRAINING CONFIGURATION`` banner, then the run's own lines (:func:`run_lines`)."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def on_train_start(self, run: RunState) -> None:
        text = "\n".join([banner(run.config), *run_lines(run)])
        print(text, file=self.stream, flush=True)


class Progress(Callback):
    """A progress bar per epoch on the terminal (``tqdm.tqdm``; it never touches the data)."""

    def __init__(self) -> None:
        self.bar: Any = None

    def on_epoch_start(self, run: RunState) -> None:
        from tqdm import tqdm

        desc = f"epoch {run.epoch}/{run.config.epochs}"
        self.bar = tqdm(total=run.steps_per_epoch, desc=desc, leave=False, dynamic_ncols=True)

    def on_step_end(self, run: RunState, parts: LossParts, values: StepValues) -> None:
        self.bar.update(1)

    def on_log(self, run: RunState, steps: list[tuple[int, dict[str, float]]]) -> None:
        self.bar.set_postfix(loss=f"{steps[-1][1]['Loss/Total']:.4f}", refresh=False)

    def on_epoch_end(self, run: RunState, record: dict[str, float], evaluation: Any) -> None:
        self.bar.close()

    def on_train_error(self, run: RunState, error: BaseException) -> None:
        if self.bar is not None:
            self.bar.close()


class TensorBoardLog(Callback):
    """``Loss/*`` and ``LR`` every step, ``Val/*`` and ``Eval/*`` (test) every evaluation, the
    confusion-matrix
    figure at each evaluation that sets a new best and at the last epoch (drawing it takes longer
    than a small model's whole epoch)."""

    def __init__(self) -> None:
        self.writer: Any = None

    def on_train_start(self, run: RunState) -> None:
        from torch.utils.tensorboard import SummaryWriter

        # After a resume, events past the checkpoint (an interrupted epoch) are dropped.
        purge = run.global_step + 1 if run.global_step else None
        self.writer = SummaryWriter(log_dir=str(run.run_dir), purge_step=purge)

    def on_train_error(self, run: RunState, error: BaseException) -> None:
        if self.writer is not None:
            self.writer.close()

    def on_log(self, run: RunState, steps: list[tuple[int, dict[str, float]]]) -> None:
        for step, values in steps:
            for tag, value in values.items():
                self.writer.add_scalar(tag if tag in LOSS_TAGS else "LR", value, step)

    def on_epoch_end(self, run: RunState, record: dict[str, float], evaluation: Any) -> None:
        for tag, value in record.items():
            if tag.startswith(("Eval/", "Val/")):
                self.writer.add_scalar(tag, value, run.global_step)
        drawn = run.selection.epoch == run.epoch or run.epoch == run.config.epochs
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
            f.flush()


class ConsoleLog(Callback):
    """One line per epoch: the epoch's mean losses and the evaluation's headline metrics."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stdout

    def on_epoch_end(self, run: RunState, record: dict[str, float], evaluation: Any) -> None:
        if run.stopped_early:
            print(f"no better validation score in {run.config.patience} evaluations: stopping "
                  f"after epoch {run.epoch}", file=self.stream)  # fmt: skip
        width = len(str(run.config.epochs))
        parts = [f"epoch {int(record['epoch']):>{width}}/{run.config.epochs}"]
        parts.append(f"loss {record['Loss/Total']:.4f}")
        if run.config.loss_type == "combined":
            parts.append(f"(CE {record['Loss/CE']:.4f}, proxy {record['Loss/Proxy']:.4f})")
        shown = ("accuracy", "macro_f1", "recall_at_1", "map_at_r", "nmi")
        metric = run.selection.metric
        parts += (
            [f"val {metric} {record[f'Val/{metric}']:.4f}"] if f"Val/{metric}" in record else []
        )
        parts += [f"{k} {record[f'Eval/{k}']:.4f}" for k in shown if f"Eval/{k}" in record]
        parts.append(f"[{record['time_s']:.1f}s]")
        print("  ".join(parts), file=self.stream, flush=True)


class FirstStepCheck(Callback):
    """Warns when a loss starts far from where it should (its first step, once logged).

    Cross-entropy of a fresh linear classifier should be near ``log C``
    (:func:`losskit.debug.expected_initial_loss`; a cosine classifier's scaled logits start
    wider by design, so it is not checked); a combined objective whose parts differ in
    scale by orders of magnitude mostly trains one of them
    (:func:`losskit.debug.warn_if_combined_scales_differ`).
    """

    def on_log(self, run: RunState, steps: list[tuple[int, dict[str, float]]]) -> None:
        for step, values in steps:
            if step == 1:
                self._check(run, values)

    def _check(self, run: RunState, values: dict[str, float]) -> None:
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


def loss_tensor(parts: LossParts) -> torch.Tensor:
    """A batch's ``Loss/*`` values ``(3,)`` in float64, on the device (no sync)."""
    losses = [parts.total.detach().float(), parts.ce.float(), parts.proxy.float()]
    return torch.stack(losses).double()


def step_values(losses: Sequence[float], lr: float) -> dict[str, float]:
    """The ``Loss/*`` floats of a step (in the order of :data:`LOSS_TAGS`) and its ``lr``."""
    return {**dict(zip(LOSS_TAGS, losses)), "lr": lr}


class StepValues(Mapping[str, float]):
    """One optimiser step's ``Loss/*`` and ``lr``; the losses stay on the device until a value
    is read (one host sync, then cached)."""

    def __init__(self, losses: torch.Tensor, lr: float) -> None:
        self._losses, self._lr = losses, lr
        self._values: dict[str, float] | None = None

    def _read(self) -> dict[str, float]:
        if self._values is None:
            self._values = step_values(self._losses.tolist(), self._lr)
        return self._values

    def __getitem__(self, key: str) -> float:
        return self._read()[key]

    def __iter__(self) -> Iterator[str]:
        return iter((*LOSS_TAGS, "lr"))

    def __len__(self) -> int:
        return len(LOSS_TAGS) + 1


class RunFiles(Callback):
    """``results.json``, ``embeddings.npz`` and, for classification, ``confusion_matrix.png``
    and ``classification_report.json``, of the selected model (see :func:`write_outputs`)."""

    def on_train_end(self, run: RunState, results: dict[str, Any]) -> None:
        assert run.final is not None  # the loop's finish phase sets it before this hook
        write_outputs(
            run.run_dir,
            run.final,
            run.final_proxies,
            list(run.data.test_class_names),
            results,
            seed=run.config.seed,
            proxy_class_names=list(run.data.class_names),
        )


class Summary(Callback):
    """The final metrics table, the selected model and the run folder."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def on_train_end(self, run: RunState, results: dict[str, Any]) -> None:
        sel = run.selection
        metrics = {k: results[k] for k in RESULT_KEYS if k in results}
        title = f"\nRESULTS (test set, epoch {sel.epoch})"
        how = _selection_note(sel)
        lines = [summary_table(metrics, title=title)]
        lines.append(f"selected epoch {sel.epoch} ({how}) -> {run.folder.best}")
        lines.append(f"Run folder: {run.run_dir}")
        print("\n".join(lines), file=self.stream, flush=True)


def _selection_note(sel: Selection) -> str:
    """Why the reported model is the one it is, for the summary."""
    if sel.split != "validation" or sel.value is None:
        return "no validation split: the last epoch"
    score = sel.val.get(sel.metric, sel.value)
    if score == sel.value:
        return f"best validation {sel.metric} {sel.value:.4f}"
    return (
        f"validation {sel.metric} {score:.4f}, within one standard error "
        f"{sel.tolerance():.4f} of the best {sel.value:.4f}"
    )


class FailureNote(Callback):
    """When a run that has saved a checkpoint stops with an error, says which checkpoint is
    the last good one (a run that saved none leaves no folder behind)."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stderr

    def on_train_error(self, run: RunState, error: BaseException) -> None:
        if run.checkpoint_epoch is not None:
            print(
                f"train: stopped in epoch {run.epoch}; the last good checkpoint is "
                f"{run.folder.last} (epoch {run.checkpoint_epoch}); continue with --resume "
                f"{run.run_dir}",
                file=self.stream,
                flush=True,
            )


def standard_callbacks(
    run: RunState, stream: IO[str], extra: Sequence[Callback] = ()
) -> list[Callback]:
    """The callbacks of every run, then ``extra``: the main process prints and writes."""
    cbs: list[Callback] = [FirstStepCheck()]
    if run.is_main:
        cbs += [Banner(stream), TensorBoardLog(), MetricsFile(), RunFiles()]
        if not run.config.quiet:
            cbs += [ConsoleLog(stream)] + ([Progress()] if sys.stderr.isatty() else [])
        cbs += [Summary(stream), FailureNote()]
    return cbs + list(extra)


def write_outputs(
    run_dir: Path,
    evaluation: EvalResult,
    proxies: torch.Tensor | None,
    class_names: list[str],
    results: dict[str, Any],
    *,
    seed: int = 0,
    proxy_class_names: list[str] | None = None,
) -> None:
    """``results.json``, ``embeddings.npz`` (at most 5000 test rows, seeded) and, for
    classification, ``confusion_matrix.png`` and ``classification_report.json``.

    ``embeddings.npz`` holds test ``features`` and ``labels``, the ``proxies`` (if any), the
    ``protocol``, the test ``class_names`` (by label) and the ``proxy_class_names`` (the
    training classes, by proxy), so ``losskit plot embeddings`` needs no other file."""
    text = json.dumps(results, indent=2).encode("utf-8")
    atomic_write(run_dir / "results.json", lambda f: f.write(text))
    n = len(evaluation.labels)
    keep = np.sort(np.random.default_rng(seed).permutation(n)[:MAX_SAVED_EMBEDDINGS])
    arrays = {
        "features": evaluation.features[keep].numpy(),
        "labels": evaluation.labels[keep].numpy(),
        "protocol": np.array(str(results.get("protocol", ""))),
        "class_names": np.array(class_names, dtype=str),
    }
    if proxies is not None:
        arrays["proxies"] = proxies.detach().float().cpu().numpy()
        arrays["proxy_class_names"] = np.array(proxy_class_names or [], dtype=str)
    atomic_write(run_dir / "embeddings.npz", lambda f: np.savez_compressed(f, **arrays))  # type: ignore[arg-type]
    if evaluation.confusion is not None:
        from losskit.train.evaluate import confusion_figure

        fig = confusion_figure(evaluation.confusion, class_names)
        atomic_write(
            run_dir / "confusion_matrix.png", lambda f: fig.savefig(f, format="png", dpi=100)
        )
        import matplotlib.pyplot as plt

        plt.close(fig)
        report = json.dumps(evaluation.report, indent=2).encode("utf-8")
        atomic_write(run_dir / "classification_report.json", lambda f: f.write(report))
