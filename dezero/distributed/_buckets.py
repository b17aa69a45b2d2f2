"""Flat contiguous buffers ("buckets") that carry many arrays in one MPI call.

One collective per parameter would pay MPI's per-call latency hundreds of times per step (a ResNet has
~500 parameters; on a network each call costs tens of microseconds at least). Instead the arrays are
grouped by dtype, in order, into host buffers of at most ``bucket_bytes`` (an array larger than that
gets a bucket of its own), and each bucket travels in one call.
"""
from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dezero.cuda import as_cupy, as_numpy

# As PyTorch's DDP: large enough that per-call latency is negligible, small enough to bound the copy.
DEFAULT_BUCKET_BYTES = 25 * 2 ** 20


@dataclass(frozen=True)
class Slot:
    """Where array ``index`` of the planned list lies in its bucket: ``buffer[start:stop]``."""

    index: int
    start: int
    stop: int
    shape: tuple[int, ...]


@dataclass(frozen=True)
class Bucket:
    """One flat buffer of ``size`` elements of ``dtype``, holding the arrays of ``slots``."""

    dtype: np.dtype
    size: int
    slots: tuple[Slot, ...]

    def empty(self, extra: int = 0) -> np.ndarray:
        """A new uninitialised host buffer for this bucket, with ``extra`` trailing elements."""
        return np.empty(self.size + extra, dtype=self.dtype)


def plan_buckets(layout: Sequence[tuple[tuple[int, ...], Any] | None], bucket_bytes: int) -> list[Bucket]:
    """Group arrays described by ``layout`` (``(shape, dtype)`` per array, None to leave it out) into
    buckets of one dtype and at most ``bucket_bytes`` each, keeping their order within a dtype.

    Example: ``plan_buckets([((3, 4), np.float32), None, ((4,), np.float32)], 2**20)`` gives one
    float32 bucket of 16 elements with slots for arrays 0 (``[0:12]``) and 2 (``[12:16]``).
    """
    if not isinstance(bucket_bytes, (int, np.integer)) or bucket_bytes < 1:
        raise ValueError(f'dezero.distributed: bucket_bytes must be a positive int, got {bucket_bytes!r}')
    open_buckets: dict[np.dtype, list[Slot]] = {}
    sizes: dict[np.dtype, int] = {}
    buckets: list[Bucket] = []
    for index, entry in enumerate(layout):
        if entry is None:
            continue
        shape, dtype = tuple(entry[0]), np.dtype(entry[1])
        count = int(np.prod(shape, dtype=np.int64))
        slots = open_buckets.setdefault(dtype, [])
        if slots and (sizes[dtype] + count) * dtype.itemsize > bucket_bytes:
            buckets.append(Bucket(dtype, sizes[dtype], tuple(slots)))
            slots = open_buckets[dtype] = []
        start = sizes[dtype] if slots else 0
        slots.append(Slot(index, start, start + count, shape))
        sizes[dtype] = start + count
    for dtype, slots in open_buckets.items():
        if slots:
            buckets.append(Bucket(dtype, sizes[dtype], tuple(slots)))
    return buckets


def array_over(memory: Any, dtype: Any, count: int, offset: int = 0) -> np.ndarray:
    """A new array of ``count`` elements of ``dtype`` over the bytes of ``memory`` from byte ``offset``.

    ``memory`` is a raw buffer (a memoryview, an MPI window's memory), not a NumPy array, so NumPy
    makes the new array, not ``memory``, the base of every array derived from it (a gradient's view
    of its slot, any view of that): the array stays alive exactly as long as something views those
    bytes, which a weak reference to it tells (``weakref.ref(array)() is not None``).
    """
    return np.frombuffer(memory, dtype=dtype, count=count, offset=offset)


class ReusedBuffer:
    """A bucket's host buffer for every step: ``take()`` gives an array of the bucket's length plus
    ``extra``, over the memory of the previous step's when nothing views that array any more (the
    gradients viewing it were cleared or replaced), else over new memory. So a gradient kept from an
    earlier step never changes, and the memory is not allocated afresh at every step, which would pay
    the page faults of megabytes each time (measured: a quarter of the ``Allreduce`` time here)."""

    def __init__(self, bucket: Bucket, extra: int = 0) -> None:
        self._bucket, self._extra = bucket, extra
        self._memory: memoryview | None = None
        self._handed = None  # a weak reference to the array handed out last

    def take(self) -> np.ndarray:
        """The buffer for this step (see the class)."""
        if self._memory is None or self._handed() is not None:
            self._memory = self._bucket.empty(self._extra).data
        array = array_over(self._memory, self._bucket.dtype, self._bucket.size + self._extra)
        self._handed = weakref.ref(array)
        return array


def like(host_array: np.ndarray, reference: Any) -> Any:
    """``host_array`` on the device of ``reference`` (a CuPy copy when ``reference`` is on a GPU)."""
    return host_array if isinstance(reference, np.ndarray) else as_cupy(host_array)


def pack(bucket: Bucket, arrays: Sequence[Any], buffer: np.ndarray) -> None:
    """Copy each array of ``bucket`` (NumPy or CuPy) into its slot of the host ``buffer``."""
    for slot in bucket.slots:
        buffer[slot.start:slot.stop] = as_numpy(arrays[slot.index]).reshape(-1)


def unpack_into(bucket: Bucket, buffer: np.ndarray, arrays: Sequence[Any]) -> None:
    """Copy each slot of the host ``buffer`` back into its array of ``arrays``, in place."""
    for slot in bucket.slots:
        target = arrays[slot.index]
        target[...] = like(buffer[slot.start:slot.stop].reshape(slot.shape), target)
