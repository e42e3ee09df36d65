"""The trainer's network: a backbone, an embedding head and a classifier head.

``EmbeddingNet(x) -> (features (B, D), logits (B, C))``. The backbone is chosen by name or, with
``"auto"``, by the rank of one sample: ``(L,)`` -> MLP, ``(C, L)`` -> residual 1-D CNN,
``(C, H, W)`` -> small 2-D CNN. ``resnet18`` / ``resnet50`` come from torchvision (the ``vision``
extra) with weights from a local file. Proxies are not here: they belong to the proxy loss.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from losskit._checks import fail
from losskit.losses.metric.proxies import proxy_similarity

__all__ = [
    "CosineClassifier",
    "EmbeddingNet",
    "build_backbone",
    "build_model",
    "load_weights",
    "resolve_backbone",
]
PRETRAINED_BACKBONES = ("resnet18", "resnet50")

_FN = "build_model"


def resolve_backbone(name: str, sample_shape: Sequence[int]) -> str:
    """The concrete backbone for ``name``; ``"auto"`` picks by the rank of ``sample_shape``."""
    if name != "auto":
        return name
    by_rank = {1: "mlp", 2: "cnn1d", 3: "cnn2d"}
    if len(sample_shape) not in by_rank:
        fail(_FN, "sample shape", "(L,), (C, L) or (C, H, W)", tuple(sample_shape))
    return by_rank[len(sample_shape)]


class MLP(nn.Module):
    """Two hidden layers with batch norm, for vectors ``(B, L)``."""

    def __init__(self, in_features: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.out_features = hidden
        self.net = nn.Sequential(
            nn.Linear(in_features, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.flatten(1))


class _Residual1d(nn.Module):
    """Basic residual block: conv-bn-relu-conv-bn plus a (projected) skip, then relu."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv1d(cin, cout, 3, stride, 1, bias=False),
            nn.BatchNorm1d(cout),
            nn.ReLU(inplace=True),
            nn.Conv1d(cout, cout, 3, 1, 1, bias=False),
            nn.BatchNorm1d(cout),
        )
        self.skip = (
            nn.Identity()
            if cin == cout and stride == 1
            else nn.Sequential(nn.Conv1d(cin, cout, 1, stride, bias=False), nn.BatchNorm1d(cout))
        )

    def forward(self, x: Tensor) -> Tensor:
        return torch.relu(self.body(x) + self.skip(x))


