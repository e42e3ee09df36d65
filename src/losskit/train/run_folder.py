"""The run folder: its paths, what a failed run leaves behind, and what a resume may change.

- A new run snapshots the folder before it writes anything; if it fails before its first
  checkpoint, :meth:`RunFolder.discard` removes what it created (the folder itself, and any
  parent it had to create), so the folder is as the run found it.
- A resume refuses a config that changes the model, the data or the objective
  (:func:`resume_differences`), before anything in the folder changes; once the checkpoint has
  loaded it removes stale temporary files left by a process killed while writing.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from losskit._files import TEMP_SUFFIX
from losskit.train.config import TrainConfig

__all__ = ["RESUME_MAY_CHANGE", "ResumeMismatchError", "RunFolder", "resume_differences"]

# Keys that change how long, how visibly or where a run goes on, not what it trains (a checkpoint
# holds all the proxies, sharded over the processes or not).
RESUME_MAY_CHANGE: tuple[str, ...] = (
    "epochs",
    "eval_every",
    "log_every",
    "patience",
    "quiet",
    "num_workers",
    "cpu_threads",
    "device",
    "shard_proxies",
)
_NOT_COMPARED = ("output_dir",)


class ResumeMismatchError(ValueError):
    """``--resume`` with keys that would change the model, the data or the objective."""


def resume_differences(saved: Mapping[str, Any], given: TrainConfig) -> tuple[list[str], list[str]]:
    """``(refused, changed)``: one ``"key: <run> in the run, <given> given"`` line for each key
    that differs from the run's config, split into keys a resume may not change and keys of
    :data:`RESUME_MAY_CHANGE`."""
    refused: list[str] = []
    changed: list[str] = []
    for key, value in given.model_dump().items():
        before = saved.get(key, TrainConfig.model_fields[key].default)
        if key in _NOT_COMPARED or before == value:
            continue
        line = f"{key}: {before} in the run, {value} given"
        (changed if key in RESUME_MAY_CHANGE else refused).append(line)
    return refused, changed


class RunFolder:
    """Paths of a run folder and the bookkeeping that lets a failed run leave no trace."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.checkpoints = self.path / "checkpoints"
        self.last = self.checkpoints / "last.pt"
        self.best = self.checkpoints / "best.pt"
        self.config = self.path / "config.yaml"
        self._created_root: Path | None = None
        self._before: set[str] | None = None

    def refuse_existing(self) -> None:
        """Raise ``FileExistsError`` if the folder already holds a run."""
        if self.last.exists():
            raise FileExistsError(
                f"train: {self.path} already holds a run; continue it with --resume "
                f"{self.path} or choose another --output_dir"
            )

    def claim(self) -> None:
        """Remember what exists now (call before writing anything)."""
        root = self.path
        while not root.parent.exists() and root.parent != root:
            root = root.parent
        self._created_root = None if self.path.exists() else root
        self._before = {p.name for p in self.path.iterdir()} if self.path.is_dir() else set()

    def discard(self) -> None:
        """Remove everything written since :meth:`claim` (nothing if it was not called)."""
        if self._before is None:
            return
        if self._created_root is not None:
            shutil.rmtree(self._created_root, ignore_errors=True)
            return
        if not self.path.is_dir():
            return
        for entry in self.path.iterdir():
            if entry.name not in self._before:
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink(missing_ok=True)

    def remove_stale_temps(self) -> list[Path]:
        """Delete the ``.<name>.*.tmp`` files of writes that never finished; return them."""
        stale = [
            p
            for folder in (self.path, self.checkpoints)
            if folder.is_dir()
            for p in folder.glob(f".*{TEMP_SUFFIX}")
        ]
        for p in stale:
            p.unlink(missing_ok=True)
        return stale
