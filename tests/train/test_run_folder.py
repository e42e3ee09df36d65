"""What a run leaves in its folder: safe resume, determinism, faults and damaged checkpoints."""

from __future__ import annotations

import fcntl
import io
import json
import os
import pty
import struct
import subprocess
import sys
import termios
import threading
from pathlib import Path
from typing import Any

import pytest

import losskit
from losskit.cli import main
from losskit.train.checkpoint import CheckpointError, load_checkpoint
from losskit.train.config import load_config
from losskit.train.loop import train
from losskit.train.tracking import Callback

FLAGS = ["--epochs", "2", "--hidden_dim", "32", "--embedding_dim", "16", "--dropout", "0.3"]
TINY = {"epochs": 2, "hidden_dim": 32, "embedding_dim": 16, "dropout": 0.3, "quiet": True}
SRC = str(Path(losskit.__file__).resolve().parents[1])


def _metrics(run: Path) -> list[dict[str, Any]]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(x).items() if k != "time_s"} for x in lines]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}


def _cli_in_terminal(argv: list[str]) -> str:
    """Run ``losskit`` with its stderr on a pseudo-terminal (the progress bar is drawn)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # 24 x 100
    drawn: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                return
            if not chunk:
                return
            drawn.append(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    proc = subprocess.run(
        [sys.executable, "-m", "losskit", *argv], stderr=slave, stdout=subprocess.PIPE,
        env=_env(), check=False, timeout=300,
    )  # fmt: skip
    os.close(slave)
    reader.join(timeout=10)
    os.close(master)
    assert proc.returncode == 0
    return b"".join(drawn).decode("utf-8", "replace")


def test_same_bits_in_a_terminal_quiet_and_with_workers(tmp_path: Path) -> None:
    bar = _cli_in_terminal(["train", *FLAGS, "--output_dir", str(tmp_path / "tty")])
    assert "epoch 1/2" in bar and "it/s" in bar  # the bar was drawn
    assert main(["train", *FLAGS, "--quiet", "--output_dir", str(tmp_path / "quiet")]) == 0
    workers = ["--quiet", "--num_workers", "2", "--output_dir", str(tmp_path / "workers")]
    assert main(["train", *FLAGS, *workers]) == 0
    assert main(["train", *FLAGS, "--output_dir", str(tmp_path / "piped")]) == 0  # epoch lines
    reference = _metrics(tmp_path / "quiet")
    assert _metrics(tmp_path / "tty") == reference
    assert _metrics(tmp_path / "workers") == reference
    assert _metrics(tmp_path / "piped") == reference


def test_resume_with_a_changed_model_key_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    assert main(["train", *FLAGS, "--quiet", "--output_dir", str(run)]) == 0
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    capsys.readouterr()
    code = main(["train", "--resume", str(run), "--embedding_dim", "8", "--lr", "0.1"])
    err = capsys.readouterr().err
    assert code == 2
    assert (
        "embedding_dim: 16 in the run, 8 given" in err and "lr: 0.002 in the run, 0.1 given" in err
    )
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before
    assert main(["train", "--resume", str(run), "--epochs", "3"]) == 0  # a plain resume works
    out = capsys.readouterr().out
    assert "Resuming from: epoch 2" in out
    assert "Changed on resume: epochs: 2 in the run, 3 given" in out
    assert [r["epoch"] for r in _metrics(run)] == [1, 2, 3]
    assert load_config(run / "config.yaml").epochs == 3


_KILLER = """
import os, signal, sys, torch
from losskit.train.config import load_config
from losskit.train.loop import train
from losskit.train.tracking import Callback
mode, out, overrides = sys.argv[1], sys.argv[2], eval(sys.argv[3])
class KillAtStep(Callback):
    def on_step_end(self, run, parts, values):
        if mode == "step" and run.global_step == 25:  # inside epoch 2
            os.kill(os.getpid(), signal.SIGKILL)
