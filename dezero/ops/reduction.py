"""Reductions: sum (and average built on it)."""
from __future__ import annotations

from typing import Any

from dezero.core import Function, Variable, broadcast_to
from dezero.utils import reshape_sum_backward

__all__ = ['Sum', 'sum']


class Sum(Function):
    def __init__(self, axis: Any, keepdims: bool) -> None:
        self.axis = axis
        self.keepdims = keepdims

    def forward(self, x: Any) -> Any:
        return x.sum(axis=self.axis, keepdims=self.keepdims)

    def backward(self, gy: Variable) -> Variable:
        x_shape = self.inputs[0].shape
        gy = reshape_sum_backward(gy, x_shape, self.axis, self.keepdims)
        return broadcast_to(gy, x_shape)


def sum(x: Any, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Variable:
    """Sum of ``x`` over ``axis`` (all axes when None), keeping reduced axes as 1 with ``keepdims``."""
    if isinstance(axis, list):
        axis = tuple(axis)
    return Sum(axis, keepdims)(x)
