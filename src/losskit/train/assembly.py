"""From a config to the pieces of a run: data, model, objective, optimiser, loaders, evaluation.

One place builds them for ``losskit train`` (:mod:`losskit.train.loop`) and for the commands
that use a finished run (``evaluate``, ``predict``): :func:`load_run` rebuilds a run's model and
objective from its folder, :func:`raw_inputs` turns raw samples into model inputs as training
saw them, and :func:`evaluate_split` evaluates on a split of :func:`eval_splits`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, DistributedSampler, RandomSampler

from losskit._checks import fail
from losskit.distributed import shard_range
from losskit.errors import InputError
from losskit.train.augment import SeededSampler, TrainingView, augmentation
from losskit.train.checkpoint import load_checkpoint
from losskit.train.config import TrainConfig, load_config
from losskit.train.data import Splits, load_splits
from losskit.train.evaluate import EvalResult, evaluate
from losskit.train.models import EmbeddingNet, build_model
from losskit.train.objective import Objective
from losskit.train.runtime import Runtime, epoch_seed
from losskit.train.state import EvalSplit

__all__ = [
    "LoadedRun",
    "build_data",
    "build_network",
    "build_objective",
    "build_optimizer",
    "build_schedule",
    "data_info",
    "eval_splits",
    "evaluate_split",
    "load_run",
    "raw_inputs",
    "selection_metric",
    "train_loader",
]

EVAL_BATCH = 256


def build_data(config: TrainConfig) -> Splits:
    """The training, validation and test splits the config names."""
    return load_splits(
        config.dataset,
        data_dir=config.data_dir,
        protocol=config.protocol,
        image_size=config.image_size,
        seed=config.seed,
        test_fraction=config.test_fraction,
        val_fraction=config.val_fraction,
    )


def data_info(splits: Splits) -> dict[str, Any]:
    """What evaluate / predict need to know of the data without loading it (saved in every
    checkpoint)."""
    info: dict[str, Any] = {
        "num_classes": splits.num_classes,
        "class_names": [str(c) for c in splits.class_names],
        "test_class_names": [str(c) for c in splits.test_class_names],
        "sample_shape": list(splits.sample_shape),
        "protocol": splits.protocol,
    }
    if splits.input_mean is not None and splits.input_std is not None:
        info["input_mean"] = torch.as_tensor(splits.input_mean).float()
        info["input_std"] = torch.as_tensor(splits.input_std).float()
    return info


def build_network(
    config: TrainConfig, info: dict[str, Any], *, pretrained: bool = True
) -> EmbeddingNet:
    """The :class:`EmbeddingNet` for data described by ``info`` (:func:`data_info`);
    ``pretrained=False`` skips ``pretrained_weights`` (a checkpoint supplies the weights)."""
    return build_model(
        config.backbone,
        info["sample_shape"],
        info["num_classes"],
        embedding_dim=config.embedding_dim,
        hidden_dim=config.hidden_dim,
        dropout=config.dropout,
        classifier=config.classifier,
        cosine_scale=config.cosine_scale,
        pool_grid=config.pool_grid,
        weights=config.pretrained_weights if pretrained else None,
    )


def build_objective(config: TrainConfig, splits: Splits) -> Objective:
    """The objective of ``loss_type``, class-weighted by the training labels if asked."""
    from losskit.functional import class_weights

    weight = (
        class_weights(splits.train_labels, splits.num_classes) if config.class_weighted else None
    )
    return Objective(config, splits.num_classes, config.embedding_dim, weight)


def build_optimizer(
    model: torch.nn.Module, objective: Objective, config: TrainConfig
) -> torch.optim.Optimizer:
    """AdamW, or SGD with Nesterov momentum, with three groups: weights (decayed), biases and
    norms (not decayed), and the proxies (``lr · proxy_lr_multiplier``, not decayed)."""
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
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, nesterov=True)
    return torch.optim.AdamW(groups, lr=config.lr)


def build_schedule(
    optimizer: torch.optim.Optimizer, config: TrainConfig, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Per optimiser step: a linear warm-up over ``warmup_epochs`` (factor ``(s+1)/W``), then
    cosine decay to zero over the remaining steps, or constant."""
    total = config.epochs * steps_per_epoch
    warmup = config.warmup_epochs * steps_per_epoch
    cosine = config.lr_schedule == "cosine"

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if not cosine:
            return 1.0
        return 0.5 * (1.0 + math.cos(math.pi * min((step - warmup) / max(total - warmup, 1), 1)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def train_loader(splits: Splits, config: TrainConfig, runtime: Runtime) -> DataLoader[Any]:
    """The training loader, built once: persistent workers, and every random draw (order,
    augmentation, worker seeds) from its own generators seeded by ``(seed, epoch)`` — call
    ``loader.sampler.set_epoch(epoch)`` before each epoch. In a multi-process run each
    process draws its share of the epoch (``batch_size`` is per process)."""
    from losskit.train.samplers import make_sampler

    n, replicas, rank = len(splits.train_labels), runtime.world_size, runtime.rank
    base = make_sampler(
        config.sampler,
        splits.train_labels,
        batch_size=config.batch_size,
        m_per_class=config.m_per_class,
        seed=config.seed,
        num_replicas=replicas,
        rank=rank,
    )
    if base is None and replicas > 1:
        base = DistributedSampler(splits.train, num_replicas=replicas, rank=rank, seed=config.seed)
    if base is None:
        base = RandomSampler(range(n), generator=_generator(config.seed))
    augment = augmentation(splits.sample_shape) if config.augment else None
    return DataLoader(
        TrainingView(splits.train, augment),
        batch_size=config.batch_size,
        sampler=SeededSampler(base, lambda epoch: epoch_seed(config.seed, epoch)),
        drop_last=len(base) > config.batch_size,  # type: ignore[arg-type]  # a batch of one breaks BN
        num_workers=config.num_workers,
        persistent_workers=config.num_workers > 0,
        pin_memory=runtime.device.type == "cuda",
        generator=_generator(config.seed),
    )


def _eval_loader(dataset: Dataset[Any], config: TrainConfig, runtime: Runtime) -> DataLoader[Any]:
    """In a multi-process run each process embeds its contiguous block of the split (rank
    order: the gathered rows are the split in its order)."""
    mine = shard_range(len(dataset), rank_=runtime.rank, size=runtime.world_size)  # type: ignore[arg-type]
    return DataLoader(
        dataset,
        batch_size=max(EVAL_BATCH, config.batch_size),
        sampler=list(mine),
        num_workers=config.num_workers,
        persistent_workers=config.num_workers > 0,
        pin_memory=runtime.device.type == "cuda",
        generator=_generator(config.seed),
    )


def eval_splits(
    splits: Splits, config: TrainConfig, runtime: Runtime
) -> tuple[EvalSplit | None, EvalSplit]:
    """The validation split (``None`` without one) and the test split, ready to evaluate."""
    val = None
    if splits.val is not None:
        val = EvalSplit("validation", _eval_loader(splits.val, config, runtime),
                        list(splits.val_class_names))  # fmt: skip
    test = EvalSplit(
        "test",
        _eval_loader(splits.test, config, runtime),
        list(splits.test_class_names),
        splits.test_is_query,
    )
    return val, test


def selection_metric(protocol: str) -> str:
    """The metric that selects the reported model: accuracy, or Recall@1 for retrieval."""
    return "accuracy" if protocol == "classification" else "recall_at_1"


def evaluate_split(
    model: EmbeddingNet,
    objective: Objective,
    split: EvalSplit,
    *,
    protocol: str,
    runtime: Runtime,
    seed: int,
) -> EvalResult:
    """Evaluate ``model`` on one split with the metrics of ``protocol``."""
    return evaluate(
        model,
        objective,
        split.loader,
        protocol=protocol,
        class_names=split.class_names,
        device=runtime.device,
        query_mask=split.query_mask,
        amp_dtype=runtime.amp_dtype,
        seed=seed,
    )


class LoadedRun(NamedTuple):
    """A trained run, ready to evaluate, predict or embed (the model is in eval mode)."""

    config: TrainConfig
    model: EmbeddingNet
    objective: Objective
    info: dict[str, Any]
    """What the data looked like (:func:`data_info`)."""


def run_folder(flag: str, path: str | Path) -> Path:
    """``path`` as a run folder (one holding ``config.yaml``); else an error naming ``flag``."""
    run = Path(path)
    if not (run / "config.yaml").is_file():
        found = "a file" if run.is_file() else ("a folder without one" if run.is_dir() else "")
        raise InputError(
            f"expected `{flag}` to be a run folder holding config.yaml, got {run}"
            + (f" ({found})" if found else " (no such folder)")
        )
    return run


def load_run(run: str | Path, checkpoint: str = "best", device: str = "cpu") -> LoadedRun:
    """The config, model, objective and data description of a run folder's ``best.pt`` (the
    selected model, the one ``results.json`` reports) or ``last.pt``."""
    run_dir = run_folder("--run", run)
    config = load_config(run_dir / "config.yaml")
    state = load_checkpoint(run_dir / "checkpoints" / f"{checkpoint}.pt", map_location=device)
    info = state["data"]
    model = build_network(config, info, pretrained=False)
    model.load_state_dict(state["model"])
    weight = state["objective"].get("class_weight")
    objective = Objective(config, info["num_classes"], config.embedding_dim, weight)
    objective.load_state_dict(state["objective"])
    return LoadedRun(config, model.to(torch.device(device)).eval(), objective.to(device), info)


def raw_inputs(
    raw: np.ndarray | Tensor, info: dict[str, Any], *, fn: str, normalized: bool
) -> Tensor:
    """Raw samples ``(N, *sample_shape)`` (or one sample) as stored in the data files -> model
    inputs ``(N, *sample_shape)`` with the run's standardisation (skipped if ``normalized``).

    Raises:
        ValueError: the samples do not have the run's sample shape.
    """
    x = torch.as_tensor(raw).float()
    shape = tuple(info["sample_shape"])
    if tuple(x.shape) == shape:
        x = x.unsqueeze(0)
    if tuple(x.shape[1:]) != shape:
        fail(fn, "input", f"of shape (N, {', '.join(map(str, shape))})", tuple(x.shape))
    if not normalized and "input_mean" in info:
        x = (x - info["input_mean"]) / info["input_std"]
    return x
