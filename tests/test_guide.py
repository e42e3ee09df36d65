"""Tests of losskit.guide: the decision tree, explain, focal-stats, and their commands."""

from __future__ import annotations

import inspect
import re

import numpy as np
import pytest
import torch

import losskit
from losskit._plain_text import plain_text
from losskit.cli import main
from losskit.guide import (
    DECISION_TREE,
    explain,
    focal_stats,
    focal_weights,
    format_focal_stats,
    get_task,
    recommend,
    sample_focal_mix,
    task_names,
)

LEAVES = [(task.name, leaf) for task in DECISION_TREE for leaf in task.leaves]

# --------------------------------------------------------------------- recommend


def test_tree_covers_the_guides_tasks():
    assert set(task_names()) >= {
        "classification",
        "regression",
        "segmentation",
        "detection",
        "metric-learning",
        "generative",
        "language",
    }
    situations = {(t, leaf.situation) for t, leaf in LEAVES}
    assert {
        ("classification", "imbalanced"),
        ("regression", "outliers"),
        ("segmentation", "small-objects"),
        ("metric-learning", "pairs"),
        ("metric-learning", "triplets"),
        ("metric-learning", "proxies"),
        ("metric-learning", "self-supervised"),
        ("generative", "gan"),
        ("generative", "vae"),
        ("generative", "image-translation"),
    } <= situations


@pytest.mark.parametrize(
    ("task", "leaf"), LEAVES, ids=[f"{t}-{leaf.situation}" for t, leaf in LEAVES]
)
def test_every_leaf_is_reachable_and_names_registered_losses(task, leaf):
    assert recommend(task, [leaf.situation]) == (leaf,)
    registered = set(losskit.list_losses())
    assert leaf.losses and set(leaf.losses) <= registered, set(leaf.losses) - registered
    assert leaf.why and leaf.question


def test_every_registered_family_appears_in_the_tree():
    recommended = {name for _, leaf in LEAVES for name in leaf.losses}
    families = {losskit.get_spec(n).family for n in recommended}
    all_families = {losskit.get_spec(n).family for n in losskit.list_losses()}
    assert families == all_families


@pytest.mark.parametrize("task", DECISION_TREE, ids=lambda t: t.name)
def test_default_situations(task):
    leaves = recommend(task.name)
    assert tuple(leaf.situation for leaf in leaves) == task.default


def test_recommend_examples_of_the_guide():
    assert recommend("classification", ["imbalanced"])[0].losses[0] == "focal"
    assert recommend("regression", ["outliers"])[0].losses == ("huber", "mae")
    assert recommend("segmentation", ["small-objects"])[0].losses[0] == "dice"
    assert recommend("metric-learning", ["self-supervised"])[0].losses[0] == "nt_xent"
    assert [leaf.situation for leaf in recommend("detection")] == [
        "classification-head",
        "box-regression",
    ]


@pytest.mark.parametrize("spelling", ["metric_learning", "Metric Learning", " METRIC-learning "])
def test_task_spellings(spelling):
    assert get_task(spelling).name == "metric-learning"


def test_several_situations_keep_tree_order():
    leaves = recommend("classification", ["overconfident", "imbalanced"])
    assert [leaf.situation for leaf in leaves] == ["imbalanced", "overconfident"]


def test_recommend_errors():
    with pytest.raises(
        ValueError,
        match=r"recommend: expected `task` one of 'classification'.*"
        r"got 'clasification' \(did you mean 'classification'\?\)",
    ):
        recommend("clasification")
    with pytest.raises(
        ValueError,
        match=r"expected `situation of regression` one of 'clean', "
        r"'outliers'.*got 'imbalanced'",
    ):
        recommend("regression", ["imbalanced"])
    with pytest.raises(TypeError, match=r"recommend: expected `task` to be a string, got int"):
        recommend(3)


