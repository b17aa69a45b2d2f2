"""Summing gradient buckets through memory shared by the ranks of one machine: an MPI-3 shared window.

Between two processes of one machine, MPI's ``Allreduce`` moves every byte through the transport:
copies into and out of its shared buffers, or kernel copies from one process to the other (Open MPI's
CMA), plus temporary buffers for the partial sums. Here the ranks of a machine instead share one
window (``MPI.Win.Allocate_shared`` over the communicator of the machine's ranks), and each writes
its (scaled) gradients into its own part of it. Then each rank sums its slice of every bucket
straight from all ranks' parts (a reduce-scatter without a single copy) into a result that all ranks
of the machine share, and after a barrier every rank's gradients are read-only views of that one
result: no allgather copy at all, as DDP's ``gradient_as_bucket_view``. Per rank and bucket of N bytes
on p ranks, besides writing its part: reading N and writing N / p, with two barriers.

The result is shared only while that is safe, which the ranks decide together at every step (each
writes its view of it into the window before the first barrier, and all read every view after it):

- it must not be overwritten while some rank still holds a gradient that views it (kept from an
  earlier step), so there are two results, used in turn, and a rank that holds views of both makes
  this step take the private way below;
- a rank whose optimizer or hooks may write into gradient arrays (anything but dezero's own, which
  never do) must get its own writable copy, since a write into the shared one would reach the other
  ranks: then every rank sums its slice into a slice of its own in the window and copies all
  slices into its private buffer (the allgather; reading 2 N and writing N (1 + 1/p) per rank).

On several machines the sum runs hierarchically, as Horovod's hierarchical allreduce does: after the
machine-local sum of its slice, each rank sums that slice over the machines with one ``Allreduce``
among the ranks that own the same slice on every machine (one per machine). Each machine then sends
the gradient bytes over the network once, not once per rank.

The window's memory is MPI's: Open MPI keeps it in a file of ``/dev/shm`` (its ``osc_sm`` component's
``osc_sm_backing_directory``), removed as soon as every rank has mapped it, and fails when that file
system has too little room, leaving the machine's other ranks waiting inside the allocation; so the
first rank of each machine checks the room first, and all ranks agree. Nothing here applies with one
rank per machine or with machines running different numbers of ranks; then (or, with a warning, when
there is not room enough) the caller keeps MPI's ``Allreduce``.
"""
from __future__ import annotations

import os
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from dezero.distributed._buckets import Bucket, array_over
from dezero.distributed._mpi import import_mpi

SHARED_MEMORY_DIR = '/dev/shm'
_PAGE = 4096  # ranks' regions whole pages apart in the window: no two ranks write one cache line
_PRIVATE = 4  # a rank's flag bit: it needs its own copy of the sums (bits 0 and 1: results it holds)
_ROOM_MARGIN = 2 ** 20  # MPI's own bookkeeping in the window's file: a few pages per rank


