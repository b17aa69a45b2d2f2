"""Helpers: graph plots (Graphviz), gradient checking, array comparisons and shape arithmetic."""
from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from typing import Any

import numpy as np

from dezero._checks import check_directory, describe
from dezero._files import atomic_file  # noqa: F401  (public here for scripts)
from dezero.core import Function, Variable, _sum_to_array, as_array, as_variable
from dezero.cuda import as_numpy, get_array_module
from dezero.download import DownloadError, cache_dir, get_cache_dir, get_file  # noqa: F401


# =============================================================================
# Graph visualisation
# =============================================================================
def _dot_var(v: Variable, verbose: bool = False) -> str:
    name = '' if v.name is None else v.name
    if verbose and v.data is not None:
        if v.name is not None:
            name += ': '
        name += f'{v.shape} {v.dtype}'
    name = name.replace('"', '\\"')
    return f'{id(v)} [label="{name}", color=orange, style=filled]\n'


def _dot_func(f: Function) -> str:
    text = f'{id(f)} [label="{type(f).__name__}", color=lightblue, style=filled, shape=box]\n'
    for x in f.inputs:
        text += f'{id(x)} -> {id(f)}\n'
    for ref in f.outputs:
        y = ref()
        if y is not None:
            text += f'{id(f)} -> {id(y)}\n'
    return text


def _check_output(where: str, output: Any) -> None:
    if not isinstance(output, Variable):
        raise TypeError(f'{where}: output must be a Variable (the result of a computation), got '
                        f'{describe(output)}')


def get_dot_graph(output: Variable, verbose: bool = True) -> str:
    """Return the DOT text of the graph that produced ``output``.

    Variables are orange ellipses labelled by name (and, with ``verbose``, shape and dtype); Functions
    are light-blue boxes labelled by class name. The walk is iterative, so deep graphs are fine.
    """
    _check_output('get_dot_graph', output)
    lines = [_dot_var(output, verbose)]
    pending: list[Function] = []
    seen: set[int] = set()

    def visit(f: Function | None) -> None:
        if f is not None and id(f) not in seen:
            seen.add(id(f))
            pending.append(f)

    visit(output.creator)
    while pending:
        func = pending.pop()
        lines.append(_dot_func(func))
        for x in func.inputs:
            lines.append(_dot_var(x, verbose))
            visit(x.creator)
    return 'digraph g {\n' + ''.join(lines) + '}'


def plot_dot_graph(output: Variable, verbose: bool = True, to_file: str = 'graph.png') -> None:
    """Render the graph behind ``output`` to ``to_file`` with Graphviz's ``dot``.

    The format comes from the extension (png, svg, pdf, ...). The file appears complete or not at all.
    Raises ``RuntimeError`` when the ``dot`` program is not installed.
    """
    _check_output('plot_dot_graph', output)
    check_directory('plot_dot_graph', to_file)
    dot = shutil.which('dot')
    if dot is None:
        raise RuntimeError('plot_dot_graph: the Graphviz program "dot" was not found on PATH; install '
                           'Graphviz (e.g. apt-get install graphviz) to plot graphs')
    extension = os.path.splitext(to_file)[1][1:] or 'png'
    with atomic_file(to_file) as tmp_path:
        result = subprocess.run([dot, '-T', extension, '-o', tmp_path], input=get_dot_graph(output, verbose),
                                text=True, capture_output=True)
        if result.returncode != 0:
            raise RuntimeError(f'plot_dot_graph: dot failed writing {to_file}: {result.stderr.strip()}')


# =============================================================================
# Shape helpers used by ops' backward
# =============================================================================
def sum_to(x: Any, shape: tuple[int, ...]) -> Any:
    """Sum array ``x`` over the axes broadcasting added or stretched, so that it has ``shape``."""
    return x if x.shape == tuple(shape) else _sum_to_array(x, tuple(shape))


def reshape_sum_backward(gy: Any, x_shape: tuple[int, ...], axis: Any, keepdims: bool) -> Any:
    """Reshape the gradient of a reduction so that it broadcasts back to ``x_shape``.

    ``gy`` (array or Variable) has the reduced shape; reduced axes are restored as length 1.
    """
    ndim = len(x_shape)
    if axis is None:
        axes: tuple[int, ...] = tuple(range(ndim))
    elif isinstance(axis, int):
        axes = (axis,)
    else:
        axes = tuple(axis)
    if ndim == 0 or keepdims or gy.ndim == ndim:
        return gy
    actual = sorted(a % ndim for a in axes)
    shape = list(gy.shape)
    for a in actual:
        shape.insert(a, 1)
    return gy.reshape(tuple(shape))


def max_backward_shape(x: Any, axis: Any) -> list[int]:
    """Shape of a max/min result with the reduced axes kept as 1 (for broadcasting back to ``x``)."""
    if axis is None:
        axis = range(x.ndim)
    elif isinstance(axis, int):
        axis = (axis,)
    axes = [a % x.ndim for a in axis]
    return [1 if i in axes else n for i, n in enumerate(x.shape)]


def logsumexp(x: Any, axis: int = 1) -> Any:
    """``log(sum(exp(x), axis, keepdims=True))`` of an array, computed stably by subtracting the max."""
    xp = get_array_module(x)
    m = x.max(axis=axis, keepdims=True)
    y = xp.exp(x - m)
    s = y.sum(axis=axis, keepdims=True)
    return xp.log(s) + m


def pair(x: int | tuple[int, int]) -> tuple[int, int]:
    """``k`` → ``(k, k)``; a pair is returned unchanged. Anything else raises ``ValueError``."""
    if isinstance(x, (int, np.integer)):
        return (int(x), int(x))
    if isinstance(x, tuple) and len(x) == 2:
        return x
    raise ValueError(f'pair: expected an int or a tuple of two ints, got {x!r}')


