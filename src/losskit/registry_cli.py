"""``losskit list``: every registered loss with its one-line summary."""

from __future__ import annotations

import argparse
from typing import Any

from losskit._plain_checks import check_choice
from losskit.registry import get_spec, list_losses

__all__ = ["add_parser"]


def _run(args: argparse.Namespace) -> int:
    if args.family is not None:
        families = sorted({get_spec(n).family for n in list_losses()})
        check_choice("list", "family", args.family, families)
    names = list_losses(args.family)
    width = max((len(n) for n in names), default=0)
    family = None
    for name in sorted(names, key=lambda n: (get_spec(n).family, n)):
        spec = get_spec(name)
        if spec.family != family:
            family = spec.family
            print(f"\n{family}")
        print(f"  {name:<{width}}  {spec.cls.__name__:<28} {spec.summary}")
    return 0


def add_parser(sub: Any) -> None:
    """Register ``losskit list``."""
    p = sub.add_parser("list", help="list every registered loss with its summary")
    p.add_argument("--family", default=None, help="only this family (e.g. regression, metric)")
    p.set_defaults(func=_run)
