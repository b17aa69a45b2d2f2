"""The physical floor of each workload: the time of its GEMMs alone at NumPy's measured rate.

Each workload's training step needs a fixed set of matrix products (forward, and backward: input and
weight gradients). This script times each product shape with ``numpy.matmul`` on float32 in this
process (NumPy's default threads, as a user's process has them), prints NumPy's rate on it and the
sum per step, to set against ``benchmarks/run.py``'s figures. Convolutions count as the GEMM of their
im2col form, ``(OC, C*KH*KW) @ (C*KH*KW, N*OH*OW)``, for forward, input gradient and weight gradient.
Run: ``python benchmarks/gemm_floor.py``.
"""
from __future__ import annotations

import statistics
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


def seconds_per_product(m: int, k: int, n: int) -> float:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    out = np.empty((m, n), np.float32)
    repeats = max(3, min(200, int(2e8 // (m * k * n + 1))))
    for _ in range(3):
        np.matmul(a, b, out=out)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        np.matmul(a, b, out=out)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    for workload, shapes in SHAPES.items():
        total = flops = 0.0
        for m, k, n, count in shapes:
            seconds = seconds_per_product(m, k, n)
            total += count * seconds
            flops += count * 2 * m * k * n
            print(f'{workload}: ({m}, {k}) @ ({k}, {n}) x{count}: {seconds * 1e3:.3f} ms each, '
                  f'{2 * m * k * n / seconds / 1e9:.0f} GFLOP/s')
        print(f'{workload}: GEMM floor {total * 1e3:.2f} ms per step ({flops / 1e9:.2f} GFLOP, '
              f'{flops / total / 1e9:.0f} GFLOP/s on average)')


if __name__ == '__main__':
    main()
