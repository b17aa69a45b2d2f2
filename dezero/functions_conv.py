"""Convolution and pooling functions (the book's ``dezero.functions_conv``); also exported by ``F``."""
from dezero.ops.conv import *  # noqa: F401,F403
from dezero.ops.pooling import *  # noqa: F401,F403
