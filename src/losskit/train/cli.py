"""``losskit train | evaluate | predict``.

Every :class:`~losskit.train.config.TrainConfig` key is a ``train`` flag, spelled with
underscores or dashes (``--lambda_combined 0.7`` or ``--lambda-combined 0.7``); flags override
``--config FILE.yaml``, which overrides the defaults. Values are validated by the config, so a
flag and a YAML key give the same error.
"""

from __future__ import annotations

import argparse
import ast
import csv
import io
import sys
from pathlib import Path
from typing import Any

from losskit._plain_checks import did_you_mean
from losskit.errors import Interrupted

__all__ = ["add_parser"]

_NONE = ("none", "null")


def config_keys() -> list[tuple[str, bool, Any, str]]:
    """``(name, is_bool, default, description)`` of every ``TrainConfig`` key, in order.

    Read from the class's source (``name: type = default`` and the docstring under it) rather
    than from pydantic, so ``losskit train --help`` imports neither pydantic nor torch; a test
    compares the result with ``TrainConfig.model_fields``.
    """
    tree = ast.parse(Path(__file__).with_name("config.py").read_text(encoding="utf-8"))
    body = next(
        n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "TrainConfig"
    ).body
    keys = []
    for stmt, after in zip(body, [*body[1:], None]):
        if (
            isinstance(stmt, ast.AnnAssign)
            and isinstance(stmt.target, ast.Name)
            and stmt.value is not None
        ):
            doc = ""
            if isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant):
                doc = str(after.value.value)
            is_bool = ast.unparse(stmt.annotation) == "bool"
            keys.append(
                (stmt.target.id, is_bool, ast.literal_eval(stmt.value), " ".join(doc.split()))
            )
    return keys


def _config_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("config keys (override --config)")
    for name, is_bool, default, description in config_keys():
        text = description if "(default:" in description else f"{description} (default: {default})"
        kind: dict[str, Any] = (
            {"action": argparse.BooleanOptionalAction} if is_bool else {"metavar": name.upper()}
        )
        group.add_argument(f"--{name}", dest=name, default=argparse.SUPPRESS, help=text, **kind)


def _suggest_unknown(parser: argparse.ArgumentParser) -> None:
    """Make unknown ``train`` flags an error naming the closest valid flag."""
    parse_known_args = parser.parse_known_args

    def suggestion(flag: str) -> str:
        known = [s[2:] for a in parser._actions for s in a.option_strings if s.startswith("--")]
        stem = flag.split("=", 1)[0].lstrip("-")
        alike = [k for k in known if k[:3] == stem[:3]]  # same start first: --lamda -> --lambda…
        return did_you_mean(stem, alike, form="--{}") or did_you_mean(stem, known, form="--{}")

    def strict(args: Any = None, namespace: Any = None) -> Any:
        ns, extra = parse_known_args(args, namespace)
        for arg in extra:
            if arg.startswith("--"):
                parser.error(f"unknown flag {arg}{suggestion(arg)}")
        return ns, extra

    parser.parse_known_args = strict  # type: ignore[method-assign]


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    from losskit.train.config import TrainConfig

    out: dict[str, Any] = {}
    for name in TrainConfig.model_fields:
        if name in vars(args):
            value = getattr(args, name)
            out[name] = None if isinstance(value, str) and value.lower() in _NONE else value
    return out


def _list_configs() -> int:
    """``--list-configs``: each shipped example with its first comment line."""
    from losskit.train.config import example_configs

    examples = example_configs()
    width = max(map(len, examples), default=0)
    for name, path in examples.items():
        first = path.read_text(encoding="utf-8").splitlines()[0].lstrip("# ")
        print(f"{name:<{width}}  {first}")
    print(f"\n(in {next(iter(examples.values())).parent}; use: losskit train --config NAME)")
    return 0


