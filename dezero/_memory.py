"""Recycled memory for dezero's large NumPy arrays: a pool keyed by size, as CuPy keeps on a GPU.

A fresh multi-megabyte array is fresh memory from the C allocator, whose pages fault on first touch,
and the allocator gives freed memory back to the system and maps it again as a step's arrays come
and go. So a training step keeps faulting: 1,575 page faults and 8-11 ms of kernel time in an 80 ms
CNN step here (``benchmarks/cnn.py``). The kernels that return large arrays take them from ``empty``
and ``zeros``: the memory of an array whose every view has died goes back to the pool, and the next
array of that size reuses it, already mapped. Small arrays, CuPy arrays and the process's other
NumPy code are untouched.

How an array's death is seen: the array handed out is a view whose base is a private ndarray
subclass instance (a lease) over a pooled ``bytearray``. NumPy keeps that lease as the base of every
further view (it stops collapsing a chain of bases where the type changes), so the lease dies
exactly when the last view does, and a weak reference to it returns the block.
"""
from __future__ import annotations

import math
import os
import threading
import weakref
from typing import Any

import numpy as np

__all__ = ['empty', 'zeros', 'idle_bytes', 'release_idle']

# Arrays from this size on are pooled: below it the allocator's own free lists serve them without
# faults in the steps measured, and a lease's bookkeeping (1-3 microseconds) would cost more than it
# saves. (Pooling matrix products' outputs from 128 KiB cut an LSTM window's faults from 221 to 91
# but made it 7% slower, so products are not pooled.)
_MIN_BYTES = 1 << 20
# At most this much memory waits in the pool; a block returned beyond it is freed.
_MAX_IDLE_BYTES = 1 << 29


class _Lease(np.ndarray):
    """The private base of a pooled array (never handed out): it lives while any view does."""


class _Pool:
    """Idle blocks by size, and the blocks lent out, each under a weak reference to its lease."""

    def __init__(self) -> None:
        self.idle: dict[int, list[bytearray]] = {}
        self.idle_total = 0
        # id(weak reference) → (the reference, its block): keeps each reference until it fires.
        self.lent: dict[int, tuple[weakref.ref, bytearray]] = {}
        self._new_lock()
        os.register_at_fork(after_in_child=self._new_lock)  # a lock held at the fork stays held

    def _new_lock(self) -> None:
        # Guards idle and idle_total. Nothing done under it frees an array, so a lease never dies
        # (and its callback never runs) on a thread that holds it.
        self.lock = threading.Lock()

    def lease(self, shape: tuple[int, ...], dtype: np.dtype, nbytes: int) -> np.ndarray:
        block = self._take(nbytes)
        lease = np.ndarray.__new__(_Lease, shape, dtype, buffer=block)
        ref = weakref.ref(lease, self._returned)
        self.lent[id(ref)] = (ref, block)
        return lease.view(np.ndarray)

    def _take(self, nbytes: int) -> bytearray:
        with self.lock:
            blocks = self.idle.get(nbytes)
            if blocks:
                self.idle_total -= nbytes
                return blocks.pop()
        return bytearray(nbytes)  # zero-filled, so its pages are mapped here, once

    def _returned(self, ref: weakref.ref) -> None:
        _, block = self.lent.pop(id(ref))
        with self.lock:
            if self.idle_total + len(block) <= _MAX_IDLE_BYTES:
                self.idle.setdefault(len(block), []).append(block)
                self.idle_total += len(block)

    def release(self) -> None:
        with self.lock:
            self.idle.clear()
            self.idle_total = 0


_pool = _Pool()


def _pooled_size(xp: Any, shape: tuple[int, ...], dtype: np.dtype) -> int:
    """The size in bytes of an array of this kind if it is pooled, else 0."""
    nbytes = math.prod(shape) * dtype.itemsize
    return nbytes if xp is np and nbytes >= _MIN_BYTES and not dtype.hasobject else 0


def empty(xp: Any, shape: tuple[int, ...], dtype: Any) -> Any:
    """``xp.empty(shape, dtype)``; a NumPy array of at least 1 MiB gets its memory from the pool.

    The result is an ordinary C-contiguous, writeable ``numpy.ndarray`` (its ``base`` is private),
    which may hold the values of an earlier, dead array.
    """
    dtype = np.dtype(dtype)
    nbytes = _pooled_size(xp, shape, dtype)
    return _pool.lease(shape, dtype, nbytes) if nbytes else xp.empty(shape, dtype=dtype)


def zeros(xp: Any, shape: tuple[int, ...], dtype: Any) -> Any:
    """``xp.zeros(shape, dtype)``, from the pool like ``empty`` (then filled with zeros)."""
    dtype = np.dtype(dtype)
    nbytes = _pooled_size(xp, shape, dtype)
    if not nbytes:
        return xp.zeros(shape, dtype=dtype)
    out = _pool.lease(shape, dtype, nbytes)
    out.fill(0)
    return out


def idle_bytes() -> int:
    """How many bytes wait in the pool for reuse now."""
    return _pool.idle_total


def release_idle() -> None:
    """Free every block waiting in the pool (arrays in use keep theirs and return them later)."""
    _pool.release()
