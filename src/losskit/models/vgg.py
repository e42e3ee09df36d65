"""The VGG16 convolutional trunk, laid out exactly like ``torchvision.models.vgg16().features``.

torchvision is an optional extra, so the layout is rebuilt here from its configuration: the
``nn.Sequential`` index of every layer, and so every ``state_dict`` key (``0.weight``,
``0.bias``, ``2.weight``, ...), is the one torchvision uses. Pretrained weights are never
downloaded: load a local ``state_dict`` file (``torch.load(path, weights_only=True)``) or pass a
module you built yourself.

Reference:
    Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image Recognition",
    ICLR 2015.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from losskit._checks import check_choice, fail

__all__ = ["VGG16_LAYERS", "VGG16Features", "vgg16_features"]

# Output channels of each 3x3 convolution; "M" is a 2x2 max-pool (configuration "D" of the paper).
_CONFIG: tuple[int | str, ...] = (
    64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M",
)  # fmt: skip


def _relu_indices() -> dict[str, int]:
    """``relu<block>_<conv>`` -> index of that ReLU in the ``features`` Sequential."""
    names: dict[str, int] = {}
    index, block, conv = 0, 1, 0
    for item in _CONFIG:
        if item == "M":
            index, block, conv = index + 1, block + 1, 0
        else:
            conv += 1
            names[f"relu{block}_{conv}"] = index + 1  # the ReLU right after the convolution
            index += 2
    return names


#: Named ReLU outputs of VGG16 and their index in ``vgg16().features`` (``relu1_2`` -> 3, ...).
VGG16_LAYERS: dict[str, int] = _relu_indices()


def vgg16_features(num_layers: int | None = None) -> nn.Sequential:
    """A randomly initialised VGG16 ``features`` trunk with torchvision's layer indices.

    Args:
        num_layers: keep only the first ``num_layers`` layers (all 31 when ``None``).

    Returns:
        ``nn.Sequential`` whose ``state_dict`` keys match ``torchvision.models.vgg16().features``.

    Example:
        >>> vgg16_features(4)
        Sequential(
          (0): Conv2d(3, 64, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))
          (1): ReLU()
          (2): Conv2d(64, 64, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))
          (3): ReLU()
        )
    """
    layers: list[nn.Module] = []
    channels = 3
    for item in _CONFIG:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            out = int(item)
            layers += [nn.Conv2d(channels, out, kernel_size=3, padding=1), nn.ReLU()]
            channels = out
    return nn.Sequential(*layers[:num_layers])


def _load_state_dict(fn: str, path: str | os.PathLike[str], trunk: nn.Sequential) -> None:
    """Load a local VGG16 (or VGG16 ``features``) state_dict into ``trunk`` (a prefix of it)."""
    if not os.path.isfile(path):
        fail(fn, "backbone", "to be a VGG16 state_dict file", f"no file at {path}",
             kind=FileNotFoundError)  # fmt: skip
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, Mapping):
        fail(fn, "backbone", "a file holding a state_dict", type(state).__name__, kind=TypeError)
    # A whole-model state_dict names the trunk "features.<i>.<param>"; keep only the trunk.
    if any(str(k).startswith("features.") for k in state):
        state = {k[len("features.") :]: v for k, v in state.items() if k.startswith("features.")}
    wanted = trunk.state_dict()
    missing = sorted(set(wanted) - set(state))
    if missing:
        expected = "a VGG16 state_dict with keys 0.weight, 0.bias, 2.weight, ..."
        fail(fn, "backbone", expected, f"one missing {missing[:4]}")
    trunk.load_state_dict({k: state[k] for k in wanted}, strict=True)


class VGG16Features(nn.Module):
    """Frozen VGG16 feature extractor returning the activations at named ReLU layers.

    The trunk is cut after the deepest requested layer, its parameters never require grad, and it
    stays in eval mode whatever ``.train()`` is called with. Inputs are RGB images in ``[0, 1]``,
    normalised with the ImageNet mean and standard deviation when ``normalize_input`` is true, and
    cast to the dtype of the trunk's parameters (half-precision images into a float32 trunk, or
    float32 images into a float64 one).

    Args:
        backbone: an ``nn.Sequential`` laid out like ``vgg16().features`` (frozen in place), a path
            to a local state_dict file of ``vgg16()`` or ``vgg16().features``, or ``None`` for a
            randomly initialised trunk (untrained: useful for tests, not as a perceptual metric).
        layers: names from :data:`VGG16_LAYERS`, e.g. ``("relu1_2", "relu2_2")``.
        normalize_input: subtract the ImageNet mean and divide by its standard deviation.

    Raises:
        ValueError: an unknown layer name (the valid ones are listed), no layer, a backbone too
            short for the requested layers, or a state_dict without VGG16 keys.
        TypeError: a backbone that is neither a module, a path nor ``None``.
    """

    mean: Tensor
    std: Tensor

    def __init__(
        self,
        backbone: nn.Module | str | os.PathLike[str] | None = None,
        *,
        layers: Sequence[str] = ("relu1_2", "relu2_2", "relu3_3", "relu4_3"),
        normalize_input: bool = True,
        fn: str = "VGG16Features",
    ) -> None:
        super().__init__()
        names = list(VGG16_LAYERS)
        if isinstance(layers, str) or len(layers) == 0:
            fail(fn, "layers", "a non-empty sequence of VGG16 layer names", repr(layers))
        self.layers = tuple(check_choice(fn, "layers", name, names) for name in layers)
        depth = max(VGG16_LAYERS[name] for name in self.layers) + 1
        if backbone is None or isinstance(backbone, (str, os.PathLike)):
            trunk = vgg16_features(depth)
            if backbone is not None:
                _load_state_dict(fn, backbone, trunk)
        elif isinstance(backbone, nn.Sequential):
            if len(backbone) < depth:
                fail(fn, "backbone", f"at least {depth} layers for {self.layers}", len(backbone))
            trunk = nn.Sequential(*list(backbone)[:depth])
        else:
            fail(
                fn,
                "backbone",
                "an nn.Sequential, a state_dict path or None",
                type(backbone).__name__,
                kind=TypeError,
            )
        trunk.requires_grad_(False)
        self.trunk = trunk.eval()
        self.normalize_input = bool(normalize_input)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def train(self, mode: bool = True) -> VGG16Features:
        """Keep the frozen trunk in eval mode whatever ``mode`` is."""
        super().train(mode)
        self.trunk.eval()
        return self

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        """Activations ``{layer: Tensor[N, C_l, H_l, W_l]}`` of ``images (Tensor[N, 3, H, W])``,
        in the trunk's dtype (the images are cast to it; gradients flow back through the cast)."""
        param = next(self.trunk.parameters(), None)
        x = images if param is None else images.to(param.dtype)
        if self.normalize_input:
            x = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        wanted = {VGG16_LAYERS[name]: name for name in self.layers}
        out: dict[str, Tensor] = {}
        for index, layer in enumerate(self.trunk):
            x = layer(x)
            if index in wanted:
                out[wanted[index]] = x
        return out
