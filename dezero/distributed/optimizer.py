"""Data-parallel training: a wrapper around any optimizer that averages gradients over the ranks.

Each rank computes the gradient of the mean loss over its own part of the global batch; averaging
those gradients (equal parts) gives the gradient of the mean loss over the whole global batch, so the
wrapped optimizer and its hooks then take exactly the step one process would take on that batch.
"""
from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np

from dezero import optimizers
from dezero.core import Parameter, Variable
from dezero.cuda import as_numpy
from dezero.distributed._buckets import DEFAULT_BUCKET_BYTES, ReusedBuffer, like, plan_buckets
from dezero.distributed._mpi import import_mpi
from dezero.distributed._shared import SharedMemoryAverager
from dezero.distributed.replicas import (
    broadcast_arrays,
    check_same_structure,
    named_buffers,
    named_params,
    synchronise_parameters,
)

__all__ = ['DistributedOptimizer']

_OPTIMIZERS_MODULE = optimizers.__name__  # dezero's optimizers and hooks, defined there

_OWN_ATTRIBUTES = frozenset({'actual_optimizer', 'communicator', 'bucket_bytes', 'broadcast_buffers',
                             'shared_memory', 'allreduce_seconds', 'allreduce_wait_seconds',
                             'allreduce_calls', 'skipped_updates', '_layout', '_buckets', '_buffers',
                             '_shared'})


