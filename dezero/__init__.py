"""DeZero: a define-by-run deep learning framework on NumPy (CuPy on a GPU).

Example::

    import numpy as np
    from dezero import Variable
    x = Variable(np.array(3.0))
    y = x ** 2
    y.backward()
    x.grad  # variable(6.0)
"""
from dezero import (  # noqa: F401,E402
    core_simple,
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

# The book switches its early steps to a simpler twin engine when this is True; here there is one
# engine and ``dezero.core_simple`` is an alias of ``dezero.core``, so it stays False.
is_simple_core = False

# Capabilities built on top of the core, loaded at their first use rather than by ``import dezero``.
_ON_USE = {
    'func': ('dezero.func', None),
    'profiler': ('dezero.profiler', None),
    'detect_anomaly': ('dezero.anomaly', 'detect_anomaly'),
    'save_checkpoint': ('dezero.checkpoint', 'save_checkpoint'),
    'load_checkpoint': ('dezero.checkpoint', 'load_checkpoint'),
}


def __getattr__(name: str) -> object:
    if name not in _ON_USE:
        raise AttributeError(f"module 'dezero' has no attribute {name!r}")
    import importlib
    module_name, attribute = _ON_USE[name]
    value = importlib.import_module(module_name)
    if attribute is not None:
        value = getattr(value, attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_ON_USE))
