"""``losskit plot <figure> --out FILE.png``: the loss guide's figures (see :mod:`losskit.plots`)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

__all__ = ["FIGURES", "add_parser"]


def _regression(p: argparse.ArgumentParser) -> Callable[[argparse.Namespace], Any]:
    p.add_argument("--delta", type=float, default=1.0, help="Huber's delta (1.0)")
    p.add_argument("--limit", type=float, default=5.0, help="error axis [-limit, limit] (5)")

    def build(a: argparse.Namespace) -> Any:
        from losskit.plots import regression_figure

        return regression_figure(delta=a.delta, limit=a.limit)

    return build


def _focal(p: argparse.ArgumentParser) -> Callable[[argparse.Namespace], Any]:
    p.add_argument(
        "--gammas",
        type=float,
        nargs="+",
        default=[0.0, 0.5, 1.0, 2.0, 5.0],
        help="focusing parameters (0 0.5 1 2 5)",
    )

    def build(a: argparse.Namespace) -> Any:
        from losskit.plots import focal_figure

        return focal_figure(gammas=a.gammas)

    return build


def _classification(p: argparse.ArgumentParser) -> Callable[[argparse.Namespace], Any]:
    p.add_argument("--gamma", type=float, default=2.0, help="focal loss's gamma (2)")
    p.add_argument("--epsilon", type=float, default=0.1, help="label smoothing's epsilon (0.1)")

    def build(a: argparse.Namespace) -> Any:
        from losskit.plots import classification_figure

        return classification_figure(gamma=a.gamma, epsilon=a.epsilon)

    return build


def _proxy(p: argparse.ArgumentParser) -> Callable[[argparse.Namespace], Any]:
    p.add_argument("--alpha", type=float, default=32.0, help="scale alpha (32)")
    p.add_argument("--delta", type=float, default=0.1, help="margin delta (0.1)")
    p.add_argument("--gamma", type=float, default=2.0, help="focal-style pos/neg gamma (2)")

    def build(a: argparse.Namespace) -> Any:
        from losskit.plots import proxy_figure

        return proxy_figure(alpha=a.alpha, delta=a.delta, gamma=a.gamma)

    return build


def _landscape(p: argparse.ArgumentParser) -> Callable[[argparse.Namespace], Any]:
    p.add_argument(
        "--loss",
        default="cross_entropy",
        help="cross_entropy | focal | label_smoothing_cross_entropy (cross_entropy)",
    )
    p.add_argument("--resolution", type=int, default=31, help="grid points per axis (31)")
    p.add_argument("--span", type=float, default=1.0, help="grid half-width (1.0)")
    p.add_argument("--train-steps", type=int, default=150, help="training steps first (150)")
    p.add_argument("--samples", type=int, default=None, help="use the first N digits (all)")
    p.add_argument("--seed", type=int, default=0, help="random seed (0)")

    def build(a: argparse.Namespace) -> Any:
        from losskit.plots import landscape_figure

        return landscape_figure(
            loss=a.loss,
            resolution=a.resolution,
            span=a.span,
            train_steps=a.train_steps,
            samples=a.samples,
            seed=a.seed,
        )

    return build


def _convergence(p: argparse.ArgumentParser) -> Callable[[argparse.Namespace], Any]:
    p.add_argument("--epochs", type=int, default=200, help="full-batch SGD steps (200)")
    p.add_argument("--lr", type=float, default=0.05, help="learning rate (0.05)")
    p.add_argument(
        "--outliers", type=float, default=0.1, help="fraction of outlier training targets (0.1)"
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (0)")

    def build(a: argparse.Namespace) -> Any:
        from losskit.plots import convergence_figure

        return convergence_figure(epochs=a.epochs, lr=a.lr, outliers=a.outliers, seed=a.seed)

    return build


def _run(p: argparse.ArgumentParser) -> Callable[[argparse.Namespace], Any]:
    p.add_argument("run", metavar="RUN", help="run folder holding metrics.jsonl")

    def build(a: argparse.Namespace) -> Any:
        from losskit.plots import run_figure

        return run_figure(a.run)

    return build


def _embeddings(p: argparse.ArgumentParser) -> Callable[[argparse.Namespace], Any]:
    p.add_argument("run", metavar="RUN", help="run folder holding embeddings.npz")
    p.add_argument("--method", choices=("tsne", "pca"), default="tsne", help="projection (tsne)")
    p.add_argument("--max-points", type=int, default=2000, help="subsample to N points (2000)")
    p.add_argument(
        "--no-normalize",
        dest="normalize",
        action="store_false",
        help="do not L2-normalise embeddings and proxies first",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (0)")

    def build(a: argparse.Namespace) -> Any:
        from losskit.plots import embeddings_figure

        return embeddings_figure(
            a.run, method=a.method, max_points=a.max_points, normalize=a.normalize, seed=a.seed
        )

    return build


# figure name -> (help, function adding its options and returning its builder)
FIGURES: dict[
    str, tuple[str, Callable[[argparse.ArgumentParser], Callable[[argparse.Namespace], Any]]]
] = {
    "regression": ("MSE, MAE, Huber, Log-Cosh and their gradients", _regression),
    "focal": ("focal loss vs CE: loss, FL/CE ratio, gradient ratio", _focal),
    "classification": ("CE, focal and label smoothing vs the logit margin", _classification),
    "proxy": ("Proxy-Anchor and focal-style: per-pair term and gradient vs cosine", _proxy),
    "landscape": ("2-D loss landscape of a small MLP (filter-normalised directions)", _landscape),
    "convergence": ("MSE, MAE and Huber training the same model (log scale)", _convergence),
    "run": ("training curves of a run folder (metrics.jsonl)", _run),
    "embeddings": ("t-SNE / PCA of a run's test embeddings with its proxies", _embeddings),
}


def _plot(args: argparse.Namespace) -> int:
    from losskit._plain_checks import check_int
    from losskit.plots import save_figure

    check_int("plot", "--dpi", args.dpi, low=1)
    fig = args.build(args)
    out = save_figure(fig, args.out or f"{args.figure}.png", dpi=args.dpi)
    width, height = (round(v * args.dpi) for v in fig.get_size_inches())
    print(f"wrote {out} ({width}x{height} px)")
    return 0


def add_parser(sub: Any) -> None:
    """Register ``losskit plot`` and one sub-command per figure."""
    from losskit._extras import add_missing_extra_parser, missing_modules

    text = "draw a figure of the loss guide to a PNG"
    if missing_modules("plot"):
        add_missing_extra_parser(sub, "plot", text, "plot")
        return
    p = sub.add_parser(
        "plot",
        help=text,
        description="Draw a figure to a PNG (matplotlib, no display needed). Every curve is "
        "computed from losskit's own loss functions, gradients by autograd.",
    )
    figures = p.add_subparsers(dest="figure", metavar="FIGURE", required=True)
    for name, (text, options) in FIGURES.items():
        fp = figures.add_parser(name, help=text, description=text)
        fp.add_argument(
            "--out", default=None, metavar="FILE.png", help=f"output PNG (default: {name}.png)"
        )
        fp.add_argument("--dpi", type=int, default=100, help="pixels per inch (100)")
        fp.set_defaults(func=_plot, build=options(fp))
