"""Assorted ops: clip, accuracy, dropout, embed_id; beyond the book: concat, stack, where."""
from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from dezero._checks import in_range, normalize_axis
from dezero.core import Config, Function, Variable, as_array, as_variable, sum_to
from dezero.cuda import array_types, get_array_module
from dezero.ops.shape import get_item

__all__ = ['Clip', 'Dropout', 'Concat', 'Stack', 'Where', 'clip', 'accuracy', 'dropout', 'embed_id',
           'concat', 'stack', 'where']


def _data(x: Any) -> Any:
    return x.data if isinstance(x, Variable) else x


class Clip(Function):
    """Elementwise clamp into ``[x_min, x_max]``; backward multiplies by the constant mask of the inside."""

    def __init__(self, x_min: Any, x_max: Any) -> None:
        self.x_min = x_min
        self.x_max = x_max

    def forward(self, x: Any) -> Any:
        return get_array_module(x).clip(x, self.x_min, self.x_max)

    def backward(self, gy: Variable) -> Variable:
        x = self.inputs[0].data
        if self.x_min is None:
            inside = x <= self.x_max
        else:
            inside = x >= self.x_min
            if self.x_max is not None:
                inside &= x <= self.x_max
        return gy * inside.astype(x.dtype)


def clip(x: Any, x_min: float | None, x_max: float | None) -> Variable:
    """Clamp ``x`` (any shape) elementwise into ``[x_min, x_max]`` (None: unbounded on that side).

    The gradient is 1 where ``x_min <= x <= x_max`` and 0 outside, as ``torch.clamp``.
    """
    if x_min is None and x_max is None:
        raise ValueError('clip: x_min and x_max are both None; give at least one bound')
    dtype = x.dtype
    bounds = [None if b is None else (b.astype(dtype) if isinstance(b, array_types) else dtype.type(b))
              for b in (x_min, x_max)]
    if bounds[0] is not None and bounds[1] is not None and bool((bounds[0] > bounds[1]).any()):
        raise ValueError(f'clip: x_min {x_min!r} is greater than x_max {x_max!r}')
    return Clip(*bounds)(x)


def accuracy(y: Any, t: Any) -> Variable:
    """Fraction of rows of ``y (N, C)`` whose arg-max over axis 1 equals the label ``t (N,)``.

    ``y`` and ``t`` may be Variables or arrays. Returns a 0-d Variable (the dtype of ``y`` when it is
    floating, else float64) that records no graph: accuracy has no gradient.
    """
    y_data, t_data = _data(y), _data(t)
    if not isinstance(y_data, array_types) or y_data.ndim < 2:
        raise ValueError(f'accuracy: y must be scores of shape (N, C, ...), got '
                         f'{getattr(y_data, "shape", type(y_data).__name__)}')
    t_data = as_array(t_data, get_array_module(y_data))
    predicted = y_data.argmax(axis=1)
    if predicted.shape != t_data.shape:
        raise ValueError(f'accuracy: y of shape {y_data.shape} and t of shape {t_data.shape} do not fit '
                         f'(expected t of shape {predicted.shape})')
    dtype = y_data.dtype if y_data.dtype.kind == 'f' else np.float64
    return Variable(as_array((predicted == t_data).mean(dtype=dtype), get_array_module(y_data)))


