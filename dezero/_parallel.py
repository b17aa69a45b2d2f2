"""dezero's parallel work, all in one pool: large elementwise kernels, GEMMs and convolution chunks.

NumPy releases the GIL inside ufunc loops, copies and BLAS calls, so slices of one computation can run
on several threads at once. Every parallel region runs ``parts`` pieces: the first on the calling
thread, the others in a shared pool of ``get_num_threads() - 1`` workers, with BLAS kept to one thread
per call (``dezero._threads``): so dezero never runs more busy threads than its thread count, and
BLAS's own spinning workers never compete with the pool. A region started inside another runs inline.

Without ``threadpoolctl`` BLAS cannot be limited, so dezero runs its kernels on the calling thread and
its GEMMs as plain BLAS calls (BLAS's own threads do the parallel work).
"""
from __future__ import annotations

import itertools
import os
import queue
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from dezero import _threads

# Elementwise kernels on NumPy arrays at least this large are split over the threads (split_apply).
_SPLIT_MIN_SIZE = 1 << 18
# apply_blocked's blocks: a kernel's few arrays of this many elements stay in a core's L2 cache.
_BLOCK = 1 << 16
# apply_blocked splits over the threads when each gets at least this much work (elements times the
# kernel's passes over them): an Adam update (12 passes) of 131k elements measured 20% faster on two
# threads, an SGD step (2 passes) of 401k elements no faster.
_BLOCKED_MIN_WORK = 1 << 19
# A GEMM is split when each thread gets at least this many multiply-adds (m*n*k): below it, waking a
# worker costs about as much as the work it takes over.
_GEMM_MIN_WORK = 1 << 21

# Products of fewer multiply-adds than this run on the calling thread in every BLAS (OpenBLAS's
# smallest threshold, its matrix-vector products', is 9216), so they skip limiting BLAS (3 us).
_BLAS_SERIAL_WORK = 1 << 13

# ``a @ b`` with a transposed ``b`` is computed as ``(b.T @ a.T).T`` from this inner length on (below
# it, transposing the result costs more than the slower GEMM).
_TRANSPOSE_MIN_K = 512

class _Workers:
    """``count`` daemon threads, each taking ``(body, part, parts)`` from its own queue and putting
    ``(part, result, error)`` on a shared one. Leaner than a ``ThreadPoolExecutor`` (no futures): a
    region's round trip measured 20-70 us here against 70-150 us."""

    def __init__(self, count: int) -> None:
        self.inboxes = [queue.SimpleQueue() for _ in range(count)]
        self.results: queue.SimpleQueue = queue.SimpleQueue()
        for inbox in self.inboxes:
            threading.Thread(target=self._serve, args=(inbox,), name='dezero-worker', daemon=True).start()

    def _serve(self, inbox: queue.SimpleQueue) -> None:
        while True:
            task = inbox.get()
            if task is None:  # retired (the thread count changed)
                return
            body, part, parts = task
            try:
                result = (part, body(part, parts), None)
            except BaseException as error:  # handed to the caller, which raises it
                result = (part, None, error)
            # Drop the region's closure (and the arrays it holds) before waiting for the next task:
            # an output would otherwise stay alive, its memory not reused, until then.
            task = body = None
            self.results.put(result)
            result = None

    def retire(self) -> None:
        for inbox in self.inboxes:
            inbox.put(None)


_workers: _Workers | None = None
_workers_key = (0, 0)  # (pid, count) the workers were started for
# Held by the thread that runs a region; a region started while it is held (inside a part, or from
# another thread at the same time) runs inline, so the workers serve one region at a time.
_region_lock = threading.Lock()


def _pool(count: int) -> _Workers:
    """The shared workers (``get_num_threads() - 1``; a region may use fewer), started on first use,
    again when the thread count changes, and again in a forked child, which inherits the object but
    not its threads (it would wait forever)."""
    global _workers, _workers_key
    key = (os.getpid(), count)
    if _workers is None or _workers_key != key:
        if _workers is not None and _workers_key[0] == key[0]:
            _workers.retire()
        _workers, _workers_key = _Workers(count), key
    return _workers


