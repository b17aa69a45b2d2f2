"""Sharding the data: every rank draws its own disjoint part of each epoch, in equal parts.

All ranks compute the same permutation of the dataset for an epoch (from one shared seed and the
epoch number) and each takes its own slices of it, so no data moves between ranks and no rank sees a
sample another rank sees in the same epoch. Equal parts matter twice: every rank must run the same
number of iterations (each ``update()`` is a collective; a rank with one batch more would wait
forever), and averaging the ranks' gradients equals the gradient over the global batch only when
their batches have the same size.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from dezero.dataloaders import DataLoader

__all__ = ['DistributedDataLoader', 'shard_indices']


def shard_indices(order: np.ndarray, batch_size: int, rank: int, size: int,
                  drop_remainder: bool = True) -> np.ndarray:
    """The indices rank ``rank`` of ``size`` reads in one epoch whose sample order is ``order``
    (a 1-D integer array: a permutation, or ``arange`` without shuffling), in batch order.

    Global batch ``i`` is ``order[i * size * batch_size:(i + 1) * size * batch_size]``, what one
    process with batch ``size * batch_size`` would read, and rank ``r`` takes its ``r``-th part:
    ``batch_size`` samples, and in the last, shorter global batch an equal share. So the ranks' parts
    are disjoint and, joined, are the epoch. With ``drop_remainder`` (for training) the last
    ``len(order) % size`` samples of the order are left out, so every rank gets
    ``len(order) // size`` samples and the same number of batches. Without it (for evaluation, where
    no collective runs per batch) every sample is used once and the first ``len(order) % size`` ranks
    get one sample more, so their batch counts may differ by one.

    Example: ``shard_indices(np.arange(10), 2, rank=1, size=2)`` → ``[2, 3, 6, 7, 9]`` (rank 0 gets
    ``[0, 1, 4, 5, 8]``: batches ``[0, 1] [4, 5] [8]`` against rank 1's ``[2, 3] [6, 7] [9]``).
    """
    if not 0 <= rank < size:
        raise ValueError(f'dezero.distributed.shard_indices: rank must be in [0, {size}), got {rank}')
    order = np.asarray(order)
    usable = len(order) - len(order) % size if drop_remainder else len(order)
    group = batch_size * size
    full = usable // group
    head = order[:full * group].reshape(full, size, batch_size)[:, rank].reshape(-1)
    tail = np.array_split(order[full * group:usable], size)[rank]
    return np.concatenate([head, tail])


class DistributedDataLoader(DataLoader):
    """A ``DataLoader`` whose epochs are shared out over the ranks of ``comm``: ``(x, t)`` batches of
    ``batch_size`` samples per rank (``size * batch_size`` per global step).

    Every epoch, all ranks draw the same permutation (from ``seed`` and the epoch number, when
    ``shuffle``; the dataset order otherwise) and each reads its part as ``shard_indices`` describes:
    disjoint parts that together are the epoch, global batch by global batch the same samples a single
    process with batch ``size * batch_size`` would read. With ``drop_remainder`` (default) up to
    ``size - 1`` samples are left out of each epoch (different ones each epoch when shuffling), so every
    rank runs ``max_iter = ceil((len(dataset) // size) / batch_size)`` iterations, a necessity when
    each iteration calls a collective. ``drop_remainder=False`` uses every sample once (first ranks one
    more), for an evaluation pass whose sums are combined with ``comm.allreduce`` at the end.

    ``seed`` defaults to a number drawn from ``np.random`` (by every rank, rank 0's is used), so
    ``np.random.seed`` reproduces a run. Construction is collective (it also checks that
    every rank's dataset has the same length). ``epoch`` counts the epochs begun, from 0;
    ``shard_size`` is this rank's number of samples in an epoch.

    Example (``mpiexec -n 2``, 60000 samples)::

        loader = DistributedDataLoader(train_set, batch_size=100, comm=comm)
        len(loader)   # 300 iterations per epoch on each rank (global batch 200)
    """

    def __init__(self, dataset: Any, batch_size: int, comm: Any, shuffle: bool = True,
                 seed: int | None = None, drop_remainder: bool = True, gpu: bool = False) -> None:
        self.comm = comm
        self.drop_remainder = drop_remainder
        self.epoch = -1  # reset() at the end of DataLoader.__init__ begins epoch 0
        lengths = comm.allgather(len(dataset) if hasattr(dataset, '__len__') else None)
        if len(set(lengths)) != 1:
            raise ValueError(f'DistributedDataLoader: every rank must load the same dataset, but their '
                             f'lengths differ: {lengths} (by rank)')
        if seed is None:  # every rank draws, so their np.random streams stay alike (lazy weights)
            seed = comm.broadcast(int(np.random.randint(2 ** 31)))
        self.seed = int(seed)
        super().__init__(dataset, batch_size, shuffle=shuffle, gpu=gpu)

    def reset(self) -> None:
        """Begin the next epoch: iteration 0 and this rank's part of the epoch's order."""
        self.iteration = 0
        self.epoch += 1
        if self.shuffle:
            order = np.random.default_rng((self.seed, self.epoch)).permutation(self.data_size)
        else:
            order = np.arange(self.data_size)
        self.index = shard_indices(order, self.batch_size, self.comm.rank, self.comm.size,
                                   self.drop_remainder)
        self.shard_size = len(self.index)
        self.max_iter = -(-self.shard_size // self.batch_size)
