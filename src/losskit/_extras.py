"""Optional dependencies: the extra each command needs, and one line naming it when it is missing.

``import losskit`` needs torch and NumPy alone. The trainer (``train``, ``evaluate``,
``predict``) needs the ``train`` extra, ``losskit plot`` the ``plot`` extra; a command run
without its extra prints ``losskit train: error: needs the "train" extra (missing: pydantic);
install it with: pip install "losskit[train]"`` and exits with status 1.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from typing import Any

__all__ = ["EXTRAS", "add_missing_extra_parser", "missing_modules", "require_extra"]

# extra -> the modules it provides (import names; pyproject.toml lists the distributions)
EXTRAS: dict[str, tuple[str, ...]] = {
    "train": ("sklearn", "yaml", "pydantic", "tensorboard", "tqdm", "matplotlib"),
    "plot": ("matplotlib", "sklearn"),
}


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing, or a module set to None
        return False


def missing_modules(extra: str) -> list[str]:
    """The modules of ``extra`` that cannot be imported (empty when it is installed)."""
    return [m for m in EXTRAS[extra] if not _importable(m)]


def _message(extra: str, missing: list[str]) -> str:
    return (
        f'needs the "{extra}" extra (missing: {", ".join(missing)}); '
        f'install it with: pip install "losskit[{extra}]"'
    )


def require_extra(extra: str, what: str) -> None:
    """Raise :class:`ModuleNotFoundError` naming the extra when one of its modules is missing."""
    missing = missing_modules(extra)
    if missing:
        raise ModuleNotFoundError(f"{what} {_message(extra, missing)}", name=missing[0])


def add_missing_extra_parser(sub: Any, name: str, help: str, extra: str) -> None:
    """Register command ``name`` as one that only reports its missing extra.

    It accepts any arguments (also ``--help``) and prints the one line, so that
    ``losskit train --config x`` without the extra says what to install rather than
    "unrecognized arguments".
    """
    p = sub.add_parser(
        name, help=f"{help} [needs losskit[{extra}]]", prefix_chars="\0", add_help=False
    )
    p.add_argument("arguments", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)

    def report(args: argparse.Namespace) -> int:
        print(f"losskit {name}: error: {_message(extra, missing_modules(extra))}", file=sys.stderr)
        return 1

    p.set_defaults(func=report)
