"""The ``losskit`` command line: ``losskit <command> --help`` for each command.

Each command lives beside the code it drives and exposes ``add_parser(subparsers)``, which
registers its sub-parser and sets ``func`` (called with the parsed namespace, returning an exit
code). Heavy imports happen inside ``func``, so ``losskit --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from losskit import __version__

__all__ = ["main"]

# Modules that contribute commands, in the order ``losskit --help`` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "losskit.train.cli",
    "losskit.train.export_cli",
    "losskit.registry_cli",
    "losskit.guide_cli",
    "losskit.plot_cli",
)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every command's sub-parser."""
    parser = argparse.ArgumentParser(
        prog="losskit",
        description="Loss functions for PyTorch, and a trainer that puts them to work.",
    )
    parser.add_argument("--version", action="version", version=f"losskit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMAND_MODULES:
        importlib.import_module(module).add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``losskit`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:  # output piped into a reader that closed early (`| head`)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (ValueError, TypeError, FileNotFoundError) as err:
        print(f"losskit {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
