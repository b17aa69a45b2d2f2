"""Per-op overhead: forward + backward of a chain of 300 elementwise ops on 1-element float64 arrays.

The chain repeats (sin, multiply by a scalar, add a scalar). On one element the arithmetic is free,
so this measures graph bookkeeping: Variable/Function creation, the backward loop, gradient ops.
Run: ``python benchmarks/overhead.py``.
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _timing import alternate, report  # noqa: I001  (first: it configures thread pools)

import numpy as np  # noqa: E402
import torch  # noqa: E402

import dezero.functions as F  # noqa: E402
from dezero import Variable  # noqa: E402

N_OPS = 300
ROUNDS = 200


def dezero_chain() -> None:
    x = Variable(np.array([0.5]))
    y = x
    for _ in range(N_OPS // 3):
        y = F.sin(y)
        y = y * 1.01
        y = y + 0.1
    y.backward()


def torch_chain() -> None:
    x = torch.tensor([0.5], dtype=torch.float64, requires_grad=True)
    y = x
    for _ in range(N_OPS // 3):
        y = torch.sin(y)
        y = y * 1.01
        y = y + 0.1
    y.backward()


def check_same_gradient() -> None:
    x = Variable(np.array([0.5]))
    y = x
    for _ in range(N_OPS // 3):
        y = F.sin(y) * 1.01 + 0.1
    y.backward()
    xt = torch.tensor([0.5], dtype=torch.float64, requires_grad=True)
    yt = xt
    for _ in range(N_OPS // 3):
        yt = torch.sin(yt) * 1.01 + 0.1
    yt.backward()
    assert np.allclose(x.grad.data, xt.grad.numpy()), (x.grad.data, xt.grad.numpy())


def main() -> None:
    torch.set_num_threads(1)
    check_same_gradient()
    ours, theirs = alternate(dezero_chain, torch_chain, ROUNDS)
    scale = 1e6 / N_OPS
    report(f'forward+backward, chain of {N_OPS} elementwise ops on 1-element float64 arrays',
           'us/op', scale, ours, theirs)


if __name__ == '__main__':
    main()
