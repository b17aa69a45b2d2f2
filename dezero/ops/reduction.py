"""Reductions: sum, average (alias mean), max, min and logsumexp."""
from __future__ import annotations

from typing import Any

import numpy as np

from dezero._checks import normalize_axes
from dezero.core import Function, Variable, as_variable, broadcast_to
from dezero.cuda import get_array_module
from dezero.ops.math import exp
from dezero.ops.shape import reshape
from dezero.utils import reshape_sum_backward

__all__ = ['Sum', 'Max', 'Min', 'LogSumExp', 'sum', 'average', 'mean', 'max', 'min', 'logsumexp']


class Sum(Function):
    def __init__(self, axis: Any, keepdims: bool) -> None:
        self.axis = axis
        self.keepdims = keepdims

    def forward(self, x: Any) -> Any:
        try:
            return x.sum(axis=self.axis, keepdims=self.keepdims)
        except (ValueError, TypeError):  # a bad axis: name the op (checked only after a failure)
            _reduced_axes('sum', self.axis, x.shape)
            raise

    def backward(self, gy: Variable) -> Variable:
        x_shape = self.inputs[0].shape
        gy = reshape_sum_backward(gy, x_shape, self.axis, self.keepdims)
        return broadcast_to(gy, x_shape)


def sum(x: Any, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Variable:
    """Sum of ``x`` over ``axis`` (all axes when None), keeping reduced axes as 1 with ``keepdims``."""
    if isinstance(axis, list):
        axis = tuple(axis)
    return Sum(axis, keepdims)(x)


def _reduced_axes(name: str, axis: Any, shape: tuple[int, ...]) -> tuple[int, ...]:
    """Normalise ``axis`` (None, an int or a sequence of ints) to sorted non-negative axes of ``shape``;
    a repeated axis is a ValueError."""
    axes = normalize_axes(name, axis, shape)
    normalised = sorted(set(axes))
    if len(normalised) != len(axes):
        raise ValueError(f'{name}: axis {axis!r} repeats an axis')
    return tuple(normalised)


def _kept_shape(shape: tuple[int, ...], axes: tuple[int, ...]) -> tuple[int, ...]:
    """``shape`` with the reduced ``axes`` kept as length 1 (the keepdims shape of a reduction)."""
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def average(x: Any, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Variable:
    """Arithmetic mean of ``x`` over ``axis`` (all axes when None); reduced axes kept as 1 with ``keepdims``.

    The result has the shape of ``sum(x, axis, keepdims)`` and the dtype of ``x``.
    """
    x = as_variable(x)
    axes = _reduced_axes('average', axis, x.shape)
    count = 1
    for a in axes:
        count *= x.shape[a]
    if count == 0:
        raise ValueError(f'average: cannot average over axis {axis!r} of an empty input of shape {x.shape}')
    return sum(x, axes, keepdims) / count


mean = average


class Max(Function):
    """Maximum over ``axes``; the gradient goes to the positions that hold it, split evenly among ties."""

    def __init__(self, axes: tuple[int, ...], keepdims: bool) -> None:
        self.axes = axes
        self.keepdims = keepdims

    def _reduce(self, x: Any, keepdims: bool) -> Any:
        return x.max(axis=self.axes, keepdims=keepdims)

    def forward(self, x: Any) -> Any:
        return self._reduce(x, self.keepdims)

    def backward(self, gy: Variable) -> Variable:
        x = self.inputs[0].data
        kept = _kept_shape(x.shape, self.axes)
        y = self.outputs[0]()
        y = self._reduce(x, True) if y is None else y.data.reshape(kept)
        # The winners are a constant of the data: the gradient is piecewise linear in gy only.
        winners = (x == y).astype(x.dtype)
        winners /= winners.sum(axis=self.axes, keepdims=True)
        return reshape(gy, kept) * winners


class Min(Max):
    """Minimum over ``axes``; the gradient goes to the positions that hold it, split evenly among ties."""

    def _reduce(self, x: Any, keepdims: bool) -> Any:
        return x.min(axis=self.axes, keepdims=keepdims)


def max(x: Any, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Variable:
    """Maximum of ``x`` over ``axis`` (all axes when None), shaped like ``numpy.max``.

    Backward sends the gradient to the arg-max positions; tied maxima share it equally (as
    ``torch.amax``).
    """
    return Max(_reduced_axes('max', axis, x.shape), keepdims)(x)


def min(x: Any, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Variable:
    """Minimum of ``x`` over ``axis`` (all axes when None), shaped like ``numpy.min``; ties share the
    gradient equally (as ``torch.amin``).
    """
    return Min(_reduced_axes('min', axis, x.shape), keepdims)(x)


class LogSumExp(Function):
    """Stable ``log(sum(exp(x), axes))``; backward is ``gy * exp(x - y)`` (softmax), read from y."""

    def __init__(self, axes: tuple[int, ...], keepdims: bool) -> None:
        self.axes = axes
        self.keepdims = keepdims

    def forward(self, x: Any) -> Any:
        xp = get_array_module(x)
        m = x.max(axis=self.axes, keepdims=True)
        # A row of infinities would give inf - inf; shifting it by 0 instead keeps the result exact.
        m = xp.where(xp.isfinite(m), m, 0)
        s = xp.exp(x - m).sum(axis=self.axes, keepdims=True)
        with np.errstate(divide='ignore'):  # log(0) = -inf is the right answer for an all -inf row
            y = xp.log(s)
        y += m
        return y if self.keepdims else y.reshape([n for i, n in enumerate(x.shape) if i not in self.axes])

    def backward(self, gy: Variable) -> Variable:
        x = self.inputs[0]
        kept = _kept_shape(x.shape, self.axes)
        y = self.outputs[0]()
        if y is None:
            y = logsumexp(x, self.axes, True)
        # d/dx logsumexp = softmax(x) = exp(x - y), differentiable through y again.
        return reshape(gy, kept) * exp(x - reshape(y, kept))


def logsumexp(x: Any, axis: int | tuple[int, ...] | None = 1, keepdims: bool = False) -> Variable:
    """``log(sum(exp(x), axis))`` computed stably (the max is subtracted first); ``axis=None`` reduces all.

    ``x (N, C)`` with the default ``axis=1`` gives ``(N,)`` (``(N, 1)`` with ``keepdims``), like
    ``torch.logsumexp``.
    """
    return LogSumExp(_reduced_axes('logsumexp', axis, x.shape), keepdims)(x)
