"""The training loop: ``train(config)`` reads top to bottom in phases over one :class:`RunState`.

1. setup: the checkpoint to resume (verified, its config compared), data, model, objective,
   optimiser, schedule, loaders — nothing is written before this has succeeded;
2. start: the run folder, stale temporary files removed, the callbacks' ``on_train_start``;
3. epochs: :func:`train_epoch` (steps with gradient accumulation, their losses read from the
   device every ``log_every`` steps), :func:`evaluate_epoch` (validation and test, model
   selection), :func:`save_epoch` (``best.pt``, ``last.pt``);
4. finish: the selected model's test evaluation, results, the callbacks' ``on_train_end``.

Everything written and printed besides the checkpoints (banner, progress bar, epoch lines,
TensorBoard, ``metrics.jsonl``, result files, summary) hooks in through the
:class:`~losskit.train.tracking.Callback` objects of
:func:`~losskit.train.tracking.standard_callbacks`. Every epoch's shuffling, augmentation and
dropout draw from generators seeded by ``(seed, epoch)``, so a resumed run continues exactly as
the uninterrupted run would have, whatever the terminal, ``quiet`` or ``num_workers``.
A new run that fails before its first checkpoint removes what it wrote.

Under ``torchrun`` every process runs this same loop on its share of each epoch
(:class:`~losskit.train.runtime.Runtime` joins the process group, ``network`` is the model in
``DistributedDataParallel``); only rank 0 writes checkpoints and has callbacks that print or
write.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Sequence
from typing import IO, Any

import torch
import torch.distributed as dist
from torch import nn

import losskit
from losskit.errors import RunError
from losskit.train import assembly
from losskit.train.checkpoint import (
    CheckpointError,
    load_checkpoint,
    restore_rng_state,
    rng_state,
    save_checkpoint,
    sharded_optimizer_state,
    verify_checkpoint,
    whole_optimizer_state,
)
from losskit.train.config import TrainConfig, save_config
from losskit.train.evaluate import EvalResult
from losskit.train.objective import LossParts
from losskit.train.run_folder import (
    RESUME_MAY_CHANGE,
    ResumeMismatchError,
    RunFolder,
    resume_differences,
)
from losskit.train.runtime import (
    Runtime,
    cpu_threads,
    epoch_seed,
    first_to_fail,
    from_main_process,
    leave_process_group,
    seed_everything,
    share_buffers,
    wrap_model,
)
from losskit.train.state import RESULT_KEYS, EvalSplit, RunState, Selection
from losskit.train.tracking import (
    Callback,
    StepValues,
    loss_tensor,
    standard_callbacks,
    step_values,
)

__all__ = ["NonFiniteLossError", "train"]

LOSS_KEYS = ("Loss/Total", "Loss/CE", "Loss/Proxy")
Window = list[tuple[int, torch.Tensor, float]]  # (global step, its losses (3,), its lr)


class NonFiniteLossError(RunError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


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
        callbacks: extra callbacks, after the standard ones.
        stream: where the banner, epoch lines and summary go (``sys.stdout``).

    Raises:
        NonFiniteLossError: the loss became NaN or infinite (the last good checkpoint is kept).
        FileExistsError: ``output_dir`` already holds a run and ``resume`` is false.
        FileNotFoundError: ``resume`` without a checkpoint to resume from.
        ResumeMismatchError: ``resume`` with keys that change the model, data or objective.
        CheckpointError: ``resume`` from a damaged checkpoint.
    """
    threads = torch.get_num_threads()  # setup may lower it for a small model on the CPU
    runtime = Runtime.from_env(config.device, amp=config.amp)  # joins torchrun's group
    config = from_main_process(config.with_output_dir())  # one run folder for all processes
    folder = RunFolder(str(config.output_dir))
    run: RunState | None = None
    cbs: list[Callback] = []
    try:
        # -- 1. Setup: nothing in the run folder changes until this has succeeded ----------------
        checkpoint = open_checkpoint(folder, config) if resume else None
        if not resume and runtime.is_main:
            folder.refuse_existing()
        run = setup(config, folder, checkpoint, runtime)
        cbs = standard_callbacks(run, stream or sys.stdout, callbacks or ())
        # -- 2. Start: the run folder and the callbacks ----------------------------------------
        start(run, cbs, resumed=checkpoint is not None)
        # -- 3. Epochs --------------------------------------------------------------------------
        while run.epoch < config.epochs and not run.stopped_early:
            train_epoch(run, cbs)
            record = evaluate_epoch(run)
            save_epoch(run)
            end_epoch(run, cbs, record)
        # -- 4. Finish: the selected model on the test split -----------------------------------
        results = finish(run, cbs)
        leave_process_group()
        return results
    except BaseException as error:
        if runtime.world_size > 1 and not first_to_fail():
            error.reported_by_another_process = True  # type: ignore[attr-defined]
        if run is not None:
            for cb in cbs:
                cb.on_train_error(run, error)
            if not resume and run.checkpoint_epoch is None and run.is_main:
                folder.discard()  # nothing worth keeping: leave the folder as it was
        raise
    finally:
        torch.set_num_threads(threads)


