"""The errors the command line reports, and the one place that turns any failure into a line.

Every expected failure of a ``losskit`` command ends in one line on stderr,
``losskit <command>: error: <what>``, and an exit code: **2** for bad input (a config, flag,
data file, run folder or checkpoint that is not what it should be), **1** for a failure while
running (a full disk, a missing optional dependency, a loss that became NaN), **130** when the
user interrupts. :func:`describe` is that mapping; ``losskit --debug`` shows the traceback
instead.

Code that knows which file it was working on raises a :class:`LosskitError` naming it:
:func:`writing` wraps a file write (a full or read-only disk names the file, including torch's
``unexpected pos``, which never says the disk is full) and :func:`reading_checkpoint` wraps
``torch.load`` (a file refused by ``weights_only=True`` is "not a losskit checkpoint or
damaged", never "try ``weights_only=False``"). This module imports nothing heavy.
"""

from __future__ import annotations

import errno
import os
import pickle
import struct
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = [
    "EXIT_INTERRUPTED",
    "EXIT_RUNNING",
    "EXIT_USAGE",
    "CheckpointError",
    "DiskError",
    "InputError",
    "Interrupted",
    "LosskitError",
    "RunError",
    "describe",
    "reading_checkpoint",
    "writing",
]

EXIT_RUNNING = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
_NOT_WRITABLE = (errno.EROFS, errno.EACCES, errno.EPERM)
# torch's zip writer reports a short write (a full disk) as "unexpected pos".
_TORCH_WRITE_FAILURES = ("unexpected pos", "PytorchStreamWriter failed")


class LosskitError(Exception):
    """A failure with a message fit for the user; ``exit_code`` says what kind."""

    exit_code = EXIT_RUNNING


class InputError(LosskitError, ValueError):
    """Bad input: a file, key, flag or value that is not what it should be (exit 2)."""

    exit_code = EXIT_USAGE


class CheckpointError(InputError):
    """A file that is not a readable losskit checkpoint."""


class RunError(LosskitError, RuntimeError):
    """A failure while running (exit 1)."""


class DiskError(RunError, OSError):
    """A write that failed because the disk is full or the place is not writable."""


class Interrupted(LosskitError):
    """The user interrupted the command (Ctrl-C)."""

    exit_code = EXIT_INTERRUPTED


@contextmanager
def writing(path: str | os.PathLike[str]) -> Iterator[None]:
    """Turn a failed write of ``path`` into a :class:`DiskError` that names it."""
    try:
        yield
    except OSError as err:
        raise _write_error(path, err) from err
    except RuntimeError as err:
        if not any(s in str(err) for s in _TORCH_WRITE_FAILURES):
            raise
        raise DiskError(f"could not write {path}: the disk is full (no space left)") from err


def _write_error(path: str | os.PathLike[str], err: OSError) -> Exception:
    if err.errno in _DISK_FULL:
        return DiskError(f"could not write {path}: the disk is full (no space left)")
    if err.errno in _NOT_WRITABLE:
        return DiskError(f"could not write {path}: the place is not writable ({err.strerror})")
    if err.errno in (errno.ENOENT, errno.ENOTDIR):
        parent = os.path.dirname(os.fspath(path)) or "."
        what = (
            f"{parent} is a file, not a folder" if os.path.isfile(parent) else f"no folder {parent}"
        )
        return InputError(f"could not write {path}: {what}")
    if err.errno == errno.EISDIR:
        return InputError(f"could not write {path}: it is a folder")
    return err


@contextmanager
def reading_checkpoint(path: str | os.PathLike[str]) -> Iterator[None]:
    """Turn a failed ``torch.load(path, weights_only=True)`` into a :class:`CheckpointError`."""
    try:
        yield
    except (
        pickle.UnpicklingError,
        EOFError,
        struct.error,
        zipfile.BadZipFile,
        RuntimeError,
        ValueError,
    ) as err:
        raise CheckpointError(
            f"{path} is not a losskit checkpoint or is damaged (checkpoints are read as plain "
            f"tensors and data only, never unpickled): {_first_line(err)}"
        ) from err


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def describe(err: BaseException) -> tuple[str, int] | None:
    """The one-line message and exit code for ``err``; ``None`` for a bug (show the traceback).

    ``SystemExit`` is not handled here.
    """
    if isinstance(err, LosskitError):
        return str(err), err.exit_code
    if isinstance(err, KeyboardInterrupt):
        return "interrupted", EXIT_INTERRUPTED
    if isinstance(err, ModuleNotFoundError):
        return (
            f"this needs the optional package `{err.name}`, which is not installed "
            f"(pip install {err.name}; the ResNet backbones: pip install 'losskit[vision]')",
            EXIT_RUNNING,
        )
    if isinstance(err, MemoryError):
        return "out of memory (try a smaller --batch_size)", EXIT_RUNNING
    if isinstance(err, OSError):
        return _os_error(err)
    if isinstance(err, ValueError | TypeError):
        return _first_line(err), EXIT_USAGE
    if isinstance(err, RuntimeError):
        return _runtime_error(err)
    return None


def _os_error(err: OSError) -> tuple[str, int]:
    if err.filename is not None:
        mapped = _write_error(err.filename, err)
        if mapped is not err:
            return str(mapped), getattr(mapped, "exit_code", EXIT_RUNNING)
    if isinstance(err, FileNotFoundError | FileExistsError | IsADirectoryError):
        return _first_line(err), EXIT_USAGE
    where = f" ({err.filename})" if err.filename else ""
    return f"{err.strerror or _first_line(err)}{where}", EXIT_RUNNING


def _runtime_error(err: RuntimeError) -> tuple[str, int] | None:
    text = str(err)
    if any(s in text for s in _TORCH_WRITE_FAILURES):
        return "a write failed: the disk is full (no space left)", EXIT_RUNNING
    if "Error(s) in loading state_dict" in text:
        return (
            "the checkpoint does not fit the model built from the run's config (a different "
            f"backbone, size or number of classes): {_first_line(err)}",
            EXIT_USAGE,
        )
    if "out of memory" in text.lower():
        return f"out of memory (try a smaller --batch_size): {_first_line(err)}", EXIT_RUNNING
    return None