def available_threads() -> int:
    """How many threads a parallel region may use now: ``get_num_threads()``, or 1 inside another
    region or when BLAS cannot be kept to one thread (no threadpoolctl)."""
    if _region_lock.locked() or _threads.get_num_threads() == 1 or not _threads.blas_controllable():
        return 1
    return _threads.get_num_threads()


def run_parts(body: Callable[[int, int], Any], parts: int) -> list[Any]:
    """``[body(i, parts) for i in range(parts)]``, the parts run at once on ``parts`` threads (part 0
    on the calling thread) with BLAS on one thread per call. ``parts`` must not exceed
    ``available_threads()``; with 1 the body runs inline (BLAS still limited when dezero can)."""
    with _threads.single_threaded_blas:
        if parts < 2 or not _region_lock.acquire(blocking=False):
            return [body(i, parts) for i in range(parts)]
        try:
            workers = _pool(max(parts, _threads.get_num_threads()) - 1)
            for part in range(1, parts):
                workers.inboxes[part - 1].put((body, part, parts))
            results: list[Any] = [None] * parts
            error = None
            try:
                results[0] = body(0, parts)
            except BaseException as caught:  # still collect the workers' parts first
                error = caught
            for _ in range(1, parts):
                part, result, part_error = workers.results.get()
                results[part] = result
                error = error or part_error
        finally:
            _region_lock.release()
    if error is not None:
        raise error
    return results


def run_pieces(piece: Callable[[int], Any], count: int, parts: int) -> list[Any]:
    """``[piece(i) for i in range(count)]`` on ``parts`` threads (at most ``available_threads()``),
    each thread taking the next piece as soon as it is done with one, so that a core slowed by
    other work takes fewer pieces. Results come back in piece order, whichever thread made them."""
    if parts < 2 or count < 2:
        return [piece(i) for i in range(count)]
    results: list[Any] = [None] * count
    indexes = itertools.count()  # next() on it is atomic under the GIL

    def take_pieces(part: int, parts: int) -> None:
        for index in iter(indexes.__next__, None):
            if index >= count:
                return
            results[index] = piece(index)

    run_parts(take_pieces, min(parts, count))
    return results


