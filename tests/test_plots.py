"""Tests of losskit.plots and ``losskit plot``: figure structure, curve values, PNG files."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from matplotlib.colors import to_rgba
from PIL import Image
from torch import nn

import losskit.functional as LF
from losskit.cli import main
from losskit.plots import (
    classification_figure,
    convergence_curves,
    convergence_figure,
    embeddings_figure,
    filter_normalized_direction,
    focal_figure,
    landscape_figure,
    loss_landscape,
    proxy_contributions,
    proxy_figure,
    read_metrics,
    regression_figure,
    run_figure,
    save_figure,
)
from losskit.plots.training import _regression_data


def curves(ax):
    """The labelled lines of an axes (reference lines such as axhline have no label)."""
    return {ln.get_label(): ln for ln in ax.get_lines() if not ln.get_label().startswith("_")}


def size_px(fig):
    w, h = fig.get_size_inches()
    return round(w * 100), round(h * 100)


# ------------------------------------------------------------------ fixtures


@pytest.fixture
def run_dir(tmp_path):
    rng = np.random.default_rng(0)
    records = []
    for epoch in range(1, 6):
        records.append(
            {
                "epoch": epoch,
                "Loss/Total": 3.0 / epoch,
                "Loss/CE": 2.0 / epoch,
                "Loss/Proxy": 4.0 / epoch,
                "lr": 1e-3 * 0.1 ** (epoch - 1),
                "Eval/accuracy": 1 - 0.5 / epoch,
                "Eval/recall_at_1": 1 - 0.6 / epoch,
                "time_s": 1.0,
            }
        )
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    means = rng.normal(size=(4, 6)) * 4
    labels = np.repeat(np.arange(4), 15)
    features = means[labels] + rng.normal(size=(60, 6))
    np.savez(tmp_path / "embeddings.npz", features=features, labels=labels, proxies=means)
    return tmp_path


# ------------------------------------------------------------------ curve figures


def test_regression_figure_structure_and_values():
    fig = regression_figure(points=41)
    assert size_px(fig) == (1000, 400)
    ax_loss, ax_grad = fig.axes
    assert len(fig.axes) == 2 and len(curves(ax_loss)) == 4 and len(curves(ax_grad)) == 4
    e = torch.tensor(curves(ax_loss)["MSE"].get_xdata(), requires_grad=True)
    zero = torch.zeros_like(e)
    references = {
        "MSE": F.mse_loss(e, zero, reduction="none"),
        "MAE": F.l1_loss(e, zero, reduction="none"),
        "Huber (δ=1)": F.huber_loss(e, zero, reduction="none", delta=1.0),
        "Log-Cosh": torch.log(torch.cosh(e)),
    }
    for label, ref in references.items():
        (grad,) = torch.autograd.grad(ref.sum(), e)
        np.testing.assert_allclose(curves(ax_loss)[label].get_ydata(), ref.detach(), atol=1e-10)
        np.testing.assert_allclose(curves(ax_grad)[label].get_ydata(), grad, atol=1e-10)


def test_focal_figure_structure_and_values():
    fig = focal_figure(points=25)
    assert size_px(fig) == (1500, 450)
    ax_loss, ax_ratio, ax_grad = fig.axes
    assert [len(curves(a)) for a in fig.axes] == [5, 4, 3]
    assert ax_ratio.get_yscale() == "log"
    p = np.asarray(curves(ax_loss)["CE (γ=0)"].get_xdata())
    for gamma in (0.0, 0.5, 1.0, 2.0, 5.0):
        label = "CE (γ=0)" if gamma == 0 else f"FL (γ={gamma:g})"
        expected = -((1 - p) ** gamma) * np.log(p)
        np.testing.assert_allclose(curves(ax_loss)[label].get_ydata(), expected, rtol=1e-9)
    for gamma in (0.5, 1.0, 2.0, 5.0):
        np.testing.assert_allclose(
            curves(ax_ratio)[f"γ={gamma:g}"].get_ydata(), (1 - p) ** gamma, rtol=1e-9
        )
    # |dFL/dz| / |dCE/dz| with p = sigmoid(z), derived by hand:
    # dFL/dz = -(1-p)^g [(1-p) - g p log p],  dCE/dz = -(1-p)
    for gamma in (1.0, 2.0, 5.0):
        expected = (1 - p) ** (gamma - 1) * ((1 - p) - gamma * p * np.log(p))
        np.testing.assert_allclose(curves(ax_grad)[f"γ={gamma:g}"].get_ydata(), expected, rtol=1e-8)


def test_classification_figure_structure_and_values():
    fig = classification_figure(points=31)
    ax_loss, ax_grad = fig.axes
    assert size_px(fig) == (1000, 400) and [len(curves(a)) for a in fig.axes] == [3, 3]
    m = torch.tensor(curves(ax_loss)["cross-entropy"].get_xdata(), requires_grad=True)
    logits = torch.stack([m, torch.zeros_like(m)], dim=-1)
    target = torch.zeros(len(m), dtype=torch.long)
    p = torch.softmax(logits, -1)[:, 0]
    references = {
        "cross-entropy": F.cross_entropy(logits, target, reduction="none"),
        "focal (γ=2)": -((1 - p) ** 2) * torch.log(p),
        "label smoothing (ε=0.1)": F.cross_entropy(
            logits, target, reduction="none", label_smoothing=0.1
        ),
    }
    for label, ref in references.items():
        (grad,) = torch.autograd.grad(ref.sum(), m)
        np.testing.assert_allclose(curves(ax_loss)[label].get_ydata(), ref.detach(), rtol=1e-8)
        np.testing.assert_allclose(curves(ax_grad)[label].get_ydata(), grad, atol=1e-10)
    # label smoothing stops pushing at m* = log((1 - eps/2) / (eps/2))
    ls = curves(ax_grad)["label smoothing (ε=0.1)"].get_ydata()
    crossing = m.detach().numpy()[np.argmin(np.abs(ls))]
    assert crossing == pytest.approx(np.log(0.95 / 0.05), abs=0.25)


@pytest.mark.parametrize("positive", [True, False])
@pytest.mark.parametrize("gamma", [0.0, 2.0])
def test_proxy_contributions_match_single_pair_formula(positive, gamma):
    s = torch.linspace(-0.95, 0.95, 15, dtype=torch.float64, requires_grad=True)
    alpha, delta = 32.0, 0.1
    if positive:
        w = (1 - s).clamp(0, 1) ** gamma
        ref = torch.log1p(w * torch.exp(-alpha * (s - delta)))
    else:
        w = s.clamp(0, 1) ** gamma if gamma else torch.ones_like(s)
        ref = torch.log1p(w * torch.exp(alpha * (s + delta)))
    (ref_grad,) = torch.autograd.grad(ref.sum(), s)
    value, grad = proxy_contributions(s.detach().numpy(), positive=positive, gamma=gamma)
    np.testing.assert_allclose(value, ref.detach(), rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-6, atol=1e-8)


def test_proxy_contributions_error():
    with pytest.raises(ValueError, match=r"expected `similarity` in \(-1, 1\), got values"):
        proxy_contributions([0.0, 1.0], positive=True)


def test_proxy_figure_structure():
    fig = proxy_figure(points=11)
    assert size_px(fig) == (1000, 750) and len(fig.axes) == 4
    assert [len(curves(a)) for a in fig.axes] == [2, 2, 2, 2]
    assert fig.axes[0].get_yscale() == "log" and fig.axes[1].get_yscale() == "linear"
    pos_term = curves(fig.axes[0])["ProxyAnchor"]
    value, _ = proxy_contributions(pos_term.get_xdata(), positive=True)
    np.testing.assert_allclose(pos_term.get_ydata(), value)


# ----------------------------------------------------------- trained-model figures


def test_filter_normalized_direction():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Conv1d(4, 3, 2))
    d = filter_normalized_direction(model, torch.Generator().manual_seed(1))
    for name, p in model.named_parameters():
        if p.dim() == 1:
            assert torch.count_nonzero(d[name]) == 0
        else:
            np.testing.assert_allclose(
                d[name].flatten(1).norm(dim=1), p.detach().flatten(1).norm(dim=1), rtol=1e-5
            )


def test_loss_landscape_values():
    torch.manual_seed(0)
    model = nn.Linear(3, 4)
    x, y = torch.randn(16, 3), torch.randint(0, 4, (16,))
    a, b, grid = loss_landscape(model, LF.cross_entropy, x, y, resolution=5, span=0.5, seed=2)
    assert grid.shape == (5, 5) and a[2] == 0 and b[2] == 0
    with torch.no_grad():
        centre = float(F.cross_entropy(model(x), y))
    assert grid[2, 2] == pytest.approx(centre, rel=1e-6)
    # one off-centre point by moving a copy of the model by hand
    gen = torch.Generator().manual_seed(2)
    d1 = filter_normalized_direction(model, gen)
    d2 = filter_normalized_direction(model, gen)
    moved = nn.Linear(3, 4)
    with torch.no_grad():
        for name, p in moved.named_parameters():
            p.copy_(dict(model.named_parameters())[name] + a[4] * d1[name] + b[1] * d2[name])
    with torch.no_grad():
        assert grid[1, 4] == pytest.approx(float(F.cross_entropy(moved(x), y)), rel=1e-6)
        assert float(F.cross_entropy(model(x), y)) == centre  # the model itself is untouched


def test_landscape_figure_structure():
    fig = landscape_figure(resolution=5, train_steps=3, samples=120)
    assert size_px(fig) == (650, 550)
    ax, colourbar = fig.axes
    assert len(curves(ax)) == 1  # the trained-weights marker
    assert ax.collections, "no contour drawn"
    assert colourbar.get_ylabel() == "cross_entropy (log scale)"


def test_landscape_unknown_loss():
    with pytest.raises(ValueError, match=r"expected `loss` one of 'cross_entropy'.*got 'mse'"):
        landscape_figure(loss="mse", resolution=3, train_steps=0, samples=20)


def test_convergence_curves_start_at_the_loss_of_the_initial_model():
    got = convergence_curves(epochs=3, samples=200, seed=4)
    x, y, _, _ = _regression_data(200, 0.1, torch.Generator().manual_seed(4))
    torch.manual_seed(4)
    with torch.no_grad():
        pred = nn.Linear(10, 1)(x)
    assert got["mse"][0][0] == pytest.approx(float(F.mse_loss(pred, y)), rel=1e-6)
    assert got["mae"][0][0] == pytest.approx(float(F.l1_loss(pred, y)), rel=1e-6)
    assert got["huber"][0][0] == pytest.approx(float(F.huber_loss(pred, y)), rel=1e-6)


def test_convergence_outliers_hurt_mse_most():
    got = convergence_curves(epochs=150, samples=400, outliers=0.1)
    final_rmse = {name: test[-1] for name, (_, test) in got.items()}
    assert final_rmse["mae"] < final_rmse["mse"] and final_rmse["huber"] < final_rmse["mse"]
    clean = convergence_curves(epochs=150, samples=400, outliers=0.0)
    assert clean["mse"][1][-1] < 0.05  # without outliers MSE recovers the true weights


@pytest.mark.parametrize("gammas", [(0.0, 0.5, 1.0, 2.0, 5.0), (3.0, 1.0, 0.25, 0.0)])
def test_focal_figure_one_colour_per_gamma_in_every_panel(gammas):
    colour_of = {}
    for ax in focal_figure(gammas=gammas, points=9).axes:
        for label, line in curves(ax).items():
            gamma = float(re.search(r"γ=([\d.]+)", label).group(1))
            colour_of.setdefault(gamma, set()).add(to_rgba(line.get_color()))
    assert set(colour_of) == set(gammas)
    assert all(len(colours) == 1 for colours in colour_of.values()), colour_of
    assert len({c for colours in colour_of.values() for c in colours}) == len(gammas)


def _log_axes(fig):
    fig.draw_without_rendering()  # tick labels are made when the figure is drawn
    return [ax for ax in fig.axes if ax.get_yscale() == "log"]


def _labels(ticks, low, high):
    return [t.get_text() for t in ticks if t.get_text() and low <= t.get_position()[1] <= high]


@pytest.mark.parametrize(
    "make",
    [
        lambda run: focal_figure(points=25),
        lambda run: focal_figure(gammas=(0.1, 0.2), points=25),  # under a decade
        lambda run: convergence_figure(epochs=30, samples=60),
        lambda run: proxy_figure(points=41),
        lambda run: run_figure(run),
    ],
    ids=["focal", "focal-narrow", "convergence", "proxy", "run"],
)
def test_log_axes_label_major_ticks_only(make, run_dir):
    axes = _log_axes(make(run_dir))
    assert axes
    for ax in axes:
        low, high = ax.get_ylim()
        assert _labels(ax.yaxis.get_minorticklabels(), low, high) == []
        majors = _labels(ax.yaxis.get_majorticklabels(), low, high)
        assert len(majors) >= 2, (ax.get_title(), majors)


def test_convergence_figure_structure():
    fig = convergence_figure(epochs=5, samples=50)
    assert size_px(fig) == (1000, 400)
    assert [len(curves(a)) for a in fig.axes] == [3, 3]
    assert all(a.get_yscale() == "log" for a in fig.axes)
    assert len(curves(fig.axes[0])["MSE"].get_xdata()) == 5


# ------------------------------------------------------------------ run figures


def test_run_figure_structure_and_values(run_dir):
    fig = run_figure(run_dir)
    assert size_px(fig) == (1350, 400)
    ax_loss, ax_eval, ax_lr = fig.axes
    assert list(curves(ax_loss)) == ["Total", "CE", "Proxy"]
    assert list(curves(ax_eval)) == ["accuracy", "recall_at_1"]
    assert len(ax_lr.get_lines()) == 1
    assert ax_lr.get_yscale() == "log"  # spans 10^4
    assert ax_loss.get_yscale() == "linear"  # spans a factor 5 only
    np.testing.assert_allclose(curves(ax_loss)["CE"].get_ydata(), [2.0 / e for e in range(1, 6)])
    np.testing.assert_allclose(curves(ax_loss)["CE"].get_xdata(), range(1, 6))


def test_run_figure_ce_only_run_skips_missing_and_nan(tmp_path):
    lines = [
        {"epoch": 1, "Loss/Total": 2.0, "Loss/CE": 2.0},
        {"epoch": 2, "Loss/Total": float("nan"), "Loss/CE": 1.0},
        {"epoch": 3, "Loss/Total": 0.5, "Loss/CE": 0.5},
    ]
    (tmp_path / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in lines) + "\n\n")
    fig = run_figure(tmp_path / "metrics.jsonl")
    (ax,) = fig.axes
    assert list(curves(ax)) == ["Total", "CE"]
    np.testing.assert_allclose(curves(ax)["Total"].get_xdata(), [1, 3])


def test_run_errors(tmp_path):
    with pytest.raises(
        FileNotFoundError,
        match=r"expected `run` to be a run folder containing "
        r"metrics.jsonl, got '.*nowhere'",
    ):
        run_figure(tmp_path / "nowhere")
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"epoch": 1, "Loss/CE": 1}\n{oops\n')
    with pytest.raises(ValueError, match=r"read_metrics: expected `line 2` to be a JSON object"):
        read_metrics(tmp_path)
    path.write_text('{"Loss/CE": 1}\n')
    with pytest.raises(ValueError, match=r"expected `line 1` to be a JSON object with an `epoch`"):
        read_metrics(tmp_path)
    path.write_text("\n")
    with pytest.raises(ValueError, match=r"expected `metrics.jsonl` to hold at least one epoch"):
        read_metrics(tmp_path)
    path.write_text('{"epoch": 1, "lr": 0.1}\n')
    with pytest.raises(ValueError, match=r"run_figure: expected `metrics.jsonl` to hold `Loss/\*`"):
        run_figure(tmp_path)


def test_embeddings_figure_pca(run_dir):
    fig = embeddings_figure(run_dir, method="pca")
    assert size_px(fig) == (700, 600)
    ax, colourbar = fig.axes
    points, stars = ax.collections
    assert len(points.get_offsets()) == 60 and len(stars.get_offsets()) == 4
    # each proxy has the colour of its class's points
    data = np.load(run_dir / "embeddings.npz")
    point_colours = points.to_rgba(points.get_array())  # colour-mapped class indices
    for c, colour in enumerate(stars.get_facecolors()):
        first = int(np.flatnonzero(data["labels"] == c)[0])
        np.testing.assert_allclose(colour[:3], point_colours[first][:3])
    # proxies sit in their class's cluster: nearest class centre in the projection
    xy = np.asarray(points.get_offsets())
    centres = np.stack([xy[data["labels"] == c].mean(0) for c in range(4)])
    nearest = np.argmin(((stars.get_offsets()[:, None] - centres[None]) ** 2).sum(-1), axis=1)
    assert list(nearest) == [0, 1, 2, 3]
    assert [t.get_text() for t in colourbar.get_yticklabels()] == ["0", "1", "2", "3"]


def test_embeddings_figure_tsne_without_proxies_and_subsampled(tmp_path):
    rng = np.random.default_rng(1)
    labels = np.arange(40) % 2 + 7  # unseen classes, as in the retrieval protocol
    np.savez(tmp_path / "embeddings.npz", features=rng.normal(size=(40, 5)), labels=labels)
    fig = embeddings_figure(tmp_path, method="tsne", max_points=30)
    ax = fig.axes[0]
    assert len(ax.collections) == 1 and len(ax.collections[0].get_offsets()) == 30
    assert ax.get_legend() is None
    assert ax.get_title() == "t-SNE of 30 test embeddings, 2 classes"


def test_embeddings_proxies_of_other_classes_are_black(tmp_path):
    rng = np.random.default_rng(2)
    np.savez(
        tmp_path / "embeddings.npz",
        features=rng.normal(size=(20, 3)),
        labels=np.arange(20) % 2 + 5,
        proxies=rng.normal(size=(5, 3)),
    )
    fig = embeddings_figure(tmp_path, method="pca")
    stars = fig.axes[0].collections[1]
    assert (stars.get_facecolors() == to_rgba("black")).all()


def _trained_run(tmp_path, protocol):
    """A tiny run on six named classes of vectors: retrieval trains on 3, tests on the other 3."""
    import io

    from losskit.train.config import load_config
    from losskit.train.loop import train

    rng = np.random.default_rng(0)
    names = np.array(["ant", "bee", "cat", "dog", "eel", "fox"])
    for split, n in (("train", 120), ("test", 60)):
        y = np.arange(n) % 6
        x = rng.normal(size=(n, 8)) + 3 * np.eye(6, 8)[y]
        np.save(tmp_path / f"{split}_data.npy", x.astype(np.float32))
        np.save(tmp_path / f"{split}_labels.npy", names[y])
    overrides = {"dataset": "npy", "data_dir": str(tmp_path), "protocol": protocol,
                 "loss_type": "combined", "epochs": 1, "hidden_dim": 16, "embedding_dim": 8,
                 "batch_size": 32, "quiet": True, "output_dir": str(tmp_path / "run"),
                 "val_fraction": 0}  # fmt: skip
    train(load_config(overrides=overrides), stream=io.StringIO())
    return tmp_path / "run"


def test_embeddings_of_a_retrieval_run_keep_training_proxies_apart(tmp_path):
    run = _trained_run(tmp_path, "retrieval")
    data = np.load(run / "embeddings.npz")
    assert str(data["protocol"]) == "retrieval"
    assert list(data["class_names"]) == ["dog", "eel", "fox"]  # the unseen half, by label
    assert list(data["proxy_class_names"]) == ["ant", "bee", "cat"]
    # 3 test classes labelled 0..2 and 3 proxies: only the saved protocol tells them apart
    assert sorted(set(data["labels"])) == [0, 1, 2] and len(data["proxies"]) == 3
    fig = embeddings_figure(run, method="pca")
    ax, colourbar = fig.axes
    stars = ax.collections[1]
    assert (stars.get_facecolors() == to_rgba("black")).all()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "proxies of the 3 training classes"
    ]
    assert [t.get_text() for t in colourbar.get_yticklabels()] == ["dog", "eel", "fox"]
    assert ax.get_title().endswith("3 unseen classes")


def test_embeddings_of_a_classification_run_show_class_names(tmp_path):
    run = _trained_run(tmp_path, "classification")
    fig = embeddings_figure(run, method="pca")
    ax, colourbar = fig.axes
    points, stars = ax.collections
    assert [t.get_text() for t in colourbar.get_yticklabels()] == [
        "ant", "bee", "cat", "dog", "eel", "fox"
    ]  # fmt: skip
    colours = points.to_rgba(np.arange(6))
    np.testing.assert_allclose(stars.get_facecolors(), colours)  # proxy c in class c's colour


def test_embeddings_several_proxies_per_class_take_their_class_colour(tmp_path):
    rng = np.random.default_rng(3)
    np.savez(
        tmp_path / "embeddings.npz",
        features=rng.normal(size=(20, 3)),
        labels=np.arange(20) % 2,
        proxies=rng.normal(size=(4, 3)),  # 2 classes x 2 proxies, class-major
        protocol=np.array("classification"),
        class_names=np.array(["no", "yes"]),
        proxy_class_names=np.array(["no", "yes"]),
    )
    fig = embeddings_figure(tmp_path, method="pca")
    points, stars = fig.axes[0].collections
    expected = points.to_rgba(np.array([0, 0, 1, 1]))
    np.testing.assert_allclose(stars.get_facecolors(), expected)
    assert [t.get_text() for t in fig.axes[1].get_yticklabels()] == ["no", "yes"]


def test_embeddings_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"containing embeddings.npz"):
        embeddings_figure(tmp_path)
    np.savez(tmp_path / "embeddings.npz", features=np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"expected `embeddings.npz` to hold an array `labels`"):
        embeddings_figure(tmp_path)
    np.savez(tmp_path / "embeddings.npz", features=np.zeros((4, 2)), labels=np.zeros(3))
    with pytest.raises(ValueError, match=r"expected `labels` of shape \(4,\) matching features"):
        embeddings_figure(tmp_path)
    np.savez(
        tmp_path / "embeddings.npz",
        features=np.zeros((4, 2)),
        labels=np.zeros(4),
        proxies=np.zeros((2, 3)),
    )
    with pytest.raises(ValueError, match=r"expected `proxies` of shape \(C, 2\) matching"):
        embeddings_figure(tmp_path)
    with pytest.raises(ValueError, match=r"expected `method` one of 'tsne', 'pca', got 'umap'"):
        embeddings_figure(tmp_path, method="umap")


# ------------------------------------------------------------- files and commands


def test_save_figure_atomic_and_png_only(tmp_path):
    fig = regression_figure(points=5)
    out = save_figure(fig, tmp_path / "sub" / "r.png", dpi=50)
    with Image.open(out) as image:
        assert image.size == (500, 200) and image.mode == "P"  # 256-colour palette
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["r.png"]
    assert out.stat().st_mode & 0o044  # readable by others as umask allows, not 0600
    full = save_figure(fig, tmp_path / "full.png", dpi=50, palette=False)
    with Image.open(full) as image:
        assert image.size == (500, 200) and image.mode == "RGBA"
    with pytest.raises(ValueError, match=r"save_figure: expected `path` to end in .png"):
        save_figure(fig, tmp_path / "r.jpg")


COMMANDS = {
    "regression": ([], (1000, 400)),
    "focal": ([], (1500, 450)),
    "classification": ([], (1000, 400)),
    "proxy": (["--gamma", "1"], (1000, 750)),
    "landscape": (["--resolution", "4", "--train-steps", "2", "--samples", "60"], (650, 550)),
    "convergence": (["--epochs", "10"], (1000, 400)),
    "run": (["{run}"], (1350, 400)),
    "embeddings": (["{run}", "--method", "pca"], (700, 600)),
}


@pytest.mark.parametrize("figure", list(COMMANDS))
def test_plot_command_writes_png(figure, run_dir, tmp_path, capsys):
    extra, expected = COMMANDS[figure]
    out = tmp_path / "out" / f"{figure}.png"
    argv = ["plot", figure, *[a.format(run=run_dir) for a in extra], "--out", str(out)]
    assert main(argv) == 0
    assert out.stat().st_size > 5000
    with Image.open(out) as image:
        assert image.format == "PNG" and image.size == expected
    assert capsys.readouterr().out.strip() == f"wrote {out} ({expected[0]}x{expected[1]} px)"


def test_plot_command_errors(tmp_path, capsys):
    assert main(["plot", "run", str(tmp_path), "--out", str(tmp_path / "x.png")]) == 2
    assert "containing metrics.jsonl" in capsys.readouterr().err
    assert main(["plot", "regression", "--out", str(tmp_path / "x.svg")]) == 2
    assert "to end in .png" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["plot", "histogram"])
