"""Linear algebra: matmul (2-D and batched with broadcast batch axes) and linear."""
from __future__ import annotations

from typing import Any

from dezero import _parallel
from dezero.core import Constant, Function, Variable, _check_inputs, sum_to
from dezero.ops._formulas import run_backward
from dezero.ops.shape import reshape, transpose

__all__ = ['MatMul', 'Linear', 'matmul', 'linear', 'linear_simple']


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
    try:
        vector = x.ndim == 1 or W.ndim == 1
    except AttributeError:  # a list, a str, a parameter with no data: say which (only after failing)
        _check_inputs('matmul', (x, W))
        raise
    if vector:
        if x.ndim == 0 or W.ndim == 0:
            raise ValueError(f'matmul: shapes {x.shape} and {W.shape}: operands need at least 1 dimension')
        if x.shape[-1] != W.shape[-2 if W.ndim > 1 else 0]:
            raise ValueError(f'matmul: shapes {x.shape} and {W.shape} are not aligned (the last axis of x '
                             'must match the contracted axis of W)')
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
        return run_backward(_linear_grads, gy, x, W, len(self.inputs) == 3, x.__class__ is not Constant)


def _linear_grads(ops: Any, gy: Any, x: Any, W: Any, with_b: bool, need_x: bool) -> tuple[Any, ...]:
    """Gradients of ``x @ W (+ b)``: ``(gx, gW)`` or ``(gx, gW, gb)``; gx is None unless ``need_x``."""
    gx = ops.matmul(gy, W.T) if need_x else None
    gW = ops.matmul(x.T, gy)
    return (gx, gW, ops.sum_to(gy, (W.shape[1],))) if with_b else (gx, gW)


def linear(x: Any, W: Any, b: Any = None) -> Variable:
    """``x @ W + b`` with ``x (N, in)``, ``W (in, out)``, ``b (out,)`` or None → ``(N, out)``."""
    try:
        matrix = x.ndim == 2
    except AttributeError:
        _check_inputs('linear', (x, W))
        raise
    if not matrix:
        y = matmul(x, W)
        return y if b is None else y + b
    if b is None:
        return Linear()(x, W)
    return Linear()(x, W, b)


def linear_simple(x: Any, W: Any, b: Any = None) -> Variable:
    """The book's linear composed from basic ops: ``matmul(x, W) + b``, equal to ``linear``.

    ``x (N, in)``, ``W (in, out)``, ``b (out,)`` or None → ``(N, out)`` (batched ``x`` works as in
    ``matmul``). Two ops where ``linear`` runs one, so the product ``x @ W`` is an extra array.
    """
    y = matmul(x, W)
    return y if b is None else y + b
