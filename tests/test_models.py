"""dezero.models.base: Model.plot, Sequential and MLP."""
import shutil

import numpy as np
import pytest

import dezero
import dezero.functions as F
import dezero.layers as L
from dezero import Model, Variable, optimizers
from dezero.models import MLP, Sequential
from dezero.utils import get_dot_graph


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def test_mlp_forward_is_linear_activation_linear():
    np.random.seed(0)
    model = MLP((6, 4, 2))
    x = np.random.rand(5, 3)
    y = model(x)
    assert y.shape == (5, 2)
    assert [name for name, _ in model.named_params()] == ['l0/W', 'l0/b', 'l1/W', 'l1/b', 'l2/W', 'l2/b']
    h = sigmoid(x @ model.l0.W.data + model.l0.b.data)
    h = sigmoid(h @ model.l1.W.data + model.l1.b.data)
    np.testing.assert_allclose(y.data, h @ model.l2.W.data + model.l2.b.data, rtol=1e-6)


def test_mlp_custom_activation_and_gradient_flow():
    np.random.seed(0)
    model = MLP((8, 1), activation=F.relu)
    x = Variable(np.random.rand(10, 3).astype(np.float32))
    y = model(x)
    h = np.maximum(x.data @ model.l0.W.data + model.l0.b.data, 0)
    np.testing.assert_allclose(y.data, h @ model.l1.W.data + model.l1.b.data, rtol=1e-5)
    F.sum(y).backward()
    for name, param in model.named_params():
        assert param.grad is not None and param.grad.shape == param.shape, name
        assert param.grad.dtype == np.float32
    assert x.grad.shape == (10, 3)


def test_mlp_rejects_bad_sizes():
    for sizes in [(), (3, 0), (2.5,)]:
        with pytest.raises(ValueError, match='MLP: fc_output_sizes'):
            MLP(sizes)


def test_mlp_learns_a_sine_curve():
    # The book's step-45 experiment, shortened: the loss must fall well below its start.
    np.random.seed(0)
    x = np.random.rand(100, 1)
    t = np.sin(2 * np.pi * x) + np.random.rand(100, 1)
    model = MLP((10, 1))
    optimizer = optimizers.SGD(lr=0.2).setup(model)
    losses = []
    for _ in range(300):
        loss = F.mean_squared_error(model(x), t)
        model.cleargrads()
        loss.backward()
        optimizer.update()
        losses.append(float(loss.data))
    assert losses[-1] < 0.5 * losses[0]


def test_sequential_mixes_layers_and_functions():
    np.random.seed(0)
    model = Sequential(L.Linear(4), F.relu, L.Linear(2))
    x = np.random.rand(3, 5)
    y = model(x)
    h = np.maximum(x @ model.l0.W.data + model.l0.b.data, 0)
    np.testing.assert_allclose(y.data, h @ model.l2.W.data + model.l2.b.data, rtol=1e-6)
    assert [name for name, _ in model.named_params()] == ['l0/W', 'l0/b', 'l2/W', 'l2/b']
    assert len(model) == 3 and model[1] is F.relu and list(model)[2] is model.l2
    F.sum(y).backward()
    assert all(p.grad is not None for p in model.params())


def test_sequential_nests_and_rejects_non_callables():
    inner = Sequential(L.Linear(3), F.sigmoid)
    outer = Sequential(inner, L.Linear(1))
    assert outer(np.ones((2, 4))).shape == (2, 1)
    assert [name for name, _ in outer.named_params()] == ['l0/l0/W', 'l0/l0/b', 'l1/W', 'l1/b']
    with pytest.raises(TypeError, match='Sequential: item 1 must be a Layer or a callable, got int'):
        Sequential(L.Linear(2), 3)


def test_sequential_save_load(tmp_path):
    np.random.seed(0)
    model = Sequential(L.Linear(4), F.tanh, L.Linear(2))
    x = np.random.rand(3, 5).astype(np.float32)
    y = model(x)
    model.save_weights(tmp_path / 'seq.npz')
    fresh = Sequential(L.Linear(4), F.tanh, L.Linear(2))
    fresh.load_weights(tmp_path / 'seq.npz')
    np.testing.assert_array_equal(fresh(x).data, y.data)


@pytest.mark.skipif(shutil.which('dot') is None, reason='Graphviz is not installed')
def test_plot_writes_a_png(tmp_path):
    class TwoLayerNet(Model):
        def __init__(self):
            super().__init__()
            self.l1 = L.Linear(10)
            self.l2 = L.Linear(1)

        def forward(self, x):
            return self.l2(F.sigmoid(self.l1(x)))

    path = tmp_path / 'model.png'
    x = Variable(np.random.randn(5, 10), name='x')
    TwoLayerNet().plot(x, to_file=str(path))
    assert path.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert [p.name for p in tmp_path.iterdir()] == ['model.png']


class SmallCNN(Model):
    """conv → batch norm → relu → max-pool → dropout → linear: every mode-dependent layer kind."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = L.Conv2d(4, kernel_size=3, pad=1)
        self.bn = L.BatchNorm()
        self.fc = L.Linear(3)

    def forward(self, x):
        h = F.pooling(F.relu(self.bn(self.conv(x))), 2, stride=2)
        return self.fc(F.flatten(F.dropout(h, 0.5)))


def test_plot_of_a_cnn_draws_conv_pooling_and_batch_norm(tmp_path):
    if shutil.which('dot') is None:
        pytest.skip('Graphviz dot is not installed')
    x = np.random.default_rng(0).standard_normal((2, 1, 6, 6)).astype(np.float32)
    model = SmallCNN()
    path = tmp_path / 'cnn.png'
    model.plot(x, to_file=str(path))
    assert path.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    text = get_dot_graph(model(x))
    for op in ('Conv2d', 'Pooling', 'ReLU', 'Dropout', 'Linear'):
        assert f'label="{op}"' in text, op
    # Batch norm is a composition of ops in training mode: its parameters are what identifies it.
    assert 'label="gamma: (4,) float32"' in text and 'label="beta: (4,) float32"' in text


def test_test_mode_turns_off_dropout_and_uses_running_batch_norm_statistics():
    np.random.seed(0)
    x = np.random.default_rng(1).standard_normal((8, 1, 6, 6)).astype(np.float32)
    model = SmallCNN()
    first_train, second_train = model(x).data, model(x).data
    assert not np.allclose(first_train, second_train)  # fresh dropout masks
    running_mean = model.bn.avg_mean.copy()
    with dezero.test_mode():
        first_test, second_test = model(x).data, model(x).data
    np.testing.assert_array_equal(first_test, second_test)
    np.testing.assert_array_equal(model.bn.avg_mean, running_mean)  # test mode never updates them
    # Test mode equals a hand computation with the running statistics and no dropout.
    conv = model.conv(x).data
    scale = model.bn.gamma.data / np.sqrt(model.bn.avg_var + model.bn.eps)
    normalised = (conv - model.bn.avg_mean.reshape(1, -1, 1, 1)) * scale.reshape(1, -1, 1, 1) \
        + model.bn.beta.data.reshape(1, -1, 1, 1)
    pooled = np.maximum(normalised, 0).reshape(8, 4, 3, 2, 3, 2).max(axis=(3, 5))
    expected = pooled.reshape(8, -1) @ model.fc.W.data + model.fc.b.data
    np.testing.assert_allclose(first_test, expected, rtol=1e-4, atol=1e-5)
