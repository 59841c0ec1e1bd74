"""The engine's layer types, by the `type` name a layer dict carries."""

from __future__ import annotations

from .activations import ACTIVATIONS, ActivationLayer
from .base import ActivatedLayer, Layer
from .conv2d import Conv2D
from .dense import Dense
from .dropout import Dropout, DropoutBase, GaussianDropout, SpatialDropout2D
from .flatten import Flatten
from .permute import Permute
from .pooling import AvgPool2D, MaxPool2D

LAYER_TYPES: dict[str, type[Layer]] = {
    cls.type_name: cls
    for cls in (Dense, Conv2D, MaxPool2D, AvgPool2D, Flatten, Dropout, SpatialDropout2D,
                GaussianDropout, ActivationLayer, Permute)
}
"""Layer classes by type name. Activation names ("relu", "softmax", ...) are also accepted as
types: {"type": "relu"} means {"type": "activation", "activation": "relu"}."""

__all__ = [
    "ACTIVATIONS",
    "LAYER_TYPES",
    "ActivatedLayer",
    "ActivationLayer",
    "AvgPool2D",
    "Conv2D",
    "Dense",
    "Dropout",
    "DropoutBase",
    "Flatten",
    "GaussianDropout",
    "Layer",
    "MaxPool2D",
    "Permute",
    "SpatialDropout2D",
]
