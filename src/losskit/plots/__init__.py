"""The loss guide's figures (matplotlib ``Figure`` objects, no pyplot, no display needed).

Each ``*_figure`` function returns a :class:`matplotlib.figure.Figure`; :func:`save_figure`
writes it as a PNG atomically. ``losskit plot <figure> --out FILE.png`` wraps them. Every curve
comes from :mod:`losskit.functional` (values) and autograd (gradients).
"""

from losskit.plots._common import save_figure, value_and_grad
from losskit.plots.curves import (
    classification_figure,
    focal_figure,
    proxy_contributions,
    proxy_figure,
    regression_figure,
)
from losskit.plots.runs import embeddings_figure, load_embeddings, read_metrics, run_figure
from losskit.plots.training import (
    LANDSCAPE_LOSSES,
    convergence_curves,
    convergence_figure,
    filter_normalized_direction,
    landscape_figure,
    loss_landscape,
)

__all__ = [
    "LANDSCAPE_LOSSES",
    "classification_figure",
    "convergence_curves",
    "convergence_figure",
    "embeddings_figure",
    "filter_normalized_direction",
    "focal_figure",
    "landscape_figure",
    "load_embeddings",
    "loss_landscape",
    "proxy_contributions",
    "proxy_figure",
    "read_metrics",
    "regression_figure",
    "run_figure",
    "save_figure",
    "value_and_grad",
]
