"""Models, data and training loops shared by the MPI worker scripts and by tests/test_distributed.py,
which replays the same training in one process on the whole batch as the reference.

Everything is float64 so that two ranks on half batches can be compared with one process on the whole
batch at atol 1e-10: the only difference is the order of floating-point sums.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

import dezero.functions as F
import dezero.layers as L
from dezero import Model, Variable, optimizers

STEPS = 5
PER_RANK = 6      # samples per rank and step
RANKS = 2
CLIP_NORM = 0.05  # small enough that ClipGrad scales every step (the global norm matters)
WEIGHT_DECAY = 1e-2


class TinyMLP(Model):
    """5 → 16 → 3 with ReLU; lazy Linear layers (their W is made at the first call)."""

    def __init__(self) -> None:
        super().__init__()
        self.l0 = L.Linear(16, dtype=np.float64)
        self.l1 = L.Linear(3, dtype=np.float64)

    def forward(self, x: Variable) -> Variable:
        return self.l1(F.relu(self.l0(x)))


class TinyCNN(Model):
    """(N, 1, 8, 8) → conv 4×3×3 pad 1 → ReLU → max pool 2 → linear 3 (lazy conv and linear)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = L.Conv2d(4, 3, pad=1, dtype=np.float64)
        self.fc = L.Linear(3, dtype=np.float64)

    def forward(self, x: Variable) -> Variable:
        h = F.pooling(F.relu(self.conv(x)), 2, stride=2)
        return self.fc(F.reshape(h, (len(h), -1)))


class Branches(Model):
    """Three linear maps of 3 → 2: ``a``, plus ``b`` when ``use_b``; ``never`` is never called."""

    def __init__(self) -> None:
        super().__init__()
        self.a = L.Linear(2, in_size=3, dtype=np.float64)
        self.b = L.Linear(2, in_size=3, dtype=np.float64)
        self.never = L.Linear(2, in_size=3, dtype=np.float64)

    def forward(self, x: Variable, use_b: bool) -> Variable:
        y = self.a(x)
        return y + self.b(x) if use_b else y


def branch_data() -> np.ndarray:
    """``x (RANKS, 4, 3)``: rank r's batch is ``x[r]``."""
    return np.random.default_rng(6).standard_normal((RANKS, 4, 3))


def mlp_data() -> tuple[np.ndarray, np.ndarray]:
    """``x (STEPS, RANKS * PER_RANK, 5)`` float64 and labels ``(STEPS, RANKS * PER_RANK)``."""
    rng = np.random.default_rng(1)
    return (rng.standard_normal((STEPS, RANKS * PER_RANK, 5)),
            rng.integers(0, 3, (STEPS, RANKS * PER_RANK)))


def cnn_data() -> tuple[np.ndarray, np.ndarray]:
    """``x (STEPS, RANKS * PER_RANK, 1, 8, 8)`` float64 and labels ``(STEPS, RANKS * PER_RANK)``."""
    rng = np.random.default_rng(2)
    return (rng.standard_normal((STEPS, RANKS * PER_RANK, 1, 8, 8)),
            rng.integers(0, 3, (STEPS, RANKS * PER_RANK)))


CASES: dict[str, tuple[Callable[[], Model], Callable[[], tuple[np.ndarray, np.ndarray]]]] = {
    'mlp_sgd': (TinyMLP, mlp_data),
    'cnn_adam_wd_clip': (TinyCNN, cnn_data),
}


def make_optimizer(case: str) -> optimizers.Optimizer:
    """SGD for the MLP; Adam with WeightDecay and ClipGrad (global norm) for the CNN."""
    if case == 'mlp_sgd':
        return optimizers.SGD(lr=0.1)
    optimizer = optimizers.Adam(alpha=0.01)
    optimizer.add_hook(optimizers.WeightDecay(WEIGHT_DECAY))
    optimizer.add_hook(optimizers.ClipGrad(CLIP_NORM))
    return optimizer


def train(case: str, rank: int | None, wrap: Callable[[optimizers.Optimizer], object] | None = None,
          ) -> Model:
    """Train ``case`` for ``STEPS`` steps, on rank ``rank``'s half of each batch (None: the whole
    batch, in one process) with the optimizer ``wrap`` returns (the plain one when None)."""
    build, data = CASES[case]
    np.random.seed(0)  # the same lazy initial weights everywhere
    model = build()
    x, t = data()
    optimizer = make_optimizer(case)
    optimizer = optimizer if wrap is None else wrap(optimizer)
    optimizer.setup(model)
    for step in range(STEPS):
        part = slice(None) if rank is None else slice(rank * PER_RANK, (rank + 1) * PER_RANK)
        loss = F.softmax_cross_entropy(model(x[step, part]), t[step, part])
        model.cleargrads()
        loss.backward()
        optimizer.update()
    return model


def params_of(model: Model) -> dict[str, np.ndarray]:
    """The model's parameters and buffers by path, as saved in a weights file."""
    return {path: param.data.copy() for path, param in model.named_params()}
