"""``losskit train`` under ``torchrun`` with 2 CPU processes (gloo), and its resume."""

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


def _torchrun(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
               "2", "-m", "losskit", "train", *args]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _steps(run_dir: Path) -> list[int]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir))
    acc.Reload()
    return [event.step for event in acc.Scalars("Loss/Total")]


@pytest.mark.slow
def test_two_processes_train_one_run_and_resume(tmp_path: Path) -> None:
    run = tmp_path / "run"
    first = _torchrun("--output_dir", str(run), "--epochs", str(EPOCHS))
    assert [p.name for p in tmp_path.iterdir()] == ["run"]
    assert first.stdout.count("TRAINING CONFIGURATION") == 1
    assert first.stdout.count("World size: 2 (global batch 128: 64 per process)") == 1
    for epoch in range(1, EPOCHS + 1):
        assert len(re.findall(rf"^epoch +{epoch}/{EPOCHS} ", first.stdout, re.M)) == 1

    # Half the optimiser steps of one process: each process draws half of the epoch.
    config = load_config(overrides={"output_dir": str(run)})
    single = len(assembly.build_data(config).train_labels) // config.batch_size
    assert _steps(run) == list(range(1, EPOCHS * single // 2 + 1))
    assert load_checkpoint(run / "checkpoints" / "last.pt")["world_size"] == 2
    # Each process evaluated its block of the test split with rank 0's model, the one in
    # best.pt: one process re-evaluating best.pt finds the numbers of training time exactly.
    _, model, objective, _ = assembly.load_run(run)
    runtime = Runtime(torch.device("cpu"))
    _, test = assembly.eval_splits(assembly.build_data(config), config, runtime)
    again = assembly.evaluate_split(
        model, objective, test, protocol="classification", runtime=runtime, seed=config.seed
    ).metrics
    best = load_checkpoint(run / "checkpoints" / "best.pt")["epoch"]
    at_best = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()][best - 1]
    assert {k: at_best[f"Eval/{k}"] for k in again} == again

    second = _torchrun("--resume", str(run), "--epochs", str(MORE))
    assert second.stdout.count(f"Resuming from: epoch {EPOCHS}") == 1
    assert re.findall(r"^epoch +(\d+)/", second.stdout, re.M) == [
        str(e) for e in range(EPOCHS + 1, MORE + 1)
    ]
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == list(range(1, MORE + 1))
    assert _steps(run) == list(range(1, MORE * single // 2 + 1))
    results = json.loads((run / "results.json").read_text())
    assert results["epoch"] == MORE
    assert results["accuracy"] >= 0.97
