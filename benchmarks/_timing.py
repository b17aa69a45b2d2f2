"""Shared timing helpers: run our code and PyTorch alternately and report median ratios.

Import this module before NumPy and torch. Both libraries keep worker threads spinning after each
parallel call (OpenBLAS for ~0.1 s, OpenMP for a while too); when the two alternate, one library's
spinning threads take the cores the other needs, and both measure several times slower than they run
alone. Making idle threads sleep at once removes that interference without changing the computation.
"""
from __future__ import annotations

import os

os.environ.setdefault('OPENBLAS_THREAD_TIMEOUT', '4')  # log2 of the spin cycles; 4 is the minimum
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

import statistics  # noqa: E402
import time
from collections.abc import Callable


def alternate(ours: Callable[[], None], theirs: Callable[[], None], rounds: int,
              warmup: int = 2) -> tuple[list[float], list[float]]:
    """Time ``ours`` and ``theirs`` alternately ``rounds`` times (after ``warmup`` calls of each).

    Alternating spreads machine noise (other processes, frequency changes) over both sides evenly.
    Returns the two lists of seconds per call.
    """
    for _ in range(warmup):
        ours()
        theirs()
    ours_times, theirs_times = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        ours()
        ours_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        theirs()
        theirs_times.append(time.perf_counter() - start)
    return ours_times, theirs_times


def report(title: str, unit: str, scale: float, ours: list[float], theirs: list[float]) -> float:
    """Print medians (seconds × ``scale`` in ``unit``) and the ratio ours/PyTorch; return the ratio."""
    ours_median = statistics.median(ours) * scale
    theirs_median = statistics.median(theirs) * scale
    ratio = ours_median / theirs_median
    print(f'{title}')
    print(f'  dezero : {ours_median:9.3f} {unit} (median of {len(ours)})')
    print(f'  pytorch: {theirs_median:9.3f} {unit} (median of {len(theirs)})')
    print(f'  ratio dezero/pytorch: {ratio:.2f}  (<= 1.0 means dezero is as fast or faster)')
    return ratio


def compare_training(title: str, model, optimizer, torch_model, torch_optimizer, x, t,
                     rounds: int, warmup: int = 3) -> float:
    """Time one softmax-cross-entropy training iteration of a dezero model and its PyTorch twin.

    ``x`` (float32 array) and ``t`` (integer labels) are the same batch for both. Checks first that
    no float64 crept into dezero's parameters or gradients. With ``--profile`` on the command line it
    prints where dezero's time goes instead of comparing. Returns the ratio dezero/PyTorch.
    """
    import sys

    import numpy as np
    import torch

    import dezero.functions as F

    torch.set_num_threads(os.cpu_count() or 1)  # both sides use every core (NumPy's BLAS does)
    x_torch, t_torch = torch.from_numpy(x), torch.from_numpy(t.astype(np.int64))

    def ours() -> None:
        loss = F.softmax_cross_entropy(model(x), t)
        model.cleargrads()
        loss.backward()
        optimizer.update()

    def theirs() -> None:
        loss = torch.nn.functional.cross_entropy(torch_model(x_torch), t_torch)
        torch_optimizer.zero_grad()
        loss.backward()
        torch_optimizer.step()

    ours()
    dtypes = {p.data.dtype for p in model.params()} | {p.grad.data.dtype for p in model.params()}
    assert dtypes == {np.dtype(np.float32)}, f'float64 crept in: {dtypes}'
    if '--profile' in sys.argv:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.runcall(lambda: [ours() for _ in range(10)])
        pstats.Stats(profiler).sort_stats('tottime').print_stats(25)
        return float('nan')
    ours_times, theirs_times = alternate(ours, theirs, rounds, warmup=warmup)
    return report(title, 'ms', 1e3, ours_times, theirs_times)
