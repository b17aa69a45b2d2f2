"""The communicator: who am I (``rank`` of ``size``), collectives on arrays and Python scalars, and
the rank-0 helpers (printing, progress bars, plots, saving weights) that keep one set of outputs.

``mpiexec -n 4 python train.py`` starts four copies of the script; each creates a communicator and
learns its rank. Every collective (``allreduce``, ``broadcast``, ``barrier``, ...) must be called by all
ranks in the same order, or the job waits forever; that is why a failure on one rank must end them all
(see ``create_communicator``).
"""
from __future__ import annotations

import builtins
import numbers
import sys
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from dezero.core import Variable
from dezero.cuda import array_types, as_numpy
from dezero.distributed._buckets import like
from dezero.distributed._mpi import import_mpi
from dezero.distributed.replicas import broadcast_parameters

__all__ = ['Communicator', 'create_communicator']

_REDUCTIONS = {'sum': 'SUM', 'mean': 'SUM', 'max': 'MAX', 'min': 'MIN'}
_abort_hook_installed = False


def create_communicator(mpi_comm: Any = None, abort_on_error: bool = True) -> Communicator:
    """Start MPI (when not yet started) and return the ``Communicator`` over all ranks of the job.

    ``mpi_comm`` is an mpi4py communicator to wrap (default ``MPI.COMM_WORLD``). With
    ``abort_on_error`` (default), and when there are several ranks, an exception that reaches the top
    of the script on any rank prints its traceback (prefixed with the rank) and calls ``MPI_Abort``, so
    ``mpiexec`` ends every rank and exits non-zero at once, instead of the other ranks waiting forever
    in their next collective. That is what ``python -m mpi4py script.py`` does; running the script that
    way also covers a rank that calls ``sys.exit(1)`` on its own, which the hook cannot see. Raises
    ImportError naming the ``dist`` extra when mpi4py is not installed.

    Example (``mpiexec -n 2 python script.py``)::

        comm = dezero.distributed.create_communicator()
        comm.print(f'{comm.size} ranks')              # printed once, by rank 0
        total = comm.allreduce(float(comm.rank))      # 1.0 on both ranks
    """
    comm = Communicator(mpi_comm)
    if abort_on_error and comm.size > 1:
        _install_abort_hook()
    return comm


def _install_abort_hook() -> None:
    """Make an uncaught exception on this rank print its traceback and abort the whole job."""
    global _abort_hook_installed
    if _abort_hook_installed:
        return
    MPI = import_mpi()
    previous = sys.excepthook

    def abort_job(exc_type: type[BaseException], exc: BaseException, tb: Any) -> None:
        world = MPI.COMM_WORLD
        try:
            sys.stderr.write(f'dezero.distributed: rank {world.Get_rank()} of {world.Get_size()} raised '
                             f'{exc_type.__name__}; aborting every rank (MPI_Abort)\n')
            previous(exc_type, exc, tb)
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            world.Abort(1)

    sys.excepthook = abort_job
    _abort_hook_installed = True


