"""Convolution and pooling functions (the book's ``dezero.functions_conv``); also exported by ``F``.

The helpers the book's module imports and so exposes (``pair``, ``get_conv_outsize``, ``linear``,
``broadcast_to``, ``as_variable``, ``Function``...) are reachable here too.
"""
from dezero.core import Function, as_variable, broadcast_to  # noqa: F401
from dezero.ops.conv import *  # noqa: F401,F403
from dezero.ops.linalg import linear  # noqa: F401
from dezero.ops.pooling import *  # noqa: F401,F403
from dezero.utils import get_conv_outsize, get_deconv_outsize, pair  # noqa: F401