@functools.lru_cache(maxsize=32)
def _mask_table(bits: int, threshold: int, scale: float, dtype: str) -> np.ndarray:
    """``(256, 8 // bits)`` mask values for each byte: field ``f`` of byte ``v`` is the ``bits``-bit
    number ``(v >> bits*f) & (2**bits - 1)``, and its element is kept (``scale``) when it is at
    least ``threshold``, else dropped (0)."""
    values = np.arange(256)[:, None] >> (bits * np.arange(8 // bits)) & ((1 << bits) - 1)
    return np.where(values >= threshold, scale, 0).astype(dtype)


def _dropout_mask(xp: Any, shape: tuple[int, ...], ratio: float, dtype: Any) -> Any:
    """The scaled mask (0 or ``1 / (1 - ratio)``) of ``shape``, from the seeded global generator.

    A ratio that is a multiple of 1/2, 1/4, 1/16 or 1/256 needs only that many random bits per
    element: random bytes are drawn and each is mapped to its group of mask values by one table
    lookup, so ``dropout(x, 0.25)`` draws 2 bits an element instead of 16. Any other ratio is
    resolved to 1/65536 with one 16-bit draw per element (on a GPU, always).
    """
    scale = 1 / (1 - ratio)
    bits = next((b for b in (1, 2, 4, 8) if float(ratio * (1 << b)).is_integer()), None)
    if bits is None or xp is not np:
        draws = xp.random.randint(0, 1 << 16, size=shape, dtype=xp.uint16)
        return xp.multiply(draws >= round(ratio * (1 << 16)), dtype.type(scale), dtype=dtype)
    per_byte = 8 // bits
    size = math.prod(shape)
    table = _mask_table(bits, int(ratio * (1 << bits)), scale, dtype.str)
    groups = table.view(np.dtype((np.void, per_byte * dtype.itemsize))).reshape(256)
    random_bytes = np.frombuffer(np.random.bytes(-(-size // per_byte)), dtype=np.uint8)
    return np.take(groups, random_bytes).view(dtype)[:size].reshape(shape)


class Dropout(Function):
    """``x * mask`` where the mask, drawn once in forward, is 0 or ``1 / (1 - ratio)``."""

    def __init__(self, dropout_ratio: float) -> None:
        self.dropout_ratio = dropout_ratio

    def forward(self, x: Any) -> Any:
        xp = get_array_module(x)
        if self.dropout_ratio >= 1:  # everything dropped, as torch does
            self.mask = xp.zeros(x.shape, dtype=x.dtype)
        else:
            self.mask = _dropout_mask(xp, x.shape, self.dropout_ratio, x.dtype)
        return x * self.mask

    def backward(self, gy: Variable) -> Variable:
        return gy * self.mask


def dropout(x: Any, dropout_ratio: float = 0.5) -> Variable:
    """Inverted dropout on ``x`` (any shape) in training mode, identity when ``Config.train`` is False.

    Each element is zeroed with probability ``dropout_ratio`` and the survivors are scaled by
    ``1 / (1 - dropout_ratio)``, so the expectation is unchanged; the mask is drawn from
    ``xp.random`` (seed it with ``np.random.seed``) and backward multiplies by the same mask.
    """
    in_range('dropout', 'dropout_ratio', dropout_ratio, 0, 1)
    if not Config.train:
        return as_variable(x)
    return Dropout(dropout_ratio)(x)


def embed_id(x: Any, W: Any) -> Variable:
    """Rows of ``W (V, D)`` picked by integer ids ``x`` (any shape) → ``x.shape + (D,)``: ``W[x]``.

    The gradient of ``W`` adds up the rows of repeated ids.
    """
    ids = _data(x)
    if not isinstance(ids, array_types) or ids.dtype.kind not in 'iu':
        kind = ids.dtype if isinstance(ids, array_types) else type(ids).__name__
        raise TypeError(f'embed_id: x must be an integer array of ids, got {kind}')
    if W.ndim != 2:
        raise ValueError(f'embed_id: W must be a (V, D) matrix, got shape {W.shape}')
    if ids.size and (int(ids.min()) < 0 or int(ids.max()) >= W.shape[0]):
        raise ValueError(f'embed_id: ids must be in [0, {W.shape[0]}) for W of shape {W.shape}, '
                         f'got values in [{int(ids.min())}, {int(ids.max())}]')
    return get_item(W, ids)


def _check_sequence(name: str, xs: Any) -> list[Any]:
    if not isinstance(xs, (list, tuple)) or len(xs) == 0:
        raise TypeError(f'{name}: expected a non-empty list or tuple of Variables or arrays, '
                        f'got {type(xs).__name__}')
    return list(xs)


class Concat(Function):
    """Join inputs along ``axis``; backward slices the gradient back into one piece per input."""

    def __init__(self, axis: int) -> None:
        self.axis = axis

    def forward(self, *xs: Any) -> Any:
        return get_array_module(xs[0]).concatenate(xs, axis=self.axis)

    def backward(self, gy: Variable) -> tuple[Variable, ...]:
        lead = (slice(None),) * self.axis
        gxs = []
        start = 0
        for x in self.inputs:
            stop = start + x.shape[self.axis]
            gxs.append(get_item(gy, lead + (slice(start, stop),)))
            start = stop
        return tuple(gxs)


def concat(xs: list[Any] | tuple[Any, ...], axis: int = 0) -> Variable:
    """Join Variables/arrays along an existing ``axis``; shapes must agree on every other axis.

    ``[(2, 3), (4, 3)]`` with ``axis=0`` → ``(6, 3)``, as ``numpy.concatenate`` / ``torch.cat``.
    """
    xs = _check_sequence('concat', xs)
    first = xs[0].shape
    axis = normalize_axis('concat', axis, first, max(len(first), 1))
    for x in xs:
        if len(x.shape) != len(first) or any(a != b for i, (a, b) in enumerate(zip(x.shape, first))
                                             if i != axis):
            raise ValueError(f'concat: shapes {[tuple(x.shape) for x in xs]} differ outside axis {axis}')
    return Concat(axis)(*xs)


class Stack(Function):
    """Join same-shaped inputs along a new ``axis``; backward takes each input's slice."""

    def __init__(self, axis: int) -> None:
        self.axis = axis

    def forward(self, *xs: Any) -> Any:
        return get_array_module(xs[0]).stack(xs, axis=self.axis)

    def backward(self, gy: Variable) -> tuple[Variable, ...]:
        lead = (slice(None),) * self.axis
        return tuple(get_item(gy, lead + (i,)) for i in range(len(self.inputs)))


def stack(xs: list[Any] | tuple[Any, ...], axis: int = 0) -> Variable:
    """Join same-shaped Variables/arrays along a new ``axis``: ``k`` inputs of ``(2, 3)`` with ``axis=0``
    → ``(k, 2, 3)``, as ``numpy.stack`` / ``torch.stack``.
    """
    xs = _check_sequence('stack', xs)
    first = xs[0].shape
    if any(x.shape != first for x in xs):
        raise ValueError(f'stack: all inputs need one shape, got {[tuple(x.shape) for x in xs]}')
    axis = normalize_axis('stack', axis, first, len(first) + 1)
    return Stack(axis)(*xs)


class Where(Function):
    """``where(condition, x, y)`` for a constant boolean ``condition``; gradients summed back to shapes."""

    def __init__(self, condition: Any) -> None:
        self.condition = condition

    def forward(self, x: Any, y: Any) -> Any:
        return get_array_module(x).where(self.condition, x, y)

    def backward(self, gy: Variable) -> tuple[Variable, Variable]:
        x, y = self.inputs
        chosen = self.condition.astype(gy.dtype)
        gx = gy * chosen
        gy_rest = gy - gx
        return sum_to(gx, x.shape), sum_to(gy_rest, y.shape)


def where(condition: Any, x: Any, y: Any) -> Variable:
    """Elementwise ``x`` where ``condition`` is true, else ``y``, broadcasting all three like
    ``numpy.where``; ``condition`` is a boolean array (or Variable) and gets no gradient.

    ``x`` and ``y`` may be Variables, arrays or scalars; a scalar or array takes the other side's dtype.
    """
    condition = _data(condition)
    if not isinstance(condition, array_types) or condition.dtype != np.bool_:
        kind = condition.dtype if isinstance(condition, array_types) else type(condition).__name__
        raise TypeError(f'where: condition must be a boolean array, got {kind}')
    xp = get_array_module(condition)
    reference = x if isinstance(x, Variable) else y if isinstance(y, Variable) else None
    dtype = None if reference is None else reference.dtype
    x, y = (v if isinstance(v, Variable) else as_array(v, xp) if dtype is None
            else xp.asarray(v, dtype=dtype) for v in (x, y))
    try:
        np.broadcast_shapes(condition.shape, x.shape, y.shape)
    except ValueError:
        raise ValueError(f'where: shapes {condition.shape} (condition), {x.shape} and {y.shape} cannot be '
                         'broadcast together') from None
    return Where(condition)(x, y)
