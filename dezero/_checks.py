"""Argument checks shared by the whole package: one helper per kind of check.

Each helper raises one sentence naming the dezero function, layer or transform (``where``), the
argument, what was received and what is needed. Checks that would cost time on a hot path are not
run up front: the caller lets NumPy fail first and only then asks a helper here what was wrong.
"""
from __future__ import annotations

import numbers
import os
from typing import Any

import numpy as np

try:
    from numpy.exceptions import AxisError
except ImportError:  # NumPy < 1.25
    from numpy import AxisError  # type: ignore[attr-defined,no-redef]

# An axis out of range raises NumPy's AxisError, which is both an IndexError (what PyTorch raises)
# and a ValueError (what NumPy users and this project's earlier releases catch).
__all__ = ['AxisError', 'describe', 'check_callable', 'positive_int', 'int_pair', 'int_tuple', 'dtype_of',
           'in_range', 'normalize_axis', 'normalize_axes', 'check_directory']


def _short_repr(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + '...'


def describe(value: Any) -> str:
    """How a message shows a received value: ``None``, ``str 'a'``, ``list [1, 2]``, ``the class
    Linear``, ``the method MLP.params``, a PIL image by mode and size, or an array (or Variable) by
    type, shape and dtype."""
    if value is None:
        return 'None'
    if isinstance(value, type):
        return f'the class {value.__name__}'
    owner = getattr(value, '__self__', None)
    if owner is not None and not isinstance(owner, type) and hasattr(value, '__func__'):
        return f'the method {type(owner).__name__}.{value.__name__}'
    name = type(value).__name__
    if type(value).__module__.startswith('PIL.'):
        return f'a PIL {name} of mode {getattr(value, "mode", "?")} and size {getattr(value, "size", "?")}'
    try:
        return f'{name} of shape {tuple(value.shape)} and dtype {value.dtype}'
    except (AttributeError, TypeError):
        text = _short_repr(value)
        if isinstance(value, (list, tuple)) and text.endswith('...'):
            return f'{name} of {len(value)} items'
        return text if text.startswith(name) else f'{name} {text}'


def check_callable(where: str, what: str, value: Any, expected: str = 'a callable',
                   sequence_hint: str = '', instance_of: type = object) -> None:
    """Reject a ``value`` that cannot be called, and a class (a subclass of ``instance_of``) given
    where an instance is needed: ``Flatten`` for ``Flatten()``. Other classes pass when
    ``instance_of`` is narrower, so converters such as ``int`` stay valid transforms."""
    if isinstance(value, type) and issubclass(value, instance_of):
        raise TypeError(f'{where}: {what} is the class {value.__name__}, not an instance; '
                        f'write {value.__name__}(...)')
    if not callable(value):
        hint = f'; {sequence_hint}' if sequence_hint and isinstance(value, (list, tuple)) else ''
        raise TypeError(f'{where}: {what} must be {expected}, got {describe(value)}{hint}')


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def positive_int(where: str, what: str, value: Any) -> int:
    """``value`` as an int; TypeError when it is not an int, ValueError when it is not positive."""
    if not _is_int(value):
        raise TypeError(f'{where}: {what} must be a positive int, got {describe(value)}')
    if value <= 0:
        raise ValueError(f'{where}: {what} must be a positive int, got {value}')
    return int(value)


def int_pair(where: str, what: str, value: Any, minimum: int) -> tuple[int, int]:
    """``k`` or ``(kh, kw)`` → ``(kh, kw)`` of Python ints, each at least ``minimum``."""
    pair = (value, value) if _is_int(value) else value
    if not isinstance(pair, (tuple, list)):
        raise TypeError(f'{where}: {what} must be an int or a pair of ints, got {describe(value)}')
    if len(pair) != 2:
        raise ValueError(f'{where}: {what} must be an int or a pair of ints, got {value!r}')
    if not all(_is_int(v) for v in pair):
        raise TypeError(f'{where}: {what} must be an int or a pair of ints, got {value!r}')
    if pair[0] < minimum or pair[1] < minimum:
        raise ValueError(f'{where}: {what} must be at least {minimum}, got {value!r}')
    return int(pair[0]), int(pair[1])


def int_tuple(where: str, what: str, values: tuple) -> None:
    """Raise TypeError when an entry of the shape-like ``values`` is not an int."""
    for v in values:
        if not _is_int(v):
            raise TypeError(f'{where}: {what} {values!r} must be a tuple of ints; {v!r} is a '
                            f'{type(v).__name__}')


def dtype_of(where: str, what: str, dtype: Any) -> np.dtype:
    """``np.dtype(dtype)``, or a TypeError naming ``where`` when NumPy knows no such dtype."""
    try:
        return np.dtype(dtype)
    except TypeError:
        raise TypeError(f'{where}: {what} {dtype!r} is not a NumPy dtype; expected e.g. np.float32 or '
                        "'float32'") from None


def in_range(where: str, what: str, value: Any, low: float, high: float | None = None, *,
             low_inclusive: bool = True, high_inclusive: bool = True) -> None:
    """Check that the number ``value`` lies in ``[low, high]`` (``high`` None: no upper bound);
    TypeError when it is not a real number, ValueError when it is outside (NaN included)."""
    if not isinstance(value, numbers.Real) or isinstance(value, (bool, np.bool_)):
        raise TypeError(f'{where}: {what} must be a number, got {describe(value)}')
    above = value >= low if low_inclusive else value > low
    below = high is None or (value <= high if high_inclusive else value < high)
    if not (above and below):
        if high is None:
            expected = f'{">=" if low_inclusive else ">"} {low}'
        else:
            expected = f'in {"[" if low_inclusive else "("}{low}, {high}{"]" if high_inclusive else ")"}'
        raise ValueError(f'{where}: {what} must be {expected}, got {value!r}')


def _axis_in_range(where: str, axis: int, given: Any, shape: tuple, ndim: int) -> None:
    if not -ndim <= axis < ndim:
        expected = f'{-ndim} <= axis < {ndim}' if ndim else 'none: a 0-d input has no axes'
        which = f'axis {axis} in {given!r}' if isinstance(given, (tuple, list)) else f'axis {axis}'
        raise AxisError(f'{where}: {which} is out of range for an input of shape {tuple(shape)} '
                        f'(expected {expected})')


def normalize_axis(where: str, axis: Any, shape: tuple, ndim: int | None = None) -> int:
    """One ``axis`` of an input of ``shape`` as a non-negative int; ``ndim`` (default ``len(shape)``)
    is the number of axes it may index (one more for ops that insert an axis, such as stack)."""
    ndim = len(shape) if ndim is None else ndim
    if not _is_int(axis):
        raise TypeError(f'{where}: axis must be an int, got {describe(axis)}')
    _axis_in_range(where, axis, axis, shape, ndim)
    return int(axis) % ndim


def normalize_axes(where: str, axis: Any, shape: tuple) -> tuple[int, ...]:
    """``axis`` (None for all, an int, or a sequence of ints) as non-negative axes of ``shape``, in
    the order given. TypeError for a non-int axis, AxisError for one out of range."""
    ndim = len(shape)
    if axis is None:
        return tuple(range(ndim))
    axes = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
    if not all(_is_int(a) for a in axes):
        raise TypeError(f'{where}: axis must be an int or a tuple of ints, got {_short_repr(axis)}')
    for a in axes:
        _axis_in_range(where, a, axis, shape, ndim)
    return tuple(int(a) % ndim for a in axes)


def check_directory(where: str, path: str) -> None:
    """Raise FileNotFoundError naming ``where`` when the directory that would hold ``path`` is absent."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"{where}: cannot write '{path}': directory '{directory}' does not exist")
