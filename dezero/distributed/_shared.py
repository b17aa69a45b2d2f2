"""Summing gradient buckets through memory shared by the ranks of one machine.

Between two processes of one machine, MPI's ``Allreduce`` moves every byte through the transport:
copies into and out of its shared buffers, or kernel copies from one process to the other (Open MPI's
CMA), plus temporary buffers for the partial sums. Here the ranks of a machine instead map one shared
segment, and each writes its (scaled) gradients into its own part of it. Then each rank sums its slice
of every bucket straight from all ranks' parts (a reduce-scatter without a single copy) into a result
that all ranks of the machine share, and after a barrier every rank's gradients are read-only views of
that one result: no allgather copy at all, as DDP's ``gradient_as_bucket_view``. Per rank and bucket
of N bytes on p ranks, besides writing its part: reading N and writing N / p, with two barriers.

The result is shared only while that is safe, which the ranks decide together at every step (each
writes its view of it into the segment before the first barrier, and all read every view after it):

- it must not be overwritten while some rank still holds a gradient that views it (kept from an
  earlier step), so there are two results, used in turn, and a rank that holds views of both makes
  this step take the private way below;
- a rank whose optimizer or hooks may write into gradient arrays (anything but dezero's own, which
  never do) must get its own writable copy, since a write into the shared one would reach the other
  ranks: then every rank sums its slice into a slice of its own in the segment and copies all
  slices into its private buffer (the allgather; reading 2 N and writing N (1 + 1/p) per rank).

On several machines the sum runs hierarchically, as Horovod's hierarchical allreduce does: after the
machine-local sum of its slice, each rank sums that slice over the machines with one ``Allreduce``
among the ranks that own the same slice on every machine (one per machine). Each machine then sends
the gradient bytes over the network once, not once per rank.

The segment is a file in ``/dev/shm`` (Linux's shared memory), created and fully allocated by the
first rank of each machine, opened by every rank there, and unlinked as soon as all have it open, so
nothing is left behind even when the job is killed. Nothing here applies without ``/dev/shm``, with
one rank per machine, or with machines running different numbers of ranks; then (or when the segment
cannot be allocated: ``/dev/shm`` too small) the caller keeps MPI's ``Allreduce``.
"""
from __future__ import annotations

import contextlib
import mmap
import os
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from dezero.distributed._buckets import Bucket
from dezero.distributed._mpi import import_mpi

