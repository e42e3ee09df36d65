"""Small network building blocks the losses need (no weights are ever downloaded)."""

from losskit.models.vgg import VGG16_LAYERS, VGG16Features, vgg16_features

__all__ = ["VGG16_LAYERS", "VGG16Features", "vgg16_features"]
