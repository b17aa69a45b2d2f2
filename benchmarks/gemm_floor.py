"""The physical floor of each workload: the time of its GEMMs alone at NumPy's measured rate.

Each workload's training step needs a fixed set of matrix products (forward, and backward: input and
weight gradients). This script times each product shape with ``numpy.matmul`` on float32 in this
process (NumPy's default threads, as a user's process has them), prints NumPy's rate on it and the
sum per step, to set against ``benchmarks/run.py``'s figures. Convolutions count as the GEMM of their
im2col form, ``(OC, C*KH*KW) @ (C*KH*KW, N*OH*OW)``, for forward, input gradient and weight gradient.

PyTorch does not multiply with NumPy's BLAS: its CPU build uses MKL (and oneDNN for convolutions).
With PyTorch installed, the same products are also timed with ``torch.matmul`` in a fresh process
(its default threads), so that the two floors are read at the same time.
Run: ``python benchmarks/gemm_floor.py [--numpy-only]``.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import time

import numpy as np

# (m, k, n, count) per step: count products of (m, k) @ (k, n).
SHAPES = {
    'mlp': [(100, 784, 1000, 2), (100, 1000, 1000, 3), (100, 1000, 10, 3)],
    'cnn': [(32, 9, 64 * 26 * 26, 2), (64, 288, 64 * 24 * 24, 3), (64, 9216, 128, 3), (64, 128, 10, 3)],
    # per window: 30 steps of the hidden-state products (forward, hidden gradient, weight gradient);
    # the input-side products (in = 1: outer products) and Linear(1)'s are elementwise-sized
    'lstm': [(30, 100, 400, 30 * 2), (100, 30, 400, 30)],
}


def seconds_per_product(m: int, k: int, n: int, library: str = 'numpy') -> float:
    """Median seconds of one float32 ``(m, k) @ (k, n)`` with ``library``'s own matmul."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    out = np.empty((m, n), np.float32)
    if library == 'torch':
        import torch
        a, b, out = torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(out)

        def product() -> None:
            torch.matmul(a, b, out=out)
    else:
        def product() -> None:
            np.matmul(a, b, out=out)
    repeats = max(3, min(200, int(2e8 // (m * k * n + 1))))
    for _ in range(3):
        product()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        product()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def floors(library: str) -> dict[str, list[float]]:
    """Seconds per product, per workload, in SHAPES' order."""
    return {workload: [seconds_per_product(m, k, n, library) for m, k, n, _ in shapes]
            for workload, shapes in SHAPES.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--numpy-only', action='store_true', help='skip the PyTorch timings')
    parser.add_argument('--torch-child', action='store_true', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.torch_child:
        print(json.dumps(floors('torch')))
        return
    numpy_times = floors('numpy')
    torch_times = None
    if not args.numpy_only and importlib.util.find_spec('torch') is not None:
        done = subprocess.run([sys.executable, __file__, '--torch-child'], capture_output=True, text=True,
                              check=True)
        torch_times = json.loads(done.stdout.strip().splitlines()[-1])
    for workload, shapes in SHAPES.items():
        totals = {'numpy': 0.0, 'torch': 0.0}
        flops = 0.0
        for index, (m, k, n, count) in enumerate(shapes):
            seconds = numpy_times[workload][index]
            totals['numpy'] += count * seconds
            flops += count * 2 * m * k * n
            line = (f'{workload}: ({m}, {k}) @ ({k}, {n}) x{count}: NumPy {seconds * 1e3:.3f} ms each, '
                    f'{2 * m * k * n / seconds / 1e9:.0f} GFLOP/s')
            if torch_times is not None:
                theirs = torch_times[workload][index]
                totals['torch'] += count * theirs
                line += f'; PyTorch {theirs * 1e3:.3f} ms, {2 * m * k * n / theirs / 1e9:.0f} GFLOP/s'
            print(line)
        summary = (f'{workload}: GEMM floor at NumPy\'s rate {totals["numpy"] * 1e3:.2f} ms per step '
                   f'({flops / 1e9:.2f} GFLOP, {flops / totals["numpy"] / 1e9:.0f} GFLOP/s on average)')
        if torch_times is not None:
            summary += f'; at PyTorch\'s {totals["torch"] * 1e3:.2f} ms'
        print(summary)


if __name__ == '__main__':
    main()
