"""Model.summary and Layer.num_params: the table for an MLP, the example CNN and ResNet-50, and that
summarising leaves the model as it was."""
import numpy as np
import pytest

import dezero
import dezero.functions as F
import dezero.layers as L
from dezero.models import MLP, ResNet50, Sequential
from tests.test_examples import load_example


def test_mlp_summary_table():
    model = MLP((10, 3))
    text = model.summary(np.zeros((2, 4), np.float32), print_fn=None)
    assert text == '\n'.join([
        'Layer    Type    Output shape  Params',
        '-------------------------------------',
        '(model)  MLP     (2, 3)            --',
        'l0       Linear  (2, 10)           50',
        'l1       Linear  (2, 3)            33',
        '-------------------------------------',
        'Parameters: 83 (0.00 MiB)',
        'Buffers: 0',
    ])
    assert model.num_params() == 83


def test_summary_prints_by_default(capsys):
    text = MLP((2,)).summary(np.zeros((1, 3), np.float32))
    assert capsys.readouterr().out == text + '\n'


def test_cnn_example_summary():
    cnn = load_example('cnn_fashion_mnist').FashionCNN()
    lines = cnn.summary(np.zeros((1, 1, 28, 28), np.float32), print_fn=None).splitlines()
    rows = [line.split(None, 2) for line in lines[2:7]]
    assert [row[:2] for row in rows] == [['(model)', 'FashionCNN'], ['conv1', 'Conv2d'], ['conv2', 'Conv2d'],
                                         ['fc1', 'Linear'], ['fc2', 'Linear']]
    assert [row[2].rsplit(None, 1) for row in rows] == [
        ['(1, 10)', '--'], ['(1, 32, 26, 26)', '320'], ['(1, 64, 24, 24)', '18,496'],
        ['(1, 128)', '1,179,776'], ['(1, 10)', '1,290']]
    assert lines[-2] == 'Parameters: 1,199,882 (4.58 MiB)'
    assert cnn.num_params() == 320 + 18_496 + 1_179_776 + 1_290


def test_resnet50_summary_counts_torchvisions_parameters_plus_the_conv1_biases():
    model = ResNet50()
    text = model.summary(np.zeros((1, 3, 32, 32), np.float32), print_fn=None)
    assert model.num_params() == 25_557_032 + 64
    assert 'Parameters: 25,557,096 (97.49 MiB)' in text
    running_statistics = 2 * sum(layer.gamma.size for layer in _batch_norms(model))
    assert model.num_params(buffers=True) == running_statistics == 53_120
    assert text.splitlines()[-1] == 'Buffers: 53,120'
    lines = {line.split()[0]: line.split() for line in text.splitlines()[2:-3]}
    assert lines['conv1'] == ['conv1', 'Conv2d', '(1,', '64,', '16,', '16)', '9,472']
    assert lines['res5/b2/conv3'][-1] == '1,048,576'
    assert lines['res5'][-5:] == ['(1,', '2048,', '1,', '1)', '--']
    assert lines['fc6'][-1] == '2,049,000'
    assert len(lines) == 1 + 2 + 4 + (3 + 4 + 6 + 3) * 7 + 4 * 2 + 1  # model, stem, stages, blocks, fc


def _batch_norms(layer):
    for name in layer._params:
        child = layer.__dict__[name]
        if isinstance(child, L.BatchNorm):
            yield child
        elif isinstance(child, dezero.Layer):
            yield from _batch_norms(child)


def test_layers_called_several_times_or_never():
    shared = L.Linear(4, in_size=4)

    class Net(dezero.Model):
        def __init__(self):
            super().__init__()
            self.shared = shared
            self.again = shared  # the same layer twice: one row
            self.unused = L.Linear(2, in_size=3)

        def forward(self, x):
            return self.shared(F.relu(self.shared(x)))

    text = Net().summary(np.zeros((5, 4), np.float32), print_fn=None)
    rows = [line.split() for line in text.splitlines()[2:-3]]
    assert rows == [['(model)', 'Net', '(5,', '4)', '--'], ['shared', 'Linear', '(5,', '4)', 'x2', '20'],
                    ['unused', 'Linear', '-', '8']]
    assert text.splitlines()[-2] == 'Parameters: 28 (0.00 MiB)'


def test_summary_leaves_the_model_as_it_was():
    model = Sequential(L.Linear(6), L.BatchNorm(), F.relu, L.Dropout(0.5), L.Linear(2))
    np.random.seed(0)
    x = np.random.rand(3, 4).astype(np.float32)
    model(x)
    before = model.state_dict()
    model.summary(x, print_fn=None)
    after = model.state_dict()
    for key in before:
        np.testing.assert_array_equal(after[key], before[key])  # test mode: running stats untouched
    assert all('forward' not in layer.__dict__ for layer in [model] + [model[i] for i in (0, 1, 3, 4)])
    assert dezero.Config.train and dezero.Config.enable_backprop


def test_summary_restores_forward_when_the_model_fails():
    model = MLP((3,))
    with pytest.raises(ValueError, match='Linear'):
        model.summary(np.zeros(4, np.float32), print_fn=None)
    assert 'forward' not in model.__dict__ and 'forward' not in model.l0.__dict__
