"""``losskit recommend``, ``losskit explain`` and ``losskit focal-stats`` (:mod:`losskit.guide`)."""

from __future__ import annotations

import argparse
from typing import Any

from losskit.guide import DECISION_TREE

__all__ = ["add_parser"]


def _recommend(args: argparse.Namespace) -> int:
    from losskit.guide import format_recommendation, format_tree, get_task, recommend

    if args.task is None:
        print(format_tree())
        return 0
    task = get_task(args.task)
    print(format_recommendation(task.name, recommend(task.name, args.situations or ())))
    return 0


def _explain(args: argparse.Namespace) -> int:
    from losskit.guide import explain

    print(explain(args.name))
    return 0


def _focal_stats(args: argparse.Namespace) -> int:
    from losskit.guide import focal_stats, format_focal_stats, sample_focal_mix

    p_hard, p_easy = sample_focal_mix(
        args.n_hard, args.n_easy, tuple(args.hard_range), tuple(args.easy_range), args.seed
    )
    print(format_focal_stats(focal_stats(p_hard, p_easy, args.gammas), args.n_hard, args.n_easy))
    return 0


def add_parser(sub: Any) -> None:
    """Register ``losskit recommend``, ``losskit explain`` and ``losskit focal-stats``."""
    tasks = ", ".join(task.name for task in DECISION_TREE)
    p = sub.add_parser(
        "recommend",
        help="which loss for my task? (the guide's decision tree)",
        description="Walk the loss guide's decision tree. Without --task, print the whole tree. "
        "Situation flags (e.g. --imbalanced) pick leaves under the task; without one, the "
        "task's usual case is shown.",
    )
    p.add_argument("--task", default=None, help=f"one of: {tasks}")
    situations = sorted({leaf.situation for task in DECISION_TREE for leaf in task.leaves})
    group = p.add_argument_group("situations (which apply depends on --task)")
    for situation in situations:
        questions = sorted(
            {
                f"{t.name}: {leaf.question}"
                for t in DECISION_TREE
                for leaf in t.leaves
                if leaf.situation == situation
            }
        )
        group.add_argument(
            f"--{situation}",
            dest="situations",
            action="append_const",
            const=situation,
            help="; ".join(questions),
        )
    p.set_defaults(func=_recommend, situations=None)

    p = sub.add_parser(
        "explain",
        help="formula, parameters, when to use and reference of a loss",
        description="Explain a registered loss from its docstring (see `losskit list`).",
    )
    p.add_argument("name", help="registry name, e.g. focal, proxy_anchor, giou")
    p.set_defaults(func=_explain)

    p = sub.add_parser(
        "focal-stats",
        help="effective sample count of focal loss on an easy/hard mix",
        description="N_eff = sum (1 - p_t)^gamma over a mix of hard samples (p_t uniform in "
        "--hard-range) and easy samples (p_t uniform in --easy-range), computed with "
        "losskit.functional.focal.",
    )
    p.add_argument("--n-hard", type=int, default=10, help="number of hard samples (10)")
    p.add_argument("--n-easy", type=int, default=990, help="number of easy samples (990)")
    p.add_argument(
        "--hard-range",
        type=float,
        nargs=2,
        default=(0.1, 0.5),
        metavar=("LOW", "HIGH"),
        help="p_t range of the hard samples (0.1 0.5)",
    )
    p.add_argument(
        "--easy-range",
        type=float,
        nargs=2,
        default=(0.9, 0.99),
        metavar=("LOW", "HIGH"),
        help="p_t range of the easy samples (0.9 0.99)",
    )
    p.add_argument(
        "--gammas",
        type=float,
        nargs="+",
        default=[0.0, 1.0, 2.0, 5.0],
        help="focusing parameters (0 1 2 5)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed of the mix (0)")
    p.set_defaults(func=_focal_stats)