def open_checkpoint(folder: RunFolder, config: TrainConfig) -> dict[str, Any]:
    """``last.pt``, verified, with a config that may resume it (see
    :func:`~losskit.train.run_folder.resume_differences`)."""
    try:
        checkpoint = load_checkpoint(folder.last)
    except CheckpointError as err:
        raise CheckpointError(f"{err}; {_best_hint(folder)}") from None
    refused, _ = resume_differences(checkpoint["config"], config)
    if refused:
        raise ResumeMismatchError(
            f"train: cannot resume {folder.path} with keys that change what it trains: "
            + "; ".join(refused)
            + f" (a resume may change only {', '.join(RESUME_MAY_CHANGE)})"
        )
    return checkpoint


def _best_hint(folder: RunFolder) -> str:
    try:
        verify_checkpoint(folder.best)
    except (CheckpointError, FileNotFoundError):
        return f"{folder.best} is missing or damaged too"
    return f"{folder.best} is intact: copy it onto {folder.last} to resume from it"


def setup(
    config: TrainConfig, folder: RunFolder, checkpoint: dict[str, Any] | None, runtime: Runtime
) -> RunState:
    """Build every piece of the run and, when resuming, load the checkpoint into them."""
    seed_everything(config.seed)
    data = assembly.build_data(config)
    model = assembly.build_network(config, assembly.data_info(data), pretrained=checkpoint is None)
    model = model.to(runtime.device)
    objective = assembly.build_objective(config, data).to(runtime.device)
    if runtime.device.type == "cpu":
        torch.set_num_threads(cpu_threads(config, model))
    loader = assembly.train_loader(data, config, runtime)
    steps = math.ceil(len(loader) / config.grad_accum_steps)
    optimizer = assembly.build_optimizer(model, objective, config)
    val, test = assembly.eval_splits(data, config, runtime)
    split = "validation" if val is not None else "none"
    run = RunState(
        config=config,
        folder=folder,
        runtime=runtime,
        data=data,
        model=model,
        network=wrap_model(model, runtime, frozen_epochs=config.freeze_epochs > 0),
        objective=objective,
        optimizer=optimizer,
        schedule=assembly.build_schedule(optimizer, config, steps),
        scaler=torch.amp.GradScaler("cuda", enabled=runtime.amp_dtype == torch.float16),
        train_loader=loader,
        test=test,
        val=val,
        selection=Selection(
            assembly.selection_metric(data.protocol),
            split,
            samples=len(data.val) if data.val is not None else 0,  # type: ignore[arg-type]
        ),
        steps_per_epoch=steps,
    )
    if checkpoint is not None:
        restore(run, checkpoint)
    return run


