"""Convolution layers: Conv2d and Deconv2d (transposed convolution) on ``(N, C, H, W)`` images."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from dezero._checks import dtype_of, int_pair, positive_int
from dezero.core import Parameter, Variable
from dezero.cuda import get_array_module
from dezero.layers.base import Layer
from dezero.ops.conv import conv2d, deconv2d

__all__ = ['Conv2d', 'Deconv2d']

IntPair = int | tuple[int, int]


class _ConvBase(Layer):
    """Shared parameter handling: ``W`` of ``_weight_shape()`` drawn ``randn * sqrt(1/(C*KH*KW))``
    (lazily from the input when ``in_channels`` is None), ``b (out_channels,)`` zeros."""

    def __init__(self, out_channels: int, kernel_size: IntPair, stride: IntPair = 1, pad: IntPair = 0,
                 nobias: bool = False, dtype: Any = np.float32, in_channels: int | None = None) -> None:
        super().__init__()
        name = type(self).__name__
        self.out_channels = positive_int(name, 'out_channels', out_channels)
        self.in_channels = None if in_channels is None else positive_int(name, 'in_channels', in_channels)
        self.kernel_size = int_pair(name, 'kernel_size', kernel_size, 1)
        # Checked here so a bad value is reported when the layer is built, not at its first call.
        int_pair(name, 'stride', stride, 1)
        int_pair(name, 'pad', pad, 0)
        self.stride = stride
        self.pad = pad
        self.dtype = dtype_of(name, 'dtype', dtype)
        self.W = Parameter(None, name='W')
        if self.in_channels is not None:
            self._init_W()
        self.b = None if nobias else Parameter(np.zeros(self.out_channels, dtype=self.dtype), name='b')

    def _weight_shape(self) -> tuple[int, int, int, int]:
        raise NotImplementedError

    def _init_W(self, xp: Any = np) -> None:
        kh, kw = self.kernel_size
        # A Python float scale keeps the float32 draw float32 (an np.float64 scalar would promote it).
        W = xp.random.randn(*self._weight_shape()).astype(self.dtype)
        W *= math.sqrt(1.0 / (self.in_channels * kh * kw))
        self.W.data = W

    def _prepare(self, x: Any) -> None:
        if self.W.data is None:
            if x.ndim != 4:
                raise ValueError(f'{type(self).__name__}: expected an input of shape (N, C, H, W), '
                                 f'got shape {x.shape}')
            self.in_channels = x.shape[1]
            self._init_W(get_array_module(x))


class Conv2d(_ConvBase):
    """2-D convolution layer: ``x (N, C, H, W)`` → ``(N, out_channels, OH, OW)`` via ``F.conv2d``.

    ``W (out_channels, C, KH, KW)`` is drawn ``randn * sqrt(1/(C*KH*KW))`` in ``dtype``, at the first
    call when ``in_channels`` is None; ``b (out_channels,)`` starts at zero (none with ``nobias``).
    ``kernel_size``, ``stride`` and ``pad`` are ints or ``(h, w)`` pairs.

    Example: ``Conv2d(8, 3, pad=1)(np.zeros((2, 1, 28, 28), np.float32)).shape`` → ``(2, 8, 28, 28)``.
    """

    def _weight_shape(self) -> tuple[int, int, int, int]:
        return (self.out_channels, self.in_channels) + self.kernel_size

    def forward(self, x: Any) -> Variable:
        self._prepare(x)
        return conv2d(x, self.W, self.b, self.stride, self.pad)


class Deconv2d(_ConvBase):
    """Transposed 2-D convolution layer: ``x (N, C, H, W)`` → ``(N, out_channels, OH, OW)`` with
    ``OH = SH*(H - 1) + KH - 2*PH`` via ``F.deconv2d``.

    ``W (C, out_channels, KH, KW)`` is drawn ``randn * sqrt(1/(C*KH*KW))`` in ``dtype``, at the first
    call when ``in_channels`` is None; ``b (out_channels,)`` starts at zero (none with ``nobias``).

    Example: ``Deconv2d(4, 4, stride=2, pad=1)(np.zeros((1, 3, 7, 7), np.float32)).shape`` →
    ``(1, 4, 14, 14)``.
    """

    def _weight_shape(self) -> tuple[int, int, int, int]:
        return (self.in_channels, self.out_channels) + self.kernel_size

    def forward(self, x: Any) -> Variable:
        self._prepare(x)
        return deconv2d(x, self.W, self.b, self.stride, self.pad)
