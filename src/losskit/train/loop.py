"""The training loop: ``train(config)`` reads top to bottom in phases.

1. setup (run folder, banner, seeds, device)      4. resume from ``checkpoints/last.pt``
2. data (splits, loaders)                         5. epochs: steps, evaluation, checkpoints
3. model, objective, optimiser, schedule          6. final evaluation, results, summary

What is written and printed besides the checkpoints (TensorBoard, ``metrics.jsonl``, console
lines, first-step checks) hooks in through :class:`~losskit.train.tracking.Callback` objects.
Every epoch's shuffling and dropout draw from generators seeded by ``(seed, epoch)``, so a run
resumed at an epoch boundary continues exactly as the uninterrupted run would have.
"""

from __future__ import annotations

import json
import math
import os
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, RandomSampler

from losskit._checks import fail
from losskit.train.checkpoint import (
    atomic_write,
    load_checkpoint,
    restore_rng_state,
    rng_state,
    save_checkpoint,
)
from losskit.train.config import TrainConfig, save_config
from losskit.train.evaluate import EvalResult, confusion_figure, evaluate
from losskit.train.models import EmbeddingNet, build_model
from losskit.train.objective import Objective
from losskit.train.tracking import (
    Callback,
    ConsoleLog,
    FirstStepCheck,
    MetricsFile,
    RunState,
    TensorBoardLog,
    banner,
    loss_values,
    summary_table,
)

__all__ = ["NonFiniteLossError", "Runtime", "build_optimizer", "cpu_threads", "epoch_seed", "train"]

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
MAX_SAVED_EMBEDDINGS = 5000
SMALL_MODEL_PARAMETERS = 1_000_000


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass(frozen=True)
class Runtime:
    """Where this process runs: device and, for multi-process runs, rank and world size.

    Only the main process (rank 0) writes files and prints; a later multi-process launcher sets
    ``RANK`` / ``WORLD_SIZE`` and everything rank-dependent already reads them from here.
    """

    device: torch.device
    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls, device: str) -> Runtime:
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        try:
            dev = torch.device(device)
        except RuntimeError:
            fail("train", "device", "'auto', 'cpu', 'cuda' or 'cuda:<index>'", repr(device))
        if dev.type == "cuda" and not torch.cuda.is_available():
            fail("train", "device", "an available device (CUDA is not available)", repr(device))
        return cls(
            dev,
            rank=int(os.environ.get("RANK", "0")),
            world_size=int(os.environ.get("WORLD_SIZE", "1")),
        )


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of one epoch's shuffling and dropout, from the run's seed and the epoch."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def cpu_threads(config: TrainConfig, model: nn.Module) -> int:
    """Intra-op threads for CPU training: ``cpu_threads`` if set, else 1 for a small model
    (under a million parameters: its matrices are too small to gain from threads, and busy
    threads waiting on a shared machine slow it down many times), else torch's default."""
    if config.cpu_threads is not None:
        return config.cpu_threads
    small = sum(p.numel() for p in model.parameters()) < SMALL_MODEL_PARAMETERS
    return 1 if small else torch.get_num_threads()


def build_optimizer(
    model: nn.Module, objective: Objective, config: TrainConfig
) -> torch.optim.AdamW:
    """AdamW with three groups: weights (decayed), biases and norms (not decayed), and the
    proxies (``lr · proxy_lr_multiplier``, not decayed)."""
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    groups: list[dict[str, Any]] = [
        {"params": decay, "weight_decay": config.weight_decay, "lr": config.lr},
        {"params": no_decay, "weight_decay": 0.0, "lr": config.lr},
    ]
    if objective.proxies is not None:
        groups.append(
            {
                "params": list(objective.parameters()),
                "weight_decay": 0.0,
                "lr": config.lr * config.proxy_lr_multiplier,
            }
        )
    return torch.optim.AdamW(groups, lr=config.lr)


