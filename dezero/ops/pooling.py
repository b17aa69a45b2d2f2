"""Max, min and average pooling on ``(N, C, H, W)`` images, plus the book's ``pooling_simple`` built
from im2col and a max. They share conv's window views and argument checks (``dezero.ops.conv``).

Max pooling remembers each window's argmax; its gradient is a scatter to those positions
(``Pooling2DGrad``) whose gradient is a gather (``Pooling2DWithIndexes``) and back, so gradients of
any order work. Min pooling (beyond the book) is the same Function with the comparison reversed, and
shares that gradient pair. The strided per-offset loops run over the cores (``split_apply``), image
by image.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from dezero import _memory
from dezero._checks import int_pair
from dezero._parallel import split_apply
from dezero.core import Config, Function, Variable, broadcast_to
from dezero.cuda import get_array_module
from dezero.ops.conv import (
    Im2col,
    IntPair,
    _check_image,
    _fill_value,
    _offset_slices,
    _out_hw,
    _pad,
    _windows,
    col2im,
)
from dezero.ops.reduction import max as _max
from dezero.ops.shape import reshape, transpose

__all__ = ['Pooling', 'MinPooling', 'Pooling2DGrad', 'Pooling2DWithIndexes', 'AveragePooling', 'pooling',
           'min_pooling', 'average_pooling', 'pooling_simple']


# =============================================================================
# Max and min pooling
# =============================================================================
def _check_pool_pad(op: str, kernel: tuple[int, int], pad: tuple[int, int],
                    extremum: str = 'maximum') -> None:
    if pad[0] >= kernel[0] or pad[1] >= kernel[1]:
        raise ValueError(f'{op}: pad {pad} must be smaller than kernel_size {kernel} '
                         f'(a window made only of padding has no {extremum})')


def _scatter_to_argmax(gy: Any, indexes: Any, input_shape: tuple[int, ...], kernel: tuple[int, int],
                       stride: tuple[int, int], pad: tuple[int, int]) -> Any:
    """Image of ``input_shape`` with each ``gy`` value added at its window's argmax position."""
    xp = get_array_module(gy)
    n, c, h, w = input_shape
    ph, pw = pad
    kh, kw = kernel
    out_hw = gy.shape[2:]
    # Windows that do not overlap write disjoint pixels, so each offset's share is written, not added;
    # when they also tile the padded image exactly, every pixel is written and no zero-fill is needed.
    disjoint = stride[0] >= kh and stride[1] >= kw
    tiled = stride == kernel and h + 2 * ph == out_hw[0] * kh and w + 2 * pw == out_hw[1] * kw
    gx = (_memory.empty if tiled else _memory.zeros)(xp, (n, c, h + 2 * ph, w + 2 * pw), gy.dtype)

    def scatter(gy: Any, indexes: Any, gx: Any) -> None:
        for i in range(kh):
            for j in range(kw):
                chosen = indexes == i * kw + j
                target = gx[_offset_slices(i, j, stride, out_hw)]
                if disjoint:
                    xp.multiply(gy, chosen, out=target)
                else:
                    target += gy * chosen

    # Images are independent, so the strided (slow per element) loops run on every core.
    split_apply(scatter, gy, indexes, gx)
    if ph == 0 and pw == 0:
        return gx
    return gx[:, :, ph:ph + h, pw:pw + w]


