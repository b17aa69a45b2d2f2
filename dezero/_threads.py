"""One owner of the cores: how many threads dezero runs, and BLAS kept to one thread inside dezero.

NumPy's BLAS (OpenBLAS) has its own worker threads, which keep spinning for a while after every
multi-threaded call. If dezero ran its own parallel kernels next to them, both would fight over the
cores. So dezero's kernels and GEMMs run in one pool (``dezero._parallel``) of ``get_num_threads()``
threads, and while dezero computes, BLAS runs each call on the thread that made it
(``single_threaded_blas``), so its workers never get dezero's work and sleep. Outside dezero's calls the
process's BLAS keeps its own thread count, so a user's NumPy code keeps its threading.

Limiting BLAS at run time needs ``threadpoolctl`` (the ``threads`` extra), imported at the first
parallel use, not by ``import dezero``. Without it dezero runs its kernels on the calling thread and
leaves all parallelism to BLAS: never more busy threads than cores either way.
"""
from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Callable
from typing import Any

__all__ = ['get_num_threads', 'set_num_threads']


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def _count_from_environment() -> int:
    value = os.environ.get('DEZERO_NUM_THREADS', '').strip()
    if not value:
        return _usable_cores()
    try:
        count = int(value)
    except ValueError:
        count = 0
    if count < 1:
        raise ValueError(f'dezero: DEZERO_NUM_THREADS must be a positive integer, got {value!r}')
    return count


_num_threads = _count_from_environment()


def get_num_threads() -> int:
    """The number of threads dezero's parallel kernels use: ``DEZERO_NUM_THREADS``, else the cores
    this process may run on, unless ``set_num_threads`` changed it."""
    return _num_threads


def set_num_threads(n: int) -> None:
    """Run dezero's parallel work on ``n`` threads (the calling thread and ``n - 1`` workers).

    Like ``torch.set_num_threads``, this also sets the process's BLAS thread count to ``n`` (through
    ``threadpoolctl``, when installed), so NumPy's own matrix products outside dezero use ``n`` threads
    from then on. ``set_num_threads(1)`` makes dezero run everything on the calling thread.
    """
    global _num_threads
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f'dezero.set_num_threads: n must be a positive int, got {n!r}')
    _num_threads = n
    for _, set_count in _blas_controls():
        set_count(n)


# =============================================================================
# BLAS control (threadpoolctl finds the loaded BLAS libraries; OpenBLAS is called directly, since
# threadpoolctl's own setter costs several microseconds per call)
# =============================================================================
_controls: list[tuple[Callable[[], int], Callable[[int], Any]]] | None = None


def _forget_controls() -> None:
    global _controls
    _controls = None


# A forked child looks the libraries up again (cheaper than comparing process ids at every call).
os.register_at_fork(after_in_child=_forget_controls)


def _openblas_functions(dynlib: Any) -> tuple[Callable[[], int], Callable[[int], Any]] | None:
    for prefix in ('', 'scipy_'):
        for suffix in ('', '64_', '_64'):
            get_count = getattr(dynlib, f'{prefix}openblas_get_num_threads{suffix}', None)
            set_count = getattr(dynlib, f'{prefix}openblas_set_num_threads{suffix}', None)
            if get_count is not None and set_count is not None:
                get_count.restype, set_count.argtypes = ctypes.c_int, [ctypes.c_int]
                return get_count, set_count
    return None


def _blas_controls() -> list[tuple[Callable[[], int], Callable[[int], Any]]]:
    """``(get_count, set_count)`` for every BLAS library loaded in this process; empty without
    threadpoolctl. Found once (again in a forked child, where libraries may have been loaded since)."""
    global _controls
    if _controls is not None:
        return _controls
    _controls = []
    try:
        import threadpoolctl
    except ImportError:
        return _controls
    for controller in threadpoolctl.ThreadpoolController().select(user_api='blas').lib_controllers:
        functions = None
        if controller.internal_api == 'openblas' and getattr(controller, 'threading_layer', '') != 'openmp':
            functions = _openblas_functions(controller.dynlib)
        _controls.append(functions or (controller.get_num_threads, controller.set_num_threads))
    return _controls


def blas_controllable() -> bool:
    """Whether dezero can keep BLAS to one thread while it computes (threadpoolctl is installed and
    found the BLAS library). Without that, dezero's kernels run on the calling thread only."""
    return bool(_blas_controls())


class _SingleThreadedBlas:
    """Context: BLAS calls run on their calling thread; the previous counts come back on exit.

    Re-entrant and shared by every thread (BLAS's count is process-wide): the outermost entry saves
    and limits, the matching exit restores. The count is read at each outermost entry, so a change a
    user makes between dezero's calls (``threadpool_limits``) is respected afterwards.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._depth = 0
        self._saved: list[int] = []

    @property
    def active(self) -> bool:
        """Whether some thread is inside the context now, so BLAS runs on one thread (read without
        the lock: a call that sees it just as it ends only loses speed)."""
        return self._depth > 0

    def __enter__(self) -> None:
        with self._lock:
            if self._depth == 0:
                controls = _blas_controls()
                self._saved = [get_count() for get_count, _ in controls]
                for (_, set_count), count in zip(controls, self._saved):
                    if count != 1:
                        set_count(1)
            self._depth += 1

    def __exit__(self, *exc_info: Any) -> None:
        with self._lock:
            self._depth -= 1
            if self._depth == 0:
                for (_, set_count), count in zip(_blas_controls(), self._saved):
                    if count != 1:
                        set_count(count)


single_threaded_blas = _SingleThreadedBlas()
