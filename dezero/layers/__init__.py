"""Layers (the book's ``import dezero.layers as L``): parameter containers with a ``forward``."""
from dezero.layers.base import *  # noqa: F401,F403
from dezero.layers.conv import *  # noqa: F401,F403
from dezero.layers.recurrent import *  # noqa: F401,F403
