"""Mini-batch iterators over a dataset: ``DataLoader`` (shuffled epochs) and ``SeqDataLoader`` (BPTT).

A loader is its own iterator, as in the book (``next(loader)`` works), and ``iter(loader)`` — the
start of every ``for`` loop — begins a fresh epoch unless one has just begun. Batches are gathered
through the dataset's batch protocol (``gather_batch``), one array indexing operation for array
datasets, so loading never dominates an epoch.

Example::

    loader = DataLoader(dezero.datasets.Spiral(), batch_size=30)
    for epoch in range(3):
        for x, t in loader:     # x (30, 2) float32, t (30,) int32; 10 batches per epoch
            ...
"""
from __future__ import annotations

import importlib.util
import math
from typing import Any

import numpy as np

from dezero import cuda
from dezero.datasets import gather_batch

# The book's flag: True when Pillow is installed (image transforms need it); found without importing it.
pil_available = importlib.util.find_spec('PIL') is not None


class DataLoader:
    """Iterate over ``dataset`` in batches of ``batch_size``: ``(x, t)`` arrays, stacked along axis 0.

    An epoch has ``max_iter = ceil(len(dataset) / batch_size)`` batches (the last may be smaller);
    then ``StopIteration`` is raised and the loader resets, drawing a new permutation when ``shuffle``
    (from ``np.random``, so ``np.random.seed`` reproduces it). ``t`` is None for unlabelled data.
    With ``gpu=True`` (or after ``to_gpu()``) batches are CuPy arrays.
    """

    def __init__(self, dataset: Any, batch_size: int, shuffle: bool = True, gpu: bool = False) -> None:
        if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f'{type(self).__name__}: batch_size must be a positive int, got {batch_size!r}')
        try:
            self.data_size = len(dataset)
        except TypeError:
            raise TypeError(f'{type(self).__name__}: the dataset must support len() and indexing, got '
                            f'{type(dataset).__name__}') from None
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.max_iter = math.ceil(self.data_size / self.batch_size)
        self.gpu = False
        if gpu:
            self.to_gpu()
        self.reset()

    def reset(self) -> None:
        """Start a new epoch: iteration 0 and, when shuffling, a new order of the samples."""
        self.iteration = 0
        if self.shuffle:
            self.index = np.random.permutation(self.data_size)
        else:
            self.index = np.arange(self.data_size)

    def __iter__(self) -> DataLoader:
        if self.iteration != 0:
            self.reset()
        return self

    def _batch_indices(self) -> np.ndarray:
        i, size = self.iteration, self.batch_size
        return self.index[i * size:(i + 1) * size]

    def __next__(self) -> tuple[Any, Any]:
        if self.iteration >= self.max_iter:
            self.reset()
            raise StopIteration
        x, t = gather_batch(self.dataset, self._batch_indices())
        self.iteration += 1
        if self.gpu:
            x = cuda.as_cupy(x)
            t = None if t is None else cuda.as_cupy(t)
        return x, t

    def next(self) -> tuple[Any, Any]:
        """The next batch ``(x, t)``; the book's spelling of ``next(loader)``."""
        return self.__next__()

    def __len__(self) -> int:
        return self.max_iter

    def to_cpu(self) -> None:
        """Make the following batches NumPy arrays."""
        self.gpu = False

    def to_gpu(self) -> None:
        """Make the following batches CuPy arrays; raises ``RuntimeError`` when CuPy is not installed."""
        if not cuda.gpu_enable:
            raise RuntimeError(f'{type(self).__name__}.to_gpu: CuPy is not installed, so batches cannot '
                               "move to a GPU; install the 'gpu' extra (pip install 'dezero[gpu]')")
        self.gpu = True


class SeqDataLoader(DataLoader):
    """Batches for truncated backprop through time over a sequence dataset, never shuffled.

    The sequence is cut into ``batch_size`` streams of ``jump = len(dataset) // batch_size`` steps:
    row k of the batch at iteration i is sample ``k * jump + i``. So ``max_iter = jump`` batches per
    epoch, each row continuing its own stream from the previous batch (the remainder is unused).

    Example: 1000 samples, batch 10 → 100 batches; the first has samples 0, 100, ..., 900, the
    second 1, 101, ..., 901.
    """

    def __init__(self, dataset: Any, batch_size: int, gpu: bool = False) -> None:
        super().__init__(dataset, batch_size, shuffle=False, gpu=gpu)
        if self.batch_size > self.data_size:
            raise ValueError(f'SeqDataLoader: batch_size {self.batch_size} is larger than the dataset '
                             f'({self.data_size} samples): it must be at most {self.data_size}, one '
                             'stream of samples per batch row')
        self.max_iter = self.data_size // self.batch_size

    def _batch_indices(self) -> np.ndarray:
        jump = self.data_size // self.batch_size
        return np.arange(self.batch_size) * jump + self.iteration
