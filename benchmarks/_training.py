"""One softmax-cross-entropy training step (forward, backward, update) on a fixed batch, for each side.

The batch is drawn from a seeded generator in each process, so both sides train on the same data.
"""
from __future__ import annotations

from collections.abc import Callable


def batch(shape: tuple[int, ...], classes: int):
    """The fixed batch ``(x float32 of shape, t int labels)`` every process draws alike."""
    import numpy as np
    rng = np.random.default_rng(0)
    return rng.standard_normal(shape).astype(np.float32), rng.integers(0, classes, shape[0])


def dezero_training_step(model, optimizer, x, t) -> Callable[[], None]:
    """The step of a dezero model; checks first that no float64 crept into parameters or gradients."""
    import numpy as np

    import dezero.functions as F

    def step() -> None:
        loss = F.softmax_cross_entropy(model(x), t)
        model.cleargrads()
        loss.backward()
        optimizer.update()

    step()
    dtypes = {p.data.dtype for p in model.params()} | {p.grad.data.dtype for p in model.params()}
    assert dtypes == {np.dtype(np.float32)}, f'float64 crept in: {dtypes}'
    return step


def pytorch_training_step(model, optimizer, x, t) -> Callable[[], None]:
    """The same step of a PyTorch model (on tensors sharing the NumPy batch)."""
    import torch
    x_torch, t_torch = torch.from_numpy(x), torch.from_numpy(t)

    def step() -> None:
        loss = torch.nn.functional.cross_entropy(model(x_torch), t_torch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return step
