"""Activations: sigmoid, relu, leaky_relu, softmax, log_softmax; beyond the book: gelu, softplus,
log_sigmoid, silu (alias swish).

Every forward is numerically stable for large scores (no overflow for ±1000) and keeps the input dtype.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from dezero import _memory
from dezero._parallel import split_apply
from dezero.core import Function, Variable, as_variable
from dezero.cuda import get_array_module
from dezero.ops.math import exp, run_elementwise, tanh
from dezero.ops.reduction import _reduced_axes, sum

__all__ = ['Sigmoid', 'ReLU', 'ReLUGrad', 'LeakyReLU', 'Softmax', 'LogSoftmax', 'Softplus', 'LogSigmoid',
           'sigmoid', 'relu', 'leaky_relu', 'softmax', 'log_softmax', 'gelu', 'softplus', 'log_sigmoid',
           'silu', 'swish', 'sigmoid_simple', 'softmax_simple']

def _sigmoid_array(x: Any) -> Any:
    """``1 / (1 + exp(-x))`` without overflow and with full relative precision on both tails."""
    xp = get_array_module(x)
    e = xp.abs(x, out=xp.empty_like(x))  # an array also for 0-d x, whose ufuncs return scalars
    xp.negative(e, out=e)
    xp.exp(e, out=e)  # exp(-|x|) in (0, 1]: never overflows
    # x >= 0: 1 / (1 + e);  x < 0: e / (1 + e) = exp(x) / (1 + exp(x)), exact where y is tiny. As
    # e <= 1, the numerator is max(e, x >= 0), cheaper than a ``where``.
    y = xp.maximum(e, x >= 0)
    e += 1
    y /= e
    return y


def _softplus_array(x: Any) -> Any:
    """``log(1 + exp(x))`` as ``max(x, 0) + log1p(exp(-|x|))``: no overflow, exact on both tails."""
    xp = get_array_module(x)
    return xp.maximum(x, 0) + xp.log1p(xp.exp(-xp.abs(x)))


class Sigmoid(Function):
    """Elementwise logistic function; backward reads the output: ``gy * y * (1 - y)``."""

    def forward(self, x: Any) -> Any:
        return _sigmoid_array(x)

    def backward(self, gy: Variable) -> Variable:
        y = self.outputs[0]()
        return run_elementwise(self.grads, gy, sigmoid(self.inputs[0]) if y is None else y)

    @staticmethod
    def grads(ops: Any, gy: Any, y: Any, _: None) -> Any:
        return gy * y * (1 - y)


def sigmoid(x: Any) -> Variable:
    """Logistic function ``1 / (1 + exp(-x))``, elementwise on any shape; stable for any magnitude."""
    return Sigmoid()(x)


def sigmoid_simple(x: Any) -> Variable:
    """The book's sigmoid composed from basic ops (``exp``, ``*``, ``+``, ``/``), equal to ``sigmoid``.

    Written as ``sigmoid`` computes it, so that no exponent overflows (the literal ``1 / (1 + exp(-x))``
    gives NaN gradients below x = -88 in float32): with ``e = exp(-|x|)``, ``1 / (1 + e)`` where
    ``x >= 0`` and ``e / (1 + e)`` elsewhere; which case applies is a constant of the formula.
    Any shape; the gradient is built by the ops it uses, so it can be differentiated again.
    """
    x = as_variable(x)
    positive = (x.data >= 0).astype(x.dtype)  # 1 where x >= 0, else 0
    e = exp(x * (1 - 2 * positive))  # exp(-|x|) in (0, 1]
    return (positive + (1 - positive) * e) / (1 + e)


class ReLU(Function):
    """Elementwise ``max(x, 0)``; backward multiplies by the constant mask ``x > 0``."""

    def forward(self, x: Any) -> Any:
        xp = get_array_module(x)
        y = _memory.empty(xp, x.shape, x.dtype)
        split_apply(lambda x_part, y_part: xp.maximum(x_part, 0, out=y_part), x.reshape(-1),
                    y.reshape(-1))
        return y

    def backward(self, gy: Variable) -> Variable:
        return ReLUGrad(self.inputs[0].data)(gy)


class ReLUGrad(Function):
    """relu's backward: ``gy`` times the mask ``x > 0`` of the constant input ``x``, any shape.

    As relu is piecewise linear its second derivative is zero, so this op's own gradient is itself.
    """

    def __init__(self, x: Any) -> None:
        self.x = x

    def forward(self, gy: Any) -> Any:
        gx = _memory.empty(get_array_module(gy), gy.shape, gy.dtype)
        split_apply(_masked_into, gy.reshape(-1), self.x.reshape(-1), gx.reshape(-1))
        return gx

    def backward(self, ggx: Variable) -> Variable:
        return ReLUGrad(self.x)(ggx)


def _masked_into(gy: Any, x: Any, gx: Any) -> None:
    """``gx = gy * (x > 0)``: the mask is written as 0/1 in ``gx``'s dtype, then multiplied in place
    (20% faster than multiplying by the boolean array, which NumPy casts element by element)."""
    xp = get_array_module(gy)
    xp.greater(x, 0, out=gx)
    xp.multiply(gx, gy, out=gx)


def relu(x: Any) -> Variable:
    """``max(x, 0)`` elementwise on any shape; the gradient is 1 where ``x > 0``, else 0."""
    return ReLU()(x)


class LeakyReLU(Function):
    """Elementwise ``x if x > 0 else slope * x``; backward multiplies by ``1`` or ``slope``."""

    def __init__(self, slope: float) -> None:
        self.slope = slope

    def forward(self, x: Any) -> Any:
        xp = get_array_module(x)
        return xp.where(x > 0, x, x * x.dtype.type(self.slope))

    def backward(self, gy: Variable) -> Variable:
        x = self.inputs[0].data
        xp = get_array_module(x)
        return gy * xp.where(x > 0, x.dtype.type(1), x.dtype.type(self.slope))


def leaky_relu(x: Any, slope: float = 0.2) -> Variable:
    """``x`` where ``x > 0``, else ``slope * x``; elementwise on any shape."""
    return LeakyReLU(slope)(x)


def _max_keepdims(name: str, x: Any, axis: Any) -> Any:
    """``x.max(axis, keepdims=True)``; a bad ``axis`` raises an error naming ``name`` and the shape."""
    try:
        return x.max(axis=axis, keepdims=True)
    except (ValueError, TypeError):  # a bad axis (checked only after a failure: no cost otherwise)
        _reduced_axes(name, axis, x.shape)
        raise


class Softmax(Function):
    """Softmax along ``axis``; backward reads the output: ``y * gy - y * sum(y * gy, axis)``."""

    def __init__(self, axis: Any) -> None:
        self.axis = axis

    def forward(self, x: Any) -> Any:
        xp = get_array_module(x)
        y = x - _max_keepdims('softmax', x, self.axis)
        xp.exp(y, out=y)
        y /= y.sum(axis=self.axis, keepdims=True)
        return y

    def backward(self, gy: Variable) -> Variable:
        y = self.outputs[0]()
        if y is None:
            y = softmax(self.inputs[0], self.axis)
        gx = y * gy
        return gx - y * sum(gx, self.axis, keepdims=True)


def softmax(x: Any, axis: int | tuple[int, ...] = 1) -> Variable:
    """``exp(x) / sum(exp(x), axis)`` with the max subtracted first; ``x (N, C)`` → ``(N, C)``."""
    return Softmax(axis)(x)


def softmax_simple(x: Any, axis: int | tuple[int, ...] = 1) -> Variable:
    """The book's softmax composed from basic ops: ``exp(x) / sum(exp(x), axis, keepdims=True)``.

    ``x (N, C)`` (any shape) → same shape, equal to ``softmax``. The max along ``axis`` is subtracted
    first as a constant: softmax does not change under that shift, and no exponent overflows.
    """
    x = as_variable(x)
    y = exp(x - _max_keepdims('softmax_simple', x.data, axis))
    return y / sum(y, axis, keepdims=True)


class LogSoftmax(Function):
    """Log-softmax along ``axis``; backward reads the output: ``gy - exp(y) * sum(gy, axis)``."""

    def __init__(self, axis: Any) -> None:
        self.axis = axis

    def forward(self, x: Any) -> Any:
        xp = get_array_module(x)
        # (x - max) - log(sum): subtracting the max first keeps float32 digits when scores are large.
        y = x - _max_keepdims('log_softmax', x, self.axis)
        y -= xp.log(xp.exp(y).sum(axis=self.axis, keepdims=True))
        return y

    def backward(self, gy: Variable) -> Variable:
        y = self.outputs[0]()
        if y is None:
            y = log_softmax(self.inputs[0], self.axis)
        return gy - exp(y) * sum(gy, self.axis, keepdims=True)


def log_softmax(x: Any, axis: int | tuple[int, ...] = 1) -> Variable:
    """``x - logsumexp(x, axis)``: the log of ``softmax``, finite even for scores of ±1000."""
    return LogSoftmax(axis)(x)


class Softplus(Function):
    """Elementwise ``log(1 + exp(beta * x)) / beta``; backward is ``gy * sigmoid(beta * x)``."""

    def __init__(self, beta: float) -> None:
        self.beta = beta

    def forward(self, x: Any) -> Any:
        if self.beta == 1:
            return _softplus_array(x)
        beta = x.dtype.type(self.beta)
        return _softplus_array(x * beta) / beta

    def backward(self, gy: Variable) -> Variable:
        x = self.inputs[0]
        return gy * sigmoid(x if self.beta == 1 else x * self.beta)


def softplus(x: Any, beta: float = 1.0) -> Variable:
    """``log(1 + exp(beta * x)) / beta`` elementwise, computed without overflow (exact, no threshold).

    Matches ``torch.nn.functional.softplus(x, beta)`` up to torch's linear cut-off above
    ``beta * x > 20`` (a difference below 3e-9).
    """
    return Softplus(beta)(x)


class LogSigmoid(Function):
    """Elementwise ``-softplus(-x)``; backward is ``gy * sigmoid(-x)``."""

    def forward(self, x: Any) -> Any:
        return -_softplus_array(-x)

    def backward(self, gy: Variable) -> Variable:
        return gy * sigmoid(-self.inputs[0])


def log_sigmoid(x: Any) -> Variable:
    """``log(sigmoid(x)) = -softplus(-x)`` elementwise; finite and exact for logits of any size."""
    return LogSigmoid()(x)


def _erf_array(x: Any) -> Any:
    xp = get_array_module(x)
    if xp is np:
        # NumPy has no erf ufunc; math.erf is exact and this path is not performance-critical.
        return np.vectorize(math.erf, otypes=[x.dtype])(x)
    import cupyx.scipy.special
    return cupyx.scipy.special.erf(x)


class _Erf(Function):
    def forward(self, x: Any) -> Any:
        return _erf_array(x)

    def backward(self, gy: Variable) -> Variable:
        x = self.inputs[0]
        return gy * (2 / math.sqrt(math.pi)) * exp(-(x * x))


def gelu(x: Any, approximate: str = 'none') -> Variable:
    """Gaussian error linear unit ``x * Phi(x)`` elementwise on any shape, as ``torch.nn.functional.gelu``.

    ``approximate='none'`` (default) uses the exact normal CDF ``Phi(x) = (1 + erf(x / sqrt 2)) / 2``;
    ``approximate='tanh'`` uses ``(1 + tanh(sqrt(2/pi) * (x + 0.044715 x**3))) / 2``.
    Built from differentiable ops, so derivatives of any order work.
    """
    x = as_variable(x)
    if approximate == 'none':
        return x * (0.5 * _Erf()(x * (1 / math.sqrt(2))) + 0.5)
    if approximate == 'tanh':
        inner = (x + 0.044715 * x * x * x) * math.sqrt(2 / math.pi)
        return x * (0.5 * tanh(inner) + 0.5)
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


def silu(x: Any) -> Variable:
    """``x * sigmoid(x)`` elementwise on any shape (SiLU, also called swish)."""
    x = as_variable(x)
    return x * sigmoid(x)


swish = silu