class CNN1d(nn.Module):
    """A small residual 1-D CNN for signals ``(B, C, L)``, globally average-pooled."""

    def __init__(self, channels: int, width: int = 32) -> None:
        super().__init__()
        self.out_features = 4 * width
        self.net = nn.Sequential(
            nn.Conv1d(channels, width, 7, 1, 3, bias=False),
            nn.BatchNorm1d(width),
            nn.ReLU(inplace=True),
            _Residual1d(width, width, 1),
            _Residual1d(width, 2 * width, 2),
            _Residual1d(2 * width, 4 * width, 2),
            nn.AdaptiveAvgPool1d(1),
            nn.Flatten(),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def _conv_bn(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class CNN2d(nn.Module):
    """A small 2-D CNN for images ``(B, C, H, W)``; large images get a strided stem first.

    The last feature map is average-pooled to a ``grid × grid`` map and flattened, so the
    features keep where things are in the image (``grid=1``: global average pooling). Global
    pooling keeps only what is present: cross-entropy then learns features that separate the
    training classes but transfer poorly to unseen ones (CE's Recall@1 on the unseen glyph
    classes of ``benchmarks/trainer_quality.py``: 0.48 with ``grid=1``, 0.85 with ``grid=4``).
    """

    def __init__(self, channels: int, size: int, width: int = 32, grid: int = 4) -> None:
        super().__init__()
        self.out_features = 4 * width * grid * grid
        # Bring large inputs down to about 32 pixels cheaply before the main stages.
        stem: list[nn.Module] = []
        while size > 32:
            stem.append(_conv_bn(channels if not stem else width, width, 2))
            size = math.ceil(size / 2)
        cin = width if stem else channels
        self.net = nn.Sequential(
            *stem,
            _conv_bn(cin, width),
            _conv_bn(width, 2 * width),
            nn.MaxPool2d(2, ceil_mode=True),
            _conv_bn(2 * width, 4 * width),
            nn.AdaptiveAvgPool2d(grid),
            nn.Flatten(),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class ResNet(nn.Module):
    """A torchvision ResNet without its classifier; 1-channel input is repeated to 3."""

    def __init__(self, name: str, weights: str | os.PathLike[str] | None) -> None:
        super().__init__()
        try:
            from torchvision import models  # type: ignore[import-not-found,unused-ignore]
        except ImportError:
            raise ImportError(
                f"backbone {name!r} needs torchvision: pip install 'losskit[vision]'"
            ) from None
        net = getattr(models, name)(weights=None)
        self.out_features = net.fc.in_features
        net.fc = nn.Identity()
        if weights is not None:
            load_weights(net, weights, skip_prefix="fc.")  # the ImageNet classifier is replaced
        self.net = net

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, *x.shape[2:])
        return self.net(x)


def _unwrap(state: object) -> dict[str, Tensor]:
    """The tensors of a weights file: under a ``state_dict`` or ``model`` key if wrapped, with a
    ``module.`` prefix (``DataParallel`` / DDP) removed."""
    while isinstance(state, dict) and not any(isinstance(v, Tensor) for v in state.values()):
        inner = next((state[k] for k in ("state_dict", "model") if k in state), None)
        if inner is None:
            break
        state = inner
    if not isinstance(state, dict):
        return {}
    prefixed = bool(state) and all(str(k).startswith("module.") for k in state)
    return {str(k).removeprefix("module.") if prefixed else str(k): v for k, v in state.items()}


def load_weights(
    module: nn.Module, path: str | os.PathLike[str], *, skip_prefix: str | None = None
) -> None:
    """Load a weights file into ``module`` strictly (every key present, none left over).

    The file may be a plain ``state_dict``, one wrapped under ``state_dict`` or ``model``, and
    its keys may carry a ``module.`` prefix; keys starting with ``skip_prefix`` are ignored.
    Read with ``torch.load(weights_only=True)``.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file's keys or shapes do not match ``module`` (missing and unexpected
            keys are listed).
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{_FN}: no pretrained weights file at {p}")
    try:
        raw = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as err:
        fail(_FN, "pretrained_weights", "a state_dict file torch can load", f"{p} ({err})")
    state = {
        k: v for k, v in _unwrap(raw).items() if not (skip_prefix and k.startswith(skip_prefix))
    }
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        fail(
            _FN,
            "pretrained_weights",
            f"the keys of the {type(module).__name__} backbone",
            f"{p}: missing {_listing(missing)}; unexpected {_listing(unexpected)}",
        )
    wrong = [k for k in own if tuple(state[k].shape) != tuple(own[k].shape)]
    if wrong:
        k = wrong[0]
        fail(
            _FN,
            "pretrained_weights",
            "tensors of the backbone's shapes",
            f"{p}: {len(wrong)} mismatch(es), e.g. {k} {tuple(state[k].shape)} in the file, "
            f"{tuple(own[k].shape)} in the model",
        )
    module.load_state_dict(state, strict=True)


def _listing(keys: list[str], shown: int = 5) -> str:
    if not keys:
        return "none"
    more = f" and {len(keys) - shown} more" if len(keys) > shown else ""
    return f"{len(keys)} ({', '.join(keys[:shown])}{more})"


def build_backbone(
    name: str,
    sample_shape: Sequence[int],
    *,
    hidden_dim: int = 256,
    dropout: float = 0.1,
    weights: str | os.PathLike[str] | None = None,
    pool_grid: int = 4,
) -> nn.Module:
    """The backbone ``name`` for samples of ``sample_shape``; it has an ``out_features`` attribute.

    Raises:
        ValueError: the backbone does not fit the rank of the samples, or ``weights`` are given
            for a backbone that takes none (only the ResNets do).
        ImportError: a ResNet without torchvision installed.
    """
    shape = tuple(int(s) for s in sample_shape)
    name = resolve_backbone(name, shape)
    if weights is not None and name not in PRETRAINED_BACKBONES:
        fail(
            _FN,
            "pretrained_weights",
            f"none for backbone {name!r} (only {', '.join(PRETRAINED_BACKBONES)} load weights)",
            repr(str(weights)),
        )
    needs = {"mlp": (1,), "cnn1d": (2,), "cnn2d": (3,), "resnet18": (3,), "resnet50": (3,)}
    if len(shape) not in needs[name]:
        layouts = {1: "(L,)", 2: "(C, L)", 3: "(C, H, W)"}
        fail(_FN, "samples", f"of shape {layouts[needs[name][0]]} for backbone {name!r}", shape)
    if name == "mlp":
        return MLP(shape[0], hidden_dim, dropout)
    if name == "cnn1d":
        return CNN1d(shape[0])
    if name == "cnn2d":
        return CNN2d(shape[0], max(shape[1:]), grid=pool_grid)
    return ResNet(name, weights)


class CosineClassifier(nn.Module):
    """Normalised-softmax head: ``logits = σ·cos(features, w_c)`` for one weight vector a class.

    Cross-entropy on these logits is :func:`losskit.functional.cosine_softmax_cross_entropy`
    (Wang et al., "NormFace", 2017); the trainer computes the ``(B, C)`` logits it also predicts
    from, while the library function is the chunked form for very large ``C``.
    """

    def __init__(self, embedding_dim: int, num_classes: int, scale: float) -> None:
        super().__init__()
        self.scale = scale
        self.weight = nn.Parameter(torch.empty(num_classes, embedding_dim))
        nn.init.kaiming_normal_(self.weight, mode="fan_out")

    def forward(self, features: Tensor) -> Tensor:
        return self.scale * proxy_similarity(features, self.weight)


class EmbeddingNet(nn.Module):
    """Backbone -> embedding head (``features``) -> classifier head (``logits``).

    Args:
        backbone: any module with an ``out_features`` attribute.
        embedding_dim: ``D``, the size of ``features``.
        num_classes: ``C``, the size of ``logits``.
        classifier: ``"linear"`` (``W·x + b``) or ``"cosine"`` (:class:`CosineClassifier`).
        cosine_scale: the scale ``σ`` of the cosine classifier.

    Returns (forward): ``features (Tensor[B, D])`` and ``logits (Tensor[B, C])``.
    """

    def __init__(
        self,
        backbone: nn.Module,
        embedding_dim: int,
        num_classes: int,
        *,
        classifier: str = "linear",
        cosine_scale: float = 16.0,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        width = int(backbone.out_features)  # type: ignore[arg-type]
        self.embedding = nn.Linear(width, embedding_dim)
        self.classifier: nn.Module = (
            CosineClassifier(embedding_dim, num_classes, cosine_scale)
            if classifier == "cosine"
            else nn.Linear(embedding_dim, num_classes)
        )

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        features = self.embedding(self.backbone(x))
        return features, self.classifier(features)

    def freeze_backbone(self, frozen: bool) -> None:
        """Freeze (or unfreeze) the backbone's parameters, for ``freeze_epochs``."""
        for p in self.backbone.parameters():
            p.requires_grad_(not frozen)


def build_model(
    backbone: str,
    sample_shape: Sequence[int],
    num_classes: int,
    *,
    embedding_dim: int,
    hidden_dim: int = 256,
    dropout: float = 0.1,
    weights: str | os.PathLike[str] | None = None,
    classifier: str = "linear",
    cosine_scale: float = 16.0,
    pool_grid: int = 4,
) -> EmbeddingNet:
    """An :class:`EmbeddingNet` with the named backbone (see :func:`build_backbone`)."""
    net = build_backbone(
        backbone,
        sample_shape,
        hidden_dim=hidden_dim,
        dropout=dropout,
        weights=weights,
        pool_grid=pool_grid,
    )
    return EmbeddingNet(
        net, embedding_dim, num_classes, classifier=classifier, cosine_scale=cosine_scale
    )
