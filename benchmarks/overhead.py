"""Per-op overhead: forward + backward of a chain of 300 elementwise ops on 1-element float64 arrays.

The chain repeats (sin, multiply by a scalar, add a scalar). On one element the arithmetic is free,
so this measures graph bookkeeping: Variable/Function creation, the backward loop, gradient ops.
Each library runs in its own fresh process (see ``_harness``); both sides must reach the same gradient.
Run: ``python benchmarks/overhead.py [--rounds 5] [--profile] [--in-process]``.
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _harness import Workload, main  # noqa: E402

N_OPS = 300


def dezero_step():
    import numpy as np

    import dezero.functions as F
    from dezero import Variable

    def chain() -> Variable:
        x = Variable(np.array([0.5]))
        y = x
        for _ in range(N_OPS // 3):
            y = F.sin(y)
            y = y * 1.01
            y = y + 0.1
        y.backward()
        return x

    return chain, round(float(chain().grad.data[0]), 9)


def pytorch_step():
    import torch

    def chain() -> torch.Tensor:
        x = torch.tensor([0.5], dtype=torch.float64, requires_grad=True)
        y = x
        for _ in range(N_OPS // 3):
            y = torch.sin(y)
            y = y * 1.01
            y = y + 0.1
        y.backward()
        return x

    return chain, round(float(chain().grad[0]), 9)


WORKLOAD = Workload('overhead', f'chain of {N_OPS} elementwise ops on 1-element float64 arrays, '
                    'forward + backward', 'us/op', 1e6 / N_OPS, steps=200, warmup=20,
                    build={'dezero': dezero_step, 'pytorch': pytorch_step})

if __name__ == '__main__':
    main(WORKLOAD, __file__)
