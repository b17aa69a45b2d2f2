"""Models: Layers with ``plot``, plus ready-made networks (MLP, Sequential, VGG16, ResNet, SqueezeNet).

``dezero.models.Layer`` is the layer base class, as the book's module exposes it.
"""
from dezero.layers import Layer  # noqa: F401
from dezero.models.base import *  # noqa: F401,F403
from dezero.models.vision import *  # noqa: F401,F403