def show_progress(block_num: int, block_size: int, total_size: int) -> None:
    """The book's ``urllib.request.urlretrieve`` report hook: a 30-character bar and a percentage,
    rewritten in place on stdout (``\\r[#####.....] 16.67%``).

    ``block_num`` blocks of ``block_size`` bytes have arrived out of ``total_size``; a ``total_size``
    of 0 or less (unknown, as urlretrieve reports it) shows the bytes received instead.
    """
    downloaded = block_num * block_size
    if total_size <= 0:
        print(f'\r{downloaded} bytes', end='')
        return
    fraction = min(downloaded / total_size, 1.0)
    filled = int(fraction * 30)
    print(f'\r[{"#" * filled}{"." * (30 - filled)}] {fraction * 100:.2f}%', end='')


def get_conv_outsize(input_size: int, kernel_size: int, stride: int, pad: int) -> int:
    """Output length of a convolution: ``(input_size + 2*pad - kernel_size) // stride + 1``."""
    try:
        return (input_size + pad * 2 - kernel_size) // stride + 1
    except ZeroDivisionError:
        raise ValueError(f'get_conv_outsize: stride must be at least 1, got {stride}') from None


def get_deconv_outsize(size: int, k: int, s: int, p: int) -> int:
    """Output length of a transposed convolution: ``s * (size - 1) + k - 2*p``."""
    return s * (size - 1) + k - 2 * p


# =============================================================================
# Gradient checking
# =============================================================================
def array_equal(a: Any, b: Any) -> bool:
    """``np.array_equal`` of ``a`` and ``b`` (arrays, scalars or Variables, CPU or GPU): True when they
    have the same shape and elements."""
    return bool(np.array_equal(as_numpy(a), as_numpy(b)))


def array_allclose(a: Any, b: Any, rtol: float = 1e-4, atol: float = 1e-5) -> bool:
    """``np.allclose`` of ``a`` and ``b`` (arrays, scalars or Variables, CPU or GPU): True when every
    element agrees within ``atol + rtol*|b|`` after NumPy broadcasting, so a ``(1,)`` result equals a
    scalar, as the book's tests expect. Shapes that do not broadcast raise ``ValueError``, as there."""
    a, b = as_numpy(a), as_numpy(b)
    try:
        return bool(np.allclose(a, b, rtol=rtol, atol=atol))
    except ValueError:
        raise ValueError(f'array_allclose: shapes {a.shape} and {b.shape} cannot be broadcast '
                         'together') from None


def _call_for_check(name: str, f: Callable, x: Any, args: tuple, kwargs: dict) -> Variable:
    y = f(x, *args, **kwargs)
    if not isinstance(y, Variable):
        raise TypeError(f'{name}: the function {getattr(f, "__name__", f)!r} returned '
                        f'{type(y).__name__}, expected a Variable')
    return y


def _sum_of(f: Callable, x: Any, args: tuple, kwargs: dict) -> Any:
    """Sum of ``f(x)``, accepting a Variable or an array result (``f`` may be plain NumPy code)."""
    y = f(x, *args, **kwargs)
    y = y.data if isinstance(y, Variable) else as_array(y)
    return y.sum()


def numerical_grad(f: Callable, x: Any, *args: Any, **kwargs: Any) -> Any:
    """Central-difference gradient of ``sum(f(x, *args, **kwargs))`` with respect to ``x``.

    ``x`` is a Variable or an array (same shape as the result); each element is nudged by ±1e-4.
    """
    eps = 1e-4
    x = as_array(x.data if isinstance(x, Variable) else x)
    xp = get_array_module(x)
    x = x.astype(np.float64) if x.dtype.kind != 'f' else x
    grad = xp.zeros_like(x)
    flat_x = x.reshape(-1)  # a view: nudging it nudges x
    flat_grad = grad.reshape(-1)
    for i in range(flat_x.size):
        original = flat_x[i].copy()
        flat_x[i] = original + eps
        y_plus = _sum_of(f, x, args, kwargs)
        flat_x[i] = original - eps
        y_minus = _sum_of(f, x, args, kwargs)
        flat_x[i] = original
        flat_grad[i] = (y_plus - y_minus) / (2 * eps)
    return grad


def gradient_check(f: Callable, x: Any, *args: Any, rtol: float = 1e-4, atol: float = 1e-5,
                   **kwargs: Any) -> bool:
    """Compare backprop's gradient of ``sum(f(x, ...))`` with ``numerical_grad``; print what differs.

    ``x`` (array or Variable) is checked in float64 for precision. Returns True when they agree.
    Raises ``TypeError`` when ``f`` does not return a Variable.
    """
    x_data = as_variable(x).data
    x = Variable(x_data.astype(np.float64) if x_data.dtype != np.float64 else x_data.copy())
    y = _call_for_check('gradient_check', f, x, args, kwargs)
    y.backward()
    if x.grad is None:
        print('gradient_check: backward produced no gradient for x')
        return False
    backprop = x.grad.data
    numeric = numerical_grad(f, x.data.copy(), *args, **kwargs)
    if backprop.shape != numeric.shape:
        print(f'gradient_check: shapes differ: backprop {backprop.shape}, numerical {numeric.shape}')
        return False
    ok = array_allclose(backprop, numeric, rtol=rtol, atol=atol)
    if not ok:
        diff = np.abs(as_numpy(backprop) - as_numpy(numeric))
        print('gradient_check: backprop and numerical gradients differ')
        print(f'  shape {backprop.shape}, max abs difference {diff.max():.3e}')
        print(f'  backprop  (first values): {as_numpy(backprop).ravel()[:10]}')
        print(f'  numerical (first values): {as_numpy(numeric).ravel()[:10]}')
    return ok