class DistributedOptimizer:
    """Wrap ``optimizer`` so that ``update()`` first averages the gradients over all ranks of ``comm``.

    Use it where the optimizer was used (ChainerMN's ``create_multi_node_optimizer``; what PyTorch's
    ``DistributedDataParallel`` does to gradients)::

        comm = dezero.distributed.create_communicator()
        optimizer = DistributedOptimizer(optimizers.Adam(), comm).setup(model)
        optimizer.add_hook(optimizers.WeightDecay(1e-4))   # hooks go to the wrapped optimizer
        for x, t in DistributedDataLoader(train_set, 100, comm):   # 100 per rank
            loss = F.softmax_cross_entropy(model(x), t)    # mean over this rank's batch
            model.cleargrads()
            loss.backward()
            optimizer.update()                             # average, then Adam's step

    What ``update()`` does, on every rank:

    - **Averaging.** The gradients are packed (scaled by ``1 / size``) into a few flat buckets, one
      per dtype and at most ``bucket_bytes`` each, the buckets are summed over the ranks, and every
      parameter gets a new gradient Variable viewing its part of the result (the old gradient arrays
      are never written, and a result is reused at a later step only once no gradient views it). A
      parameter without gradient on some ranks (a branch their batch did not take) counts as a zero
      gradient there; one without gradient on every rank keeps None and is not updated, as in one
      process. The result equals the gradient of the mean loss over the global batch when every
      rank's loss is the mean over a batch of the same size (``DistributedDataLoader`` sees to that).
    - **How buckets are summed.** With ``shared_memory`` (default), the ranks of one machine write
      their buckets into memory they share (an MPI-3 shared window, ``MPI.Win.Allocate_shared``),
      each sums one slice of every bucket there, and all then read the one result: no copy goes
      through MPI, and none comes back (in ``benchmarks/distributed.py`` the communication takes
      about half an ``Allreduce``'s time).
      Those gradients are therefore **read-only** views, shared by the ranks of the machine (writing
      into one raises ``ValueError``; replace it instead, ``param.grad = Variable(...)``, as dezero's
      hooks do). That is so only when the wrapped optimizer and all its hooks are dezero's own, which
      never write into gradient arrays; with any other (a hook function, a subclass), every rank gets
      a private, writable copy. On several machines, each slice is also summed over the machines, with
      one ``Allreduce`` among the ranks owning it (a hierarchical allreduce: each machine sends the
      gradient once, not once per rank). Each bucket is summed with one MPI ``Allreduce`` into private
      buffers instead with ``shared_memory=False``, with one rank per machine, with machines running
      different numbers of ranks and, after a warning, when the file system that holds the window
      (``/dev/shm``, for Open MPI) has no room for every rank's gradients (containers:
      ``docker run --shm-size``).
    - **The wrapped step.** Then ``optimizer.update()`` runs as usual: its hooks see the averaged
      gradients, so ``WeightDecay``, ``ClipGrad`` (on the global norm) and ``FreezeParam`` mean what
      they mean for one process on the global batch, and every rank takes the same step: the replicas
      stay bit-identical.
    - **Identical replicas.** ``setup`` broadcasts rank 0's parameters (those already created) and
      buffers. Lazy parameters (``Linear`` without ``in_size``) are created at the first forward, on
      every rank with its own random values; the first ``update()`` after parameters appear checks the
      structure on all ranks (a parameter whose name, shape or dtype differs raises the same
      ``ValueError`` naming it on every rank) and compares the new parameters with rank 0's. When they
      are equal (NumPy seeded alike on every rank) the step proceeds; otherwise every rank takes rank
      0's values and that one update is skipped (its gradients came from different models), with a
      warning on rank 0, as ChainerMN does. To avoid the skip, run one forward on an example batch
      before ``setup`` (or seed NumPy alike).
    - **BatchNorm** keeps per-rank statistics, as in PyTorch's DDP: batch statistics come from each
      rank's own batch (not synchronised over the global batch), and with ``broadcast_buffers``
      (default) rank 0's running mean and variance are broadcast after each update, so every replica
      (and the saved file) holds rank 0's.

    Every other attribute (``lr``, ``alpha``, ``t``, ``hooks``, ``add_hook``, ``state``, ...) is the
    wrapped optimizer's, for reading and for setting (a learning-rate schedule works unchanged).
    ``allreduce_seconds`` adds up the time spent summing gradients once packed (waiting for slower
    ranks included), ``allreduce_wait_seconds`` the part of it spent, with shared memory, waiting for
    the last rank of the machine to finish packing (load imbalance; with ``Allreduce`` the wait cannot
    be told apart and this stays 0), and ``allreduce_calls`` the number of bucket sums;
    ``skipped_updates`` counts the updates skipped to resynchronise. ``shared_memory`` is the
    constructor's option (False to always use ``Allreduce``).

    Communication happens after backward, not overlapped with it (DDP overlaps): across machines,
    each machine sends about ``2 * (machines - 1) / machines`` times the gradient bytes per step
    (ring allreduce).
    """

    def __init__(self, optimizer: Any, comm: Any, bucket_bytes: int = DEFAULT_BUCKET_BYTES,
                 broadcast_buffers: bool = True, shared_memory: bool = True) -> None:
        if not hasattr(optimizer, 'update') or not hasattr(optimizer, 'setup'):
            raise TypeError(f'DistributedOptimizer: expected a dezero optimizer, got '
                            f'{type(optimizer).__name__}')
        if isinstance(optimizer, DistributedOptimizer):
            raise TypeError('DistributedOptimizer: the optimizer is already distributed')
        plan_buckets([], bucket_bytes)  # validates bucket_bytes
        object.__setattr__(self, 'actual_optimizer', optimizer)
        object.__setattr__(self, 'communicator', comm)
        object.__setattr__(self, 'bucket_bytes', int(bucket_bytes))
        object.__setattr__(self, 'broadcast_buffers', broadcast_buffers)
        object.__setattr__(self, 'shared_memory', bool(shared_memory))
        object.__setattr__(self, 'allreduce_seconds', 0.0)
        object.__setattr__(self, 'allreduce_wait_seconds', 0.0)
        object.__setattr__(self, 'allreduce_calls', 0)
        object.__setattr__(self, 'skipped_updates', 0)
        object.__setattr__(self, '_layout', None)
        object.__setattr__(self, '_buckets', [])
        object.__setattr__(self, '_buffers', [])
        object.__setattr__(self, '_shared', None)
        if optimizer.target is not None:
            self._synchronise()

    # --- the wrapped optimizer's attributes ------------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        if name in _OWN_ATTRIBUTES:  # not set yet (copying, unpickling): no recursion into the wrapped
            raise AttributeError(name)
        return getattr(self.actual_optimizer, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _OWN_ATTRIBUTES:
            object.__setattr__(self, name, value)
        else:
            setattr(self.actual_optimizer, name, value)

    @property
    def _name(self) -> str:
        return f'DistributedOptimizer({type(self.actual_optimizer).__name__})'

    def __repr__(self) -> str:
        return f'DistributedOptimizer({self.actual_optimizer!r}, {self.communicator!r})'

    # --- the public protocol ----------------------------------------------------------------------
    def setup(self, target: Any) -> DistributedOptimizer:
        """Set up the wrapped optimizer on ``target`` and give every rank rank 0's parameters and
        buffers (collective); returns self."""
        self.actual_optimizer.setup(target)
        self._synchronise()
        return self

    def update(self) -> None:
        """Average the gradients over the ranks, then take the wrapped optimizer's step (collective)."""
        target = self.actual_optimizer.target
        if target is None:
            raise RuntimeError(f'{self._name}.update: call setup(model) first')
        params = list(target.params())
        layout = [None if p.data is None else (p.data.shape, p.data.dtype) for p in params]
        if layout != self._layout and not self._resynchronise(target, params, layout):
            self.skipped_updates += 1
            for param in params:
                param.cleargrad()
            self._broadcast_buffers(target)
            return
        self._allreduce_gradients(params)
        self.actual_optimizer.update()
        self._broadcast_buffers(target)

    # --- synchronising the replicas -------------------------------------------------------------
    def _synchronise(self) -> None:
        """At setup: broadcast rank 0's parameters and buffers; remember the layout they have."""
        target = self.actual_optimizer.target
        synchronise_parameters(target, self.communicator, f'{self._name}.setup',
                               buffers=self.broadcast_buffers, bucket_bytes=self.bucket_bytes)
        params = list(target.params())
        self._set_layout([None if p.data is None else (p.data.shape, p.data.dtype) for p in params])

    def _set_layout(self, layout: list[Any]) -> None:
        """Plan the buckets for ``layout`` and, with ``shared_memory``, set up the shared window that
        carries them (collective: called on every rank at once)."""
        self._layout = layout
        self._buckets = plan_buckets(layout, self.bucket_bytes)
        extras = [len(layout) if k == 0 else 0 for k in range(len(self._buckets))]
        self._buffers = [ReusedBuffer(bucket, extra) for bucket, extra in zip(self._buckets, extras)]
        if self._shared is not None:
            self._shared.free()
            self._shared = None
        if self.shared_memory and self.communicator.size > 1:
            self._shared, problem = SharedMemoryAverager.create(self.communicator.mpi_comm, self._buckets,
                                                                extras)
            if problem and self.communicator.is_root:
                warnings.warn(f'{self._name}: summing gradients with MPI Allreduce, as shared memory '
                              f'is unavailable: {problem} (a container may need a larger /dev/shm: '
                              'docker run --shm-size)', stacklevel=4)

    def _resynchronise(self, target: Any, params: list[Parameter], layout: list[Any]) -> bool:
        """Parameters appeared or changed since the last update: check that every rank agrees on the
        structure, then make the new parameters rank 0's. Returns False when they differed somewhere
        (so this step's gradients came from different models and must not be applied)."""
        comm = self.communicator
        paths = [path for path, _ in named_params(target)]
        structure = [(path, None, None) if entry is None else (path, tuple(entry[0]), entry[1].name)
                     for path, entry in zip(paths, layout)]
        check_same_structure(comm, structure, f'{self._name}.update')
        previous = self._layout or [None] * len(layout)
        new = [i for i, entry in enumerate(layout)
               if entry is not None and (i >= len(previous) or previous[i] != entry)]
        received = [params[i].data if comm.rank == 0 else params[i].data.copy() for i in new]
        broadcast_arrays(comm, received, bucket_bytes=self.bucket_bytes)
        differs = comm.rank != 0 and any(
            not bool((params[i].data == copy).all()) for i, copy in zip(new, received))
        any_differs = comm.allreduce(int(differs), 'max') > 0
        if any_differs:
            for i, copy in zip(new, received):
                params[i].data[...] = copy
            if comm.rank == 0:
                names = [paths[i] for i in new]
                warnings.warn(f'{self._name}.update: parameters {names} were created with different '
                              'values on the ranks (lazily, at the first forward); every rank now holds '
                              "rank 0's, and this update was skipped because its gradients came from "
                              'different models. Run one forward before setup(), or seed NumPy alike on '
                              'every rank, to avoid it', stacklevel=3)
        self._set_layout(layout)
        return not any_differs

    def _broadcast_buffers(self, target: Any) -> None:
        if not self.broadcast_buffers:
            return
        buffers = [owner.__dict__[name] for _, owner, name in named_buffers(target)]
        buffers = [b for b in buffers if b is not None]
        if buffers:
            broadcast_arrays(self.communicator, buffers, bucket_bytes=self.bucket_bytes)

    # --- averaging the gradients ----------------------------------------------------------------
    def _allreduce_gradients(self, params: list[Parameter]) -> None:
        """Replace every gradient by its mean over the ranks: every bucket packed (scaled by 1 / size)
        and summed, through shared memory or with one in-place ``Allreduce`` each.

        The first bucket also carries, after the gradients, one count per parameter of the ranks that
        have a gradient for it (so all ranks agree which parameters get one, without another call).
        """
        MPI = import_mpi()
        mpi_comm, shared = self.communicator.mpi_comm, self._shared
        scale = 1.0 / self.communicator.size
        buffers: list[np.ndarray] = []
        for k, bucket in enumerate(self._buckets):
            packed = shared.part(k) if shared else self._buffers[k].take()
            for slot in bucket.slots:
                grad = params[slot.index].grad
                part = packed[slot.start:slot.stop]
                if grad is None:
                    part.fill(0)
                else:  # the scaling rides on the copy: the sum is then the mean
                    np.multiply(as_numpy(grad.data).reshape(-1), scale, out=part)
            if k == 0:
                packed[bucket.size:] = [p.grad is not None for p in params]
            if shared is None:
                start = time.perf_counter()
                mpi_comm.Allreduce(MPI.IN_PLACE, packed, op=MPI.SUM)
                self.allreduce_seconds += time.perf_counter() - start
                buffers.append(packed)
        read_only = False
        if shared is not None:
            start = time.perf_counter()
            buffers, read_only, waited = shared.reduce(
                lambda: [buffer.take() for buffer in self._buffers],
                shareable=self._leaves_gradients_alone())
            self.allreduce_wait_seconds += waited
            self.allreduce_seconds += time.perf_counter() - start
        self.allreduce_calls += len(self._buckets)
        counts = buffers[0][self._buckets[0].size:] if self._buckets else None
        for bucket, buffer in zip(self._buckets, buffers):
            for slot in bucket.slots:
                param = params[slot.index]
                if counts[slot.index] > 0:
                    mean = buffer[slot.start:slot.stop].reshape(slot.shape)
                    if read_only:  # shared by the machine's ranks: a write would reach them all
                        mean.flags.writeable = False
                    param.grad = Variable(like(mean, param.data))
                else:
                    param.grad = None

    def _leaves_gradients_alone(self) -> bool:
        """Whether the wrapped optimizer and all its hooks are dezero's own, which never write into a
        gradient array (see dezero.optimizers): then the ranks of a machine may share one read-only
        result. Any other (a hook function, a subclass) might, and gets a private copy."""
        own = [self.actual_optimizer, *self.actual_optimizer.hooks]
        return all(type(item).__module__ == _OPTIMIZERS_MODULE for item in own)
