"""The book's ``dezero.core_simple`` import path (steps 23-32), an alias of ``dezero.core``.

The book keeps a simpler twin of its engine here for the early steps; this project has one engine,
so every name below *is* the ``dezero.core`` object (``core_simple.Variable is core.Variable``).
The book's steps 28-29 run ``from dezero.core_simple import Variable, setup_variable`` when
``dezero.is_simple_core`` is False, as it is here.
"""
from dezero.core import (  # noqa: F401
    Add,
    Config,
    Div,
    Function,
    Mul,
    Neg,
    Parameter,
    Pow,
    Sub,
    Variable,
    add,
    as_array,
    as_variable,
    div,
    mul,
    neg,
    no_grad,
    pow,
    rdiv,
    rsub,
    setup_variable,
    sub,
    using_config,
)