def part_bounds(length: int, part: int, parts: int, align: int = 1) -> tuple[int, int]:
    """``[start, stop)`` of part ``part`` of ``parts`` near-equal pieces of ``range(length)``, the
    boundaries rounded to multiples of ``align``."""
    def bound(i: int) -> int:
        return min(length, (length * i // parts + align - 1) // align * align) if i < parts else length
    return bound(part), bound(part + 1)


def split_apply(kernel: Callable[..., Any], *arrays: Any) -> None:
    """Run ``kernel(*arrays)``, a computation independent along axis 0 that writes its results into
    some of ``arrays`` (preallocated outputs, all of one length), in parallel over slices of axis 0.

    Slicing axis 0 always gives views, so the kernel's writes land in the outputs. Small arrays, CuPy
    arrays, or a call inside another parallel region get one ordinary call.
    """
    first = arrays[0]
    if first.size < 2 * _SPLIT_MIN_SIZE or first.ndim == 0:
        kernel(*arrays)
        return
    parts = min(available_threads(), first.size // _SPLIT_MIN_SIZE, first.shape[0])
    if parts < 2 or not all(isinstance(a, np.ndarray) and a.shape[:1] == first.shape[:1] for a in arrays):
        kernel(*arrays)
        return

    def part_kernel(part: int, parts: int) -> None:
        start, stop = part_bounds(first.shape[0], part, parts)
        kernel(*[a[start:stop] for a in arrays])

    run_parts(part_kernel, parts)


def apply_blocked(kernel: Callable[..., Any], *arrays: Any, passes: int = 1) -> None:
    """Run the elementwise ``kernel(*arrays)`` (same-size arrays; it writes its results into some of
    them) block by block over the flattened arrays, the blocks shared among the threads.

    A multi-pass kernel (an optimizer's update makes a dozen passes) then reads each block from
    memory once and makes its other passes in cache. ``passes``, about how many elementwise
    operations the kernel makes, decides from what size the threads share the blocks. Arrays that
    are not C-contiguous, CuPy arrays and small arrays get one ordinary call.
    """
    first = arrays[0]
    if (first.size <= _BLOCK or not all(isinstance(a, np.ndarray) and a.flags.c_contiguous
                                        and a.size == first.size for a in arrays)):
        kernel(*arrays)
        return
    flat = [a.reshape(-1) for a in arrays]
    blocks = -(-first.size // _BLOCK)

    def part_kernel(part: int, parts: int) -> None:
        start, stop = part_bounds(blocks, part, parts)
        for block in range(start, stop):
            where = slice(block * _BLOCK, (block + 1) * _BLOCK)
            kernel(*[a[where] for a in flat])

    parts = min(available_threads(), blocks, first.size * passes // _BLOCKED_MIN_WORK)
    if parts < 2:
        part_kernel(0, 1)
    else:
        run_parts(part_kernel, parts)


def matmul(a: Any, b: Any, out: Any = None) -> Any:
    """``a @ b`` (into ``out`` when given), split over the threads when large.

    2-D products are split along the longer of the output's axes; stacked products whose batch shapes
    agree are split along the batch. BLAS runs each piece on one thread. CuPy arrays, products too
    small for BLAS to thread, and NumPy without threadpoolctl get one plain ``matmul`` (an outer
    product, inner length 1, one ``multiply``).
    """
    if not isinstance(a, np.ndarray) or not isinstance(b, np.ndarray) or a.ndim < 2 or b.ndim < 2:
        return a @ b if out is None else np.matmul(a, b, out=out)
    m, k, n = a.shape[-2], a.shape[-1], b.shape[-1]
    if k == 1:  # outer products (broadcast over the batch axes like matmul): BLAS is slow at them
        return np.multiply(a, b, out=out)
    work = m * n * k if a.ndim == 2 and b.ndim == 2 else max(a.size * n, b.size * m)
    if work < _BLAS_SERIAL_WORK or not _threads.blas_controllable():
        return a @ b if out is None else np.matmul(a, b, out=out)
    if (a.ndim == 2 and b.ndim == 2 and k >= _TRANSPOSE_MIN_K and b.size > a.size
            and b.flags.f_contiguous and not b.flags.c_contiguous and a.flags.c_contiguous):
        # ``a @ W.T`` (a layer's input gradient): OpenBLAS multiplies by a large transposed right
        # operand 20-30% slower than ``W @ a.T``, so compute that and transpose it (cheap when k is
        # long).
        product = matmul(b.T, a.T)
        if out is None:
            return np.ascontiguousarray(product.T)
        np.copyto(out, product.T)
        return out
    parts = 1 if work < 2 * _GEMM_MIN_WORK else min(available_threads(), work // _GEMM_MIN_WORK)
    if parts < 2:  # the common small case, with the least overhead
        if _threads.single_threaded_blas.active:
            return a @ b if out is None else np.matmul(a, b, out=out)
        with _threads.single_threaded_blas:
            return a @ b if out is None else np.matmul(a, b, out=out)
    if out is None:
        batch_shape = a.shape[:-2] if a.shape[:-2] == b.shape[:-2] else np.broadcast_shapes(
            a.shape[:-2], b.shape[:-2])
        out = np.empty(batch_shape + (m, n), dtype=np.result_type(a, b))
    if (a.ndim > 2 or b.ndim > 2) and (a.shape[:-2] != b.shape[:-2] or a.shape[0] < parts):
        with _threads.single_threaded_blas:
            return np.matmul(a, b, out=out)
    if a.ndim > 2 or b.ndim > 2:
        def part_product(part: int, parts: int) -> None:
            start, stop = part_bounds(a.shape[0], part, parts)
            np.matmul(a[start:stop], b[start:stop], out=out[start:stop])
    elif m >= n:
        def part_product(part: int, parts: int) -> None:
            start, stop = part_bounds(m, part, parts, align=8)
            np.matmul(a[start:stop], b, out=out[start:stop])
    else:
        def part_product(part: int, parts: int) -> None:
            start, stop = part_bounds(n, part, parts, align=16)
            np.matmul(a, b[:, start:stop], out=out[:, start:stop])

    run_parts(part_product, parts)
    return out
