"""Array-module dispatch: the one place that decides between NumPy and CuPy.

CuPy is optional. When it imports, ``gpu_enable`` is True and arrays may live on the GPU; every op asks
``get_array_module`` for the module of its data (``xp``) instead of naming NumPy.
"""
from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

try:
    import cupy
    import cupyx  # noqa: F401  (cupyx.scatter_add is used by scatter_add below)

    gpu_enable = True
except ImportError:  # pragma: no cover - exercised on machines without CuPy
    cupy = None
    gpu_enable = False

# Types accepted as Variable data; a CuPy ndarray joins them when CuPy is present.
array_types: tuple[type, ...] = (np.ndarray,) if cupy is None else (np.ndarray, cupy.ndarray)


def _raw(x: Any) -> Any:
    """Unwrap a Variable (anything that is not an array but carries ``data``) to its array."""
    if isinstance(x, array_types) or np.isscalar(x):
        return x
    return getattr(x, 'data', x)


def get_array_module(x: Any) -> ModuleType:
    """Return ``numpy`` or ``cupy`` for an array, a Variable or a scalar.

    Without CuPy this is always ``numpy``. Example: ``xp = get_array_module(x); xp.exp(x)``.
    """
    if cupy is None or isinstance(x, np.ndarray):
        return np
    return cupy.get_array_module(_raw(x))


def as_numpy(x: Any) -> np.ndarray:
    """Return ``x`` (array, scalar, nested list or Variable) as a NumPy array, copying from the GPU
    if needed; a NumPy array is returned itself."""
    x = _raw(x)
    if isinstance(x, np.ndarray):
        return x
    if cupy is not None and isinstance(x, cupy.ndarray):
        return cupy.asnumpy(x)
    return np.asarray(x)


def as_cupy(x: Any) -> Any:
    """Return ``x`` (array, scalar or Variable) as a CuPy array on the current GPU.

    Raises ``RuntimeError`` naming the missing extra when CuPy is not installed.
    """
    if not gpu_enable:
        raise RuntimeError(
            'dezero.cuda.as_cupy: CuPy is not installed, so arrays cannot move to a GPU; '
            "install the 'gpu' extra (pip install 'dezero[gpu]')")
    return cupy.asarray(_raw(x))


def scatter_add(target: Any, indices: Any, values: Any) -> None:
    """Add ``values`` into ``target[indices]`` in place, accumulating repeated indices.

    ``numpy.add.at`` on the CPU, ``cupyx.scatter_add`` on the GPU.
    """
    if isinstance(target, np.ndarray):
        np.add.at(target, indices, values)
    else:
        cupyx.scatter_add(target, indices, values)


def __getattr__(name: str) -> Any:
    # The book's cuda module exposes Variable. dezero.core imports this module, so it is looked up
    # on first use rather than imported here.
    if name == 'Variable':
        from dezero.core import Variable
        return Variable
    raise AttributeError(f"module 'dezero.cuda' has no attribute {name!r}")
