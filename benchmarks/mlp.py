"""MLP training step: 784-1000-1000-10 with ReLU, batch 100, float32, softmax cross-entropy, SGD.

Times one training iteration (forward, backward, update) of dezero and of the same network in PyTorch
CPU (its default threads), each library in its own fresh process (see ``_harness``).
Run: ``python benchmarks/mlp.py [--rounds 5] [--profile] [--in-process]``.
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _harness import Workload, main  # noqa: E402
from _training import batch, dezero_training_step, pytorch_training_step  # noqa: E402

BATCH = 100
SIZES = (784, 1000, 1000, 10)


def dezero_step():
    import dezero.functions as F
    from dezero import optimizers
    from dezero.models import MLP

    model = MLP(SIZES[1:], activation=F.relu)
    x, t = batch((BATCH, SIZES[0]), SIZES[-1])
    return dezero_training_step(model, optimizers.SGD(lr=0.01).setup(model), x, t)


def pytorch_step():
    import torch

    layers: list[torch.nn.Module] = []
    for n_in, n_out in zip(SIZES[:-1], SIZES[1:]):
        layers += [torch.nn.Linear(n_in, n_out), torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers[:-1])
    x, t = batch((BATCH, SIZES[0]), SIZES[-1])
    return pytorch_training_step(model, torch.optim.SGD(model.parameters(), lr=0.01), x, t)


WORKLOAD = Workload('mlp', f'{"-".join(map(str, SIZES))} ReLU, batch {BATCH}, SGD, one training step',
                    'ms/iter', 1e3,
                    steps=60, warmup=5, build={'dezero': dezero_step, 'pytorch': pytorch_step})

if __name__ == '__main__':
    main(WORKLOAD, __file__)
