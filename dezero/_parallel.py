"""Splitting large NumPy kernels over the cores: NumPy releases the GIL inside ufunc loops and copies,
so slices of one array can be computed by several threads at once. Used by ops whose loops are
memory- or stride-bound (relu, max pooling, im2col copies), where PyTorch uses every core too.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

# Elementwise kernels on NumPy arrays at least this large are split over the cores (see split_apply).
_SPLIT_MIN_SIZE = 1 << 18
_WORKERS = (os.cpu_count() or 1) - 1  # the calling thread takes one part itself
_pool: ThreadPoolExecutor | None = None
_pool_pid = 0


def _thread_pool() -> ThreadPoolExecutor:
    """The shared worker pool, created on first use and again in a forked child, which inherits
    the pool object but not its threads (submitting to it there would wait forever)."""
    global _pool, _pool_pid
    if _pool is None or _pool_pid != os.getpid():
        _pool, _pool_pid = ThreadPoolExecutor(_WORKERS), os.getpid()
    return _pool


def split_apply(kernel: Callable[..., Any], *arrays: Any) -> None:
    """Run ``kernel(*arrays)``, a computation independent along axis 0 that writes its results into
    some of ``arrays`` (preallocated outputs, all of one length), in parallel over slices of axis 0.

    NumPy releases the GIL inside ufunc loops, so large elementwise ops run on every core: one slice
    in the calling thread, the others in a shared pool. Slicing axis 0 always gives views, so the
    kernel's writes land in the outputs. Small arrays, or any CuPy array, get one ordinary call.
    """
    first = arrays[0]
    parts = min(_WORKERS + 1, first.size // _SPLIT_MIN_SIZE, first.shape[0] if first.ndim else 0)
    if parts < 2 or not all(isinstance(a, np.ndarray) and a.shape[:1] == first.shape[:1] for a in arrays):
        kernel(*arrays)
        return
    bounds = [first.shape[0] * i // parts for i in range(parts + 1)]
    pieces = [[a[start:stop] for a in arrays] for start, stop in zip(bounds[:-1], bounds[1:])]
    pool = _thread_pool()
    futures = [pool.submit(kernel, *piece) for piece in pieces[1:]]
    kernel(*pieces[0])
    for future in futures:
        future.result()