SHARED_MEMORY_DIR = '/dev/shm'
_PAGE = 4096  # each rank's region starts on its own page: no two ranks write one cache line
_PRIVATE = 4  # a rank's flag bit: it needs its own copy of the sums (bits 0 and 1: results it holds)


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
    """Where everything lies in the segment: per rank, a flag, its part of every bucket and the slice
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
    """Sums buckets over all ranks through shared memory on each machine (see the module docstring).

    Create it with ``create`` (collective over every rank); then, at every step, each rank writes its
    contribution to bucket ``k`` into ``part(k)`` and calls ``reduce`` (collective), which returns the
    arrays holding the sums over all ranks.
    """

    def __init__(self, machine: Any, across: Any, mapping: mmap.mmap, layout: _Layout) -> None:
        self._machine, self._across, self._mapping = machine, across, mapping
        self._slices = layout.slices
        ranks, me = machine.Get_size(), machine.Get_rank()
        self._me = me

        def arrays(offsets: list[int], base: int, counts: Sequence[int]) -> list[np.ndarray]:
            return [np.frombuffer(mapping, dtype=dtype, count=count, offset=base + offset)
                    for offset, dtype, count in zip(offsets, layout.dtypes, counts)]

        self._flags = [np.frombuffer(mapping, dtype=np.int64, count=1, offset=r * layout.region)
                       for r in range(ranks)]
        # [local rank][bucket]: that rank's contribution; and the slice it sums on the private way.
        self._parts = [arrays(layout.parts, r * layout.region, layout.counts) for r in range(ranks)]
        self._sums = [arrays(layout.sums, r * layout.region,
                             [slices[r][1] - slices[r][0] for slices in layout.slices]) for r in range(ranks)]
        # [which][bucket]: the two results shared by the machine's ranks.
        self._results = [arrays(layout.results, ranks * layout.region + which * layout.result, layout.counts)
                         for which in range(2)]

    @classmethod
    def create(cls, mpi_comm: Any, buckets: Sequence[Bucket], extras: Sequence[int]
               ) -> tuple[SharedMemoryAverager | None, str]:
        """Set up shared memory for ``buckets`` (``extras[k]`` more elements in bucket ``k``) on every
        rank of ``mpi_comm``; collective. Returns ``(averager, '')``, or ``(None, why)`` on every rank
        when it does not apply (``why`` is non-empty only for a failure worth a warning)."""
        MPI = import_mpi()
        if not buckets:
            return None, ''
        machine = split_by_machine(mpi_comm)
        local = machine.Get_size()
        # Agreed on by every rank, so that all take the same way: the fewest and the most ranks on a
        # machine, and whether every machine has /dev/shm.
        agreed = np.array([local, -local, os.path.isdir(SHARED_MEMORY_DIR)], dtype=np.int64)
        mpi_comm.Allreduce(MPI.IN_PLACE, agreed, op=MPI.MIN)
        if agreed[0] < 2 or agreed[0] != -agreed[1] or not agreed[2]:
            machine.Free()
            return None, ''
        layout = _Layout(buckets, extras, local)
        path, error = None, ''
        if machine.Get_rank() == 0:
            path, error = _allocate(layout.size)
        path, error = machine.bcast((path, error), root=0)
        mapping = None
        if path is not None:
            try:
                descriptor = os.open(path, os.O_RDWR)
                try:
                    mapping = mmap.mmap(descriptor, layout.size, mmap.MAP_SHARED,
                                        mmap.PROT_READ | mmap.PROT_WRITE)
                finally:
                    os.close(descriptor)
            except (OSError, ValueError) as exc:
                error = f'mapping {path} failed: {exc}'
        opened = np.array([mapping is not None], dtype=np.int64)
        mpi_comm.Allreduce(MPI.IN_PLACE, opened, op=MPI.MIN)  # also: every rank has opened it by now
        if path is not None and machine.Get_rank() == 0:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        if not opened[0]:
            machine.Free()
            reasons = [reason for reason in mpi_comm.allgather(error) if reason]
            return None, reasons[0] if reasons else 'a rank could not map it'
        across = None
        if local < mpi_comm.Get_size():  # several machines: one communicator per slice owner
            across = mpi_comm.Split(machine.Get_rank(), key=mpi_comm.Get_rank())
        return cls(machine, across, mapping, layout), ''

    def part(self, k: int) -> np.ndarray:
        """This rank's part of bucket ``k`` in shared memory: where its contribution goes."""
        return self._parts[self._me][k]

    def reduce(self, private_buffers: Callable[[], list[np.ndarray]], shareable: bool
               ) -> tuple[list[np.ndarray], bool, float]:
        """Sum every bucket's parts over all ranks; collective.

        ``shareable``: this rank may receive the shared result (it never writes into gradient arrays);
        ``private_buffers()`` gives this rank's own buffers (one per bucket, of the bucket's length)
        for when some rank may not. Returns ``(sums, shared, waited)``: one array per bucket, whether
        they are the shared result (to be handed out read-only), and the seconds spent waiting for the
        last rank of the machine to finish writing its parts (load imbalance, not communication).
        """
        machine, me = self._machine, self._me
        held = sum(1 << which for which, result in enumerate(self._results) if _viewed(result))
        self._flags[me][0] = held | (0 if shareable else _PRIVATE)
        start = time.perf_counter()
        machine.Barrier()  # every part and flag written
        waited = time.perf_counter() - start
        flags = 0
        for flag in self._flags:
            flags |= int(flag[0])
        free = [which for which in range(2) if not flags & (1 << which)]
        into = self._results[free[0]] if free and not flags & _PRIVATE else None
        MPI = import_mpi()
        for k, slices in enumerate(self._slices):
            lo, hi = slices[me]
            total = self._sums[me][k] if into is None else into[k][lo:hi]
            parts = [part[k][lo:hi] for part in self._parts]
            np.add(parts[0], parts[1], out=total)
            for part in parts[2:]:
                np.add(total, part, out=total)
            if self._across is not None:
                self._across.Allreduce(MPI.IN_PLACE, total, op=MPI.SUM)
        machine.Barrier()  # every slice summed
        # No barrier needed after this: a rank rewrites its parts (read by the others before the
        # second barrier) only after that barrier, and a sum (read by the others after it) only after
        # the next step's first barrier, which no rank passes before it is done reading; a shared
        # result is rewritten only once no rank holds a view of it (the flags).
        if into is not None:
            return into, True, waited
        buffers = private_buffers()
        for k, (slices, buffer) in enumerate(zip(self._slices, buffers)):
            for sums, (lo, hi) in zip(self._sums, slices):
                buffer[lo:hi] = sums[k]
        return buffers, False, waited

    def free(self) -> None:
        """Release the communicators and the mapping (collective)."""
        self._flags, self._parts, self._sums, self._results = [], [], [], []
        if self._across is not None:
            self._across.Free()
        self._machine.Free()
        self._mapping = None  # unmapped once no array views it


def _viewed(arrays: list[np.ndarray]) -> bool:
    """Whether any array outside this module views one of ``arrays`` (a view's base is the array)."""
    # References when unused: the list's, the loop variable's and getrefcount's argument.
    return any(sys.getrefcount(array) > 3 for array in arrays)


def _allocate(size: int) -> tuple[str | None, str]:
    """Create a segment of ``size`` bytes in ``/dev/shm`` with all its memory allocated now (so that a
    full ``/dev/shm`` fails here, cleanly, instead of killing a rank when it first writes there);
    return ``(path, '')`` or ``(None, why)``."""
    path = os.path.join(SHARED_MEMORY_DIR, f'dezero-gradients-{uuid.uuid4().hex}')
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        return None, f'creating {path} failed: {exc}'
    try:
        os.posix_fallocate(descriptor, 0, size)
    except OSError as exc:
        os.unlink(path)
        return None, f'allocating {size / 2**20:.1f} MiB in {SHARED_MEMORY_DIR} failed: {exc}'
    finally:
        os.close(descriptor)
    return path, ''
