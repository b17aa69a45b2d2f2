"""dezero.layers.conv: Conv2d and Deconv2d (parameters, lazy creation, initial scale, results)."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import dezero.layers as L
from dezero import Parameter, Variable

rng = np.random.default_rng(0)


@pytest.mark.parametrize('layer_class', [L.Conv2d, L.Deconv2d])
def test_weight_created_lazily_from_input_channels(layer_class):
    layer = layer_class(5, (3, 2), in_channels=None)
    assert layer.W.data is None
    layer(np.zeros((2, 4, 6, 6), np.float32))
    expected = (5, 4, 3, 2) if layer_class is L.Conv2d else (4, 5, 3, 2)
    assert layer.W.shape == expected
    assert layer.in_channels == 4


@pytest.mark.parametrize('layer_class,shape', [(L.Conv2d, (6, 3, 2, 4)), (L.Deconv2d, (3, 6, 2, 4))])
def test_weight_created_at_construction_with_in_channels(layer_class, shape):
    layer = layer_class(6, (2, 4), in_channels=3)
    assert layer.W.shape == shape and layer.W.dtype == np.float32
    assert layer.b.shape == (6,) and not layer.b.data.any()


@pytest.mark.parametrize('layer_class', [L.Conv2d, L.Deconv2d])
def test_params_are_registered_W_then_b(layer_class):
    layer = layer_class(4, 3, in_channels=2)
    params = list(layer.params())
    assert params == [layer.W, layer.b]
    assert all(isinstance(p, Parameter) for p in params)
    assert [name for name, _ in layer.named_params()] == ['W', 'b']


@pytest.mark.parametrize('layer_class', [L.Conv2d, L.Deconv2d])
def test_nobias_has_only_W(layer_class):
    layer = layer_class(4, 3, nobias=True, in_channels=2)
    assert layer.b is None
    assert list(layer.params()) == [layer.W]


@pytest.mark.parametrize('layer_class', [L.Conv2d, L.Deconv2d])
def test_initial_scale_is_sqrt_one_over_fan_in(layer_class):
    np.random.seed(0)
    layer = layer_class(64, (3, 5), in_channels=16)
    expected = np.sqrt(1.0 / (16 * 3 * 5))
    assert abs(layer.W.data.std() - expected) < 0.05 * expected
    assert abs(layer.W.data.mean()) < 0.05 * expected


def test_conv2d_layer_matches_torch():
    layer = L.Conv2d(3, (3, 2), stride=(2, 1), pad=1, dtype=np.float64)
    x = rng.standard_normal((2, 2, 6, 5))
    layer(x)  # creates W
    layer.b.data[...] = rng.standard_normal(3)
    y = layer(x)
    expected = TF.conv2d(torch.from_numpy(x), torch.from_numpy(layer.W.data), torch.from_numpy(layer.b.data),
                         stride=(2, 1), padding=1)
    np.testing.assert_allclose(y.data, expected.numpy(), rtol=1e-10)


def test_deconv2d_layer_matches_torch():
    layer = L.Deconv2d(3, 4, stride=2, pad=1, dtype=np.float64)
    x = rng.standard_normal((2, 2, 3, 4))
    layer(x)  # creates W
    layer.b.data[...] = rng.standard_normal(3)
    y = layer(x)
    assert y.shape == (2, 3, 6, 8)
    expected = TF.conv_transpose2d(torch.from_numpy(x), torch.from_numpy(layer.W.data),
                                   torch.from_numpy(layer.b.data), stride=2, padding=1)
    np.testing.assert_allclose(y.data, expected.numpy(), rtol=1e-10)


@pytest.mark.parametrize('layer_class', [L.Conv2d, L.Deconv2d])
def test_float32_layer_gradients_reach_every_parameter(layer_class):
    layer = layer_class(3, 3, pad=1)
    x = Variable(rng.standard_normal((2, 2, 5, 5)).astype(np.float32))
    y = layer(x)
    (y * y).sum().backward()
    assert y.dtype == np.float32
    for p in (x, layer.W, layer.b):
        assert p.grad is not None and p.grad.dtype == np.float32 and p.grad.shape == p.shape
        assert np.abs(p.grad.data).sum() > 0


def test_conv2d_layer_on_raw_images_trains_weights():
    layer = L.Conv2d(2, 3)
    x = rng.standard_normal((2, 1, 5, 5)).astype(np.float32)
    layer(x).sum().backward()
    assert layer.W.grad.shape == (2, 1, 3, 3)
    expected = np.broadcast_to(
        np.lib.stride_tricks.sliding_window_view(x[:, 0], (3, 3), axis=(1, 2)).sum(axis=(0, 1, 2)), (2, 3, 3))
    np.testing.assert_allclose(layer.W.grad.data[:, 0], expected, rtol=1e-5)
    np.testing.assert_allclose(layer.b.grad.data, [2 * 3 * 3] * 2)


@pytest.mark.parametrize('layer_class', [L.Conv2d, L.Deconv2d])
def test_bad_arguments_raise(layer_class):
    name = layer_class.__name__
    with pytest.raises(ValueError, match=f'{name}: kernel_size'):
        layer_class(3, 0)
    with pytest.raises(ValueError, match=f'{name}: out_channels'):
        layer_class(0, 3)
    with pytest.raises(ValueError, match=rf'{name}: expected an input .*\(N, C, H, W\), got shape \(5, 5\)'):
        layer_class(3, 3)(np.zeros((5, 5), np.float32))
