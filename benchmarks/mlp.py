"""MLP training step: 784-1000-1000-10 with ReLU, batch 100, float32, softmax cross-entropy, SGD.

Times one training iteration (forward, backward, update) of dezero and of the same network in PyTorch
CPU, alternating in one run, and prints the median ratio. Run: ``python benchmarks/mlp.py``
(``--profile`` prints where dezero's time goes instead).
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _timing import compare_training  # noqa: I001  (first: it configures thread pools)

import numpy as np  # noqa: E402
import torch  # noqa: E402

import dezero.functions as F  # noqa: E402
from dezero import optimizers  # noqa: E402
from dezero.models import MLP  # noqa: E402

BATCH = 100
SIZES = (784, 1000, 1000, 10)
ROUNDS = 60


def torch_mlp() -> torch.nn.Module:
    layers: list[torch.nn.Module] = []
    for n_in, n_out in zip(SIZES[:-1], SIZES[1:]):
        layers += [torch.nn.Linear(n_in, n_out), torch.nn.ReLU()]
    return torch.nn.Sequential(*layers[:-1])


def main() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, SIZES[0])).astype(np.float32)
    t = rng.integers(0, SIZES[-1], BATCH).astype(np.int32)
    model, torch_model = MLP(SIZES[1:], activation=F.relu), torch_mlp()
    compare_training(f'MLP {"-".join(map(str, SIZES))} ReLU, batch {BATCH}, float32, SGD: one training '
                     'iteration', model, optimizers.SGD(lr=0.01).setup(model),
                     torch_model, torch.optim.SGD(torch_model.parameters(), lr=0.01), x, t, ROUNDS,
                     warmup=5)


if __name__ == '__main__':
    main()