class Communicator:
    """The ranks of one job: ``rank`` (0 .. ``size`` - 1) and collectives over all of them.

    Collectives take NumPy or CuPy arrays, Variables (their data) and Python or NumPy scalars, and
    return the same kind of value on every rank. ``print``, ``progress``, ``on_root`` and
    ``save_weights`` act on rank 0 only (the root), so a job prints one log, shows one progress bar and
    writes one set of files; ``load_weights`` gives the file's weights to every rank. Create it with
    ``create_communicator()`` (which also makes a failing rank end the job).

    Attributes:
        rank: this process's index, 0 .. size - 1.
        size: the number of processes (ranks) in the job.
        mpi_comm: the wrapped mpi4py communicator, for anything not covered here.
    """

    def __init__(self, mpi_comm: Any = None) -> None:
        MPI = import_mpi()
        self.mpi_comm = MPI.COMM_WORLD if mpi_comm is None else mpi_comm
        self.rank: int = self.mpi_comm.Get_rank()
        self.size: int = self.mpi_comm.Get_size()

    @property
    def is_root(self) -> bool:
        """True on rank 0, the rank that prints and writes files."""
        return self.rank == 0

    def __repr__(self) -> str:
        return f'Communicator(rank={self.rank}, size={self.size})'

    # --- collectives ----------------------------------------------------------------------------
    def allreduce(self, value: Any, op: str = 'sum') -> Any:
        """Combine ``value`` over all ranks with ``op`` (``'sum'``, ``'mean'``, ``'max'``, ``'min'``) and
        return the result on every rank.

        ``value`` is an array (result: a new array of the same shape on the same device; integer arrays
        become float64 for ``'mean'``), a Variable (its data), a Python or NumPy scalar (result: a Python
        int or float), or a list or tuple of scalars (result: a list or tuple; one MPI call for all of
        them, handy for ``(loss_sum, correct, count)``). Every rank passes the same shape.

        Example: ``comm.allreduce([loss_sum, n], 'sum')`` gives the global sums on every rank.
        """
        if op not in _REDUCTIONS:
            raise ValueError(f"Communicator.allreduce: op must be one of {sorted(_REDUCTIONS)}, got {op!r}")
        mpi_op = getattr(import_mpi(), _REDUCTIONS[op])
        if isinstance(value, (list, tuple, numbers.Number, np.generic)):
            return self._allreduce_scalars(value, op, mpi_op)
        data = value.data if isinstance(value, Variable) else value
        if not isinstance(data, array_types):
            raise TypeError(f'Communicator.allreduce: expected an array, a Variable, a scalar or a list of '
                            f'scalars, got {type(value).__name__}')
        send = np.ascontiguousarray(as_numpy(data))
        if op == 'mean' and send.dtype.kind not in 'fc':
            send = send.astype(np.float64)
        result = np.empty_like(send)
        self.mpi_comm.Allreduce(send, result, op=mpi_op)
        if op == 'mean':
            result /= self.size
        return like(result, data)

    def _allreduce_scalars(self, value: Any, op: str, mpi_op: Any) -> Any:
        values = np.asarray(value)
        if values.ndim > 1 or values.dtype.kind not in 'biuf':
            raise TypeError(f'Communicator.allreduce: expected Python or NumPy scalars, got {value!r}')
        integral = values.dtype.kind in 'biu' and op != 'mean'
        send = np.ascontiguousarray(values, dtype=np.int64 if integral else np.float64).reshape(-1)
        result = np.empty_like(send)
        self.mpi_comm.Allreduce(send, result, op=mpi_op)
        if op == 'mean':
            result /= self.size
        items = result.tolist()
        if isinstance(value, (list, tuple)):
            return type(value)(items)
        return items[0]

    def broadcast(self, value: Any, root: int = 0) -> Any:
        """Return the ``root``'s ``value`` on every rank (what other ranks pass is ignored).

        An array (or Variable) travels as one buffer (``Bcast``) and arrives as a new array: a CuPy
        array on ranks that passed a CuPy array, NumPy otherwise. Anything else picklable (scalars,
        strings, dicts) travels pickled.

        Example: ``seed = comm.broadcast(np.random.randint(2**31) if comm.is_root else None)``.
        """
        data = value.data if isinstance(value, Variable) else value
        header = None
        if self.rank == root:
            is_array = isinstance(data, array_types)
            header = ('array', tuple(data.shape), data.dtype.str) if is_array else ('object', value)
        header = self.mpi_comm.bcast(header, root=root)
        if header[0] == 'object':
            return header[1]
        if self.rank == root:  # a copy, so the root too gets a new array
            buffer = np.array(as_numpy(data), order='C', copy=True)
        else:
            buffer = np.empty(header[1], dtype=np.dtype(header[2]))
        self.mpi_comm.Bcast(buffer, root=root)
        return like(buffer, data) if isinstance(data, array_types) else buffer

    def allgather(self, value: Any) -> list[Any]:
        """Return the list of every rank's ``value`` (pickled; for small objects), on every rank."""
        return self.mpi_comm.allgather(value)

    def barrier(self) -> None:
        """Wait until every rank has reached this call."""
        self.mpi_comm.Barrier()

    def broadcast_parameters(self, target: Any, root: int = 0) -> None:
        """Give every rank the ``root``'s parameters and buffers of ``target``
        (see ``dezero.distributed.broadcast_parameters``)."""
        broadcast_parameters(target, self, root=root)

    # --- rank-0 helpers ------------------------------------------------------------------------
    def print(self, *args: Any, **kwargs: Any) -> None:
        """``print(*args, **kwargs)`` on rank 0 only, flushed at once (so logs from ``mpiexec`` keep up)."""
        if self.is_root:
            kwargs.setdefault('flush', True)
            builtins.print(*args, **kwargs)

    def progress(self, iterable: Iterable[Any], total: int | None = None, desc: str | None = None,
                 **tqdm_kwargs: Any) -> Iterable[Any]:
        """``iterable`` wrapped in a tqdm progress bar on rank 0 (when tqdm, the ``progress`` extra, is
        installed), and ``iterable`` itself on the other ranks, so a job shows one bar.

        ``total`` defaults to ``len(iterable)`` when it has one (a loader's iterations per epoch).
        """
        if not self.is_root:
            return iterable
        try:
            from tqdm import tqdm
        except ImportError:  # the optional 'progress' extra: plain iteration without it
            return iterable
        if total is None and hasattr(iterable, '__len__'):
            total = len(iterable)
        return tqdm(iterable, total=total, desc=desc, **tqdm_kwargs)

    def on_root(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call ``fn(*args, **kwargs)`` on rank 0 only (a plot, a report file); collective.

        Returns ``fn``'s result on rank 0 and None on the others, once rank 0 is done (so a file
        written by ``fn`` exists for everyone afterwards). When ``fn`` raises, rank 0 re-raises the
        exception and every other rank raises ``RuntimeError`` quoting it: all ranks stay in step.
        """
        name = getattr(fn, '__qualname__', repr(fn))
        result, error = None, None
        if self.is_root:
            try:
                result = fn(*args, **kwargs)
            except Exception as exc:
                error = exc
        message = self.mpi_comm.bcast(None if error is None else f'{type(error).__name__}: {error}', root=0)
        if error is not None:
            raise error
        if message is not None:
            raise RuntimeError(f'Communicator.on_root: {name} failed on rank 0: {message}')
        return result

    def save_weights(self, model: Any, path: str) -> None:
        """``model.save_weights(path)`` on rank 0 only (atomic: the file is complete or absent);
        collective, returns once the file is written. The replicas are identical, so one file suffices.
        """
        self.on_root(model.save_weights, path)

    def load_weights(self, model: Any, path: str) -> None:
        """Load the weights file ``path`` into ``model`` on every rank; collective.

        Rank 0 reads the file (``model.load_weights``, with its checks of names and shapes) and
        broadcasts parameters and buffers, so the file need only exist where rank 0 runs (no shared
        file system needed) and every replica ends identical. An error reading it is raised on every rank.
        """
        self.on_root(model.load_weights, path)
        broadcast_parameters(model, self)
