"""dezero.ops.activation against PyTorch (value, gradient, gradient of gradient), numerical stability
for huge scores, dtypes and bad arguments."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import dezero._parallel
import dezero.functions as F
from dezero import Variable
from tests.oracle import check_op

rng = np.random.default_rng(0)


def away_from_zero(shape):
    """Random values with |x| >= 0.1, so kinks at 0 stay out of reach of finite differences."""
    x = rng.standard_normal(shape)
    return np.where(np.abs(x) < 0.1, 0.5, x)


X = rng.standard_normal((3, 4))
X3 = rng.standard_normal((2, 3, 4))

CASES = [
    ('sigmoid', F.sigmoid, torch.sigmoid, X),
    ('sigmoid_wide', F.sigmoid, torch.sigmoid, rng.uniform(-30, 30, (4, 5))),
    ('relu', F.relu, torch.relu, away_from_zero((3, 4))),
    ('leaky_relu_default', F.leaky_relu, lambda t: TF.leaky_relu(t, 0.2), away_from_zero((3, 4))),
    ('leaky_relu_slope', lambda x: F.leaky_relu(x, 0.01), lambda t: TF.leaky_relu(t, 0.01),
     away_from_zero((5,))),
    ('softmax_default_axis1', F.softmax, lambda t: torch.softmax(t, 1), X),
    ('softmax_axis0', lambda x: F.softmax(x, 0), lambda t: torch.softmax(t, 0), X),
    ('softmax_3d_last', lambda x: F.softmax(x, -1), lambda t: torch.softmax(t, -1), X3),
    ('log_softmax_default_axis1', F.log_softmax, lambda t: torch.log_softmax(t, 1), X),
    ('log_softmax_3d', lambda x: F.log_softmax(x, 2), lambda t: torch.log_softmax(t, 2), X3),
    ('gelu_erf', F.gelu, lambda t: TF.gelu(t), X3),
    ('gelu_tanh', lambda x: F.gelu(x, 'tanh'), lambda t: TF.gelu(t, approximate='tanh'), X3),
    ('softplus', F.softplus, TF.softplus, rng.uniform(-8, 8, (3, 4))),
    ('softplus_beta', lambda x: F.softplus(x, beta=2.0), lambda t: TF.softplus(t, beta=2.0), X),
    ('log_sigmoid', F.log_sigmoid, TF.logsigmoid, rng.uniform(-15, 15, (3, 4))),
    ('silu', F.silu, TF.silu, X3),
    ('swish_alias', F.swish, TF.silu, X),
]


@pytest.mark.parametrize('name,ours,theirs,x', CASES, ids=[c[0] for c in CASES])
def test_against_torch(name, ours, theirs, x):
    check_op(ours, theirs, [x])


HUGE = np.array([[1000.0, -1000.0, 0.0], [-1000.0, -1000.0, -999.0], [1000.0, 1000.0, -1000.0]])


@pytest.mark.parametrize('ours,theirs', [
    (F.softmax, lambda t: torch.softmax(t, 1)),
    (F.log_softmax, lambda t: torch.log_softmax(t, 1)),
], ids=['softmax', 'log_softmax'])
def test_huge_scores_give_finite_exact_results(ours, theirs):
    check_op(ours, theirs, [HUGE])
    x = Variable(HUGE.astype(np.float32))
    y = ours(x)
    F.sum(y * rng.standard_normal(HUGE.shape).astype(np.float32)).backward()
    assert np.all(np.isfinite(y.data)) and np.all(np.isfinite(x.grad.data))
    expected = theirs(torch.from_numpy(HUGE.astype(np.float32))).numpy()
    np.testing.assert_allclose(y.data, expected, rtol=1e-6)


@pytest.mark.parametrize('ours,theirs', [
    (F.sigmoid, torch.sigmoid), (F.softplus, TF.softplus), (F.log_sigmoid, TF.logsigmoid),
    (F.silu, TF.silu), (F.gelu, TF.gelu),
], ids=['sigmoid', 'softplus', 'log_sigmoid', 'silu', 'gelu'])
def test_elementwise_tails_are_finite_and_exact(ours, theirs):
    x = np.array([-1000.0, -40.0, -20.0, 20.0, 40.0, 1000.0])
    xv = Variable(x.copy())
    y = ours(xv)
    F.sum(y).backward()
    xt = torch.from_numpy(x).requires_grad_(True)
    yt = theirs(xt)
    yt.sum().backward()
    # Relative tolerance on the values: tiny tails (sigmoid(-40) = 4e-18) must be right, not just ~0.
    np.testing.assert_allclose(y.data, yt.detach().numpy(), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(xv.grad.data, xt.grad.numpy(), rtol=1e-9, atol=1e-300)


def test_sigmoid_float32_keeps_relative_precision_in_the_tail():
    x = np.array([-10.0, -30.0, -80.0], np.float32)
    y = F.sigmoid(x).data
    np.testing.assert_allclose(y, torch.sigmoid(torch.from_numpy(x.astype(np.float64))).numpy(), rtol=1e-6)


@pytest.mark.parametrize('value', [0.5, -30.0, 40.0])
def test_sigmoid_of_a_zero_dimensional_array(value):
    y = F.sigmoid(np.array(value, np.float32))
    assert type(y.data) is np.ndarray and y.shape == () and y.dtype == np.float32
    expected = torch.sigmoid(torch.tensor(value, dtype=torch.float64)).item()
    np.testing.assert_allclose(y.data, expected, rtol=1e-6)


def test_relu_gradient_is_the_mask():
    x = Variable(np.array([-2.0, 0.0, 3.0], np.float32))
    F.relu(x).backward()
    np.testing.assert_array_equal(x.grad.data, [0, 0, 1])


def test_relu_split_over_threads_matches_torch(monkeypatch):
    # A size threshold of 1 sends this small array through the multithreaded split path.
    monkeypatch.setattr(dezero._parallel, '_SPLIT_MIN_SIZE', 1)
    check_op(F.relu, torch.relu, [away_from_zero((5, 3, 4))])


def test_relu_gradient_of_the_gradient_is_the_mask_again():
    # gx = w * mask depends on w through ReLUGrad, whose own backward must apply the mask again.
    x, w = Variable(np.array([-2.0, 1.5, 3.0])), Variable(np.array([4.0, 5.0, 6.0]))
    F.sum(F.relu(x) * w).backward(create_graph=True)
    gx = x.grad
    x.cleargrad()
    w.cleargrad()
    F.sum(gx * np.array([7.0, 8.0, 9.0])).backward()
    np.testing.assert_array_equal(w.grad.data, [0, 8, 9])


def test_split_apply_writes_every_part(monkeypatch):
    monkeypatch.setattr(dezero._parallel, '_SPLIT_MIN_SIZE', 1)
    x = np.arange(10.0) - 5
    out = np.empty_like(x)
    dezero._parallel.split_apply(lambda x, out: np.negative(x, out=out), x, out)
    np.testing.assert_array_equal(out, -x)


def test_sigmoid_third_derivative_matches_torch():
    x = Variable(np.array([0.3, -1.2]))
    xt = torch.tensor([0.3, -1.2], dtype=torch.float64, requires_grad=True)
    y, yt = F.sigmoid(x), torch.sigmoid(xt)
    F.sum(y).backward(create_graph=True)
    gt = torch.autograd.grad(yt.sum(), xt, create_graph=True)[0]
    for _ in range(2):
        g = x.grad
        x.cleargrad()
        F.sum(g).backward(create_graph=True)
        gt = torch.autograd.grad(gt.sum(), xt, create_graph=True)[0]
    np.testing.assert_allclose(x.grad.data, gt.detach().numpy(), rtol=1e-10)


FLOAT32 = [F.sigmoid, F.relu, F.leaky_relu, F.softmax, F.log_softmax, F.gelu,
           lambda x: F.gelu(x, 'tanh'), F.softplus, lambda x: F.softplus(x, 3.0), F.log_sigmoid, F.silu]


@pytest.mark.parametrize('ours', FLOAT32, ids=['sigmoid', 'relu', 'leaky_relu', 'softmax', 'log_softmax',
                                                 'gelu', 'gelu_tanh', 'softplus', 'softplus_beta',
                                                 'log_sigmoid', 'silu'])
def test_float32_stays_float32(ours):
    x = Variable(rng.standard_normal((3, 4)).astype(np.float32))
    y = ours(x)
    F.sum(y * y).backward(create_graph=True)
    assert y.dtype == np.float32 and x.grad.dtype == np.float32
    g = x.grad
    x.cleargrad()
    F.sum(g).backward()
    assert x.grad is None or x.grad.dtype == np.float32


def test_gelu_rejects_unknown_approximation():
    with pytest.raises(ValueError, match="gelu: approximate must be 'none' or 'tanh', got 'fast'"):
        F.gelu(Variable(np.zeros(2)), approximate='fast')


def test_activations_accept_plain_arrays():
    x = rng.standard_normal((2, 3))
    np.testing.assert_allclose(F.softmax(x).data.sum(1), [1.0, 1.0])
    np.testing.assert_allclose(F.relu(x).data, np.maximum(x, 0))


@pytest.mark.parametrize('ours,name', [(F.softmax, 'softmax'), (F.log_softmax, 'log_softmax')])
def test_softmax_axis_out_of_range_names_the_function_and_shape(ours, name):
    with pytest.raises(ValueError, match=rf'{name}: axis 3 is out of range for an input of shape \(2, 3\)'):
        ours(Variable(np.ones((2, 3))), axis=3)