real_save, saves = torch.save, [0]
def dying_save(obj, f, *args, **kwargs):
    saves[0] += 1
    if mode == "write" and saves[0] == 3:  # the first checkpoint write of epoch 2
        f.write(b"half a checkpoint"); f.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    return real_save(obj, f, *args, **kwargs)
torch.save = dying_save
train(load_config(overrides={**overrides, "output_dir": out}), callbacks=[KillAtStep()])
"""


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """``metrics.jsonl`` of the run the killed runs must reproduce."""
    run = tmp_path_factory.mktemp("full")
    train(load_config(overrides={**TINY, "output_dir": str(run)}), stream=io.StringIO())
    return _metrics(run)


@pytest.mark.parametrize("mode", ["step", "write"])
def test_kill_9_then_resume_gives_the_same_metrics(
    tmp_path: Path, mode: str, uninterrupted: list[dict[str, Any]]
) -> None:
    cut = tmp_path / "cut"
    proc = subprocess.run([sys.executable, "-c", _KILLER, mode, str(cut), repr(TINY)],
                          env=_env(), capture_output=True, check=False, timeout=300)  # fmt: skip
    assert proc.returncode == -9, proc.stderr.decode()
    temps = list((cut / "checkpoints").glob(".*.tmp"))
    assert bool(temps) == (mode == "write")  # the killed write left its temporary file
    assert load_checkpoint(cut / "checkpoints" / "last.pt")["epoch"] == 1
    train(load_config(overrides={**TINY, "output_dir": str(cut)}), resume=True)
    assert not list(cut.rglob(".*.tmp"))  # resume removed it
    assert _metrics(cut) == uninterrupted


def test_damaged_checkpoint_is_refused_and_points_at_best(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    assert main(["train", *FLAGS, "--quiet", "--output_dir", str(run)]) == 0
    last = run / "checkpoints" / "last.pt"
    data = bytearray(last.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(b ^ 0xFF for b in data[middle : middle + 64])
    last.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"last.pt is damaged"):
        load_checkpoint(last)
    capsys.readouterr()
    assert main(["train", "--resume", str(run)]) == 2
    err = capsys.readouterr().err
    assert "last.pt is damaged" in err and "best.pt is intact: copy it onto" in err
    (run / "checkpoints" / "best.pt").write_bytes(b"not a checkpoint at all")
    assert main(["train", "--resume", str(run)]) == 2
    assert "best.pt is missing or damaged too" in capsys.readouterr().err
    with pytest.raises(CheckpointError, match=r"best.pt is damaged or not a losskit checkpoint"):
        load_checkpoint(run / "checkpoints" / "best.pt")


class _FailAt(Callback):
    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_step_end(self, run: Any, parts: Any, values: Any) -> None:
        if run.epoch == self.epoch:
            raise RuntimeError("a corrupt sample")


def test_a_run_failing_before_its_first_checkpoint_leaves_the_folder_as_it_was(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    new = tmp_path / "runs" / "new"  # neither folder exists yet
    with pytest.raises(RuntimeError, match="a corrupt sample"):
        train(load_config(overrides={**TINY, "output_dir": str(new)}), callbacks=[_FailAt(1)])
    assert not (tmp_path / "runs").exists()
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "notes.txt").write_text("mine")
    with pytest.raises(RuntimeError):
        train(load_config(overrides={**TINY, "output_dir": str(kept)}), callbacks=[_FailAt(1)])
    assert [p.name for p in kept.iterdir()] == ["notes.txt"]
    bad = load_config(overrides={**TINY, "backbone": "cnn2d", "output_dir": str(new)})
    with pytest.raises(ValueError, match=r"expected `samples` of shape \(C, H, W\)"):
        train(bad)
    assert not new.exists()
    capsys.readouterr()
    later = tmp_path / "later"
    with pytest.raises(RuntimeError):
        train(load_config(overrides={**TINY, "output_dir": str(later)}), callbacks=[_FailAt(2)])
    assert load_checkpoint(later / "checkpoints" / "last.pt")["epoch"] == 1
    err = capsys.readouterr().err
    assert f"the last good checkpoint is {later / 'checkpoints' / 'last.pt'} (epoch 1)" in err