def split_by_machine(mpi_comm: Any) -> Any:
    """The communicator of the ranks of ``mpi_comm`` on this machine (those that can share memory)."""
    MPI = import_mpi()
    return mpi_comm.Split_type(MPI.COMM_TYPE_SHARED, key=mpi_comm.Get_rank())


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def _slice_bounds(length: int, parts: int) -> list[tuple[int, int]]:
    """``parts`` contiguous slices of ``range(length)`` differing in length by at most one."""
    edges = [length * i // parts for i in range(parts + 1)]
    return list(zip(edges[:-1], edges[1:]))


class _Layout:
    """Where everything lies in the window: per rank, a flag, its part of every bucket and the slice
    it sums (for the private way); then the two results, each holding every bucket."""

    def __init__(self, buckets: Sequence[Bucket], extras: Sequence[int], ranks: int) -> None:
        self.counts = [bucket.size + extra for bucket, extra in zip(buckets, extras)]
        self.dtypes = [bucket.dtype for bucket in buckets]
        self.slices = [_slice_bounds(count, ranks) for count in self.counts]
        offset = 64  # after the flag
        self.parts, self.sums, self.results = [], [], []
        for count, dtype in zip(self.counts, self.dtypes):
            self.parts.append(offset)
            offset += _round_up(count * dtype.itemsize, 64)
        for count, dtype in zip(self.counts, self.dtypes):
            self.sums.append(offset)
            offset += _round_up(-(-count // ranks) * dtype.itemsize, 64)
        self.region = _round_up(offset, _PAGE)  # one rank's region
        offset = 0
        for count, dtype in zip(self.counts, self.dtypes):
            self.results.append(offset)
            offset += _round_up(count * dtype.itemsize, 64)
        self.result = _round_up(offset, _PAGE)  # one result
        self.size = ranks * self.region + 2 * self.result


class SharedMemoryAverager:
    """Sums buckets over all ranks through a shared window on each machine (see the module docstring).

    Create it with ``create`` (collective over every rank); then, at every step, each rank writes its
    contribution to bucket ``k`` into ``part(k)`` and calls ``reduce`` (collective), which returns the
    arrays holding the sums over all ranks. ``free`` (collective) releases it.
    """

    def __init__(self, machine: Any, across: Any, window: Any, layout: _Layout) -> None:
        MPI = import_mpi()
        self._machine, self._across, self._window, self._layout = machine, across, window, layout
        ranks, me = machine.Get_size(), machine.Get_rank()
        self._me = me
        # One segment, allocated by the machine's first rank, holds everything (the others' are empty).
        self._memory, _ = window.Shared_query(0)
        # Every access is a load or store from here on, all inside one passive-target epoch
        # (MODE_NOCHECK: no rank ever locks the window exclusively), the synchronisation that
        # ``Win.Sync`` belongs to (see ``_synchronise``).
        window.Lock_all(MPI.MODE_NOCHECK)

        def arrays(offsets: list[int], base: int, counts: Sequence[int]) -> list[np.ndarray]:
            return [array_over(self._memory, dtype, count, base + offset)
                    for offset, dtype, count in zip(offsets, layout.dtypes, counts)]

        self._flags = [array_over(self._memory, np.int64, 1, r * layout.region) for r in range(ranks)]
        # [local rank][bucket]: that rank's contribution; and the slice it sums on the private way.
        self._parts = [arrays(layout.parts, r * layout.region, layout.counts) for r in range(ranks)]
        self._sums = [arrays(layout.sums, r * layout.region,
                             [slices[r][1] - slices[r][0] for slices in layout.slices]) for r in range(ranks)]
        self._results_at = ranks * layout.region  # where the two results start
        # Weak references to the arrays of each of the two shared results handed out last: any still
        # alive means a gradient (or an array derived from one) still views that result.
        self._handed: list[list[weakref.ref]] = [[], []]
        # Write this rank's region now (and, on the first rank, the results): the file system backing
        # the window (/dev/shm) allocates its pages at the first write, so one that filled up since
        # the check kills the rank (and mpiexec the job) here, at setup, not in the middle of training.
        array_over(self._memory, np.uint8, layout.region, me * layout.region).fill(0)
        if me == 0:
            array_over(self._memory, np.uint8, 2 * layout.result, self._results_at).fill(0)
        self._synchronise()

    @classmethod
    def create(cls, mpi_comm: Any, buckets: Sequence[Bucket], extras: Sequence[int]
               ) -> tuple[SharedMemoryAverager | None, str]:
        """Set up a shared window for ``buckets`` (``extras[k]`` more elements in bucket ``k``) on every
        rank of ``mpi_comm``; collective. Returns ``(averager, '')``, or ``(None, why)`` on every rank
        when it does not apply (``why`` is non-empty only for a failure worth a warning)."""
        MPI = import_mpi()
        if not buckets:
            return None, ''
        machine = split_by_machine(mpi_comm)
        local = machine.Get_size()
        layout = _Layout(buckets, extras, local)
        problem = _lacking_room(layout.size) if machine.Get_rank() == 0 and local > 1 else ''
        # Agreed on by every rank, so that all take the same way: the ranks on each machine, and
        # whether some machine lacks room.
        reports = mpi_comm.allgather((local, problem))
        sizes, problems = {size for size, _ in reports}, [problem for _, problem in reports if problem]
        if min(sizes) < 2 or len(sizes) > 1 or problems:
            machine.Free()
            return None, problems[0] if problems else ''
        try:
            window = MPI.Win.Allocate_shared(layout.size if machine.Get_rank() == 0 else 0, 1, comm=machine)
        except MPI.Exception as error:
            # Not caught to fall back: the machine's other ranks may be waiting inside the allocation
            # for this one (Open MPI's does when its first rank fails), and only ending the job frees
            # them (create_communicator's abort hook does, once this reaches the top).
            raise RuntimeError(f'dezero.distributed: MPI could not allocate the shared window of '
                               f'{layout.size / 2**20:.1f} MiB that sums the gradients: {error}; pass '
                               'shared_memory=False to DistributedOptimizer to sum them with '
                               'Allreduce') from error
        across = None
        if local < mpi_comm.Get_size():  # several machines: one communicator per slice owner
            across = mpi_comm.Split(machine.Get_rank(), key=mpi_comm.Get_rank())
        return cls(machine, across, window, layout), ''

    def part(self, k: int) -> np.ndarray:
        """This rank's part of bucket ``k`` in the window: where its contribution goes."""
        return self._parts[self._me][k]

    def _synchronise(self) -> None:
        """Wait for every rank of the machine, with every store any of them made to the window before
        visible to every load after, and every load before done. That is MPI's rule for loads and
        stores in a shared window (the MPI-4.0 standard, section 12.7, its example of a shared window
        whose processes synchronise by messages): a ``Win.Sync`` (a memory barrier) on both sides of
        the processes' synchronisation, here a barrier. The writer's makes its stores complete before
        the barrier, the reader's keeps its loads after it; and the same, reversed, orders one step's
        reads before the next step's writes.
        """
        self._window.Sync()
        self._machine.Barrier()
        self._window.Sync()

    def _result(self, which: int) -> list[np.ndarray]:
        """New arrays over shared result ``which``, one per bucket (see ``array_over``)."""
        layout = self._layout
        base = self._results_at + which * layout.result
        return [array_over(self._memory, dtype, count, base + offset)
                for offset, dtype, count in zip(layout.results, layout.dtypes, layout.counts)]

    def reduce(self, private_buffers: Callable[[], list[np.ndarray]], shareable: bool
               ) -> tuple[list[np.ndarray], bool, float]:
        """Sum every bucket's parts over all ranks; collective.

        ``shareable``: this rank may receive the shared result (it never writes into gradient arrays);
        ``private_buffers()`` gives this rank's own buffers (one per bucket, of the bucket's length)
        for when some rank may not. Returns ``(sums, shared, waited)``: one array per bucket, whether
        they are the shared result (to be handed out read-only), and the seconds spent waiting for the
        last rank of the machine to finish writing its parts (load imbalance, not communication).
        """
        me = self._me
        held = sum(1 << which for which, handed in enumerate(self._handed)
                   if any(reference() is not None for reference in handed))
        self._flags[me][0] = held | (0 if shareable else _PRIVATE)
        start = time.perf_counter()
        self._synchronise()  # every part and flag written
        waited = time.perf_counter() - start
        flags = 0
        for flag in self._flags:
            flags |= int(flag[0])
        free = [which for which in range(2) if not flags & (1 << which)]
        which = free[0] if free and not flags & _PRIVATE else None
        into = None if which is None else self._result(which)
        MPI = import_mpi()
        for k, slices in enumerate(self._layout.slices):
            lo, hi = slices[me]
            total = self._sums[me][k] if into is None else into[k][lo:hi]
            parts = [part[k][lo:hi] for part in self._parts]
            np.add(parts[0], parts[1], out=total)
            for part in parts[2:]:
                np.add(total, part, out=total)
            if self._across is not None:
                self._across.Allreduce(MPI.IN_PLACE, total, op=MPI.SUM)
        self._synchronise()  # every slice summed
        # Nothing more needed: a rank rewrites its parts (read by the others before the second
        # synchronisation) only after it, and a sum (read by the others after it) only after the
        # next step's first, which no rank passes before it is done reading; a shared result is
        # rewritten only once no rank holds a view of it (the flags).
        if into is not None:
            self._handed[which] = [weakref.ref(array) for array in into]
            return into, True, waited
        buffers = private_buffers()
        for k, (slices, buffer) in enumerate(zip(self._layout.slices, buffers)):
            for sums, (lo, hi) in zip(self._sums, slices):
                buffer[lo:hi] = sums[k]
        return buffers, False, waited

    def free(self) -> None:
        """Release the communicators and the window (collective over every rank).

        Freeing the window unmaps its memory at once, whatever still reads it; so when a rank of the
        machine still holds a gradient viewing a shared result, the window is left to MPI, which
        releases it when the job ends (this happens only when the parameters change while gradients
        of an earlier step are kept)."""
        MPI = import_mpi()
        self._flags, self._parts, self._sums = [], [], []
        held = int(any(reference() is not None for handed in self._handed for reference in handed))
        held = self._machine.allreduce(held, op=MPI.MAX)
        self._window.Unlock_all()
        if not held:
            self._window.Free()
        self._memory = None
        if self._across is not None:
            self._across.Free()
        self._machine.Free()


def _free_bytes(directory: str) -> int | None:
    """The bytes free in ``directory``'s file system, or None when it cannot be told (no such
    directory: not Linux, where MPI keeps shared windows elsewhere)."""
    try:
        stats = os.statvfs(directory)
    except (OSError, AttributeError):  # AttributeError: no statvfs (Windows)
        return None
    return stats.f_bavail * stats.f_frsize


def _lacking_room(nbytes: int) -> str:
    """Why a shared window of ``nbytes`` does not fit where Open MPI keeps it ('' when it fits, or
    when that cannot be told): the free space MPI itself checks before allocating it."""
    directory = os.environ.get('OMPI_MCA_osc_sm_backing_directory', SHARED_MEMORY_DIR)
    free = _free_bytes(directory)
    if free is None or free >= nbytes + _ROOM_MARGIN:
        return ''
    return (f'the shared window needs {nbytes / 2**20:.1f} MiB in {directory}, which has '
            f'{free / 2**20:.1f} MiB free')
