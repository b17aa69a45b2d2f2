"""Backward formulas written once and run two ways: on Variables or on their arrays.

A backward must be built from differentiable ops when the backward pass is recorded
(``create_graph=True``), so that it can be differentiated again. In a training loop nothing is
recorded, and then building a Function and Variables for every product, transpose and sum of a
gradient is pure overhead: on the small products of a recurrent step or of a regression head it was
most of the backward's time. So such an op writes its gradient as a function of an operations
namespace ``ops`` and its operands; ``run_backward`` runs it on the Variables with ``VariableOps``
(dezero's ops) when the pass is recorded, else on their arrays with ``ArrayOps``, and wraps the
results. Arithmetic operators and the ``.T``/``.sum``/``.reshape`` methods mean the same on both;
the operations that differ are the namespaces' members. The elementwise ops of ``dezero.core`` and
``dezero.ops.math`` run their formulas the same way over the smaller namespaces these extend.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from dezero import _parallel
from dezero.core import Config, Variable, as_gradients
from dezero.cuda import get_array_module
from dezero.ops.activation import _sigmoid_array, sigmoid
from dezero.ops.math import ArrayMath, VariableMath
from dezero.ops.misc import concat, stack


class ArrayOps(ArrayMath):
    """The operations on NumPy/CuPy arrays (nothing recorded)."""

    matmul = staticmethod(_parallel.matmul)
    sigmoid = staticmethod(_sigmoid_array)

    @staticmethod
    def stack(parts: Sequence[Any]) -> Any:
        # np.stack's checks in Python cost more than the copy of a recurrent step's gates.
        return get_array_module(parts[0]).concatenate([p[None] for p in parts])

    @staticmethod
    def concat(parts: Sequence[Any], axis: int = 0) -> Any:
        return get_array_module(parts[0]).concatenate(parts, axis=axis)


class VariableOps(VariableMath):
    """The same operations as dezero's differentiable ops on Variables."""

    sigmoid = staticmethod(sigmoid)
    stack = staticmethod(stack)
    concat = staticmethod(concat)

    @staticmethod
    def matmul(a: Variable, b: Variable) -> Variable:
        return a @ b  # Variable's operator: dezero.ops.linalg.matmul


def run_backward(formula: Callable[..., tuple[Any, ...]], *operands: Any) -> tuple[Variable | None, ...]:
    """``formula(ops, *operands)``, a tuple of gradients (None for an input that needs none): on the
    Variables with ``VariableOps`` when the backward is recorded, else on their arrays (operands that
    are not Variables pass unchanged) with ``ArrayOps``, each gradient then wrapped as a Variable."""
    if Config.enable_backprop:
        return formula(VariableOps, *operands)
    return as_gradients(formula(ArrayOps, *[x.data if isinstance(x, Variable) else x for x in operands]))
