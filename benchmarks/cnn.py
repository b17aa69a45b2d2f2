"""CNN training step on MNIST-sized input: conv 32 (3x3) → ReLU → conv 64 (3x3) → ReLU → max-pool 2
→ dropout 0.25 → flatten → fc 128 → ReLU → dropout 0.5 → fc 10, softmax cross-entropy, Adam, batch 64,
1x28x28 float32 random input.

Times one training iteration (forward, backward, update) of dezero and of the same network in PyTorch
CPU, alternating in one run, and prints the median ratio. Both sides use every core (NumPy's BLAS does).
Run: ``python benchmarks/cnn.py`` (``--profile`` prints where dezero's time goes instead).
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _timing import compare_training  # noqa: I001  (first: it configures thread pools)

import numpy as np  # noqa: E402
import torch  # noqa: E402

import dezero.functions as F  # noqa: E402
import dezero.layers as L  # noqa: E402
from dezero import Model, optimizers  # noqa: E402

BATCH = 64
CLASSES = 10
ROUNDS = 30


class DezeroCNN(Model):
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


class TorchCNN(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 32, 3)
        self.conv2 = torch.nn.Conv2d(32, 64, 3)
        self.fc1 = torch.nn.Linear(64 * 12 * 12, 128)
        self.fc2 = torch.nn.Linear(128, CLASSES)

    def forward(self, x):
        nnf = torch.nn.functional
        h = nnf.relu(self.conv1(x))
        h = nnf.relu(self.conv2(h))
        h = nnf.dropout(nnf.max_pool2d(h, 2), 0.25, self.training)
        h = nnf.dropout(nnf.relu(self.fc1(torch.flatten(h, 1))), 0.5, self.training)
        return self.fc2(h)


def main() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, 1, 28, 28)).astype(np.float32)
    t = rng.integers(0, CLASSES, BATCH).astype(np.int32)
    model, torch_model = DezeroCNN(), TorchCNN()
    compare_training(f'CNN conv32-conv64-pool-fc128-fc10, batch {BATCH}, 1x28x28 float32, Adam: one '
                     'training iteration', model, optimizers.Adam().setup(model),
                     torch_model, torch.optim.Adam(torch_model.parameters()), x, t, ROUNDS)


if __name__ == '__main__':
    main()