def _train(args: argparse.Namespace) -> int:
    if args.list_configs:
        return _list_configs()
    from losskit.train.assembly import run_folder
    from losskit.train.config import load_config
    from losskit.train.loop import train

    base = args.config
    if args.resume is not None:
        run = run_folder("--resume", args.resume)
        if base is None:
            base = run / "config.yaml"
        overrides = {"output_dir": str(run), **_overrides(args)}
    else:
        overrides = _overrides(args)
    config = load_config(base, overrides).with_output_dir()
    try:
        train(config, resume=args.resume is not None)
    except KeyboardInterrupt:
        raise Interrupted(
            f"interrupted; continue with: losskit train --resume {config.output_dir}"
        ) from None
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from losskit.train import assembly
    from losskit.train.runtime import Runtime
    from losskit.train.tracking import summary_table

    run = assembly.load_run(args.run, args.checkpoint, _device(args.device))
    runtime = Runtime(model_device(run.model))
    splits = assembly.build_data(run.config)
    _, test = assembly.eval_splits(splits, run.config, runtime)
    result = assembly.evaluate_split(
        run.model, run.objective, test, protocol=splits.protocol, runtime=runtime,
        seed=run.config.seed,
    )  # fmt: skip
    print(summary_table(result.metrics, title=f"{args.run} ({args.checkpoint}.pt, test set)"))
    if result.report:
        from sklearn.metrics import classification_report

        print(
            classification_report(
                result.labels.numpy(),
                result.predictions.numpy(),  # type: ignore[union-attr]
                labels=list(range(len(test.class_names))),
                target_names=[str(c) for c in test.class_names],
                zero_division=0,
                digits=4,
            )
        )
    return 0


def _predict(args: argparse.Namespace) -> int:
    import torch

    from losskit._checks import fail
    from losskit._files import atomic_write
    from losskit.train.assembly import load_run
    from losskit.train.export import read_samples

    output = Path(args.output)
    if not output.parent.is_dir() or output.is_dir():
        what = "is a folder" if output.is_dir() else f"no folder {output.parent}"
        fail("predict", "--output", "to be a file in an existing folder", f"{output} ({what})")

    device = _device(args.device)
    _, model, objective, info = load_run(args.run, args.checkpoint, device)
    x = read_samples("predict", args.input, info, normalized=args.normalized)
    names = info["class_names"]
    rows = []
    with torch.no_grad():
        for start in range(0, len(x), 1024):
            features, logits = model(x[start : start + 1024].to(device))
            scores = objective.scores(features, logits).cpu()
            top, pred = scores.max(dim=1)
            for i, (p, s, row) in enumerate(zip(pred.tolist(), top.tolist(), scores.tolist())):
                extra = [f"{v:.6g}" for v in row] if args.all_scores else []
                rows.append([start + i, p, names[p], f"{s:.6g}", *extra])
    buf = io.StringIO()
    writer = csv.writer(buf)
    header = ["index", "prediction", "class_name", "score"]
    writer.writerow(header + ([f"score_{n}" for n in names] if args.all_scores else []))
    writer.writerows(rows)
    data = buf.getvalue().encode("utf-8")
    atomic_write(args.output, lambda f: f.write(data))
    if info.get("protocol") == "retrieval":
        print("note: a retrieval run predicts among its training classes only", file=sys.stderr)
    print(f"wrote {len(rows)} predictions to {args.output}")
    return 0


def _device(name: str) -> str:
    """``--device``: ``auto`` resolved; a device torch does not know, or CUDA without a GPU,
    is refused here (``torch.load`` would report it as a damaged checkpoint)."""
    import torch

    from losskit._checks import fail

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        kind = torch.device(name).type
    except RuntimeError:
        kind = None
    if kind is None or (kind == "cuda" and not torch.cuda.is_available()):
        why = " (CUDA is not available)" if kind == "cuda" else ""
        fail(
            "device", "--device", "to be 'auto', 'cpu', 'cuda' or 'cuda:<index>'", f"{name!r}{why}"
        )
    return name


