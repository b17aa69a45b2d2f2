"""Linear algebra: matmul (2-D and batched with broadcast batch axes) and linear."""
from __future__ import annotations

from typing import Any

from dezero import _parallel
from dezero.core import Constant, Function, Variable, sum_to
from dezero.ops.shape import reshape, transpose

__all__ = ['MatMul', 'Linear', 'matmul', 'linear']


def _swap_last_two(x: Variable) -> Variable:
    if x.ndim == 2:
        return transpose(x)
    axes = tuple(range(x.ndim - 2)) + (x.ndim - 1, x.ndim - 2)
    return transpose(x, axes)


class MatMul(Function):
    def forward(self, x: Any, W: Any) -> Any:
        if x.ndim < 2 or W.ndim < 2 or x.shape[-1] != W.shape[-2]:
            raise ValueError(f'matmul: shapes {x.shape} and {W.shape} are not aligned '
                             f'(x.shape[-1] must equal W.shape[-2])')
        try:
            return _parallel.matmul(x, W)
        except ValueError:
            raise ValueError(f'matmul: batch dimensions of shapes {x.shape} and {W.shape} cannot be '
                             f'broadcast together') from None

    def backward(self, gy: Variable) -> tuple[Variable, Variable]:
        x, W = self.inputs
        gx = matmul(gy, _swap_last_two(W))
        gW = matmul(_swap_last_two(x), gy)
        if gx.shape != x.shape:
            gx = sum_to(gx, x.shape)
        if gW.shape != W.shape:
            gW = sum_to(gW, W.shape)
        return gx, gW


def matmul(x: Any, W: Any) -> Variable:
    """Matrix product ``x @ W``: ``(n, k) @ (k, m) -> (n, m)``, or batched ``(..., n, k) @ (..., k, m)``
    with NumPy broadcasting of the batch axes; a 1-D operand is a row (left) or column (right) vector.
    """
    if x.ndim == 1 or W.ndim == 1:
        if x.ndim == 0 or W.ndim == 0:
            raise ValueError(f'matmul: shapes {x.shape} and {W.shape}: operands need at least 1 dimension')
        y = MatMul()(reshape(x, (1,) + x.shape) if x.ndim == 1 else x,
                     reshape(W, W.shape + (1,)) if W.ndim == 1 else W)
        shape = list(y.shape)
        if W.ndim == 1:
            shape.pop(-1)
        if x.ndim == 1:
            shape.pop(-2 if W.ndim != 1 else -1)
        return reshape(y, tuple(shape))
    return MatMul()(x, W)


class Linear(Function):
    """Fused ``x @ W + b`` for 2-D ``x``: one GEMM and one in-place bias add in forward."""

    def forward(self, x: Any, W: Any, b: Any = None) -> Any:
        if x.ndim != 2 or W.ndim != 2 or x.shape[1] != W.shape[0]:
            raise ValueError(f'linear: x of shape {x.shape} and W of shape {W.shape} do not fit '
                             f'(expected x (N, in) and W (in, out))')
        y = _parallel.matmul(x, W)
        if b is not None:
            if b.shape != (W.shape[1],):
                raise ValueError(f'linear: b of shape {b.shape} does not fit W of shape {W.shape} '
                                 f'(expected ({W.shape[1]},))')
            y += b
        return y

    def backward(self, gy: Variable) -> tuple[Variable, ...]:
        x, W = self.inputs[0], self.inputs[1]
        gx = None if x.__class__ is Constant else matmul(gy, transpose(W))
        gW = matmul(transpose(x), gy)
        if len(self.inputs) == 2:
            return gx, gW
        return gx, gW, sum_to(gy, self.inputs[2].shape)


def linear(x: Any, W: Any, b: Any = None) -> Variable:
    """``x @ W + b`` with ``x (N, in)``, ``W (in, out)``, ``b (out,)`` or None → ``(N, out)``."""
    if x.ndim != 2:
        y = matmul(x, W)
        return y if b is None else y + b
    if b is None:
        return Linear()(x, W)
    return Linear()(x, W, b)
