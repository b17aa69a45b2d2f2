"""MLP training step: 784-1000-1000-10 with ReLU, batch 100, float32, softmax cross-entropy, SGD.

Times one training iteration (forward, backward, update) of dezero and of the same network in PyTorch
CPU, alternating in one run, and prints the median ratio. Run: ``python benchmarks/mlp.py``.
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _timing import alternate, report  # noqa: I001  (first: it configures thread pools)

import numpy as np  # noqa: E402
import torch  # noqa: E402

import dezero.functions as F  # noqa: E402
from dezero import optimizers  # noqa: E402
from dezero.models import MLP  # noqa: E402

BATCH = 100
SIZES = (784, 1000, 1000, 10)
ROUNDS = 60


def build_dezero(x: np.ndarray, t: np.ndarray):
    model = MLP(SIZES[1:], activation=F.relu)
    optimizer = optimizers.SGD(lr=0.01).setup(model)

    def step() -> None:
        loss = F.softmax_cross_entropy(model(x), t)
        model.cleargrads()
        loss.backward()
        optimizer.update()

    return model, step


def build_torch(x: np.ndarray, t: np.ndarray):
    layers: list[torch.nn.Module] = []
    for n_in, n_out in zip(SIZES[:-1], SIZES[1:]):
        layers += [torch.nn.Linear(n_in, n_out), torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers[:-1])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    xt, tt = torch.from_numpy(x), torch.from_numpy(t.astype(np.int64))

    def step() -> None:
        loss = torch.nn.functional.cross_entropy(model(xt), tt)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return model, step


def main() -> None:
    torch.set_num_threads(os.cpu_count() or 1)  # both sides use every core (NumPy's BLAS does)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, SIZES[0])).astype(np.float32)
    t = rng.integers(0, SIZES[-1], BATCH).astype(np.int32)
    model, dezero_step = build_dezero(x, t)
    _, torch_step = build_torch(x, t)
    dezero_step()
    dtypes = {p.data.dtype for p in model.params()} | {p.grad.data.dtype for p in model.params()}
    assert dtypes == {np.dtype(np.float32)}, f'float64 crept in: {dtypes}'
    ours, theirs = alternate(dezero_step, torch_step, ROUNDS, warmup=5)
    report(f'MLP {"-".join(map(str, SIZES))} ReLU, batch {BATCH}, float32, SGD: one training iteration',
           'ms', 1e3, ours, theirs)


if __name__ == '__main__':
    main()
