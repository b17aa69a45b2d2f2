"""Shape ops: reshape, transpose, get_item, expand_dims, flatten (plus the broadcast pair from core)."""
from __future__ import annotations

from typing import Any

from dezero._checks import int_tuple, normalize_axes, normalize_axis
from dezero.core import Function, Variable, _check_inputs, as_variable, broadcast_to, sum_to
from dezero.cuda import get_array_module, scatter_add

__all__ = ['Reshape', 'Transpose', 'GetItem', 'GetItemGrad', 'reshape', 'transpose', 'get_item',
           'expand_dims', 'flatten', 'sum_to', 'broadcast_to']


class Reshape(Function):
    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape

    def forward(self, x: Any) -> Any:
        self.x_shape = x.shape
        try:
            return x.reshape(self.shape)
        except ValueError:
            raise ValueError(f'reshape: cannot reshape an array of shape {x.shape} '
                             f'({x.size} elements) into shape {self.shape}') from None
        except TypeError:  # checked only after NumPy refused: no cost on the normal path
            int_tuple('reshape', 'shape', self.shape)
            raise

    def backward(self, gy: Variable) -> Variable:
        return reshape(gy, self.x_shape)


def reshape(x: Any, shape: tuple[int, ...]) -> Variable:
    """Reshape ``x`` to ``shape`` (one entry may be -1); ``x`` itself when the shape already matches."""
    shape = tuple(shape)
    try:
        if x.shape == shape:
            return as_variable(x)
    except AttributeError:
        _check_inputs('reshape', (x,))
        raise
    return Reshape(shape)(x)


class Transpose(Function):
    def __init__(self, axes: tuple[int, ...] | None = None) -> None:
        self.axes = axes

    def forward(self, x: Any) -> Any:
        return x.transpose(self.axes)

    def backward(self, gy: Variable) -> Variable:
        if self.axes is None:
            return transpose(gy)
        ndim = len(self.axes)
        inverse = tuple(sorted(range(ndim), key=lambda i: self.axes[i] % ndim))
        return transpose(gy, inverse)


def transpose(x: Any, axes: tuple[int, ...] | None = None) -> Variable:
    """Permute the axes of ``x`` (reverse them when ``axes`` is None), like ``numpy.transpose``."""
    if axes is not None:
        given = axes
        axes = normalize_axes('transpose', axes, x.shape)
        if sorted(axes) != list(range(x.ndim)):
            raise ValueError(f'transpose: axes {given!r} are not a permutation of the {x.ndim} axes '
                             f'of an input of shape {x.shape}')
    return Transpose(axes)(x)


def _is_basic_index(slices: Any) -> bool:
    """True when indexing is basic (ints, slices, None, Ellipsis): each element is hit at most once."""
    items = slices if isinstance(slices, tuple) else (slices,)
    return all(s is None or s is Ellipsis or isinstance(s, (int, slice)) for s in items)


def _index_arrays(slices: Any) -> Any:
    """Replace Variables inside an index by their arrays."""
    if isinstance(slices, tuple):
        return tuple(s.data if isinstance(s, Variable) else s for s in slices)
    return slices.data if isinstance(slices, Variable) else slices


class GetItem(Function):
    def __init__(self, slices: Any) -> None:
        self.slices = slices

    def forward(self, x: Any) -> Any:
        return x[self.slices]

    def backward(self, gy: Variable) -> Variable:
        return GetItemGrad(self.slices, self.inputs[0].shape)(gy)


class GetItemGrad(Function):
    """Scatter ``gy`` into zeros of the input's shape, adding where an index repeats."""

    def __init__(self, slices: Any, in_shape: tuple[int, ...]) -> None:
        self.slices = slices
        self.in_shape = in_shape

    def forward(self, gy: Any) -> Any:
        xp = get_array_module(gy)
        gx = xp.zeros(self.in_shape, dtype=gy.dtype)
        if _is_basic_index(self.slices):
            gx[self.slices] = gy
        else:
            scatter_add(gx, self.slices, gy)
        return gx

    def backward(self, ggx: Variable) -> Variable:
        return get_item(ggx, self.slices)


def get_item(x: Any, slices: Any) -> Variable:
    """``x[slices]`` with basic or integer-array indexing; the gradient accumulates repeated indices."""
    slices = _index_arrays(slices)
    try:
        return GetItem(slices)(x)
    except IndexError as error:
        raise IndexError(f'get_item: index {slices!r} does not fit an input of shape {x.shape}: '
                         f'{error}') from None


def expand_dims(x: Any, axis: int) -> Variable:
    """Insert an axis of length 1 at ``axis`` (negative counts from the end of the result)."""
    shape = list(x.shape)
    shape.insert(normalize_axis('expand_dims', axis, x.shape, len(shape) + 1), 1)
    return reshape(x, tuple(shape))


def flatten(x: Any) -> Variable:
    """Reshape ``(N, ...)`` to ``(N, -1)``, keeping the first (batch) axis."""
    try:
        n = x.shape[0]
    except IndexError:
        raise ValueError(f'flatten: expected an input of shape (N, ...) with a batch axis, got shape '
                         f'{x.shape}') from None
    return reshape(x, (n, -1))