def restore(run: RunState, checkpoint: dict[str, Any]) -> None:
    """Load a checkpoint's states into the run (before anything is written)."""
    saved_data, data = checkpoint["data"], assembly.data_info(run.data)
    for key in ("num_classes", "sample_shape", "protocol"):
        if saved_data[key] != data[key]:
            raise ResumeMismatchError(
                f"train: cannot resume {run.run_dir}: the data changed ({key}: "
                f"{saved_data[key]} in the run, {data[key]} now)"
            )
    try:
        run.model.load_state_dict(checkpoint["model"])
        run.objective.load_whole_state_dict(checkpoint["objective"])
        run.optimizer.load_state_dict(_optimizer_state_of_rank(run, checkpoint["optimizer"]))
        run.schedule.load_state_dict(checkpoint["schedule"])
        run.scaler.load_state_dict(checkpoint["scaler"])
        run.selection = Selection(**checkpoint["selection"])
    except (RuntimeError, KeyError, TypeError, ValueError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise CheckpointError(
            f"checkpoint: {run.folder.last} does not fit the run ({first})"
        ) from None
    restore_rng_state(checkpoint["rng"])
    run.epoch = run.resumed_from = run.checkpoint_epoch = checkpoint["epoch"]
    run.global_step = checkpoint["step"]
    _, run.schedule_changes = resume_differences(checkpoint["config"], run.config)
    saved_world = checkpoint.get("world_size", 1)
    if saved_world != run.runtime.world_size:  # proxies are saved whole: any world size resumes
        run.schedule_changes.append(f"processes: {saved_world} -> {run.runtime.world_size}")


def _optimizer_state_of_rank(run: RunState, state: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint's optimiser state, with this process's rows of sharded proxies' state."""
    rows, proxies = run.objective.sharded_rows, run.objective.proxies
    if rows is None or proxies is None:
        return state
    return sharded_optimizer_state(state, run.optimizer, proxies, rows)


def start(run: RunState, cbs: Sequence[Callback], *, resumed: bool) -> None:
    """Write the config, remove stale temporary files, start the callbacks."""
    if run.is_main:
        if not resumed:
            run.folder.claim()
        run.run_dir.mkdir(parents=True, exist_ok=True)
        run.folder.remove_stale_temps()
        save_config(run.config, run.folder.config)
    for cb in cbs:
        cb.on_train_start(run)


def train_epoch(run: RunState, cbs: Sequence[Callback]) -> None:
    """One epoch of optimiser steps; each adds up the gradients of ``grad_accum_steps``
    batches (each batch's loss divided by the size of its group).

    The steps read nothing back from the device (value checks off: the labels come from the
    run's own data) but every ``log_every`` steps and at the epoch's last step, when
    :func:`log_steps` reads the losses of the steps since (one host sync)."""
    run.epoch += 1
    run.epoch_started = time.perf_counter()
    torch.manual_seed(epoch_seed(run.config.seed, run.epoch))  # dropout of this epoch
    run.model.freeze_backbone(run.epoch <= run.config.freeze_epochs)
    run.network.train()
    run.train_loader.sampler.set_epoch(run.epoch)  # type: ignore[attr-defined]
    for cb in cbs:
        cb.on_epoch_start(run)
    n, k = len(run.train_loader), run.config.grad_accum_steps
    run.epoch_sums = dict.fromkeys(LOSS_KEYS, 0.0)
    zeros = torch.zeros(len(LOSS_KEYS), dtype=torch.float64, device=run.runtime.device)
    sums, group, batches = zeros.clone(), zeros.clone(), 0
    window: Window = []  # the steps to log
    for i, (x, y) in enumerate(run.train_loader):
        size = min(k, n - (i // k) * k)
        with losskit.checks(False):
            parts = forward_backward(run, x, y, 1.0 / size)
        group, batches = group + loss_tensor(parts), batches + 1
        if batches == size:
            lr = float(run.schedule.get_last_lr()[0])
            optimizer_step(run)
            step = group / size
            sums += step
            window.append((run.global_step, step, lr))
            group, batches = zeros.clone(), 0
            for cb in cbs:
                cb.on_step_end(run, parts, StepValues(step, lr))
            if run.global_step % run.config.log_every == 0 or i == n - 1:
                log_steps(run, cbs, window, sums)
                window = []


def log_steps(run: RunState, cbs: Sequence[Callback], window: Window, sums: torch.Tensor) -> None:
    """Read the losses of the ``window``'s steps and the epoch's ``sums`` (one host sync), hand
    the steps to the callbacks' ``on_log`` and stop at the first non-finite loss. In a
    multi-process run the processes read each other's losses too (one collective), so all of
    them stop at the first step whose loss is non-finite on any."""
    tables = _from_every_process(run, torch.stack([losses for _, losses, _ in window] + [sums]))
    *rows, totals = tables[run.runtime.rank]
    run.epoch_sums = dict(zip(LOSS_KEYS, totals))
    steps = [(number, step_values(row, lr)) for (number, _, lr), row in zip(window, rows)]
    bad, process = _first_non_finite(tables, len(steps))
    if bad:
        for cb in cbs:
            cb.on_log(run, steps[:bad])
    if bad < len(steps):
        number, _, lr = window[bad]
        raise _non_finite(run, number, step_values(tables[process][bad], lr), process)


def _from_every_process(run: RunState, table: torch.Tensor) -> list[list[list[float]]]:
    """``table`` of every process, in rank order, as lists (one host sync)."""
    if run.runtime.world_size == 1:
        return [table.tolist()]
    every = [torch.empty_like(table) for _ in range(run.runtime.world_size)]
    dist.all_gather(every, table)
    return torch.stack(every).tolist()


def _first_non_finite(tables: list[list[list[float]]], steps: int) -> tuple[int, int]:
    """The first of ``steps`` steps whose total loss is non-finite on some process, and the
    first such process; ``(steps, 0)`` if none."""
    for i in range(steps):
        for process, rows in enumerate(tables):
            if not math.isfinite(rows[i][0]):
                return i, process
    return steps, 0


def _non_finite(
    run: RunState, step: int, values: dict[str, float], process: int
) -> NonFiniteLossError:
    kept = run.folder.last if run.checkpoint_epoch is not None else "none (first epoch)"
    world = run.runtime.world_size
    where = f" on process {process} of {world}" if world > 1 else ""
    return NonFiniteLossError(
        f"train: the loss became {values['Loss/Total']}{where} at epoch {run.epoch}, step "
        f"{step} (Loss/CE={values['Loss/CE']:.4g}, Loss/Proxy={values['Loss/Proxy']:.4g}); "
        f"stopped. The last good checkpoint is {kept}. Try a lower --lr or "
        "--proxy_lr_multiplier, or --grad_clip."
    )


def forward_backward(run: RunState, x: torch.Tensor, y: torch.Tensor, weight: float) -> LossParts:
    """One batch: forward, loss, backward of ``weight · loss`` (gradients add up)."""
    device, pin = run.runtime.device, run.runtime.device.type == "cuda"
    x, y = x.to(device, non_blocking=pin), y.to(device, non_blocking=pin)
    dtype = run.runtime.amp_dtype
    with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
        features, logits = run.network(x)
    parts = run.objective(features, logits, y)
    run.scaler.scale(parts.total * weight).backward()
    return parts


def optimizer_step(run: RunState) -> None:
    """Clip, step the optimiser and the schedule, clear the gradients."""
    if run.config.grad_clip is not None:
        run.scaler.unscale_(run.optimizer)
        clip_gradients(run, run.config.grad_clip)
    run.scaler.step(run.optimizer)
    run.scaler.update()
    run.schedule.step()
    run.optimizer.zero_grad(set_to_none=True)
    run.global_step += 1


def clip_gradients(run: RunState, max_norm: float) -> None:
    """Scale the gradients of the model and the proxies to a total norm of at most
    ``max_norm``; with sharded proxies the norm covers the blocks of every process (each then
    scales by the same factor, as one process holding all the proxies would)."""
    params = [p for group in run.optimizer.param_groups for p in group["params"]]
    if run.objective.sharded_rows is None:
        nn.utils.clip_grad_norm_(params, max_norm)
        return
    sharded = {id(p) for p in run.objective.parameters()}
    grads = [p.grad for p in params if p.grad is not None and id(p) not in sharded]
    blocks = [p.grad for p in run.objective.parameters() if p.grad is not None]
    device = run.runtime.device  # the norm of no gradients is a CPU zero
    squares = nn.utils.get_total_norm(blocks).square().to(device)
    dist.all_reduce(squares)
    total = (nn.utils.get_total_norm(grads).square().to(device) + squares).sqrt()
    nn.utils.clip_grads_with_norm_(params, max_norm, total)


def evaluate_epoch(run: RunState) -> dict[str, float]:
    """The epoch's ``metrics.jsonl`` record; on evaluation epochs, ``Val/*`` and ``Eval/*``
    (test) metrics and the model selection."""
    record: dict[str, float] = {"epoch": run.epoch}
    record.update({k: v / max(run.steps_per_epoch, 1) for k, v in run.epoch_sums.items()})
    record["lr"] = float(run.schedule.get_last_lr()[0])
    run.evaluation = run.val_evaluation = None
    if run.epoch % run.config.eval_every and run.epoch != run.config.epochs:
        return record
    share_buffers(run.model, run.runtime)  # the model rank 0 saves, on every process
    run.evaluation = _evaluate(run, run.test)
    val = {}
    if run.val is not None:
        run.val_evaluation = _evaluate(run, run.val)
        val = run.val_evaluation.metrics
        record.update({f"Val/{k}": v for k, v in val.items()})
    record.update({f"Eval/{k}": v for k, v in run.evaluation.metrics.items()})
    run.selection.update(run.epoch, val, run.evaluation.metrics)
    return record


def _evaluate(run: RunState, split: EvalSplit) -> EvalResult:
    return assembly.evaluate_split(
        run.model,
        run.objective,
        split,
        protocol=run.data.protocol,
        runtime=run.runtime,
        seed=run.config.seed,
    )


def save_epoch(run: RunState) -> None:
    """``best.pt`` when the selection took this epoch, then ``last.pt`` (so a resume never
    lacks the selected model)."""
    state = checkpoint_state(run)  # on every process: sharded proxies are gathered
    if run.is_main:
        if run.evaluation is not None and run.selection.epoch == run.epoch:
            save_checkpoint(run.folder.best, state)
        save_checkpoint(run.folder.last, state)
    run.checkpoint_epoch = run.epoch


def end_epoch(run: RunState, cbs: Sequence[Callback], record: dict[str, float]) -> None:
    """Complete the epoch's record with its wall time and hand it to the callbacks."""
    record["time_s"] = time.perf_counter() - run.epoch_started
    for cb in cbs:
        cb.on_epoch_end(run, record, run.evaluation)


def checkpoint_state(run: RunState) -> dict[str, Any]:
    """Everything :func:`restore` needs to continue exactly, and what ``load_run`` reads
    (every process must call it: sharded proxies and their optimiser state are saved whole)."""
    proxies = run.objective.proxies
    optimizer = run.optimizer.state_dict()
    if run.objective.sharded_rows is not None and proxies is not None:
        optimizer = whole_optimizer_state(run.optimizer, proxies)
    return {
        "model": run.model.state_dict(),
        "objective": run.objective.whole_state_dict(),
        "optimizer": optimizer,
        "schedule": run.schedule.state_dict(),
        "scaler": run.scaler.state_dict(),
        "rng": rng_state(),
        "epoch": run.epoch,
        "step": run.global_step,
        "selection": run.selection.to_dict(),
        "config": run.config.model_dump(),
        "data": assembly.data_info(run.data),
        "world_size": run.runtime.world_size,
    }


def finish(run: RunState, cbs: Sequence[Callback]) -> dict[str, Any]:
    """Evaluate the selected model (``best.pt``) on the test split; build the results."""
    sel = run.selection
    if run.evaluation is not None and sel.epoch == run.epoch:
        run.final = run.evaluation
    else:  # the selected model is an earlier one, or the run was resumed after its end
        best = load_checkpoint(run.folder.best, map_location=run.runtime.device)
        run.model.load_state_dict(best["model"])
        run.objective.load_whole_state_dict(best["objective"])
        run.final = _evaluate(run, run.test)
    run.final_proxies = run.objective.all_proxies()
    metrics = run.final.metrics
    results: dict[str, Any] = {k: metrics[k] for k in RESULT_KEYS if k in metrics}
    results.update({f"val_{k}": v for k, v in sel.val.items() if k in RESULT_KEYS})
    results.update(
        protocol=run.data.protocol,
        epoch=run.epoch,
        best_epoch=sel.epoch,
        selection_metric=sel.metric,
        selection_split=sel.split,
        best_value=sel.value,
        stopped_early=run.stopped_early,
        run_dir=str(run.run_dir),
    )
    for cb in cbs:
        cb.on_train_end(run, results)
    return results
