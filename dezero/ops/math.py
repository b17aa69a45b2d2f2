"""Elementwise math: sin, cos, tanh, exp, log. Each backward is written with these same ops.

The forwards call NumPy ufuncs directly: a CuPy array overrides them through ``__array_ufunc__``, so
they run on the GPU unchanged, without a get_array_module call on these per-op hot paths.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from dezero.core import Function, Variable

__all__ = ['Sin', 'Cos', 'Tanh', 'Exp', 'Log', 'sin', 'cos', 'tanh', 'exp', 'log']


class Sin(Function):
    def forward(self, x: Any) -> Any:
        return np.sin(x)

    def backward(self, gy: Variable) -> Variable:
        return gy * cos(self.inputs[0])


def sin(x: Any) -> Variable:
    """Elementwise sine; any shape."""
    return Sin()(x)


class Cos(Function):
    def forward(self, x: Any) -> Any:
        return np.cos(x)

    def backward(self, gy: Variable) -> Variable:
        return gy * -sin(self.inputs[0])


def cos(x: Any) -> Variable:
    """Elementwise cosine; any shape."""
    return Cos()(x)


class Tanh(Function):
    def forward(self, x: Any) -> Any:
        return np.tanh(x)

    def backward(self, gy: Variable) -> Variable:
        y = self.outputs[0]()
        if y is None:
            y = tanh(self.inputs[0])
        return gy * (1 - y * y)


def tanh(x: Any) -> Variable:
    """Elementwise hyperbolic tangent; any shape."""
    return Tanh()(x)


class Exp(Function):
    def forward(self, x: Any) -> Any:
        return np.exp(x)

    def backward(self, gy: Variable) -> Variable:
        y = self.outputs[0]()
        if y is None:
            y = exp(self.inputs[0])
        return gy * y


def exp(x: Any) -> Variable:
    """Elementwise e**x; any shape."""
    return Exp()(x)


class Log(Function):
    def forward(self, x: Any) -> Any:
        return np.log(x)

    def backward(self, gy: Variable) -> Variable:
        return gy / self.inputs[0]


def log(x: Any) -> Variable:
    """Elementwise natural logarithm; any shape."""
    return Log()(x)