def model_device(model: Any) -> Any:
    """The device of a model's first parameter."""
    return next(model.parameters()).device


def _on_first_parse(parser: argparse.ArgumentParser) -> None:
    """Add the config-key flags when ``train`` parses (its ``--help`` too), not before.

    Listing the flags reads the config's source, which ``losskit --help`` need not wait for.
    """
    parse_known_args = parser.parse_known_args

    def parse(args: Any = None, namespace: Any = None) -> Any:
        parser.parse_known_args = parse_known_args  # type: ignore[method-assign]
        _config_flags(parser)
        _suggest_unknown(parser)
        return parser.parse_known_args(args, namespace)

    parser.parse_known_args = parse  # type: ignore[method-assign]


_COMMANDS = {
    "train": "train an embedding network with CE / proxy / combined / focal losses",
    "evaluate": "re-evaluate a run's selected model (best.pt, chosen on validation) on its "
    "test set",
    "predict": "predict classes for samples in a .npy file",
}


_PREDICT = """\
Predict the class of each sample of --input with a run's model and write a CSV:
index, prediction, class_name, score (and score_<class> for every class with
--all-scores). The prediction is the class of the highest score; a score is, by
the run's loss_type:
  CE, focal  the class's logit (the classifier head's raw output, not a probability)
  proxy      cos(features, proxy): the cosine similarity to the class's proxy, in
             [-1, 1] (with several proxies per class, the most similar one)
  combined   λ·logit + (1−λ)·cos(features, proxy), λ = the run's lambda_combined,
             the weights of the loss
"""


def add_parser(sub: Any) -> None:
    """Register ``losskit train``, ``losskit evaluate`` and ``losskit predict``."""
    from losskit._extras import add_missing_extra_parser, missing_modules

    if missing_modules("train"):
        for name, text in _COMMANDS.items():
            add_missing_extra_parser(sub, name, text, "train")
        return
    p = sub.add_parser(
        "train",
        help=_COMMANDS["train"],
        description="Train with a validated config: defaults < --config YAML < flags. "
        "With no argument: the digits data set and the combined loss, small enough for a CPU "
        "(each epoch line shows its time).",
        allow_abbrev=False,
        usage="losskit train [-h] [--list-configs] [--config FILE.yaml] [--resume RUN] "
        "[--KEY VALUE ...]",
    )
    p.add_argument(
        "--config",
        default=None,
        metavar="FILE.yaml",
        help="a YAML file of config keys, or the name of a shipped example (e.g. combined_07)",
    )
    p.add_argument(
        "--list-configs",
        dest="list_configs",
        action="store_true",
        help="list the example configs shipped with losskit and exit",
    )
    p.add_argument(
        "--resume",
        default=None,
        metavar="RUN",
        help="continue the run in folder RUN from checkpoints/last.pt",
    )
    _on_first_parse(p)
    p.set_defaults(func=_train)

    e = sub.add_parser("evaluate", help=_COMMANDS["evaluate"])
    e.add_argument("--run", required=True, help="the run folder")
    e.add_argument("--checkpoint", choices=("best", "last"), default="best")
    e.add_argument("--device", default="auto")
    e.set_defaults(func=_evaluate)

    q = sub.add_parser(
        "predict",
        help=_COMMANDS["predict"],
        description=_PREDICT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    q.add_argument("--run", required=True, help="the run folder")
    q.add_argument("--input", required=True, help="X.npy: (N, *sample_shape) raw samples")
    q.add_argument("--output", required=True, help="the CSV file to write")
    q.add_argument("--checkpoint", choices=("best", "last"), default="best")
    q.add_argument(
        "--normalized",
        action="store_true",
        help="the input is already standardised (skip the run's input statistics)",
    )
    q.add_argument(
        "--all-scores",
        dest="all_scores",
        action="store_true",
        help="also write every class's score",
    )
    q.add_argument("--device", default="auto")
    q.set_defaults(func=_predict)
