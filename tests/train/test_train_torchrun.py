"""``losskit train`` under ``torchrun`` with 2 CPU processes (gloo): one run and its resume, the
same run with sharded proxies, and a failure on one process."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from losskit.train import assembly
from losskit.train.checkpoint import load_checkpoint
from losskit.train.config import load_config
from losskit.train.runtime import Runtime

EPOCHS, MORE = 6, 8
FAILING = Path(__file__).with_name("torchrun_failing.py")


def _launch(*args: str, processes: int = 2, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
               str(processes), *args]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)


def _torchrun(*args: str, processes: int = 2) -> subprocess.CompletedProcess[str]:
    done = _launch("-m", "losskit", "train", *args, processes=processes)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _scalars(run_dir: Path) -> dict[int, float]:
    """``Loss/Total`` by optimiser step."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir))
    acc.Reload()
    return {event.step: event.value for event in acc.Scalars("Loss/Total")}


def _steps(run_dir: Path) -> list[int]:
    return sorted(_scalars(run_dir))


def _records(run_dir: Path) -> list[dict[str, float]]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _steps_per_epoch(run_dir: Path) -> int:
    """Optimiser steps of one epoch of 2 processes: half those of one process."""
    config = load_config(overrides={"output_dir": str(run_dir)})
    return len(assembly.build_data(config).train_labels) // config.batch_size // 2


@pytest.fixture(scope="module")
def replicated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, dict[int, float]]:
    """A 2-process run of EPOCHS epochs: its folder, its output and its losses by step."""
    run = tmp_path_factory.mktemp("replicated") / "run"
    done = _torchrun("--output_dir", str(run), "--epochs", str(EPOCHS))
    return run, done.stdout, _scalars(run)


@pytest.mark.slow
def test_two_processes_train_one_run_and_resume(replicated) -> None:
    run, stdout, _ = replicated
    assert [p.name for p in run.parent.iterdir()] == ["run"]
    assert stdout.count("TRAINING CONFIGURATION") == 1
    assert stdout.count("World size: 2 (global batch 128: 64 per process)") == 1
    assert "Proxies: sharded" not in stdout
    for epoch in range(1, EPOCHS + 1):
        assert len(re.findall(rf"^epoch +{epoch}/{EPOCHS} ", stdout, re.M)) == 1
    steps = _steps_per_epoch(run)
    assert _steps(run) == list(range(1, EPOCHS * steps + 1))
    assert load_checkpoint(run / "checkpoints" / "last.pt")["world_size"] == 2
    _assert_reevaluates_exactly(run)

    second = _torchrun("--resume", str(run), "--epochs", str(MORE))
    assert second.stdout.count(f"Resuming from: epoch {EPOCHS}") == 1
    assert re.findall(r"^epoch +(\d+)/", second.stdout, re.M) == [
        str(e) for e in range(EPOCHS + 1, MORE + 1)
    ]
    assert [r["epoch"] for r in _records(run)] == list(range(1, MORE + 1))
    assert _steps(run) == list(range(1, MORE * steps + 1))
    results = json.loads((run / "results.json").read_text())
    assert results["epoch"] == MORE
    assert results["accuracy"] >= 0.97


def _assert_reevaluates_exactly(run: Path) -> None:
    """Each process evaluated its block of the test split with rank 0's model, the one in
    best.pt: one process re-evaluating best.pt (as ``losskit evaluate --run`` does) finds the
    numbers of training time exactly."""
    config = load_config(run / "config.yaml")
    _, model, objective, _ = assembly.load_run(run)
    runtime = Runtime(torch.device("cpu"))
    _, test = assembly.eval_splits(assembly.build_data(config), config, runtime)
    again = assembly.evaluate_split(
        model, objective, test, protocol="classification", runtime=runtime, seed=config.seed
    ).metrics
    best = load_checkpoint(run / "checkpoints" / "best.pt")["epoch"]
    assert {k: _records(run)[best - 1][f"Eval/{k}"] for k in again} == again


@pytest.mark.slow
def test_sharded_proxies_train_as_replicated_ones_and_resume(tmp_path: Path, replicated) -> None:
    _, _, replicated_losses = replicated
    run = tmp_path / "run"
    first = _torchrun("--output_dir", str(run), "--epochs", str(EPOCHS), "--shard_proxies")
    assert [p.name for p in tmp_path.iterdir()] == ["run"]
    assert first.stdout.count("Proxies: sharded over 2 processes (at most 5 of the 10 classes") == 1

    # The same global batches and starting proxies: the replicated run's numbers, up to float32
    # rounding (exact at the first step, then amplified a little by training).
    losses = _scalars(run)
    assert sorted(losses) == sorted(replicated_losses)[: len(losses)]
    assert losses[1] == pytest.approx(replicated_losses[1], rel=1e-6)
    for step in (2, 3):
        assert losses[step] == pytest.approx(replicated_losses[step], rel=1e-5)
    for step, value in losses.items():
        assert value == pytest.approx(replicated_losses[step], rel=2e-2), step

    # One checkpoint holds all the proxies and AdamW's moments of all of them.
    state = load_checkpoint(run / "checkpoints" / "last.pt")
    assert tuple(state["objective"]["proxy_loss.proxies"].shape) == (10, 128)
    proxy_state = state["optimizer"]["state"][max(state["optimizer"]["state"])]
    assert {tuple(proxy_state[k].shape) for k in ("exp_avg", "exp_avg_sq")} == {(10, 128)}

    _assert_reevaluates_exactly(run)  # one process, all the proxies of best.pt

    second = _torchrun("--resume", str(run), "--epochs", str(MORE), "--shard_proxies")
    assert second.stdout.count(f"Resuming from: epoch {EPOCHS}") == 1
    steps = _steps_per_epoch(run)
    assert _steps(run) == list(range(1, MORE * steps + 1))
    # Another world size: one process takes all the proxies back.
    third = _torchrun("--resume", str(run), "--epochs", str(MORE + 1), processes=1)
    assert third.stdout.count("processes: 2 -> 1") == 1
    assert [r["epoch"] for r in _records(run)] == list(range(1, MORE + 2))
    assert json.loads((run / "results.json").read_text())["accuracy"] >= 0.97


@pytest.mark.slow
@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("nan", "losskit train: error: train: the loss became nan on process 1 of 2 at epoch 1, "
                "step 2 (Loss/CE=nan"),
        ("raise", "losskit train: error: unexpected RuntimeError: a bad batch on process 1"),
    ],
)  # fmt: skip
def test_a_failure_on_one_process_stops_both_with_its_message(
    tmp_path: Path, mode: str, message: str
) -> None:
    run = tmp_path / "run"
    done = _launch(str(FAILING), mode, "train", "--output_dir", str(run), "--loss_type", "CE",
                   "--epochs", "2", "--quiet", timeout=120)  # fmt: skip
    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert output.count(message) == 1, output[-3000:]
    assert output.count("losskit train: error:") == 1, output[-3000:]
    assert not run.exists()  # nothing kept from a run that failed before its first checkpoint
