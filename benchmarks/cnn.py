"""CNN training step on MNIST-sized input: conv 32 (3x3) → ReLU → conv 64 (3x3) → ReLU → max-pool 2
→ dropout 0.25 → flatten → fc 128 → ReLU → dropout 0.5 → fc 10, softmax cross-entropy, Adam, batch 64,
1x28x28 float32 random input.

Times one training iteration (forward, backward, update) of dezero and of the same network in PyTorch
CPU (its default threads), each library in its own fresh process (see ``_harness``).
Run: ``python benchmarks/cnn.py [--rounds 5] [--profile] [--in-process]``.
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _harness import Workload, main  # noqa: E402
from _training import batch, dezero_training_step, pytorch_training_step  # noqa: E402

BATCH = 64
CLASSES = 10


def dezero_step():
    import dezero.functions as F
    import dezero.layers as L
    from dezero import Model, optimizers

    class CNN(Model):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = L.Conv2d(32, 3)
            self.conv2 = L.Conv2d(64, 3)
            self.fc1 = L.Linear(128)
            self.fc2 = L.Linear(CLASSES)

        def forward(self, x):
            h = F.relu(self.conv1(x))
            h = F.relu(self.conv2(h))
            h = F.dropout(F.pooling(h, 2, 2), 0.25)
            h = F.dropout(F.relu(self.fc1(F.flatten(h))), 0.5)
            return self.fc2(h)

    model = CNN()
    x, t = batch((BATCH, 1, 28, 28), CLASSES)
    return dezero_training_step(model, optimizers.Adam().setup(model), x, t)


def pytorch_step():
    import torch
    nnf = torch.nn.functional

    class CNN(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = torch.nn.Conv2d(1, 32, 3)
            self.conv2 = torch.nn.Conv2d(32, 64, 3)
            self.fc1 = torch.nn.Linear(64 * 12 * 12, 128)
            self.fc2 = torch.nn.Linear(128, CLASSES)

        def forward(self, x):
            h = nnf.relu(self.conv1(x))
            h = nnf.relu(self.conv2(h))
            h = nnf.dropout(nnf.max_pool2d(h, 2), 0.25, self.training)
            h = nnf.dropout(nnf.relu(self.fc1(torch.flatten(h, 1))), 0.5, self.training)
            return self.fc2(h)

    model = CNN()
    x, t = batch((BATCH, 1, 28, 28), CLASSES)
    return pytorch_training_step(model, torch.optim.Adam(model.parameters()), x, t)


WORKLOAD = Workload('cnn', f'conv32-conv64-pool-fc128-fc10, batch {BATCH}, 1x28x28, Adam, one training step',
                    'ms/iter', 1e3,
                    steps=20, warmup=3, build={'dezero': dezero_step, 'pytorch': pytorch_step})

if __name__ == '__main__':
    main(WORKLOAD, __file__)