def build_schedule(
    optimizer: torch.optim.Optimizer, config: TrainConfig, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-step schedule: cosine decay to zero over the run, or constant."""
    if config.lr_schedule == "constant":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1.0 + math.cos(math.pi * min(step / total_steps, 1.0)))
    )


def _train_loader(
    splits: Any, config: TrainConfig, sampler: Any, epoch: int, pin: bool
) -> DataLoader[Any]:
    """This epoch's training loader; its order depends only on ``(seed, epoch)``."""
    if sampler is None:
        g = torch.Generator().manual_seed(epoch_seed(config.seed, epoch))
        sampler = RandomSampler(splits.train, generator=g)
    else:
        sampler.set_epoch(epoch)
    drop_last = len(splits.train) > config.batch_size  # a batch of one breaks batch norm
    return DataLoader(
        splits.train,
        batch_size=config.batch_size,
        sampler=sampler,
        drop_last=drop_last,
        num_workers=config.num_workers,
        pin_memory=pin,
    )


def train(
    config: TrainConfig,
    *,
    resume: bool = False,
    callbacks: Sequence[Callback] | None = None,
    stream: IO[str] | None = None,
) -> dict[str, Any]:
    """Train, evaluate and save a run as ``config`` says; return ``results.json``'s content.

    Args:
        config: the validated configuration; ``output_dir`` ``None`` means
            ``runs/<timestamp>-<loss_type>``.
        resume: continue the run in ``output_dir`` from ``checkpoints/last.pt``.
        callbacks: extra callbacks, after the standard ones (TensorBoard, ``metrics.jsonl``,
            console lines, first-step checks).
        stream: where the banner, epoch lines and summary go (``sys.stdout``).

    Raises:
        NonFiniteLossError: the loss became NaN or infinite (the last good checkpoint is kept).
        FileExistsError: ``output_dir`` already holds a run and ``resume`` is false.
        FileNotFoundError: ``resume`` without a checkpoint to resume from.
    """
    threads = torch.get_num_threads()  # the loop may lower it for a small model on the CPU
    try:
        return _train(config, resume=resume, callbacks=callbacks, stream=stream)
    finally:
        torch.set_num_threads(threads)


def _train(
    config: TrainConfig,
    *,
    resume: bool,
    callbacks: Sequence[Callback] | None,
    stream: IO[str] | None,
) -> dict[str, Any]:
    # -- 1. Setup: run folder, banner, seeds, device ------------------------------------------
    out = stream or sys.stdout
    config = config.with_output_dir()
    run_dir = Path(str(config.output_dir))
    last_path, best_path = run_dir / "checkpoints" / "last.pt", run_dir / "checkpoints" / "best.pt"
    if not resume and last_path.exists():
        raise FileExistsError(
            f"train: {run_dir} already holds a run; continue it with --resume {run_dir} "
            "or choose another --output_dir"
        )
    ckpt = load_checkpoint(last_path) if resume else None
    rt = Runtime.from_env(config.device)
    if rt.is_main:
        print(banner(config), file=out, flush=True)
    seed_everything(config.seed)
    amp = config.amp and rt.device.type == "cuda"
    amp_dtype = torch.bfloat16 if amp and torch.cuda.is_bf16_supported() else torch.float16

    # -- 2. Data --------------------------------------------------------------------------------
    from losskit.functional import class_weights
    from losskit.train.data import load_splits
    from losskit.train.samplers import make_sampler

    splits = load_splits(
        config.dataset,
        data_dir=config.data_dir,
        protocol=config.protocol,
        image_size=config.image_size,
        seed=config.seed,
        test_fraction=config.test_fraction,
    )
    sampler = make_sampler(
        config.sampler,
        splits.train_labels,
        batch_size=config.batch_size,
        m_per_class=config.m_per_class,
        seed=config.seed,
    )
    pin = rt.device.type == "cuda"
    test_loader = DataLoader(
        splits.test,
        batch_size=max(256, config.batch_size),
        num_workers=config.num_workers,
        pin_memory=pin,
    )
    steps_per_epoch = len(_train_loader(splits, config, sampler, 0, pin))
    if rt.is_main:  # the data loaded: the run folder is worth creating
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(config, run_dir / "config.yaml")

    # -- 3. Model, objective, optimiser, schedule ----------------------------------------------
    model: EmbeddingNet = build_model(
        config.backbone,
        splits.sample_shape,
        splits.num_classes,
        embedding_dim=config.embedding_dim,
        hidden_dim=config.hidden_dim,
        dropout=config.dropout,
        classifier=config.classifier,
        cosine_scale=config.cosine_scale,
        weights=config.pretrained_weights,
    ).to(rt.device)
    weight = (
        class_weights(splits.train_labels, splits.num_classes) if config.class_weighted else None
    )
    objective = Objective(config, splits.num_classes, config.embedding_dim, weight).to(rt.device)
    if rt.device.type == "cpu":
        torch.set_num_threads(cpu_threads(config, model))
    optimizer = build_optimizer(model, objective, config)
    schedule = build_schedule(optimizer, config, config.epochs * steps_per_epoch)
    scaler = torch.amp.GradScaler("cuda", enabled=amp and amp_dtype == torch.float16)
    params = [p for group in optimizer.param_groups for p in group["params"]]

    # -- 4. Resume --------------------------------------------------------------------------------
    state = RunState(
        config,
        run_dir,
        splits.num_classes,
        list(splits.class_names),
        steps_per_epoch=steps_per_epoch,
        is_main=rt.is_main,
        model=model,
        objective=objective,
    )
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        objective.load_state_dict(ckpt["objective"])
        optimizer.load_state_dict(ckpt["optimizer"])
        schedule.load_state_dict(ckpt["schedule"])
        scaler.load_state_dict(ckpt["scaler"])
        restore_rng_state(ckpt["rng"])
        state.epoch, state.global_step, state.best = ckpt["epoch"], ckpt["step"], ckpt["best"]
    cbs: list[Callback] = [FirstStepCheck()]
    if rt.is_main:
        cbs += [TensorBoardLog(), MetricsFile()]
        cbs += [] if config.quiet else [ConsoleLog(out)]
    cbs += list(callbacks or ())
    for cb in cbs:
        cb.on_train_start(state)

    def checkpoint(path: Path) -> None:
        save_checkpoint(
            path,
            {
                "model": model.state_dict(),
                "objective": objective.state_dict(),
                "optimizer": optimizer.state_dict(),
                "schedule": schedule.state_dict(),
                "scaler": scaler.state_dict(),
                "rng": rng_state(),
                "epoch": state.epoch,
                "step": state.global_step,
                "best": state.best,
                "config": config.model_dump(),
                "data": _data_info(splits),
            },
        )

    # -- 5. Epochs --------------------------------------------------------------------------------
    selection = "accuracy" if splits.protocol == "classification" else "recall_at_1"
    show_bar = not config.quiet and rt.is_main and sys.stderr.isatty()
    evaluation: EvalResult | None = None
    while state.epoch < config.epochs:
        state.epoch += 1
        started = time.perf_counter()
        torch.manual_seed(epoch_seed(config.seed, state.epoch))  # dropout of this epoch
        model.freeze_backbone(state.epoch <= config.warmup_epochs)
        model.train()
        loader = _train_loader(splits, config, sampler, state.epoch, pin)
        sums = {"Loss/Total": 0.0, "Loss/CE": 0.0, "Loss/Proxy": 0.0}
        bar = _progress(loader, show_bar, f"epoch {state.epoch}/{config.epochs}")
        for x, y in bar:
            # forward and loss
            x, y = x.to(rt.device, non_blocking=pin), y.to(rt.device, non_blocking=pin)
            with torch.autocast(rt.device.type, dtype=amp_dtype, enabled=amp):
                features, logits = model(x)
            parts = objective(features, logits, y)
            values = loss_values(parts, float(schedule.get_last_lr()[0]))
            if not math.isfinite(values["Loss/Total"]):
                raise NonFiniteLossError(
                    f"train: the loss became {values['Loss/Total']} at epoch {state.epoch}, step "
                    f"{state.global_step + 1} (Loss/CE={values['Loss/CE']:.4g}, "
                    f"Loss/Proxy={values['Loss/Proxy']:.4g}); stopped. The last good checkpoint "
                    f"is {last_path if state.epoch > 1 else 'none (first epoch)'}. "
                    "Try a lower --lr or --proxy_lr_multiplier, or --grad_clip."
                )
            # backward, clip, step
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(parts.total).backward()
            if config.grad_clip is not None:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(params, config.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            schedule.step()
            state.global_step += 1
            for key in sums:
                sums[key] += values[key]
            for cb in cbs:
                cb.on_step_end(state, parts, values)
            if show_bar:
                bar.set_postfix(loss=f"{values['Loss/Total']:.4f}")
        # evaluate
        record: dict[str, float] = {"epoch": state.epoch}
        record.update({k: v / max(steps_per_epoch, 1) for k, v in sums.items()})
        record["lr"] = float(schedule.get_last_lr()[0])
        evaluation = None
        if state.epoch % config.eval_every == 0 or state.epoch == config.epochs:
            evaluation = _evaluate(model, objective, test_loader, splits, rt, amp, config.seed)
            record.update({f"Eval/{k}": v for k, v in evaluation.metrics.items()})
            score = evaluation.metrics[selection]
            if not state.best or score > state.best["value"]:
                state.best = {"metric": selection, "value": score, "epoch": state.epoch}
                if rt.is_main:
                    checkpoint(best_path)
        # checkpoint (last.pt after best.pt: a resume never lacks the best so far)
        if rt.is_main:
            checkpoint(last_path)
        record["time_s"] = time.perf_counter() - started
        for cb in cbs:
            cb.on_epoch_end(state, record, evaluation)

    # -- 6. Final evaluation, results, summary ---------------------------------------------------
    if evaluation is None:  # resumed after the last epoch: evaluate the final model again
        evaluation = _evaluate(model, objective, test_loader, splits, rt, amp, config.seed)
    results: dict[str, Any] = {
        k: evaluation.metrics[k] for k in RESULT_KEYS if k in evaluation.metrics
    }
    results.update(
        protocol=splits.protocol,
        epoch=state.epoch,
        best_epoch=state.best.get("epoch"),
        selection_metric=selection,
        best_value=state.best.get("value"),
        run_dir=str(run_dir),
    )
    if rt.is_main:
        write_outputs(
            run_dir, evaluation, objective, list(splits.test_class_names), results, seed=config.seed
        )
        metrics = {k: results[k] for k in RESULT_KEYS if k in results}
        print(summary_table(metrics, title=f"\nRESULTS (test set, epoch {state.epoch})"), file=out)
        print(
            f"best epoch {state.best['epoch']} ({selection} {state.best['value']:.4f}) "
            f"-> {best_path}\nRun folder: {run_dir}",
            file=out,
            flush=True,
        )
    for cb in cbs:
        cb.on_train_end(state, results)
    return results


def _progress(loader: DataLoader[Any], show: bool, desc: str) -> Any:
    if not show:
        return loader
    from tqdm.auto import tqdm

    return tqdm(loader, desc=desc, leave=False, dynamic_ncols=True)


def _evaluate(
    model: nn.Module,
    objective: Objective,
    loader: DataLoader[Any],
    splits: Any,
    rt: Runtime,
    amp: bool,
    seed: int,
) -> EvalResult:
    return evaluate(
        model,
        objective,
        loader,
        protocol=splits.protocol,
        class_names=splits.test_class_names,
        device=rt.device,
        query_mask=splits.test_is_query,
        amp=amp,
        seed=seed,
    )


def _data_info(splits: Any) -> dict[str, Any]:
    """What evaluate/predict need to know of the data without loading it."""
    info: dict[str, Any] = {
        "num_classes": splits.num_classes,
        "class_names": [str(c) for c in splits.class_names],
        "sample_shape": list(splits.sample_shape),
        "protocol": splits.protocol,
    }
    if splits.input_mean is not None and splits.input_std is not None:
        info["input_mean"] = torch.as_tensor(splits.input_mean).float()
        info["input_std"] = torch.as_tensor(splits.input_std).float()
    return info


def write_outputs(
    run_dir: Path,
    evaluation: EvalResult,
    objective: Objective,
    class_names: list[str],
    results: dict[str, Any],
    *,
    seed: int = 0,
) -> None:
    """``results.json``, ``embeddings.npz`` and, for classification, ``confusion_matrix.png``
    and ``classification_report.json`` (per-class precision / recall / F1)."""
    text = json.dumps(results, indent=2).encode("utf-8")
    atomic_write(run_dir / "results.json", lambda f: f.write(text))
    n = len(evaluation.labels)
    keep = np.sort(np.random.default_rng(seed).permutation(n)[:MAX_SAVED_EMBEDDINGS])
    arrays = {
        "features": evaluation.features[keep].numpy(),
        "labels": evaluation.labels[keep].numpy(),
    }
    if objective.proxies is not None:
        arrays["proxies"] = objective.proxies.detach().float().cpu().numpy()
    atomic_write(run_dir / "embeddings.npz", lambda f: np.savez_compressed(f, **arrays))  # type: ignore[arg-type]
    if evaluation.confusion is not None:
        fig = confusion_figure(evaluation.confusion, class_names)
        atomic_write(
            run_dir / "confusion_matrix.png", lambda f: fig.savefig(f, format="png", dpi=100)
        )
        import matplotlib.pyplot as plt

        plt.close(fig)
        report = json.dumps(evaluation.report, indent=2).encode("utf-8")
        atomic_write(run_dir / "classification_report.json", lambda f: f.write(report))
