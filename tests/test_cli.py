"""The command line itself: every ``--help`` quick and torch-free, both flag spellings everywhere,
and the help text that documents what a command writes."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import subprocess
import sys

import pytest

from losskit.cli import build_parser, main


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[tuple]:
    """Every command path (``()``, ``("train",)``, ``("plot", "focal")``, …) under ``parser``."""
    found = [path]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found += _commands(child, (*path, name))
    return found


def _parser_of(path: tuple[str, ...]) -> argparse.ArgumentParser:
    parser = build_parser()
    for name in path:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[name]
    return parser


COMMANDS = _commands(build_parser())

_HELP_PROBE = """
import json, sys, time
started = time.perf_counter()
from losskit.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exit:
    code = exit.code
heavy = ("torch", "numpy", "pydantic", "yaml", "matplotlib", "sklearn")
heavy = [m for m in heavy if m in sys.modules]
print(json.dumps({"code": code, "seconds": time.perf_counter() - started, "heavy": heavy}))
"""


def test_every_command_is_listed():
    names = {" ".join(path) for path in COMMANDS}
    assert {"train", "evaluate", "predict", "embed", "export", "list", "explain"} <= names
    assert {"recommend", "focal-stats", "plot", "plot focal", "plot embeddings"} <= names


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "losskit")
def test_help_of_every_command_is_quick_and_loads_no_torch(path):
    out = subprocess.run(
        [sys.executable, "-c", _HELP_PROBE, *path, "--help"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    probe = json.loads(out.stdout.splitlines()[-1])
    assert probe["code"] == 0, out.stderr
    assert probe["heavy"] == []
    assert probe["seconds"] < 3.0  # generous: about 0.1 s on an idle machine


def test_train_help_lists_every_config_key_as_pydantic_sees_it():
    from losskit.train.cli import config_keys
    from losskit.train.config import TrainConfig

    fields = TrainConfig.model_fields
    assert [key[0] for key in config_keys()] == list(fields)
    for name, is_bool, default, description in config_keys():
        field = fields[name]
        assert (is_bool, default) == (field.annotation is bool, field.default), name
        assert description == " ".join(field.description.split()), name


def _long_flags(parser: argparse.ArgumentParser) -> list[list[str]]:
    with contextlib.redirect_stdout(io.StringIO()), pytest.raises(SystemExit):
        parser.parse_known_args(["--help"])  # the spellings are added when a parser parses
    return [[s for s in a.option_strings if s.startswith("--")] for a in parser._actions]


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "losskit")
def test_every_multi_word_flag_has_both_spellings(path):
    for flags in _long_flags(_parser_of(path)):
        for flag in flags:
            body = flag[2:]
            if body.startswith("no-") and any(f == f"--{body[3:]}" for f in flags):
                body = body[3:]  # a boolean flag's negation: --no-x_y / --no-x-y only
                flag = f"--no-{body}"
            for spelling in (body.replace("_", "-"), body.replace("-", "_")):
                expected = flag[: len(flag) - len(body)] + spelling
                assert expected in flags, (path, flags)


@pytest.mark.parametrize(
    ("argv", "dest", "value"),
    [
        (["plot", "embeddings", "RUN", "--max{}points", "7"], "max_points", 7),
        (["plot", "landscape", "--train{}steps", "3"], "train_steps", 3),
        (["plot", "embeddings", "RUN", "--no{}normalize"], "normalize", False),
        (["focal-stats", "--n{}hard", "3"], "n_hard", 3),
        (["predict", "--run", "R", "--input", "X", "--output", "O", "--all{}scores"],
         "all_scores", True),
        (["train", "--lambda{}combined", "0.7"], "lambda_combined", "0.7"),
        (["train", "--list{}configs"], "list_configs", True),
        (["train", "--no-class{}weighted"], "class_weighted", False),
    ],
)  # fmt: skip
def test_dash_and_underscore_spellings_parse_alike(argv, dest, value):
    for separator in ("-", "_"):
        args = build_parser().parse_args([a.format(separator) for a in argv])
        assert getattr(args, dest) == value, separator


def test_an_abbreviation_of_one_flag_is_not_ambiguous_between_its_spellings(capsys):
    args = build_parser().parse_args(["plot", "embeddings", "RUN", "--max", "7"])
    assert args.max_points == 7
    with pytest.raises(SystemExit):
        build_parser().parse_args(["focal-stats", "--n", "3"])  # --n-hard or --n-easy
    assert "ambiguous option: --n could match --n-hard, --n-easy" in capsys.readouterr().err


def test_a_boolean_negation_keeps_its_dash(capsys):
    with pytest.raises(SystemExit) as exit:
        build_parser().parse_args(["train", "--no_class_weighted"])  # would read as --class…
    assert exit.value.code == 2
    assert "unknown flag --no_class_weighted" in capsys.readouterr().err


def test_predict_help_documents_the_score_of_each_loss_type(capsys):
    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    text = capsys.readouterr().out
    rows = {line.split()[0].rstrip(","): line for line in text.splitlines() if line[2:3].isalpha()}
    assert "score_<class>" in text
    assert "logit" in rows["CE"] and "not a probability" in rows["CE"]
    assert "cos(features, proxy)" in rows["proxy"]
    assert "λ·logit + (1−λ)·cos(features, proxy)" in rows["combined"]
    assert "lambda_combined" in text
