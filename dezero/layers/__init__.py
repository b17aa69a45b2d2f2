"""Layers (the book's ``import dezero.layers as L``): parameter containers with a ``forward``.

``L.Parameter`` and ``L.pair`` are here too, as in the book's module.
"""
from dezero.core import Parameter  # noqa: F401
from dezero.layers.base import *  # noqa: F401,F403
from dezero.layers.conv import *  # noqa: F401,F403
from dezero.layers.recurrent import *  # noqa: F401,F403
from dezero.utils import pair  # noqa: F401
