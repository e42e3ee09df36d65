"""Atomic file writes: the one way losskit writes a file that must never be half-written."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from losskit.errors import writing

__all__ = ["TEMP_SUFFIX", "atomic_write"]

TEMP_SUFFIX = ".tmp"


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[bytes]], Any]) -> Path:
    """Call ``write`` on a temporary binary file beside ``path``, flush it to disk (``fsync``),
    then move it onto ``path`` with :func:`os.replace`; return ``path``.

    A crash leaves either the old file or the new one, plus at worst a hidden
    ``.<name>.*.tmp`` beside it; the new file gets the usual permissions (umask).

    Raises:
        FileNotFoundError: the folder of ``path`` does not exist (the message names it).
    """
    p = Path(path)
    if not p.parent.is_dir():
        raise FileNotFoundError(f"cannot write {p}: no folder {p.parent}")
    with writing(p):  # a full or read-only disk names the file
        fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=TEMP_SUFFIX)
        try:
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 -> the usual permissions
            with os.fdopen(fd, "wb") as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, p)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return p


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
