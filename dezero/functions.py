"""All differentiable functions, flat (the book's ``import dezero.functions as F``).

Ops live in ``dezero.ops`` grouped by kind; each module lists its public names in ``__all__``. The
core names the book's ``functions`` module also exposes (``F.Variable``, ``F.Function``, ``F.SumTo``...)
are re-exported here.
"""
from dezero.core import (  # noqa: F401
    BroadcastTo,
    Function,
    SumTo,
    Variable,
    add,
    as_array,
    as_variable,
    div,
    mul,
    neg,
    pow,
    rdiv,
    rpow,
    rsub,
    sub,
)
from dezero.ops.activation import *  # noqa: F401,F403
from dezero.ops.conv import *  # noqa: F401,F403
from dezero.ops.linalg import *  # noqa: F401,F403
from dezero.ops.loss import *  # noqa: F401,F403
from dezero.ops.math import *  # noqa: F401,F403
from dezero.ops.misc import *  # noqa: F401,F403
from dezero.ops.normalization import *  # noqa: F401,F403
from dezero.ops.pooling import *  # noqa: F401,F403
from dezero.ops.recurrent import *  # noqa: F401,F403
from dezero.ops.reduction import *  # noqa: F401,F403
from dezero.ops.shape import *  # noqa: F401,F403
