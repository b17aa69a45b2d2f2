"""DeZero: a define-by-run deep learning framework on NumPy (CuPy on a GPU).

Example::

    import numpy as np
    from dezero import Variable
    x = Variable(np.array(3.0))
    y = x ** 2
    y.backward()
    x.grad  # variable(6.0)
"""
from dezero import (  # noqa: F401,E402  # noqa: F401,E402
    cuda,
    dataloaders,
    datasets,
    functions,
    functions_conv,
    layers,
    models,
    optimizers,
    transforms,
    utils,
)
from dezero._threads import get_num_threads, set_num_threads  # noqa: F401
from dezero.core import (  # noqa: F401
    Config,
    Function,
    Parameter,
    Variable,
    as_array,
    as_variable,
    no_grad,
    setup_variable,
    test_mode,
    using_config,
)
from dezero.dataloaders import DataLoader, SeqDataLoader  # noqa: F401,E402
from dezero.datasets import Dataset  # noqa: F401,E402
from dezero.layers import Layer  # noqa: F401,E402
from dezero.models import Model  # noqa: F401,E402

__version__ = '0.1.0'