def _gather_at_argmax(x: Any, indexes: Any, kernel: tuple[int, int], stride: tuple[int, int],
                      pad: tuple[int, int]) -> Any:
    """``y[n, c, oy, ox]`` = ``x`` at the position ``indexes`` chose in window ``(oy, ox)``."""
    xp = get_array_module(x)
    view = _windows(_pad(x, pad), kernel, stride, indexes.shape[2:])
    kw = kernel[1]
    y = view[:, :, 0, 0].copy()
    for k in range(1, kernel[0] * kw):
        y = xp.where(indexes == k, view[:, :, k // kw, k % kw], y)
    return y


class _ExtremumPooling(Function):
    """Base of max and min pooling: the running extremum of each window, remembering the offset it
    came from (the first extremal one) for the gradient, ``Pooling2DGrad``. A subclass names the op
    and says whether it takes the minimum."""

    op_name = 'pooling'
    takes_min = False

    def __init__(self, kernel_size: IntPair, stride: IntPair = 1, pad: IntPair = 0) -> None:
        name = self.op_name
        self.kernel_size = int_pair(name, 'kernel_size', kernel_size, 1)
        self.stride = int_pair(name, 'stride', stride, 1)
        self.pad = int_pair(name, 'pad', pad, 0)
        _check_pool_pad(name, self.kernel_size, self.pad, 'minimum' if self.takes_min else 'maximum')

    def forward(self, x: Any) -> Any:
        xp = get_array_module(x)
        _check_image(self.op_name, x)
        kh, kw = self.kernel_size
        out_hw = _out_hw(self.op_name, x.shape, self.kernel_size, self.stride, self.pad)
        view = _windows(_pad(x, self.pad, _fill_value(x.dtype, self.takes_min)), self.kernel_size,
                        self.stride, out_hw)
        # Running extremum over the KH*KW offsets; a strict comparison keeps the first extremum, as
        # torch does. Offsets are visited in increasing order, so where offset k wins it is the largest
        # index so far: a maximum records it without a masked write (masked writes are several times
        # slower).
        keep, beats = (xp.minimum, xp.less) if self.takes_min else (xp.maximum, xp.greater)
        index_dtype = np.int8 if kh * kw <= 127 else np.int32
        y = _memory.empty(xp, (x.shape[0], x.shape[1]) + out_hw, x.dtype)
        self.input_shape = x.shape
        if not Config.enable_backprop:  # nothing will call backward: the extremum alone, no argmax
            def running(view: Any, y: Any) -> None:
                y[...] = view[:, :, 0, 0]
                for k in range(1, kh * kw):
                    keep(y, view[:, :, k // kw, k % kw], out=y)

            split_apply(running, view, y)
            return y
        indexes = _memory.empty(xp, y.shape, index_dtype)

        def running_extremum(view: Any, y: Any, indexes: Any) -> None:
            y[...] = view[:, :, 0, 0]
            indexes[...] = 0
            for k in range(1, kh * kw):
                candidate = view[:, :, k // kw, k % kw]
                better = beats(candidate, y)
                keep(y, candidate, out=y)
                xp.maximum(indexes, better * index_dtype(k), out=indexes)

        # Images are independent, so the strided (slow per element) loops run on every core.
        split_apply(running_extremum, view, y, indexes)
        self.indexes = indexes
        return y

    def backward(self, gy: Variable) -> Variable:
        return Pooling2DGrad(self.indexes, self.input_shape, self.kernel_size, self.stride, self.pad)(gy)


class Pooling(_ExtremumPooling):
    """Max pooling ``(N, C, H, W)`` → ``(N, C, OH, OW)``; remembers each window's argmax (the
    first maximal offset) for its gradient, ``Pooling2DGrad``."""


class MinPooling(_ExtremumPooling):
    """Min pooling ``(N, C, H, W)`` → ``(N, C, OH, OW)``; remembers each window's argmin (the
    first minimal offset) for its gradient, ``Pooling2DGrad``."""

    op_name = 'min_pooling'
    takes_min = True


class _ArgmaxPlacement(Function):
    """Base of the scatter/gather pair of max (and min) pooling: both keep the saved argmax (argmin)
    ``indexes`` and the pooling geometry they refer to."""

    def __init__(self, indexes: Any, input_shape: tuple[int, ...], kernel_size: tuple[int, int],
                 stride: tuple[int, int], pad: tuple[int, int]) -> None:
        self.indexes = indexes
        self.input_shape = input_shape
        self.kernel_size = kernel_size
        self.stride = stride
        self.pad = pad


class Pooling2DGrad(_ArgmaxPlacement):
    """Gradient of max pooling: scatter ``gy (N, C, OH, OW)`` to the argmax positions of an image of
    ``input_shape``; its own gradient gathers at those positions (``Pooling2DWithIndexes``)."""

    def forward(self, gy: Any) -> Any:
        return _scatter_to_argmax(gy, self.indexes, self.input_shape, self.kernel_size, self.stride,
                                  self.pad)

    def backward(self, ggx: Variable) -> Variable:
        return Pooling2DWithIndexes(self.indexes, self.input_shape, self.kernel_size, self.stride,
                                    self.pad)(ggx)


class Pooling2DWithIndexes(_ArgmaxPlacement):
    """Gather from ``x`` (shape ``input_shape``) the pixel each window's saved argmax points to →
    ``(N, C, OH, OW)``; its gradient is the scatter ``Pooling2DGrad``."""

    def forward(self, x: Any) -> Any:
        if x.shape != self.input_shape:
            raise ValueError(f'pooling: got an input of shape {x.shape}, the saved argmax indexes '
                             f'belong to shape {self.input_shape}')
        return _gather_at_argmax(x, self.indexes, self.kernel_size, self.stride, self.pad)

    def backward(self, gy: Variable) -> Variable:
        return Pooling2DGrad(self.indexes, self.input_shape, self.kernel_size, self.stride, self.pad)(gy)


def pooling(x: Any, kernel_size: IntPair, stride: IntPair = 1, pad: IntPair = 0) -> Variable:
    """Max pooling of ``x (N, C, H, W)`` over ``kernel_size`` windows → ``(N, C, OH, OW)``,
    ``OH = (H + 2*PH - KH) // SH + 1``. Padding never wins the max (it is -inf); the gradient goes to
    the first maximal position of each window. Note the book's default ``stride=1``.
    """
    return Pooling(kernel_size, stride, pad)(x)


def min_pooling(x: Any, kernel_size: IntPair, stride: IntPair = 1, pad: IntPair = 0) -> Variable:
    """Min pooling of ``x (N, C, H, W)`` over ``kernel_size`` windows → ``(N, C, OH, OW)``, the mirror
    of ``pooling``: equal to ``-pooling(-x)``. Padding never wins the min (it is +inf); the gradient
    goes to the first minimal position of each window, and gradients of any order work.
    """
    return MinPooling(kernel_size, stride, pad)(x)


# =============================================================================
# Average pooling
# =============================================================================
class AveragePooling(Function):
    """Average pooling ``(N, C, H, W)`` → ``(N, C, OH, OW)``, dividing by ``KH*KW`` (padding
    counts); backward spreads ``gy / (KH*KW)`` over each window with col2im."""

    def __init__(self, kernel_size: IntPair, stride: IntPair = 1, pad: IntPair = 0) -> None:
        self.kernel_size = int_pair('average_pooling', 'kernel_size', kernel_size, 1)
        self.stride = int_pair('average_pooling', 'stride', stride, 1)
        self.pad = int_pair('average_pooling', 'pad', pad, 0)

    def forward(self, x: Any) -> Any:
        _check_image('average_pooling', x)
        kh, kw = self.kernel_size
        out_hw = _out_hw('average_pooling', x.shape, self.kernel_size, self.stride, self.pad)
        view = _windows(_pad(x, self.pad), self.kernel_size, self.stride, out_hw)
        total = view[:, :, 0, 0].copy()
        for k in range(1, kh * kw):
            total += view[:, :, k // kw, k % kw]
        if total.dtype.kind != 'f':
            return total / (kh * kw)
        total /= kh * kw
        return total

    def backward(self, gy: Variable) -> Variable:
        # Every pixel of a window receives gy / (KH*KW): broadcast to patches, fold with col2im.
        n, c, oh, ow = gy.shape
        kh, kw = self.kernel_size
        spread = broadcast_to(reshape(gy / (kh * kw), (n, c, 1, 1, oh, ow)), (n, c, kh, kw, oh, ow))
        return col2im(spread, self.inputs[0].shape, self.kernel_size, self.stride, self.pad,
                      to_matrix=False)


def average_pooling(x: Any, kernel_size: IntPair, stride: IntPair = 1, pad: IntPair = 0) -> Variable:
    """Average pooling of ``x (N, C, H, W)`` → ``(N, C, OH, OW)``: each output is the sum of its
    window divided by ``KH*KW``, padding (zeros) included in the count (``count_include_pad``)."""
    return AveragePooling(kernel_size, stride, pad)(x)


def pooling_simple(x: Any, kernel_size: IntPair, stride: IntPair = 1, pad: IntPair = 0) -> Variable:
    """Max pooling written as ``im2col`` → ``max`` over each window → reshape/transpose.

    ``x (N, C, H, W)`` → ``(N, C, OH, OW)``; padding is -inf so, as in pooling, it never wins.
    """
    _check_image('pooling', x)
    n, c = x.shape[:2]
    kernel = int_pair('pooling', 'kernel_size', kernel_size, 1)
    stride = int_pair('pooling', 'stride', stride, 1)
    pad = int_pair('pooling', 'pad', pad, 0)
    _check_pool_pad('pooling', kernel, pad)
    oh, ow = _out_hw('pooling', x.shape, kernel, stride, pad)
    col = Im2col(kernel, stride, pad, to_matrix=True, pad_value=_fill_value(x.dtype))(x)
    y = _max(reshape(col, (-1, kernel[0] * kernel[1])), axis=1)
    return transpose(reshape(y, (n, oh, ow, c)), (0, 3, 1, 2))