def test_recommend_command(capsys):
    assert main(["recommend", "--task", "classification", "--imbalanced"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("classification / imbalanced:")
    assert "use: focal  (losskit.FocalLoss, losskit.functional.focal)" in out
    assert "why: Focal loss" in out and "see: losskit explain focal" in out


def test_recommend_command_prints_tree_without_task(capsys):
    assert main(["recommend"]) == 0
    out = capsys.readouterr().out
    assert all(f"--{leaf.situation}" in out for _, leaf in LEAVES)
    assert all(f"{t}:" in out for t in task_names())


def test_recommend_command_unknown_task(capsys):
    assert main(["recommend", "--task", "segmentaton"]) == 2
    err = capsys.readouterr().err
    assert "did you mean 'segmentation'?" in err and "'metric-learning'" in err


# ------------------------------------------------------------------------ explain


@pytest.mark.parametrize("name", losskit.list_losses())
def test_explain_every_registered_loss(name):
    spec = losskit.get_spec(name)
    text = explain(name)
    assert text.splitlines()[0].startswith(f"{name}: losskit.{spec.cls.__name__}")
    assert plain_text(spec.summary) in text
    assert not _REST_MARKUP.search(text), _REST_MARKUP.search(text)
    target = spec.function if spec.function is not None else spec.cls
    section = text.split("\nParameters:\n", 1)[1]
    for param in inspect.signature(target).parameters.values():
        if param.name in ("self", "args", "kwargs"):
            continue
        head = param.name
        if param.default is not inspect.Parameter.empty:
            head += f"={param.default!r}"
        assert re.search(rf"^  {re.escape(head)}(\s|$)", section, re.M), head
    assert "\nWhen to use:\n" in text
    if "Reference" in spec.doc:
        assert "\nReference:\n" in text


_REST_MARKUP = re.compile(r"``|:\w+:`|^\s*\.\. \w+::|::$|\*\*\w[^*]*\*\*", re.M)


def test_plain_text_drops_inline_markup():
    text = (
        "See :func:`cross_entropy`, :class:`~losskit.functional.FocalLoss` and\n"
        ":mod:`the guide <losskit.guide>`: ``ℓ = −log p_y`` with ``p =\n"
        "softmax(x)``; *emphasis*, **strong**, a * b * c and ``**kwargs``."
    )
    assert plain_text(text) == (
        "See cross_entropy, FocalLoss and\n"
        "the guide: ℓ = −log p_y with p =\n"
        "softmax(x); emphasis, strong, a * b * c and **kwargs."
    )


def test_plain_text_keeps_literal_blocks_and_labels_directives():
    text = (
        "With ``μ`` the mean::\n\n    L = ``x`` * y*z   (verbatim)\n\nAfter ::\n\n"
        "    a_b\n\n.. note:: see :func:`huber`\n.. math::\n\n    e^{*x*}\n\nEnd."
    )
    assert plain_text(text) == (
        "With μ the mean:\n\n    L = ``x`` * y*z   (verbatim)\n\nAfter\n\n"
        "    a_b\n\nNote: see huber\n\n    e^{*x*}\n\nEnd."
    )


@pytest.mark.parametrize(
    ("name", "formula"),
    [
        ("ssim", "    ℓ    = 1 − SSIM                                   (one value per image)"),
        ("focal", "ℓ = −α_y·(1 − p_y)^γ·log p_y with p = softmax(x). alpha=None means no α"),
        (
            "giou",
            "Formula: L = 1 − IoU + (area_C − union) / (area_C + eps), C the smallest "
            "box enclosing",
        ),
        ("proxy_anchor", "+ 1/C Σ_p log(1 + Σ_{x∈X_p⁻} e^{α(s(x,p)+δ)})"),
    ],
)
def test_explain_renders_formulas_as_plain_lines(name, formula):
    assert formula in explain(name).splitlines()


def test_explain_describes_each_of_several_arguments_named_together():
    parameters = explain("ssim").split("\nParameters:\n", 1)[1]
    for name in ("k1=0.01", "k2=0.03"):
        assert re.search(rf"^  {name} +the stability constants \(C1 = ", parameters, re.M)


def test_explain_when_to_use_comes_from_the_tree():
    text = explain("huber")
    assert "regression / outliers: data with outliers." in text
    assert "Module: losskit.HuberLoss(" in text
    assert "delta=1.0" in text


def test_explain_unknown_name():
    with pytest.raises(
        ValueError,
        match=r"explain: expected `name` to be a registered loss "
        r".*got 'foca' \(did you mean 'focal'\?\)",
    ):
        explain("foca")


def test_explain_command(capsys):
    assert main(["explain", "proxy_anchor"]) == 0
    out = capsys.readouterr().out
    assert "alpha=32.0" in out and "delta=0.1" in out and "Kim et al." in out
    assert main(["explain", "proxy_anchr"]) == 2
    assert "did you mean 'proxy_anchor'?" in capsys.readouterr().err


# -------------------------------------------------------------------- focal-stats


@pytest.mark.parametrize("gamma", [0.0, 0.5, 1.0, 2.0, 5.0])
def test_focal_weights_match_modulating_factor(gamma):
    p = torch.linspace(0.01, 0.99, 50, dtype=torch.float64)
    expected = (1 - p.numpy()) ** gamma
    np.testing.assert_allclose(focal_weights(p, gamma).numpy(), expected, rtol=1e-10)


def test_focal_stats_against_numpy():
    p_hard, p_easy = sample_focal_mix(10, 990, seed=3)
    rows = focal_stats(p_hard, p_easy)
    hard, easy = p_hard.numpy(), p_easy.numpy()
    for row, gamma in zip(rows, [0, 1, 2, 5]):
        w_hard, w_easy = np.sum((1 - hard) ** gamma), np.sum((1 - easy) ** gamma)
        assert row.gamma == gamma
        assert row.hard == pytest.approx(w_hard, rel=1e-10)
        assert row.easy == pytest.approx(w_easy, rel=1e-10)
        assert row.n_eff == pytest.approx(w_hard + w_easy, rel=1e-10)
        assert row.reduction == pytest.approx(1000 / (w_hard + w_easy), rel=1e-10)
    assert rows[0].n_eff == pytest.approx(1000)


def test_focal_stats_law_of_large_numbers():
    # E[(1-p)^g] for p ~ U(lo, hi) is ((1-lo)^(g+1) - (1-hi)^(g+1)) / ((g+1)(hi-lo))
    p_hard, p_easy = sample_focal_mix(20000, 20000, seed=0)
    for row in focal_stats(p_hard, p_easy, gammas=[1.0, 2.0]):
        g = row.gamma
        mean_hard = (0.9 ** (g + 1) - 0.5 ** (g + 1)) / ((g + 1) * 0.4)
        mean_easy = (0.1 ** (g + 1) - 0.01 ** (g + 1)) / ((g + 1) * 0.09)
        assert row.hard / 20000 == pytest.approx(mean_hard, rel=0.02)
        assert row.easy / 20000 == pytest.approx(mean_easy, rel=0.02)


def test_sample_focal_mix_ranges_and_seed():
    a_hard, a_easy = sample_focal_mix(5, 7, hard_range=(0.2, 0.3), easy_range=(0.8, 0.85), seed=1)
    b_hard, _ = sample_focal_mix(5, 7, hard_range=(0.2, 0.3), easy_range=(0.8, 0.85), seed=1)
    assert a_hard.shape == (5,) and a_easy.shape == (7,)
    assert ((a_hard >= 0.2) & (a_hard <= 0.3)).all() and ((a_easy >= 0.8) & (a_easy <= 0.85)).all()
    assert torch.equal(a_hard, b_hard)


def test_focal_stats_errors():
    with pytest.raises(ValueError, match=r"focal_weights: expected `p_t` in \(0, 1\), got values"):
        focal_weights(torch.tensor([0.5, 1.0]), 2.0)
    with pytest.raises(ValueError, match=r"focal_weights: expected `gamma` in \[0, inf\), got -1"):
        focal_weights(torch.tensor([0.5]), -1)
    with pytest.raises(ValueError, match=r"expected `hard_range` to be \(low, high\) with 0 < low"):
        sample_focal_mix(hard_range=(0.5, 0.1))
    with pytest.raises(ValueError, match=r"expected `easy_range` .* got \(0.9, 1.0\)"):
        sample_focal_mix(easy_range=(0.9, 1.0))
    with pytest.raises(ValueError, match=r"expected `n_hard` to be an integer >= 0, got -1"):
        sample_focal_mix(n_hard=-1)
    with pytest.raises(ValueError, match=r"expected `n_hard \+ n_easy` to be at least 1, got 0"):
        sample_focal_mix(0, 0)


def test_focal_stats_command(capsys):
    args = ["--n-hard", "20", "--n-easy", "480", "--hard-range", "0.2", "0.6"]
    assert main(["focal-stats", *args, "--gammas", "0", "2", "--seed", "5"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "N = 500: 20 hard, 480 easy" in lines[0]
    assert lines[1].split() == ["gamma", "N_eff", "%", "of", "N", "hard", "easy", "reduction"]
    p_hard, p_easy = sample_focal_mix(20, 480, (0.2, 0.6), (0.9, 0.99), seed=5)
    for line, gamma in zip(lines[2:], [0, 2]):
        cells = line.split()
        n_eff = np.sum((1 - p_hard.numpy()) ** gamma) + np.sum((1 - p_easy.numpy()) ** gamma)
        assert float(cells[0]) == gamma
        assert float(cells[1]) == pytest.approx(n_eff, abs=0.005)
        assert float(cells[5].rstrip("x")) == pytest.approx(500 / n_eff, abs=0.005)
    assert len(lines) == 4


def test_format_focal_stats_shape():
    rows = focal_stats(torch.tensor([0.5]), torch.tensor([0.9]), gammas=[0, 1])
    table = format_focal_stats(rows, 1, 1).splitlines()
    assert len(table) == 4 and table[2].split()[1] == "2.00"
