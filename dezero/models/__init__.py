"""Models: Layers with ``plot``, plus ready-made networks (MLP, Sequential, VGG16, ResNet, SqueezeNet)."""
from dezero.models.base import *  # noqa: F401,F403
from dezero.models.vision import *  # noqa: F401,F403
