"""Bad-input probe: a matrix of wrong inputs over the library and the command line, graded.

Each case is one wrong input: a library call (run in-process) or a ``losskit`` command line (run
through :func:`losskit.cli.main`, stderr captured). Each is graded automatically:

- **clear**: a ``ValueError`` / ``TypeError`` / ``FileNotFoundError`` (library) or exactly one
  stderr line ``losskit <cmd>: error: ...`` with exit code 2 (CLI), whose message names the
  argument, key, flag or file of the case, says what was expected, and shows what came;
- **unclear**: the right kind of failure, but the message lacks the name or the value found (or
  the CLI exits 1 instead of 2, or prints more than one line without a traceback);
- **wrong**: a traceback, another exception type, silent acceptance (a value returned or exit 0),
  a NaN result, or a hang (more than ``--timeout`` seconds).

A case marked ``accepted`` is an input that is legitimate: it must run and return a finite value
(else it is wrong); its reason is printed. The cases of ``tests/test_bad_input.py`` are included
(``--no-suite`` leaves them out), graded the same way.

Run: ``python benchmarks/bad_input_probe.py`` (about a minute on one CPU core: it trains one tiny
run for the ``predict`` / ``embed`` / ``evaluate`` cases). ``--verbose`` prints every case.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import re
import signal
import sys
import tempfile
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

import losskit
import losskit.functional as LF
from losskit.cli import main

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LIBRARY_ERRORS = (ValueError, TypeError, FileNotFoundError)
# What counts as saying what was expected: the project's "expected ..." or an equivalent form
# (argparse's "invalid int value" / "choose from", "could not write PATH: why", "no checkpoint at
# PATH", "PATH is not a losskit checkpoint").
EXPECTED = re.compile(
    r"expect|must|should|one of|did you mean|choose from|invalid \w+ value|could not \w+ |"
    r"\bno [\w.]+( \w+)? at\b|is not an? |unknown",
    re.IGNORECASE,
)
FOUND = re.compile(
    r"\bgot\b|found|no such|no file|no folder|is a (file|folder)|invalid|unknown|not a|damaged|"
    r"\bno [\w.]+( \w+)? at\b",
    re.IGNORECASE,
)


@dataclass
class Case:
    """One wrong input; ``call`` is a thunk (library) or ``tmp -> argv`` (CLI)."""

    family: str
    name: str
    call: Callable[..., Any]
    names: str  # regex: the argument / key / flag / file the message must name
    got: str | None = None  # regex: the value found (default: any "got ..." / "found ...")
    cli: bool = False
    accepted: str | None = None  # a legitimate input: why
    nan_ok: bool = False  # an accepted input whose NaN propagates to the result


def lib(family: str, name: str, call: Callable[[], Any], names: str, got: str | None = None):
    return Case(family, name, call, names, got)


def cli(family: str, name: str, argv: Callable[[Path], list[str]], names: str, got=None):
    return Case(family, name, argv, names, got, cli=True)


def accept(family: str, name: str, call: Callable[..., Any], reason: str, **kw: Any):
    return Case(family, name, call, "", None, accepted=reason, **kw)


t = torch.tensor
x = torch.randn


def _l(*v: int) -> torch.Tensor:
    return t(v, dtype=torch.long)


def _seg(c: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    return x(1, c, 4, 4), torch.randint(0, c, (1, 4, 4))


def _boxes(n: int = 2) -> torch.Tensor:
    lo = torch.rand(n, 2)
    return torch.cat([lo, lo + 1 + torch.rand(n, 2)], dim=1)


def _meta(*shape: int) -> torch.Tensor:
    return torch.empty(*shape, device="meta")


def _p(n: int = 4, d: int = 3) -> torch.Tensor:
    return x(n, d)


# --------------------------------------------------------------------------------------------
# Library cases
# --------------------------------------------------------------------------------------------

REGRESSION = [
    lib(
        "regression",
        "huber delta nan",
        lambda: LF.huber(x(2), x(2), delta=math.nan),
        "`delta`",
        "nan",
    ),
    lib("regression", "huber delta str", lambda: LF.huber(x(2), x(2), delta="1"), "`delta`", "str"),
    lib(
        "regression",
        "smooth_l1 beta inf",
        lambda: LF.smooth_l1(x(2), x(2), beta=math.inf),
        "`beta`",
        "inf",
    ),
    lib(
        "regression",
        "asym over nan",
        lambda: LF.asymmetric_mse(x(2), x(2), over_penalty=math.nan),
        "`over_penalty`",
        "nan",
    ),
    lib(
        "regression",
        "asym over bool",
        lambda: LF.asymmetric_mse(x(2), x(2), over_penalty=True),
        "`over_penalty`",
        "bool",
    ),
    lib("regression", "cauchy scale 0", lambda: LF.cauchy(x(2), x(2), scale=0.0), "`scale`", "0"),
    lib(
        "regression", "cauchy scale -1", lambda: LF.cauchy(x(2), x(2), scale=-1.0), "`scale`", "-1"
    ),
    lib(
        "regression",
        "charbonnier scale nan",
        lambda: LF.charbonnier(x(2), x(2), scale=math.nan),
        "`scale`",
        "nan",
    ),
    lib(
        "regression",
        "welsch scale bool",
        lambda: LF.welsch(x(2), x(2), scale=True),
        "`scale`",
        "bool",
    ),
    lib(
        "regression",
        "robust alpha nan",
        lambda: LF.robust(x(2), x(2), alpha=math.nan),
        "`alpha`",
        "nan",
    ),
    lib("regression", "robust scale 0", lambda: LF.robust(x(2), x(2), scale=0.0), "`scale`", "0"),
    lib(
        "regression",
        "quantile 1.5",
        lambda: LF.quantile(x(4, 1), x(4), [1.5]),
        "`quantiles`",
        "1.5",
    ),
    lib("regression", "quantile empty", lambda: LF.quantile(x(4, 0), x(4), []), "`quantiles`"),
    lib(
        "regression",
        "quantile str",
        lambda: LF.quantile(x(4, 1), x(4), "0.5"),
        "`quantiles`",
        "'0.5'|str",
    ),
    lib(
        "regression",
        "quantile nan",
        lambda: LF.quantile(x(4, 1), x(4), [math.nan]),
        "`quantiles`",
        "nan",
    ),
    lib(
        "regression",
        "mse reduction None",
        lambda: LF.mse(x(2), x(2), reduction=None),
        "`reduction`",
        "None",
    ),
    lib(
        "regression", "mse reduction 1", lambda: LF.mse(x(2), x(2), reduction=1), "`reduction`", "1"
    ),
    lib(
        "regression",
        "mse complex",
        lambda: LF.mse(x(2, dtype=torch.cfloat), x(2, dtype=torch.cfloat)),
        "`input`",
        "complex",
    ),
    lib(
        "regression",
        "log_cosh int target",
        lambda: LF.log_cosh(x(2), _l(1, 2)),
        "`target`",
        "int64",
    ),
    lib("regression", "mae device", lambda: LF.mae(x(2), _meta(2)), "`target`", "meta"),
    lib("regression", "mse target list", lambda: LF.mse(x(2), [1.0, 2.0]), "`target`", "list"),
]

CLASSIFICATION = [
    lib(
        "classification",
        "ce ignore_index float",
        lambda: LF.cross_entropy(x(2, 3), _l(0, 1), ignore_index=1.5),
        "`ignore_index`",
        "float",
    ),
    lib(
        "classification",
        "ce ignore_index bool",
        lambda: LF.cross_entropy(x(2, 3), _l(0, 1), ignore_index=True),
        "`ignore_index`",
        "bool",
    ),
    lib(
        "classification",
        "ce ignore_index str",
        lambda: LF.cross_entropy(x(2, 3), _l(0, 1), ignore_index="x"),
        "`ignore_index`",
        "str",
    ),
    lib(
        "classification",
        "ce smoothing nan",
        lambda: LF.cross_entropy(x(2, 3), _l(0, 1), label_smoothing=math.nan),
        "`label_smoothing`",
        "nan",
    ),
    lib(
        "classification",
        "ce smoothing neg",
        lambda: LF.cross_entropy(x(2, 3), _l(0, 1), label_smoothing=-0.1),
        "`label_smoothing`",
        "-0.1",
    ),
    lib(
        "classification",
        "ce smoothing bool",
        lambda: LF.cross_entropy(x(2, 3), _l(0, 1), label_smoothing=True),
        "`label_smoothing`",
        "bool",
    ),
    lib(
        "classification",
        "ce weight int",
        lambda: LF.cross_entropy(x(2, 3), _l(0, 1), weight=_l(1, 1, 1)),
        "`weight`",
        "int64",
    ),
    lib(
        "classification",
        "ce weight list",
        lambda: LF.cross_entropy(x(2, 3), _l(0, 1), weight=[1.0, 1.0, 1.0]),
        "`weight`",
        "list",
    ),
    lib(
        "classification",
        "ce weight nan",
        lambda: LF.cross_entropy(x(2, 3), _l(0, 1), weight=t([1.0, math.nan, 1.0])),
        "`weight`",
        "nan",
    ),
    lib(
        "classification",
        "ce int logits",
        lambda: LF.cross_entropy(_l(1, 2).view(1, 2), _l(0)),
        "`logits`",
        "int64",
    ),
    lib(
        "classification",
        "ce targets len",
        lambda: LF.cross_entropy(x(3, 3), _l(0, 1)),
        "`targets`",
        r"\(2,\)",
    ),
    lib(
        "classification",
        "ce probs shape",
        lambda: LF.cross_entropy(x(2, 3), x(2, 4).softmax(1)),
        "`targets`",
        r"\(2, 4\)",
    ),
    lib(
        "classification",
        "ce ignore out of range label",
        lambda: LF.cross_entropy(x(2, 3), _l(0, 7), ignore_index=5),
        "`targets`",
        "7",
    ),
    accept(
        "classification",
        "ce empty batch",
        lambda: LF.cross_entropy(x(0, 3), _l()),
        "an empty batch is legitimate: 0 connected to the graph",
    ),
    accept(
        "classification",
        "ce all ignored",
        lambda: LF.cross_entropy(x(2, 3), _l(-100, -100)),
        "every target ignored: 0 connected to the graph",
    ),
    lib(
        "classification",
        "focal gamma nan",
        lambda: LF.focal(x(2, 3), _l(0, 1), gamma=math.nan),
        "`gamma`",
        "nan",
    ),
    lib(
        "classification",
        "focal gamma bool",
        lambda: LF.focal(x(2, 3), _l(0, 1), gamma=True),
        "`gamma`",
        "bool",
    ),
    lib(
        "classification",
        "focal alpha str",
        lambda: LF.focal(x(2, 3), _l(0, 1), alpha="0.25"),
        "`alpha`",
        "str",
    ),
    lib(
        "classification",
        "focal alpha nan tensor",
        lambda: LF.focal(x(2, 3), _l(0, 1), alpha=t([1.0, math.nan, 1.0])),
        "`alpha`",
        "nan",
    ),
    lib(
        "classification",
        "focal ignore_index float",
        lambda: LF.focal(x(2, 3), _l(0, 1), ignore_index=0.5),
        "`ignore_index`",
        "float",
    ),
    lib("classification", "focal label 3", lambda: LF.focal(x(2, 3), _l(0, 3)), "`targets`", "3"),
    lib(
        "classification",
        "bce smoothing 1.5",
        lambda: LF.binary_cross_entropy(x(2), t([1.0, 0.0]), label_smoothing=1.5),
        "`label_smoothing`",
        "1.5",
    ),
    lib(
        "classification",
        "bce pos_weight nan",
        lambda: LF.binary_cross_entropy(x(2, 2), torch.ones(2, 2), pos_weight=t([math.nan, 1.0])),
        "`pos_weight`",
        "nan",
    ),
    lib(
        "classification",
        "bce targets shape",
        lambda: LF.binary_cross_entropy(x(2, 3), torch.ones(2, 2)),
        "`targets`",
        r"\(2, 2\)",
    ),
    lib(
        "classification",
        "bce logits list",
        lambda: LF.binary_cross_entropy([0.0], t([1.0])),
        "`logits`",
        "list",
    ),
    lib(
        "classification",
        "bce pos_weight float",
        lambda: LF.binary_cross_entropy(x(2), t([1.0, 0.0]), pos_weight=2.0),
        "`pos_weight`",
        "float",
    ),
    lib(
        "classification",
        "binary_focal gamma neg",
        lambda: LF.binary_focal(x(2), t([1.0, 0.0]), gamma=-1.0),
        "`gamma`",
        "-1",
    ),
    lib(
        "classification",
        "binary_focal alpha nan",
        lambda: LF.binary_focal(x(2), t([1.0, 0.0]), alpha=math.nan),
        "`alpha`",
        "nan",
    ),
    lib(
        "classification",
        "asl clip neg",
        lambda: LF.asymmetric_loss(x(2, 3), torch.ones(2, 3), clip=-0.1),
        "`clip`",
        "-0.1",
    ),
    lib(
        "classification",
        "asl clip 1.5",
        lambda: LF.asymmetric_loss(x(2, 3), torch.ones(2, 3), clip=1.5),
        "`clip`",
        "1.5",
    ),
    lib(
        "classification",
        "asl gamma_neg nan",
        lambda: LF.asymmetric_loss(x(2, 3), torch.ones(2, 3), gamma_neg=math.nan),
        "`gamma_neg`",
        "nan",
    ),
    lib(
        "classification",
        "asl targets 2",
        lambda: LF.asymmetric_loss(x(2, 3), torch.full((2, 3), 2.0)),
        "`targets`",
        "2",
    ),
    lib(
        "classification",
        "ls epsilon nan",
        lambda: LF.label_smoothing_cross_entropy(x(2, 3), _l(0, 1), epsilon=math.nan),
        "`epsilon`",
        "nan",
    ),
    lib(
        "classification",
        "ls epsilon bool",
        lambda: LF.label_smoothing_cross_entropy(x(2, 3), _l(0, 1), epsilon=True),
        "`epsilon`",
        "bool",
    ),
    lib(
        "classification",
        "ls ignore_index str",
        lambda: LF.label_smoothing_cross_entropy(x(2, 3), _l(0, 1), ignore_index="a"),
        "`ignore_index`",
        "str",
    ),
    lib(
        "classification",
        "jsd_ce alpha neg",
        lambda: LF.jsd_cross_entropy([x(2, 3), x(2, 3)], _l(0, 1), alpha=-1.0),
        "`alpha`",
        "-1",
    ),
    lib(
        "classification",
        "jsd_ce no views",
        lambda: LF.jsd_cross_entropy([], _l(0, 1)),
        "`logits_per_view`",
    ),
    lib(
        "classification",
        "jsd_ce views shape",
        lambda: LF.jsd_cross_entropy([x(2, 3), x(2, 4)], _l(0, 1)),
        "`logits_per_view`",
        r"\(2, 4\)",
    ),
    lib(
        "classification",
        "class_weights 0",
        lambda: LF.class_weights(_l(0, 1), 0),
        "`num_classes`",
        "0",
    ),
    lib(
        "classification",
        "class_weights bool",
        lambda: LF.class_weights(_l(0, 1), True),
        "`num_classes`",
        "bool",
    ),
    lib(
        "classification",
        "class_weights label 2",
        lambda: LF.class_weights(_l(0, 2), 2),
        "`labels`",
        "2",
    ),
    lib(
        "classification",
        "kl temperature 0",
        lambda: LF.kl_divergence(x(2, 3), x(2, 3), temperature=0.0),
        "`temperature`",
        "0",
    ),
    lib(
        "classification",
        "kl direction",
        lambda: LF.kl_divergence(x(2, 3), x(2, 3), direction="back"),
        "`direction`",
        "back",
    ),
    lib(
        "classification",
        "kl shape",
        lambda: LF.kl_divergence(x(2, 3), x(2, 4)),
        "`teacher_logits`",
        r"\(2, 4\)",
    ),
    lib(
        "classification",
        "kl targets label",
        lambda: LF.kl_divergence(x(2, 3), x(2, 3), targets=_l(0, 5)),
        "`targets`",
        "5",
    ),
    lib(
        "classification",
        "jsd beta 1.5",
        lambda: LF.jsd(x(2, 3), x(2, 3), beta=1.5),
        "`beta`",
        "1.5",
    ),
    lib(
        "classification",
        "jsd temperature neg",
        lambda: LF.jsd(x(2, 3), x(2, 3), temperature=-1.0),
        "`temperature`",
        "-1",
    ),
]


def _empty_emb() -> tuple[torch.Tensor, torch.Tensor]:
    return x(0, 3, requires_grad=True), _l()


METRIC = [
    *[
        accept(
            "metric",
            f"online_triplet empty {m}",
            lambda m=m: LF.online_triplet(*_empty_emb(), mining=m),
            "an empty batch is legitimate: 0 connected to the graph",
        )
        for m in ("batch_hard", "semi_hard", "batch_all")
    ],
    *[
        accept(
            "metric",
            f"multi_similarity empty {m}",
            lambda m=m: LF.multi_similarity(*_empty_emb(), mining=m),
            "an empty batch is legitimate: 0 connected to the graph",
        )
        for m in ("none", "multi_similarity")
    ],
    accept(
        "metric",
        "circle empty",
        lambda: LF.circle(*_empty_emb()),
        "an empty batch is legitimate: 0",
    ),
    accept(
        "metric",
        "supcon empty",
        lambda: LF.supcon(*_empty_emb()),
        "an empty batch is legitimate: 0",
    ),
    accept(
        "metric",
        "proxy_anchor empty",
        lambda: LF.proxy_anchor(*_empty_emb(), _p()),
        "an empty batch is legitimate: 0",
    ),
    accept(
        "metric",
        "arcface empty",
        lambda: LF.arcface(*_empty_emb(), _p()),
        "an empty batch is legitimate: 0",
    ),
    accept(
        "metric",
        "online_triplet one class",
        lambda: LF.online_triplet(x(4, 3), _l(0, 0, 0, 0)),
        "no negatives in the batch: no triplet, 0",
    ),
    lib(
        "metric",
        "online_triplet margin neg",
        lambda: LF.online_triplet(x(4, 3), _l(0, 0, 1, 1), margin=-1.0),
        "`margin`",
        "-1",
    ),
    lib(
        "metric",
        "online_triplet margin nan",
        lambda: LF.online_triplet(x(4, 3), _l(0, 0, 1, 1), margin=math.nan),
        "`margin`",
        "nan",
    ),
    lib(
        "metric",
        "online_triplet margin bool",
        lambda: LF.online_triplet(x(4, 3), _l(0, 0, 1, 1), margin=True),
        "`margin`",
        "bool",
    ),
    lib(
        "metric",
        "online_triplet 1-D",
        lambda: LF.online_triplet(x(4), _l(0, 0, 1, 1)),
        "`embeddings`",
        r"\(4,\)",
    ),
    lib(
        "metric",
        "online_triplet labels 2-D",
        lambda: LF.online_triplet(x(4, 3), _l(0, 0, 1, 1).view(2, 2)),
        "`labels`",
        r"\(2, 2\)",
    ),
    lib(
        "metric",
        "online_triplet squared str",
        lambda: LF.online_triplet(x(4, 3), _l(0, 0, 1, 1), squared="no"),
        "`squared`",
        "str",
    ),
    lib(
        "metric",
        "triplet margin nan",
        lambda: LF.triplet(x(2, 3), x(2, 3), x(2, 3), margin=math.nan),
        "`margin`",
        "nan",
    ),
    lib(
        "metric",
        "triplet p neg",
        lambda: LF.triplet(x(2, 3), x(2, 3), x(2, 3), p=-1.0),
        "`p`",
        "-1",
    ),
    lib(
        "metric",
        "triplet p str",
        lambda: LF.triplet(x(2, 3), x(2, 3), x(2, 3), p="2"),
        "`p`",
        "str",
    ),
    lib(
        "metric",
        "triplet int",
        lambda: LF.triplet(_l(1, 2).view(1, 2), x(1, 2), x(1, 2)),
        "`anchor`",
        "int64",
    ),
    lib(
        "metric",
        "contrastive margin nan",
        lambda: LF.contrastive(x(2, 3), x(2, 3), _l(1, 0), margin=math.nan),
        "`margin`",
        "nan",
    ),
    accept(
        "metric",
        "contrastive similar 0.5",
        lambda: LF.contrastive(x(2, 3), x(2, 3), t([0.5, 1.0])),
        "documented: floats in [0, 1] weigh the two terms",
    ),
    accept(
        "metric",
        "contrastive similar bool",
        lambda: LF.contrastive(x(2, 3), x(2, 3), t([True, False])),
        "a bool mask is the natural form of `similar`",
    ),
    lib(
        "metric",
        "ms mining",
        lambda: LF.multi_similarity(x(4, 3), _l(0, 0, 1, 1), mining="hard"),
        "`mining`",
        "hard",
    ),
    lib(
        "metric",
        "ms alpha 0",
        lambda: LF.multi_similarity(x(4, 3), _l(0, 0, 1, 1), alpha=0.0),
        "`alpha`",
        "0",
    ),
    lib(
        "metric",
        "ms base nan",
        lambda: LF.multi_similarity(x(4, 3), _l(0, 0, 1, 1), base=math.nan),
        "`base`",
        "nan",
    ),
    lib(
        "metric",
        "ms epsilon neg",
        lambda: LF.multi_similarity(x(4, 3), _l(0, 0, 1, 1), epsilon=-1.0),
        "`epsilon`",
        "-1",
    ),
    lib(
        "metric",
        "ms reference no labels",
        lambda: LF.multi_similarity(x(4, 3), _l(0, 0, 1, 1), reference=x(5, 3)),
        "`reference_labels`",
    ),
    lib(
        "metric",
        "circle gamma 0",
        lambda: LF.circle(x(4, 3), _l(0, 0, 1, 1), gamma=0.0),
        "`gamma`",
        "0",
    ),
    lib(
        "metric",
        "circle margin nan",
        lambda: LF.circle(x(4, 3), _l(0, 0, 1, 1), margin=math.nan),
        "`margin`",
        "nan",
    ),
    lib(
        "metric",
        "supcon temperature 0",
        lambda: LF.supcon(x(4, 3), _l(0, 0, 1, 1), temperature=0.0),
        "`temperature`",
        "0",
    ),
    lib(
        "metric",
        "supcon labels len",
        lambda: LF.supcon(x(4, 3), _l(0, 0, 1)),
        "`labels`",
        r"\(3,\)",
    ),
    lib(
        "metric",
        "info_nce negatives dim",
        lambda: LF.info_nce(x(2, 3), x(2, 3), x(5, 4)),
        "`negative_keys`",
        r"\(5, 4\)",
    ),
    lib(
        "metric",
        "info_nce temperature nan",
        lambda: LF.info_nce(x(2, 3), x(2, 3), temperature=math.nan),
        "`temperature`",
        "nan",
    ),
    lib(
        "metric",
        "info_nce temperature bool",
        lambda: LF.info_nce(x(2, 3), x(2, 3), temperature=True),
        "`temperature`",
        "bool",
    ),
    lib(
        "metric",
        "nt_xent temperature inf",
        lambda: LF.nt_xent(x(2, 3), x(2, 3), temperature=math.inf),
        "`temperature`",
        "inf",
    ),
    lib("metric", "nt_xent 1-D", lambda: LF.nt_xent(x(3), x(3)), "`z_i`", r"\(3,\)"),
    lib(
        "metric",
        "proxy_nca temperature 0",
        lambda: LF.proxy_nca(x(2, 3), _l(0, 1), _p(), temperature=0.0),
        "`temperature`",
        "0",
    ),
    lib(
        "metric",
        "proxy_nca label 9",
        lambda: LF.proxy_nca(x(2, 3), _l(0, 9), _p()),
        "`labels`",
        "9",
    ),
    lib(
        "metric",
        "arcface scale 0",
        lambda: LF.arcface(x(2, 3), _l(0, 1), _p(), scale=0.0),
        "`scale`",
        "0",
    ),
    lib(
        "metric",
        "arcface margin nan",
        lambda: LF.arcface(x(2, 3), _l(0, 1), _p(), margin=math.nan),
        "`margin`",
        "nan",
    ),
    lib(
        "metric", "arcface label -1", lambda: LF.arcface(x(2, 3), _l(0, -1), _p()), "`labels`", "-1"
    ),
    lib(
        "metric",
        "arcface chunk 0",
        lambda: LF.arcface(x(2, 3), _l(0, 1), _p(), chunk_size=0),
        "`chunk_size`",
        "0",
    ),
    lib(
        "metric",
        "cosface scale neg",
        lambda: LF.cosface(x(2, 3), _l(0, 1), _p(), scale=-1.0),
        "`scale`",
        "-1",
    ),
    lib(
        "metric",
        "subcenter sub_centers 0",
        lambda: LF.subcenter_arcface(x(2, 3), _l(0, 1), _p(6), sub_centers=0),
        "`sub_centers`",
        "0",
    ),
    lib(
        "metric",
        "subcenter proxies rows",
        lambda: LF.subcenter_arcface(x(2, 3), _l(0, 1), _p(7), sub_centers=3),
        "`proxies`",
        "7",
    ),
    lib(
        "metric",
        "multi_proxy pooling",
        lambda: LF.multi_proxy_anchor(x(2, 3), _l(0, 1), _p(6), pooling="max2"),
        "`pooling`",
        "max2",
    ),
    lib(
        "metric",
        "multi_proxy temperature 0",
        lambda: LF.multi_proxy_anchor(x(2, 3), _l(0, 1), _p(6), temperature=0.0),
        "`temperature`",
        "0",
    ),
    lib(
        "metric",
        "proxy_anchor delta nan",
        lambda: LF.proxy_anchor(x(2, 3), _l(0, 1), _p(), delta=math.nan),
        "`delta`",
        "nan",
    ),
    lib(
        "metric",
        "proxy_anchor delta bool",
        lambda: LF.proxy_anchor(x(2, 3), _l(0, 1), _p(), delta=True),
        "`delta`",
        "bool",
    ),
    lib(
        "metric",
        "proxy_anchor chunk -1",
        lambda: LF.proxy_anchor(x(2, 3), _l(0, 1), _p(), chunk_size=-1),
        "`chunk_size`",
        "-1",
    ),
    lib(
        "metric",
        "proxy_anchor labels float",
        lambda: LF.proxy_anchor(x(2, 3), t([0.0, 1.0]), _p()),
        "`labels`",
        "float",
    ),
    lib(
        "metric",
        "proxy_anchor int emb",
        lambda: LF.proxy_anchor(_l(1, 2, 3).view(1, 3), _l(0), _p()),
        "`embeddings`",
        "int64",
    ),
    lib(
        "metric",
        "proxy_anchor device",
        lambda: LF.proxy_anchor(x(2, 3), _l(0, 1), _meta(4, 3)),
        "`proxies`",
        "meta",
    ),
    lib(
        "metric",
        "focal_proxy neg_gamma nan",
        lambda: LF.focal_proxy_anchor(x(2, 3), _l(0, 1), _p(), neg_gamma=math.nan),
        "`neg_gamma`",
        "nan",
    ),
    lib(
        "metric",
        "ArcFaceLoss classes bool",
        lambda: losskit.ArcFaceLoss(True, 3),
        "`num_classes`",
        "bool",
    ),
    lib(
        "metric",
        "ProxyAnchorLoss classes float",
        lambda: losskit.ProxyAnchorLoss(2.5, 3),
        "`num_classes`",
        "float",
    ),
    lib(
        "metric",
        "ProxyNCALoss temperature 0",
        lambda: losskit.ProxyNCALoss(3, 4, temperature=0.0),
        "`temperature`",
        "0",
    ),
    lib(
        "metric",
        "CrossBatchMemory size 0",
        lambda: losskit.CrossBatchMemory(losskit.SupConLoss(), 3, memory_size=0),
        "`memory_size`",
        "0",
    ),
    lib(
        "metric", "CrossBatchMemory loss 3", lambda: losskit.CrossBatchMemory(3, 3), "`loss`", "int"
    ),
    lib("metric", "pairwise_euclidean 1-D", lambda: LF.pairwise_euclidean(x(3)), "`x`", r"\(3,\)"),
    lib(
        "metric",
        "pairwise_euclidean y dim",
        lambda: LF.pairwise_euclidean(x(2, 3), x(2, 4)),
        "`y`",
        r"\(2, 4\)",
    ),
    lib(
        "metric",
        "nearest_proxy weight 2",
        lambda: LF.nearest_proxy(x(2, 3), _p(), x(2, 4), logits_weight=2.0),
        "`logits_weight`",
        "2",
    ),
    lib(
        "metric",
        "dcl temperature 0",
        lambda: LF.dcl(x(2, 3), x(2, 3), temperature=0.0),
        "`temperature`",
        "0",
    ),
    lib(
        "metric",
        "barlow lambda nan",
        lambda: LF.barlow_twins(x(4, 3), x(4, 3), lambda_=math.nan),
        "`lambda_`",
        "nan",
    ),
    lib(
        "metric",
        "vicreg sim_weight neg",
        lambda: LF.vicreg(x(4, 3), x(4, 3), sim_weight=-1.0),
        "`sim_weight`",
        "-1",
    ),
    lib(
        "metric",
        "negative_cosine shape",
        lambda: LF.negative_cosine(x(2, 3), x(2, 4)),
        "`z`",
        r"\(2, 4\)",
    ),
    lib(
        "metric",
        "batch_hard non-square",
        lambda: LF.batch_hard_triplets(x(3, 4), _l(0, 1, 0)),
        "`distances`",
        r"\(3, 4\)",
    ),
]

SEGMENTATION = [
    lib(
        "segmentation",
        "dice ignore_index float",
        lambda: LF.dice(*_seg(), ignore_index=1.5),
        "`ignore_index`",
        "float",
    ),
    lib(
        "segmentation",
        "dice ignore_index bool",
        lambda: LF.dice(*_seg(), ignore_index=True),
        "`ignore_index`",
        "bool",
    ),
    lib(
        "segmentation",
        "dice smooth nan",
        lambda: LF.dice(*_seg(), smooth=math.nan),
        "`smooth`",
        "nan",
    ),
    lib(
        "segmentation",
        "dice weight len",
        lambda: LF.dice(*_seg(), weight=t([1.0, 1.0])),
        "`weight`",
        r"\(2,\)",
    ),
    lib(
        "segmentation",
        "dice weight neg",
        lambda: LF.dice(*_seg(), weight=t([1.0, -1.0, 1.0])),
        "`weight`",
        "-1",
    ),
    lib("segmentation", "dice batch str", lambda: LF.dice(*_seg(), batch="yes"), "`batch`", "str"),
    lib(
        "segmentation",
        "dice int logits",
        lambda: LF.dice(torch.zeros(1, 3, 4, 4, dtype=torch.long), _seg()[1]),
        "`logits`",
        "int64",
    ),
    lib(
        "segmentation",
        "dice spatial shape",
        lambda: LF.dice(x(1, 3, 4, 4), torch.zeros(1, 4, 5, dtype=torch.long)),
        "`target`",
        r"\(1, 4, 5\)",
    ),
    lib(
        "segmentation",
        "tversky beta nan",
        lambda: LF.tversky(*_seg(), beta=math.nan),
        "`beta`",
        "nan",
    ),
    lib(
        "segmentation",
        "tversky alpha bool",
        lambda: LF.tversky(*_seg(), alpha=True),
        "`alpha`",
        "bool",
    ),
    lib(
        "segmentation",
        "focal_tversky gamma 0",
        lambda: LF.focal_tversky(*_seg(), gamma=0.0),
        "`gamma`",
        "0",
    ),
    lib(
        "segmentation",
        "gdice weight_type",
        lambda: LF.generalized_dice(*_seg(), weight_type="log"),
        "`weight_type`",
        "log",
    ),
    lib(
        "segmentation",
        "gdice smooth_nr neg",
        lambda: LF.generalized_dice(*_seg(), smooth_nr=-1.0),
        "`smooth_nr`",
        "-1",
    ),
    lib(
        "segmentation",
        "jaccard smooth neg",
        lambda: LF.jaccard(*_seg(), smooth=-1.0),
        "`smooth`",
        "-1",
    ),
    lib(
        "segmentation",
        "lovasz_softmax label 5",
        lambda: LF.lovasz_softmax(x(1, 3, 4, 4), torch.full((1, 4, 4), 5)),
        "`target`",
        "5",
    ),
    lib(
        "segmentation",
        "lovasz_softmax ignore str",
        lambda: LF.lovasz_softmax(*_seg(), ignore_index="x"),
        "`ignore_index`",
        "str",
    ),
    lib(
        "segmentation",
        "lovasz_softmax 2-D logits",
        lambda: LF.lovasz_softmax(x(4, 3), _l(0, 1, 2, 0)),
        "`logits`",
        r"\(4, 3\)",
    ),
    lib(
        "segmentation",
        "lovasz_hinge target 2",
        lambda: LF.lovasz_hinge(x(1, 4, 4), torch.full((1, 4, 4), 2.0)),
        "`target`",
        "2",
    ),
    lib(
        "segmentation",
        "lovasz_hinge per_image str",
        lambda: LF.lovasz_hinge(x(1, 4, 4), torch.ones(1, 4, 4), per_image="no"),
        "`per_image`",
        "str",
    ),
    lib("segmentation", "mcc eps 0", lambda: LF.mcc(*_seg(), eps=0.0), "`eps`", "0"),
    lib(
        "segmentation",
        "mcc activation",
        lambda: LF.mcc(*_seg(), activation="tanh"),
        "`activation`",
        "tanh",
    ),
    lib(
        "segmentation",
        "dice_focal gamma nan",
        lambda: LF.dice_focal(*_seg(), gamma=math.nan),
        "`gamma`",
        "nan",
    ),
    lib(
        "segmentation",
        "dice_focal focal_weight neg",
        lambda: LF.dice_focal(*_seg(), focal_weight=-1.0),
        "`focal_weight`",
        "-1",
    ),
    lib(
        "segmentation",
        "ce_dice dice_weight nan",
        lambda: LF.ce_dice(*_seg(), dice_weight=math.nan),
        "`dice_weight`",
        "nan",
    ),
    lib(
        "segmentation",
        "ce_dice ignore float",
        lambda: LF.ce_dice(*_seg(), ignore_index=0.5),
        "`ignore_index`",
        "float",
    ),
    accept(
        "segmentation",
        "dice all ignored",
        lambda: LF.dice(x(1, 3, 2, 2), torch.full((1, 2, 2), 255), ignore_index=255),
        "every pixel ignored: a finite value, nothing to learn",
    ),
]

DETECTION = [
    lib(
        "detection", "iou eps nan", lambda: LF.iou(_boxes(), _boxes(), eps=math.nan), "`eps`", "nan"
    ),
    lib(
        "detection",
        "giou reduction",
        lambda: LF.giou(_boxes(), _boxes(), reduction="avg"),
        "`reduction`",
        "avg",
    ),
    lib(
        "detection",
        "box_iou_matrix kind",
        lambda: LF.box_iou_matrix(_boxes(), _boxes(), kind="xiou"),
        "`kind`",
        "xiou",
    ),
    accept(
        "detection",
        "diou int boxes",
        lambda: LF.diou(torch.ones(2, 4, dtype=torch.long), _boxes()),
        "integer pixel coordinates are documented box input (computed in float32)",
    ),
    lib(
        "detection", "ciou 3-D", lambda: LF.ciou(x(1, 2, 4), x(1, 2, 4)), "`boxes1`", r"\(1, 2, 4\)"
    ),
    accept(
        "detection",
        "iou inverted boxes",
        lambda: LF.iou(t([[2.0, 2.0, 1.0, 1.0]]), t([[0.0, 0.0, 1.0, 1.0]])),
        "predicted boxes can be inverted early in training: the overlap is clamped at 0 "
        "(torchvision's box losses do not check either)",
    ),
    accept(
        "detection",
        "giou nan boxes",
        lambda: LF.giou(t([[0.0, 0.0, math.nan, 1.0]]), _boxes(1)),
        "a NaN prediction propagates, as in torch (a value check on predictions would cost "
        "a host sync per call)",
        nan_ok=True,
    ),
]


def _linear(n: int = 2) -> torch.nn.Module:
    return torch.nn.Linear(n, 1)


GENERATIVE = [
    lib(
        "generative",
        "gp critic None",
        lambda: LF.gradient_penalty(None, x(2, 3), x(2, 3)),
        "`critic`",
        "None",
    ),
    lib(
        "generative",
        "gp weight nan",
        lambda: LF.gradient_penalty(_linear(3), x(2, 3), x(2, 3), weight=math.nan),
        "`weight`",
        "nan",
    ),
    lib(
        "generative",
        "gp generator str",
        lambda: LF.gradient_penalty(_linear(3), x(2, 3), x(2, 3), generator="seed"),
        "`generator`",
        "str",
    ),
    lib(
        "generative",
        "gp critic no tensor",
        lambda: LF.gradient_penalty(lambda z: 3.0, x(2, 3), x(2, 3)),
        "`critic",
        "float",
    ),
    lib(
        "generative",
        "r1 gamma neg",
        lambda: LF.r1_penalty(x(2), x(2, 3, requires_grad=True), gamma=-1.0),
        "`gamma`",
        "-1",
    ),
    lib(
        "generative",
        "r1 gamma nan",
        lambda: LF.r1_penalty(x(2), x(2, 3, requires_grad=True), gamma=math.nan),
        "`gamma`",
        "nan",
    ),
    accept(
        "generative",
        "gan shape",
        lambda: LF.gan_discriminator(x(2), x(2, 2)),
        "the real and fake batches are reduced separately: their sizes need not match",
    ),
    lib("generative", "gan kind None", lambda: LF.gan_generator(x(2), kind=None), "`kind`", "None"),
    lib(
        "generative",
        "vae beta nan",
        lambda: LF.vae_elbo(x(2, 4), torch.rand(2, 4), x(2, 2), x(2, 2), beta=math.nan),
        "`beta`",
        "nan",
    ),
    lib(
        "generative",
        "vae mu shape",
        lambda: LF.vae_elbo(x(2, 4), torch.rand(2, 4), x(3, 2), x(3, 2)),
        "`mu`",
        r"\(3, 2\)",
    ),
    lib(
        "generative",
        "vae recon shape",
        lambda: LF.vae_elbo(x(2, 5), torch.rand(2, 4), x(2, 2), x(2, 2)),
        "`x`|`recon_logits`",
        r"\(2, [45]\)",
    ),
    lib(
        "generative",
        "vae reconstruction None",
        lambda: LF.vae_elbo(x(2, 4), torch.rand(2, 4), x(2, 2), x(2, 2), reconstruction=None),
        "`reconstruction`",
        "None",
    ),
    lib(
        "generative",
        "diffusion weight shape",
        lambda: LF.diffusion_noise_mse(x(2, 3), x(2, 3), weight=x(3)),
        "`weight`",
        r"\(3,\)",
    ),
    lib(
        "generative",
        "diffusion weight neg",
        lambda: LF.diffusion_noise_mse(x(2, 3), x(2, 3), weight=t([1.0, -1.0])),
        "`weight`",
        "-1",
    ),
    lib(
        "generative",
        "perceptual features 3",
        lambda: LF.perceptual(x(1, 3, 8, 8), x(1, 3, 8, 8), 3),
        "`features`",
        "int",
    ),
    lib(
        "generative",
        "ssim data_range 0",
        lambda: LF.ssim(torch.rand(1, 1, 16, 16), torch.rand(1, 1, 16, 16), data_range=0.0),
        "`data_range`",
        "0",
    ),
    lib(
        "generative",
        "ssim kernel even",
        lambda: LF.ssim(torch.rand(1, 1, 16, 16), torch.rand(1, 1, 16, 16), kernel_size=4),
        "`kernel_size`",
        "4",
    ),
    lib(
        "generative",
        "ssim kernel 0",
        lambda: LF.ssim(torch.rand(1, 1, 16, 16), torch.rand(1, 1, 16, 16), kernel_size=0),
        "`kernel_size`",
        "0",
    ),
    lib(
        "generative",
        "ssim sigma 0",
        lambda: LF.ssim(torch.rand(1, 1, 16, 16), torch.rand(1, 1, 16, 16), sigma=0.0),
        "`sigma`",
        "0",
    ),
    lib(
        "generative",
        "ssim 3-D",
        lambda: LF.ssim(torch.rand(1, 16, 16), torch.rand(1, 16, 16)),
        "`input`",
        r"\(1, 16, 16\)",
    ),
    lib(
        "generative",
        "ssim image < kernel",
        lambda: LF.ssim(torch.rand(1, 1, 5, 5), torch.rand(1, 1, 5, 5)),
        "`input`",
        r"5",
    ),
    lib(
        "generative",
        "ms_ssim weights empty",
        lambda: LF.ms_ssim(torch.rand(1, 1, 64, 64), torch.rand(1, 1, 64, 64), weights=[]),
        "`weights`",
    ),
    lib(
        "generative",
        "ms_ssim weights neg",
        lambda: LF.ms_ssim(torch.rand(1, 1, 64, 64), torch.rand(1, 1, 64, 64), weights=[1.0, -1.0]),
        "`weights`",
        "-1",
    ),
    lib(
        "generative",
        "total_variation 2-D",
        lambda: LF.total_variation(x(4, 4)),
        "`input`",
        r"\(4, 4\)",
    ),
    lib(
        "generative",
        "PerceptualLoss backbone 3",
        lambda: losskit.PerceptualLoss(3),
        "`backbone`",
        "int",
    ),
    lib(
        "generative",
        "PerceptualLoss backbone path",
        lambda: losskit.PerceptualLoss("/no/such/vgg.pt"),
        "backbone|vgg\\.pt",
        "no such|no file|/no/such",
    ),
]

LANGUAGE = [
    lib(
        "language",
        "next_token ignore float",
        lambda: LF.next_token_cross_entropy(
            x(1, 3, 4), torch.zeros(1, 3, dtype=torch.long), ignore_index=0.5
        ),
        "`ignore_index`",
        "float",
    ),
    lib(
        "language",
        "next_token tokens float",
        lambda: LF.next_token_cross_entropy(x(1, 3, 4), torch.zeros(1, 3)),
        "`tokens`",
        "float",
    ),
    lib(
        "language",
        "next_token 2-D logits",
        lambda: LF.next_token_cross_entropy(x(3, 4), torch.zeros(3, dtype=torch.long)),
        "`logits`",
        r"\(3, 4\)",
    ),
    lib(
        "language",
        "perplexity token 9",
        lambda: LF.perplexity(x(1, 3, 4), torch.full((1, 3), 9)),
        "`tokens`",
        "9",
    ),
    lib(
        "language",
        "lce weight dim",
        lambda: LF.linear_cross_entropy(x(4, 3), x(5, 2), _l(0, 1, 2, 3)),
        "`hidden`|`weight`",
        r"\(4, 3\)|\(5, 2\)",
    ),
    lib(
        "language",
        "lce z_loss neg",
        lambda: LF.linear_cross_entropy(x(4, 3), x(5, 3), _l(0, 1, 2, 3), z_loss=-1.0),
        "`z_loss`",
        "-1",
    ),
    lib(
        "language",
        "lce softcap 0",
        lambda: LF.linear_cross_entropy(x(4, 3), x(5, 3), _l(0, 1, 2, 3), softcap=0.0),
        "`softcap`",
        "0",
    ),
    lib(
        "language",
        "lce chunk 0",
        lambda: LF.linear_cross_entropy(x(4, 3), x(5, 3), _l(0, 1, 2, 3), chunk_size=0),
        "`chunk_size`",
        "0",
    ),
    lib(
        "language",
        "lce smoothing nan",
        lambda: LF.linear_cross_entropy(x(4, 3), x(5, 3), _l(0, 1, 2, 3), label_smoothing=math.nan),
        "`label_smoothing`",
        "nan",
    ),
    lib(
        "language",
        "lce target 7",
        lambda: LF.linear_cross_entropy(x(4, 3), x(5, 3), _l(0, 1, 2, 7)),
        "`targets`",
        "7",
    ),
    lib(
        "language",
        "lce ignore bool",
        lambda: LF.linear_cross_entropy(x(4, 3), x(5, 3), _l(0, 1, 2, 3), ignore_index=True),
        "`ignore_index`",
        "bool",
    ),
    lib("language", "dpo beta 0", lambda: LF.dpo(x(2), x(2), x(2), x(2), beta=0.0), "`beta`", "0"),
    lib(
        "language",
        "dpo loss_type",
        lambda: LF.dpo(x(2), x(2), x(2), x(2), loss_type="sigm"),
        "`loss_type`",
        "sigm",
    ),
    lib(
        "language",
        "dpo smoothing 0.6",
        lambda: LF.dpo(x(2), x(2), x(2), x(2), label_smoothing=0.6),
        "`label_smoothing`",
        "0.6",
    ),
    lib(
        "language",
        "dpo shape",
        lambda: LF.dpo(x(2), x(3), x(2), x(2)),
        "`policy_rejected`",
        r"\(3,\)",
    ),
    lib(
        "language",
        "kto weight neg",
        lambda: LF.kto(x(2), x(2), x(2), x(2), desirable_weight=-1.0),
        "`desirable_weight`",
        "-1",
    ),
    lib(
        "language",
        "kto kl shape",
        lambda: LF.kto(x(2), x(2), x(2), x(2), kl_log_ratios=x(2, 2)),
        "`kl_log_ratios`",
        r"\(2, 2\)",
    ),
    lib(
        "language",
        "orpo lambda nan",
        lambda: LF.orpo(-torch.rand(2), -torch.rand(2), lambda_=math.nan),
        "`lambda_`",
        "nan",
    ),
    lib(
        "language",
        "orpo positive logps",
        lambda: LF.orpo(torch.rand(2) + 0.1, -torch.rand(2)),
        "`policy_chosen`",
        r"\d",
    ),
    lib(
        "language",
        "simpo lengths 0",
        lambda: LF.simpo(x(2), x(2), _l(0, 3), _l(2, 3)),
        "`chosen_lengths`",
        "0",
    ),
    lib(
        "language",
        "simpo beta 0",
        lambda: LF.simpo(x(2), x(2), _l(1, 3), _l(2, 3), beta=0.0),
        "`beta`",
        "0",
    ),
    lib(
        "language",
        "simpo gamma nan",
        lambda: LF.simpo(x(2), x(2), _l(1, 3), _l(2, 3), gamma=math.nan),
        "`gamma`",
        "nan",
    ),
    lib(
        "language",
        "bradley margin shape",
        lambda: LF.bradley_terry(x(2), x(2), margin=x(3)),
        "`margin`",
        r"\(3,\)",
    ),
    lib(
        "language",
        "bradley margin inf",
        lambda: LF.bradley_terry(x(2), x(2), margin=math.inf),
        "`margin`",
        "inf",
    ),
]


def _shared() -> list[torch.nn.Parameter]:
    return [torch.nn.Parameter(torch.ones(2))]


WEIGHTING = [
    lib(
        "weighting",
        "Uncertainty bool",
        lambda: losskit.UncertaintyWeighting(True),
        "`num_tasks`",
        "bool",
    ),
    lib(
        "weighting",
        "Uncertainty float",
        lambda: losskit.UncertaintyWeighting(2.5),
        "`num_tasks`",
        "float",
    ),
    lib(
        "weighting",
        "Uncertainty init nan",
        lambda: losskit.UncertaintyWeighting(2, init_log_var=math.nan),
        "`init_log_var`",
        "nan",
    ),
    lib(
        "weighting",
        "Uncertainty wrong count",
        lambda: losskit.UncertaintyWeighting(2)([t(1.0)]),
        "task|losses",
        "1",
    ),
    lib(
        "weighting",
        "GradNorm alpha nan",
        lambda: losskit.GradNorm(2, alpha=math.nan),
        "`alpha`",
        "nan",
    ),
    lib("weighting", "GradNorm 0 tasks", lambda: losskit.GradNorm(0), "`num_tasks`", "0"),
    lib("weighting", "Curriculum base 3", lambda: losskit.CurriculumLoss(3), "`base_loss`", "int"),
    lib(
        "weighting",
        "Curriculum threshold 0",
        lambda: losskit.CurriculumLoss(LF.mse, threshold=0.0),
        "`threshold`",
        "0",
    ),
    lib(
        "weighting",
        "Curriculum growth 0.5",
        lambda: losskit.CurriculumLoss(LF.mse, growth=0.5),
        "`growth`",
        "0.5",
    ),
    lib(
        "weighting",
        "Combined empty",
        lambda: losskit.CombinedLoss({}),
        "`parts`",
        r"\{\}|empty|none|0",
    ),
    lib(
        "weighting",
        "Combined non-callable",
        lambda: losskit.CombinedLoss({"a": (3, 1.0)}),
        "`parts`|'a'",
        "int",
    ),
    lib(
        "weighting",
        "Combined weight nan",
        lambda: losskit.CombinedLoss({"a": (LF.mse, math.nan)}),
        "weight|'a'",
        "nan",
    ),
    lib(
        "weighting",
        "Combined weight str",
        lambda: losskit.CombinedLoss({"a": (LF.mse, "1")}),
        "weight|'a'",
        "str",
    ),
    lib(
        "weighting",
        "task_gradient_norms empty",
        lambda: LF.task_gradient_norms([], _shared()),
        "`task_losses`",
    ),
]

REGISTRY = [
    lib("registry", "build_loss int", lambda: losskit.build_loss(3), "`name`", "3|int"),
    lib(
        "registry",
        "build_loss bad hyper",
        lambda: losskit.build_loss("focal", gamma=-1.0),
        "`gamma`",
        "-1",
    ),
    lib("registry", "get_spec unknown", lambda: losskit.get_spec("hubr"), "hubr", "huber"),
    lib("registry", "list_losses int", lambda: losskit.list_losses(3), "`family`", "3|int"),
    lib("registry", "set_checks int", lambda: losskit.set_checks(1), "`enabled`", "int"),
]

# --------------------------------------------------------------------------------------------
# Command-line cases (each argv is built in a fresh temporary folder ``p``)
# --------------------------------------------------------------------------------------------

TINY = ["--epochs", "1", "--hidden_dim", "16", "--embedding_dim", "8", "--quiet"]


def _w(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


def _npy(path: Path, array: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, array, allow_pickle=True)
    return path


def _train(p: Path, *flags: str) -> list[str]:
    return ["train", *TINY, "--output_dir", str(p / "out"), *flags]


def _cfg(p: Path, text: str | bytes) -> list[str]:
    """``train --config`` with ``text``; the quick flags leave out the keys the file sets."""
    keys = {line.split(":")[0].strip() for line in str(text).splitlines()}
    flags = []
    for flag, value in zip(TINY[::2], [*TINY[1::2], "--quiet"]):
        if flag.lstrip("-") not in keys:
            flags += [flag] if flag == "--quiet" else [flag, value]
    return [
        "train",
        *flags,
        "--output_dir",
        str(p / "out"),
        "--config",
        str(_w(p / "c.yaml", text)),
    ]


def _partial_run(p: Path, drop: str) -> Path:
    """A copy of the tiny run without ``drop``."""
    import shutil

    run = p / "partial"
    shutil.copytree(RUN, run)
    target = run / drop
    if target.is_dir():
        shutil.rmtree(target)
    else:
        target.unlink()
    return run


def _predict(
    p: Path, data: Any, *flags: str, cmd: str = "predict", run: Path | None = None
) -> list[str]:
    source = _npy(p / "x.npy", data) if not isinstance(data, bytes) else _w(p / "x.npy", data)
    ext = "csv" if cmd == "predict" else "npy"
    out = str(p / f"o.{ext}")
    return [cmd, "--run", str(run or RUN), "--input", str(source), "--output", out, *flags]


RUN = Path()  # the tiny trained run, set by main()
DIGITS = 64


def _rows(n: int = 3, d: int = DIGITS) -> np.ndarray:
    return np.random.default_rng(0).uniform(0, 16, size=(n, d)).astype(np.float32)


def _nan_rows() -> np.ndarray:
    a = _rows()
    a[1, 3] = np.nan
    return a


def _inf_rows() -> np.ndarray:
    a = _rows()
    a[2, 0] = np.inf
    return a


CLI = [
    cli("cli train", "lr -1", lambda p: _train(p, "--lr", "-1"), "`lr`", "-1"),
    cli("cli train", "lr nan", lambda p: _train(p, "--lr", "nan"), "`lr`", "nan"),
    cli("cli train", "lr 1e999", lambda p: _train(p, "--lr", "1e999"), "`lr`", "inf"),
    cli("cli train", "epochs -3", lambda p: _train(p, "--epochs", "-3"), "`epochs`", "-3"),
    cli("cli train", "batch_size 0", lambda p: _train(p, "--batch_size", "0"), "`batch_size`", "0"),
    cli("cli train", "seed x", lambda p: _train(p, "--seed", "x"), "`seed`", "x"),
    cli("cli train", "dropout 1.5", lambda p: _train(p, "--dropout", "1.5"), "`dropout`", "1.5"),
    cli("cli train", "quiet=yes", lambda p: _train(p, "--quiet=yes"), "--quiet", "yes"),
    cli("cli train", "dataset foo", lambda p: _train(p, "--dataset", "foo"), "`dataset`", "foo"),
    cli(
        "cli train",
        "npy without data_dir",
        lambda p: _train(p, "--dataset", "npy"),
        "`data_dir`",
        "None|none|no",
    ),
    cli(
        "cli train",
        "optimizer adam",
        lambda p: _train(p, "--optimizer", "adam"),
        "`optimizer`",
        "adam",
    ),
    cli(
        "cli train",
        "test_fraction 1",
        lambda p: _train(p, "--test_fraction", "1"),
        "`test_fraction`",
        "1",
    ),
    cli(
        "cli train",
        "cpu_threads 0",
        lambda p: _train(p, "--cpu_threads", "0"),
        "`cpu_threads`",
        "0",
    ),
    cli("cli train", "device tpu", lambda p: _train(p, "--device", "tpu"), "`device`", "tpu"),
    cli("cli train", "patience 0", lambda p: _train(p, "--patience", "0"), "`patience`", "0"),
    cli(
        "cli train",
        "grad_accum 0",
        lambda p: _train(p, "--grad_accum_steps", "0"),
        "`grad_accum_steps`",
        "0",
    ),
    cli(
        "cli train",
        "eval_every -1",
        lambda p: _train(p, "--eval_every", "-1"),
        "`eval_every`",
        "-1",
    ),
    cli(
        "cli train",
        "pretrained for mlp",
        lambda p: _train(p, "--pretrained_weights", "imagenet"),
        "`pretrained_weights`",
        "mlp|imagenet",
    ),
    cli(
        "cli train",
        "output_dir under a file",
        lambda p: ["train", *TINY, "--output_dir", str(_w(p / "f", "x") / "sub")],
        "`output_dir`|/f",
        "file|not a folder|no folder",
    ),
    cli(
        "cli train",
        "output_dir unwritable",
        lambda p: ["train", *TINY, "--output_dir", "/sys/losskit_probe"],
        "/sys/losskit_probe|`output_dir`",
        "writable|permitted|permission",
    ),
    cli(
        "cli train",
        "resume a file",
        lambda p: ["train", "--resume", str(_w(p / "f", "x"))],
        "`--resume`",
        "file",
    ),
    cli(
        "cli train",
        "resume no last.pt",
        lambda p: ["train", "--resume", str(_partial_run(p, "checkpoints/last.pt"))],
        "last\\.pt",
        "no|missing",
    ),
    accept(
        "cli config",
        "empty file",
        lambda p: _cfg(p, ""),
        "an empty YAML file is an empty mapping: the defaults, as with no --config",
        cli=True,
    ),
    cli("cli config", "nested map for lr", lambda p: _cfg(p, "lr: {a: 1}\n"), "`lr`", "dict|\\{"),
    cli(
        "cli config", "list for epochs", lambda p: _cfg(p, "epochs: [1]\n"), "`epochs`", "list|\\["
    ),
    cli(
        "cli config",
        "loss_type null",
        lambda p: _cfg(p, "loss_type: null\n"),
        "`loss_type`",
        "None",
    ),
    cli(
        "cli config",
        "binary tag",
        lambda p: _cfg(p, "seed: !!binary aGVsbG8=\n"),
        "c\\.yaml|`seed`",
        "b'hello'|binary|bytes",
    ),
    cli("cli config", "custom tag", lambda p: _cfg(p, "seed: !foo 3\n"), "c\\.yaml", "foo|tag"),
    cli(
        "cli config",
        "utf-16 file",
        lambda p: _cfg(p, "lr: 0.1\n".encode("utf-16")),
        "c\\.yaml",
        "UTF-8|0xff|0xfe",
    ),
    cli("cli config", "float key", lambda p: _cfg(p, "1.5: 2\n"), "c\\.yaml", "1\\.5"),
    cli("cli config", "null key", lambda p: _cfg(p, "~: 2\n"), "c\\.yaml", "None"),
    cli("cli config", "bool key", lambda p: _cfg(p, "yes: 2\n"), "c\\.yaml", "True"),
    cli(
        "cli config",
        "config a folder",
        lambda p: _train(p, "--config", str(p)),
        "`/[^`]*`",  # the folder given
        "folder|directory",
    ),
    cli(
        "cli config",
        "shipped name typo",
        lambda p: _train(p, "--config", "combined_7"),
        "combined_7",
        "combined_07|no such|no file",
    ),
    cli("cli config", "scalar doc", lambda p: _cfg(p, "3\n"), "c\\.yaml", "mapping|int|3"),
    cli("cli config", "epochs 1e3 string", lambda p: _cfg(p, "epochs: 1e3\n"), "`epochs`", "1e3"),
    cli("cli config", "quiet 1", lambda p: _cfg(p, "quiet: 1\n"), "`quiet`", "1"),
    accept(
        "cli config",
        "seed 2.0",
        lambda p: _cfg(p, "seed: 2.0\n"),
        "an integral float loses nothing as an integer",
        cli=True,
    ),
    cli(
        "cli config",
        "multi-document",
        lambda p: _cfg(p, "lr: 0.1\n---\nlr: 0.2\n"),
        "c\\.yaml",
        "document|one",
    ),
    cli(
        "cli evaluate",
        "checkpoint x",
        lambda p: ["evaluate", "--run", str(RUN), "--checkpoint", "x"],
        "--checkpoint",
        "'x'",
    ),
    cli(
        "cli evaluate",
        "run without config",
        lambda p: ["evaluate", "--run", str(_partial_run(p, "config.yaml"))],
        "config\\.yaml",
        "without|no|missing",
    ),
    cli(
        "cli evaluate",
        "run with bad config",
        lambda p: [
            "evaluate",
            "--run",
            str(_w(_partial_run(p, "config.yaml") / "config.yaml", "epochs: x\n").parent),
        ],
        "`epochs`",
        "x",
    ),
    cli(
        "cli evaluate",
        "device tpu",
        lambda p: ["evaluate", "--run", str(RUN), "--device", "tpu"],
        "--device|`device`",
        "tpu",
    ),
    cli(
        "cli predict",
        "input missing",
        lambda p: [
            "predict",
            "--run",
            str(RUN),
            "--input",
            str(p / "no.npy"),
            "--output",
            str(p / "o.csv"),
        ],
        "`input`|no\\.npy",
        "no file|no such",
    ),
    cli("cli predict", "input NaN", lambda p: _predict(p, _nan_rows()), "`input`", "NaN"),
    cli("cli predict", "input inf", lambda p: _predict(p, _inf_rows()), "`input`", "inf"),
    cli(
        "cli predict",
        "input object",
        lambda p: _predict(p, np.array([{}, {}], dtype=object)),
        "`input`",
        "object",
    ),
    cli("cli predict", "input wrong width", lambda p: _predict(p, _rows(3, 5)), "`input`", "5"),
    cli(
        "cli predict",
        "input 3-D",
        lambda p: _predict(p, _rows(3).reshape(3, 8, 8)),
        "`input`",
        "8, 8",
    ),
    cli(
        "cli predict",
        "input empty",
        lambda p: _predict(p, np.zeros((0, DIGITS), np.float32)),
        "`input`",
        "none|0",
    ),
    cli(
        "cli predict",
        "input strings",
        lambda p: _predict(p, np.array(["a", "b"])),
        "`input`",
        "<U1|str|dtype",
    ),
    cli(
        "cli predict",
        "input complex",
        lambda p: _predict(p, _rows().astype(np.complex64)),
        "`input`",
        "complex",
    ),
    cli(
        "cli predict",
        "input float64 overflow",
        lambda p: _predict(p, np.full((2, DIGITS), 1e300)),
        "`input`",
        "float32|1e\\+300|range",
    ),
    cli(
        "cli predict",
        "input bytes",
        lambda p: _predict(p, b"not numpy"),
        "`input`",
        "unreadable|not|format",
    ),
    cli(
        "cli predict",
        "output unwritable",
        lambda p: [
            "predict",
            "--run",
            str(RUN),
            "--input",
            str(_npy(p / "x.npy", _rows())),
            "--output",
            "/sys/o.csv",
        ],
        "/sys/o\\.csv|`--output`",
        "writable|permitted|permission",
    ),
    cli(
        "cli predict",
        "run missing checkpoint",
        lambda p: _predict(p, _rows(), run=_partial_run(p, "checkpoints/best.pt")),
        "best\\.pt",
        "no|missing",
    ),
    cli(
        "cli predict",
        "run missing",
        lambda p: [
            "predict",
            "--run",
            str(p / "none"),
            "--input",
            "x.npy",
            "--output",
            str(p / "o.csv"),
        ],
        "`--run`|`run`|none",
        "no such|no folder|no ",
    ),
    cli(
        "cli embed", "input NaN", lambda p: _predict(p, _nan_rows(), cmd="embed"), "`input`", "NaN"
    ),
    cli(
        "cli embed",
        "input wrong width",
        lambda p: _predict(p, _rows(3, 7), cmd="embed"),
        "`input`",
        "7",
    ),
    cli(
        "cli embed",
        "input object",
        lambda p: _predict(p, np.array([[1, "a"]], dtype=object), cmd="embed"),
        "`input`",
        "object",
    ),
    cli(
        "cli embed",
        "output missing folder",
        lambda p: [
            "embed",
            "--run",
            str(RUN),
            "--input",
            str(_npy(p / "x.npy", _rows())),
            "--output",
            str(p / "no" / "o.npy"),
        ],
        "`output`|`--output`",
        "no folder",
    ),
    cli(
        "cli embed",
        "output is a folder",
        lambda p: [
            "embed",
            "--run",
            str(RUN),
            "--input",
            str(_npy(p / "x.npy", _rows())),
            "--output",
            str(p),
        ],
        "`output`|`--output`",
        "folder",
    ),
    cli(
        "cli embed",
        "run missing checkpoint",
        lambda p: [
            "embed",
            "--run",
            str(_partial_run(p, "checkpoints/best.pt")),
            "--input",
            "x.npy",
            "--output",
            str(p / "o.npy"),
        ],
        "best\\.pt",
        "no ",
    ),
    cli(
        "cli export",
        "output missing folder",
        lambda p: ["export", "--run", str(RUN), "--output", str(p / "no" / "m.pt2")],
        "`output`|`--output`",
        "no folder",
    ),
    cli(
        "cli export",
        "run a file",
        lambda p: ["export", "--run", str(_w(p / "f", "x")), "--output", str(p / "m.pt2")],
        "`run`|`--run`",
        "no config|file",
    ),
    cli("cli guide", "list family int", lambda p: ["list", "--family", "3"], "`family`", "'3'"),
    cli(
        "cli guide",
        "recommend task",
        lambda p: ["recommend", "--task", "clasification"],
        "`task`|--task",
        "clasification",
    ),
    cli(
        "cli guide",
        "focal-stats n-hard -1",
        lambda p: ["focal-stats", "--n-hard", "-1"],
        "n_hard|n-hard",
        "-1",
    ),
    cli(
        "cli guide",
        "focal-stats gammas nan",
        lambda p: ["focal-stats", "--gammas", "nan"],
        "gamma",
        "nan",
    ),
    cli(
        "cli guide",
        "focal-stats range reversed",
        lambda p: ["focal-stats", "--hard-range", "0.5", "0.1"],
        "hard.range",
        "0\\.5",
    ),
    cli(
        "cli guide",
        "focal-stats range 2",
        lambda p: ["focal-stats", "--easy-range", "0.9", "2"],
        "easy.range",
        "2",
    ),
    cli(
        "cli guide",
        "focal-stats n-easy x",
        lambda p: ["focal-stats", "--n-easy", "x"],
        "--n-easy",
        "'x'",
    ),
    cli(
        "cli plot",
        "regression delta -1",
        lambda p: ["plot", "regression", "--delta", "-1", "--out", str(p / "r.png")],
        "`delta`|--delta",
        "-1",
    ),
    cli(
        "cli plot",
        "regression limit 0",
        lambda p: ["plot", "regression", "--limit", "0", "--out", str(p / "r.png")],
        "`limit`|--limit",
        "0",
    ),
    cli(
        "cli plot",
        "dpi 0",
        lambda p: ["plot", "focal", "--dpi", "0", "--out", str(p / "r.png")],
        "`dpi`|--dpi",
        "0",
    ),
    cli(
        "cli plot",
        "run missing",
        lambda p: ["plot", "run", str(p / "none"), "--out", str(p / "r.png")],
        "none|RUN|`run`",
        "none'|no such|no folder|no file",
    ),
    cli(
        "cli plot",
        "embeddings missing npz",
        lambda p: [
            "plot",
            "embeddings",
            str(_partial_run(p, "embeddings.npz")),
            "--out",
            str(p / "r.png"),
        ],
        "embeddings\\.npz",
        "partial'|no ",
    ),
    accept(
        "cli plot",
        "out missing folder",
        lambda p: ["plot", "focal", "--out", str(p / "no" / "r.png")],
        "save_figure creates the figure's folder",
        cli=True,
    ),
    cli(
        "cli plot",
        "max-points 0",
        lambda p: ["plot", "embeddings", str(RUN), "--max-points", "0", "--out", str(p / "r.png")],
        "max.points",
        "0",
    ),
]

NEW_CASES = [*REGRESSION, *CLASSIFICATION, *METRIC, *SEGMENTATION, *DETECTION, *GENERATIVE,
             *LANGUAGE, *WEIGHTING, *REGISTRY, *CLI]  # fmt: skip


def suite_cases() -> list[Case]:
    """The cases of ``tests/test_bad_input.py``, graded by the same rules."""
    from tests import test_bad_input as suite

    out = [lib("suite", n, call, names) for n, call, _kind, names in suite.LIBRARY]
    out += [
        lib("suite config", n, lambda o=o: suite.load_config(None, o), names)
        for n, o, names in suite.CONFIG
    ]
    out += [cli("suite cli", n, argv, names) for n, argv, _code, names in suite.CLI]
    return out


# --------------------------------------------------------------------------------------------
# Grading
# --------------------------------------------------------------------------------------------


class Hang(Exception):
    pass


def _alarm(signum: int, frame: Any) -> None:
    raise Hang


def _message_grade(case: Case, message: str) -> tuple[str, str]:
    named = re.search(case.names, message) is not None
    found = re.search(case.got, message) if case.got else FOUND.search(message)
    said = EXPECTED.search(message) is not None
    if named and found and said:
        return "clear", ""
    missing = [
        w for w, ok in (("name", named), ("found value", found), ("expected", said)) if not ok
    ]
    return "unclear", f"lacks {' / '.join(missing)}: {message[:150]}"


def _has_nan(value: Any) -> bool:
    if isinstance(value, torch.Tensor):
        return value.is_floating_point() and not bool(torch.isfinite(value.detach()).all())
    if isinstance(value, (tuple, list)):
        return any(_has_nan(v) for v in value)
    return False


def grade_library(case: Case, timeout: float) -> tuple[str, str]:
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        value = case.call()
    except Hang:
        return "wrong", f"hang (> {timeout:g} s)"
    except LIBRARY_ERRORS as err:
        if case.accepted:
            return "wrong", f"refused a legitimate input: {type(err).__name__}: {err}"
        return _message_grade(case, f"{type(err).__name__}: {err}")
    except Exception as err:  # any other type is the finding
        return "wrong", f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    if _has_nan(value) and not case.nan_ok:
        return "wrong", "a NaN / inf result"
    if case.accepted:
        return "accepted", case.accepted
    return "wrong", f"accepted silently (returned {type(value).__name__})"


def grade_cli(case: Case, timeout: float) -> tuple[str, str]:
    with tempfile.TemporaryDirectory() as tmp:
        err, out = io.StringIO(), io.StringIO()
        code: Any = None
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            argv = case.call(Path(tmp))
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
                try:
                    code = main(argv)
                except SystemExit as exit_:
                    code = exit_.code
        except Hang:
            return "wrong", f"hang (> {timeout:g} s)"
        except BaseException as exc:  # a traceback is the finding
            return "wrong", f"traceback: {type(exc).__name__}: {str(exc).splitlines()[:1]}"
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    lines = err.getvalue().strip().splitlines()
    if case.accepted and code not in (0, None):
        return "wrong", f"refused a legitimate input: exit {code}: {lines[-1:]}"
    if code in (0, None):
        if case.accepted:
            return "accepted", case.accepted
        return "wrong", "accepted silently (exit 0)"
    if any("Traceback" in line for line in lines):
        return "wrong", "traceback on stderr"
    if len(lines) != 1 or not re.match(r"losskit [\w -]+: error: ", lines[0]):
        return "unclear", f"exit {code}, {len(lines)} stderr lines: {lines[:2]}"
    grade, why = _message_grade(case, lines[0])
    if code != 2:
        return "unclear", f"exit {code} (bad input is 2); {why}".rstrip("; ")
    return grade, why


def train_tiny_run(root: Path) -> Path:
    """A one-epoch digits run for the ``predict`` / ``embed`` / ``evaluate`` cases."""
    run = root / "run"
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        code = main(["train", *TINY, "--output_dir", str(run)])
    if code != 0:
        raise SystemExit(f"could not train the tiny run (exit {code})")
    return run


def run_probe(cases: list[Case], timeout: float, verbose: bool) -> dict[str, int]:
    counts = {"clear": 0, "unclear": 0, "wrong": 0, "accepted": 0}
    rows = []
    for case in cases:
        torch.manual_seed(0)
        grade, why = (grade_cli if case.cli else grade_library)(case, timeout)
        counts[grade] += 1
        if grade != "clear" or verbose:
            rows.append((grade, case.family, case.name, why))
    order = {"wrong": 0, "unclear": 1, "accepted": 2, "clear": 3}
    rows.sort(key=lambda r: (order[r[0]], r[1], r[2]))
    width = max((len(f"{r[1]}: {r[2]}") for r in rows), default=0)
    for grade, family, name, why in rows:
        print(f"{grade:<9} {f'{family}: {name}':<{width}}  {why}")
    return counts


def main_(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-suite", action="store_true", help="only the probe's own cases")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per case (60)")
    parser.add_argument("--verbose", action="store_true", help="print every case")
    parser.add_argument("-k", default=None, help="only cases whose family: name matches")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    signal.signal(signal.SIGALRM, _alarm)
    global RUN
    with tempfile.TemporaryDirectory() as root:
        RUN = train_tiny_run(Path(root))
        cases = NEW_CASES + ([] if args.no_suite else suite_cases())
        if args.k:
            cases = [c for c in cases if re.search(args.k, f"{c.family}: {c.name}")]
        with warnings_quiet():
            counts = run_probe(cases, args.timeout, args.verbose)
    new = sum(not c.family.startswith("suite") for c in cases)
    print(
        f"\n{len(cases)} cases ({new} new, {len(cases) - new} from the suite): "
        f"{counts['clear']} clear, {counts['unclear']} unclear, {counts['wrong']} wrong, "
        f"{counts['accepted']} accepted (legitimate inputs)"
    )
    return 0


@contextlib.contextmanager
def warnings_quiet():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


if __name__ == "__main__":
    try:
        sys.exit(main_())
    except Exception:  # the probe itself failing is not a graded case
        traceback.print_exc()
        sys.exit(1)
