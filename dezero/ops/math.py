"""Elementwise math: sin, cos, tanh, exp, log. Each backward is one formula (``grads``), run on
Variables with these same ops when the backward is recorded, else on arrays (``run_elementwise``).

The forwards call NumPy ufuncs directly: a CuPy array overrides them through ``__array_ufunc__``, so
they run on the GPU unchanged, without a get_array_module call on these per-op hot paths.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from dezero.core import ArrayArithmetic, Function, Variable, VariableArithmetic, backward_runner

__all__ = ['Sin', 'Cos', 'Tanh', 'Exp', 'Log', 'sin', 'cos', 'tanh', 'exp', 'log']


class Sin(Function):
    def forward(self, x: Any) -> Any:
        return np.sin(x)

    def backward(self, gy: Variable) -> Variable:
        return run_elementwise(self.grads, gy, self.inputs[0])

    @staticmethod
    def grads(ops: Any, gy: Any, x: Any, _: None) -> Any:
        return gy * ops.cos(x)


def sin(x: Any) -> Variable:
    """Elementwise sine; any shape."""
    return Sin()(x)


class Cos(Function):
    def forward(self, x: Any) -> Any:
        return np.cos(x)

    def backward(self, gy: Variable) -> Variable:
        return run_elementwise(self.grads, gy, self.inputs[0])

    @staticmethod
    def grads(ops: Any, gy: Any, x: Any, _: None) -> Any:
        return gy * -ops.sin(x)


def cos(x: Any) -> Variable:
    """Elementwise cosine; any shape."""
    return Cos()(x)


class Tanh(Function):
    def forward(self, x: Any) -> Any:
        return np.tanh(x)

    def backward(self, gy: Variable) -> Variable:
        y = self.outputs[0]()
        return run_elementwise(self.grads, gy, tanh(self.inputs[0]) if y is None else y)

    @staticmethod
    def grads(ops: Any, gy: Any, y: Any, _: None) -> Any:
        return gy * (1 - y * y)


def tanh(x: Any) -> Variable:
    """Elementwise hyperbolic tangent; any shape."""
    return Tanh()(x)


class Exp(Function):
    def forward(self, x: Any) -> Any:
        return np.exp(x)

    def backward(self, gy: Variable) -> Variable:
        y = self.outputs[0]()
        return run_elementwise(self.grads, gy, exp(self.inputs[0]) if y is None else y)

    @staticmethod
    def grads(ops: Any, gy: Any, y: Any, _: None) -> Any:
        return gy * y


def exp(x: Any) -> Variable:
    """Elementwise e**x; any shape."""
    return Exp()(x)


class Log(Function):
    def forward(self, x: Any) -> Any:
        return np.log(x)

    def backward(self, gy: Variable) -> Variable:
        return run_elementwise(self.grads, gy, self.inputs[0])

    @staticmethod
    def grads(ops: Any, gy: Any, x: Any, _: None) -> Any:
        return gy / x


def log(x: Any) -> Variable:
    """Elementwise natural logarithm; any shape."""
    return Log()(x)


class ArrayMath(ArrayArithmetic):
    """Backward formulas' operations on arrays, with this module's functions (ufuncs: CuPy overrides them)."""

    sin, cos, tanh, exp = np.sin, np.cos, np.tanh, np.exp


class VariableMath(VariableArithmetic):
    """The same on Variables: this module's differentiable ops."""

    sin, cos, tanh, exp, log = (staticmethod(f) for f in (sin, cos, tanh, exp, log))


# ``run_elementwise(formula, gy, x, operand=None)`` over these namespaces (see ``backward_runner``).
run_elementwise = backward_runner(ArrayMath, VariableMath)
