"""The ``losskit`` command line: ``losskit <command> --help`` for each command.

Each command lives beside the code it drives and exposes ``add_parser(subparsers)``, which
registers its sub-parser and sets ``func`` (called with the parsed namespace, returning an exit
code). Heavy imports happen inside ``func``, so ``losskit --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from losskit import __version__
from losskit.errors import EXIT_RUNNING, EXIT_USAGE, describe

__all__ = ["main"]

# Modules that contribute commands, in the order ``losskit --help`` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "losskit.train.cli",
    "losskit.train.export_cli",
    "losskit.registry_cli",
    "losskit.guide_cli",
    "losskit.plot_cli",
)


def _spellings(action: argparse.Action) -> list[str]:
    """``action``'s long flags in both spellings, ``--a_b`` and ``--a-b``, each once, in order.

    A boolean flag's negation keeps its ``--no-`` prefix (``--no_x`` would read as ``--x``).
    """
    out: list[str] = []
    for flag in action.option_strings:
        variants = [flag]
        if flag.startswith("--"):
            variants += [f"--{flag[2:].replace('_', '-')}", f"--{flag[2:].replace('-', '_')}"]
        if isinstance(action, argparse.BooleanOptionalAction):
            variants = [v for v in variants if not v.startswith("--no_")]
        out += [v for v in variants if v not in out]
    return out


class _Parser(argparse.ArgumentParser):
    """A parser whose usage errors are one line, ``losskit <command>: error: …`` (exit 2).

    Every multi-word flag of every command (sub-commands use this class too) is accepted with
    underscores or dashes, ``--max_points`` as ``--max-points``: before each parse, flags added
    since are given their other spelling, unless another flag has it.
    """

    def error(self, message: str) -> NoReturn:
        message = re.sub(
            r"(argument \S+): ignored explicit argument (.*)",
            r"\1: expected no value, got \2",
            message,
        )
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        taken = self._option_string_actions
        for action in self._actions:
            new = [f for f in _spellings(action) if f not in taken]
            action.option_strings = [*action.option_strings, *new]
            taken.update(dict.fromkeys(new, action))
        return super().parse_known_args(args, namespace)

    def _get_option_tuples(self, option_string: str) -> list[tuple[Any, ...]]:
        """The flags an abbreviation may mean, one per action (``--max`` is not ambiguous
        between ``--max-points`` and ``--max_points``)."""
        first: dict[int, tuple[Any, ...]] = {}
        for match in super()._get_option_tuples(option_string):
            first.setdefault(id(match[0]), match)
        return list(first.values())


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every command's sub-parser."""
    parser = _Parser(
        prog="losskit",
        description="Loss functions for PyTorch, and a trainer that puts them to work.",
    )
    parser.add_argument("--version", action="version", version=f"losskit {__version__}")
    parser.add_argument(
        "--debug",
        action="store_true",
        help="show the full traceback of a failure (also accepted after the command)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMAND_MODULES:
        importlib.import_module(module).add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``losskit`` console script.

    A failure ends in one line ``losskit <command>: error: …`` with exit code 2 (bad input), 1
    (a failure while running) or 130 (interrupted), see :mod:`losskit.errors`; ``--debug``
    (anywhere on the line) shows the traceback instead.
    """
    args_in = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args_in
    parser = build_parser()
    args = parser.parse_args([a for a in args_in if a != "--debug"])
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 0
    command = " ".join(filter(None, (args.command, getattr(args, "figure", None))))
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:  # output piped into a reader that closed early (`| head`)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (Exception, KeyboardInterrupt) as err:
        if debug:
            raise
        message, code = describe(err) or (
            f"unexpected {type(err).__name__}: {err} (rerun with --debug for the traceback)",
            EXIT_RUNNING,
        )
        if getattr(err, "reported_by_another_process", False):
            return code  # under torchrun: the process that failed first reports
        print(f"losskit {command}: error: {message}", file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
