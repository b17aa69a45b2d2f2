"""End to end: the book's small training programs reach their results, each in seconds."""
import numpy as np
import pytest

import dezero
import dezero.functions as F
import dezero.layers as L
from dezero import DataLoader, Model, Variable, optimizers
from dezero.models import MLP


def test_linear_regression_recovers_slope_and_intercept():
    """Book step 42: y = 5 + 2x + U(0, 1) noise; gradient descent finds W ~ 2, b ~ 5.5."""
    np.random.seed(0)
    x = np.random.rand(100, 1)
    y = 5 + 2 * x + np.random.rand(100, 1)
    W = Variable(np.zeros((1, 1)))
    b = Variable(np.zeros(1))
    for _ in range(1000):
        loss = F.mean_squared_error(F.matmul(x, W) + b, y)
        W.cleargrad()
        b.cleargrad()
        loss.backward()
        W.data -= 0.1 * W.grad.data
        b.data -= 0.1 * b.grad.data
    slope, intercept = np.polyfit(x[:, 0], y[:, 0], 1)  # the least-squares answer
    assert W.data[0, 0] == pytest.approx(slope, abs=1e-3)
    assert b.data[0] == pytest.approx(intercept, abs=1e-3)
    assert 1.5 < slope < 2.5 and 5.0 < intercept < 6.0


class TwoLayerNet(Model):
    def __init__(self, hidden_size: int, out_size: int) -> None:
        super().__init__()
        self.l1 = L.Linear(hidden_size)
        self.l2 = L.Linear(out_size)

    def forward(self, x):
        return self.l2(F.sigmoid(self.l1(x)))


def test_sin_curve_mlp_regression():
    """Book step 45: a 1-10-1 sigmoid net fits y = sin(2 pi x) + U(0, 1) noise.

    The noise alone leaves a mean squared error of Var(U(0,1)) = 1/12 ~ 0.083 around the best fit, so a
    loss below 0.1 means the curve was learned (predicting the mean of y gives ~0.58).
    """
    np.random.seed(0)
    x = np.random.rand(100, 1)
    y = np.sin(2 * np.pi * x) + np.random.rand(100, 1)
    model = TwoLayerNet(10, 1)
    optimizer = optimizers.SGD(lr=0.2).setup(model)
    for _ in range(10000):
        loss = F.mean_squared_error(model(x), y)
        model.cleargrads()
        loss.backward()
        optimizer.update()
    assert float(loss.data) < 0.1
    grid = np.linspace(0.1, 0.9, 9)[:, None]  # inside the data: the ends are sparsely sampled
    with dezero.no_grad():
        prediction = model(grid).data
    np.testing.assert_allclose(prediction, np.sin(2 * np.pi * grid) + 0.5, atol=0.25)


def test_spiral_classification_reaches_95_percent():
    """Book step 49 with a ReLU MLP and Adam: >= 95% training accuracy on the 3-arm spiral."""
    np.random.seed(0)
    train_set = dezero.datasets.Spiral(train=True)
    loader = DataLoader(train_set, batch_size=30)
    model = MLP((30, 30, 3), activation=F.relu)
    optimizer = optimizers.Adam(alpha=0.01).setup(model)
    for _ in range(150):
        for x, t in loader:
            loss = F.softmax_cross_entropy(model(x), t)
            model.cleargrads()
            loss.backward()
            optimizer.update()
    with dezero.no_grad():
        accuracy = float(F.accuracy(model(train_set.data), train_set.label).data)
    assert accuracy >= 0.95
