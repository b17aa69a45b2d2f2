"""dezero.ops.normalization: batch_norm (train and test mode, running statistics) and layer_norm against
PyTorch (value, gradient, gradient of gradient), dtypes and bad input."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import dezero
import dezero.functions as F
from dezero import Variable
from tests.oracle import check_op

rng = np.random.default_rng(0)


def params(channels):
    return rng.uniform(0.5, 1.5, channels), rng.standard_normal(channels)


def train_case(shape, decay=0.9, eps=2e-5):
    """(ours, theirs) for batch_norm in training mode; running statistics are fresh at every call."""
    channels = shape[1]

    def ours(x, gamma, beta):
        return F.batch_norm(x, gamma, beta, np.zeros(channels), np.ones(channels), decay, eps)

    def theirs(x, gamma, beta):
        return TF.batch_norm(x, torch.zeros(channels, dtype=torch.float64),
                             torch.ones(channels, dtype=torch.float64), gamma, beta,
                             training=True, momentum=1 - decay, eps=eps)
    return ours, theirs


def eval_case(shape, eps=2e-5):
    """(ours, theirs) for batch_norm in test mode with fixed running statistics."""
    channels = shape[1]
    mean, var = rng.standard_normal(channels), rng.uniform(0.5, 2.0, channels)

    def ours(x, gamma, beta):
        with dezero.test_mode():
            return F.batch_norm(x, gamma, beta, mean.copy(), var.copy(), eps=eps)

    def theirs(x, gamma, beta):
        return TF.batch_norm(x, torch.from_numpy(mean), torch.from_numpy(var), gamma, beta,
                             training=False, eps=eps)
    return ours, theirs



CASES = [
    ('train_2d', *train_case((6, 3)), (6, 3)),
    ('train_4d', *train_case((3, 2, 3, 2)), (3, 2, 3, 2)),
    ('train_eps_decay', *train_case((5, 4), decay=0.5, eps=1e-3), (5, 4)),
    ('test_2d', *eval_case((4, 3)), (4, 3)),
    ('test_4d', *eval_case((2, 3, 2, 2)), (2, 3, 2, 2)),
]


@pytest.mark.parametrize('name,ours,theirs,shape', CASES, ids=[c[0] for c in CASES])
def test_batch_norm_against_torch(name, ours, theirs, shape):
    gamma, beta = params(shape[1])
    check_op(ours, theirs, [rng.standard_normal(shape) * 2 + 1, gamma, beta])


@pytest.mark.parametrize('shape', [(8, 3), (4, 3, 2, 5)])
def test_running_statistics_update_in_place_like_torch(shape):
    channels = shape[1]
    x = rng.standard_normal(shape) * 3 + 2
    gamma, beta = params(channels)
    mean, var = rng.standard_normal(channels), rng.uniform(0.5, 2.0, channels)
    mean_array, var_array = mean.copy(), var.copy()
    running_mean, running_var = torch.from_numpy(mean.copy()), torch.from_numpy(var.copy())
    for _ in range(2):
        F.batch_norm(Variable(x), gamma, beta, mean_array, var_array, decay=0.8)
        TF.batch_norm(torch.from_numpy(x), running_mean, running_var, torch.from_numpy(gamma),
                      torch.from_numpy(beta), training=True, momentum=0.2)
    # torch also folds in the unbiased batch variance, m / (m - 1) times the biased one.
    np.testing.assert_allclose(mean_array, running_mean.numpy())
    np.testing.assert_allclose(var_array, running_var.numpy())


def test_running_var_uses_the_book_adjustment():
    x = np.array([[1.0, 10.0], [3.0, 20.0], [8.0, 60.0]])
    mean, var = np.zeros(2), np.ones(2)
    F.batch_norm(x, np.ones(2), np.zeros(2), mean, var, decay=0.9)
    m = 3
    np.testing.assert_allclose(mean, 0.1 * x.mean(0))
    np.testing.assert_allclose(var, 0.9 + 0.1 * x.var(0) * m / (m - 1))
    one_row_var = np.ones(2)  # m = 1: the adjustment m / max(m - 1, 1) is 1, never a division by zero
    F.batch_norm(x[:1], np.ones(2), np.zeros(2), np.zeros(2), one_row_var, decay=0.5)
    np.testing.assert_allclose(one_row_var, [0.5, 0.5])


def test_test_mode_uses_running_statistics_and_leaves_them_alone():
    x = rng.standard_normal((5, 2))
    mean, var = np.array([0.5, -1.0]), np.array([4.0, 0.25])
    with dezero.test_mode():
        y = F.batch_nrom(x, np.ones(2), np.zeros(2), mean, var, eps=0.0)
    np.testing.assert_allclose(y.data, (x - mean) / np.sqrt(var))
    np.testing.assert_array_equal(mean, [0.5, -1.0])
    np.testing.assert_array_equal(var, [4.0, 0.25])
    assert F.batch_nrom is F.batch_norm


def test_train_mode_output_is_normalised():
    x = rng.standard_normal((50, 3, 2, 2)) * 5 - 3
    y = F.batch_norm(x, np.ones(3), np.zeros(3), np.zeros(3), np.ones(3)).data
    np.testing.assert_allclose(y.mean((0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(y.var((0, 2, 3)), 1, rtol=1e-5)


@pytest.mark.parametrize('mode', [True, False], ids=['train', 'test'])
@pytest.mark.parametrize('shape', [(4, 3), (2, 3, 2, 2)])
def test_batch_norm_float32_stays_float32(mode, shape):
    x = Variable(rng.standard_normal(shape).astype(np.float32))
    gamma, beta = Variable(np.ones(3, np.float32)), Variable(np.zeros(3, np.float32))
    mean, var = np.zeros(3, np.float32), np.ones(3, np.float32)
    with dezero.using_config('train', mode):
        y = F.batch_norm(x, gamma, beta, mean, var)
    F.sum(y * y).backward()
    assert y.dtype == np.float32
    assert x.grad.dtype == gamma.grad.dtype == beta.grad.dtype == np.float32
    assert mean.dtype == var.dtype == np.float32


LN_CASES = [
    ('2d', lambda x, g, b: F.layer_norm(x, g, b), lambda x, g, b: TF.layer_norm(x, (4,), g, b), (3, 4)),
    ('3d', lambda x, g, b: F.layer_norm(x, g, b, eps=1e-3),
     lambda x, g, b: TF.layer_norm(x, (5,), g, b, eps=1e-3), (2, 3, 5)),
]


@pytest.mark.parametrize('name,ours,theirs,shape', LN_CASES, ids=[c[0] for c in LN_CASES])
def test_layer_norm_against_torch(name, ours, theirs, shape):
    gamma, beta = params(shape[-1])
    check_op(ours, theirs, [rng.standard_normal(shape) * 2 + 1, gamma, beta])


def test_layer_norm_without_affine_parameters():
    check_op(F.layer_norm, lambda x: TF.layer_norm(x, (6,)), [rng.standard_normal((3, 6))])
    y = F.layer_norm(Variable(rng.standard_normal((2, 6)).astype(np.float32)))
    assert y.dtype == np.float32


ERRORS = [
    (lambda: F.batch_norm(np.zeros((2, 3, 4)), np.ones(3), np.zeros(3), np.zeros(3), np.ones(3)), ValueError,
     r'batch_norm: x must be \(N, C\) or \(N, C, H, W\), got shape \(2, 3, 4\)'),
    (lambda: F.batch_norm(np.zeros((2, 3)), np.ones(2), np.zeros(3), np.zeros(3), np.ones(3)), ValueError,
     r'batch_norm: gamma has shape \(2,\), expected \(3,\)'),
    (lambda: F.batch_norm(np.zeros((2, 3)), np.ones(3), np.zeros(3), np.zeros(4), np.ones(3)), ValueError,
     r'batch_norm: mean has shape \(4,\), expected \(3,\)'),
    (lambda: F.batch_norm(np.zeros((2, 3)), np.ones(3), np.zeros(3), np.zeros(3), [1.0, 1.0, 1.0]), TypeError,
     'batch_norm: var must be an array updated in place, got list'),
    (lambda: F.layer_norm(np.zeros((2, 3)), np.ones(2)), ValueError,
     r'layer_norm: gamma has shape \(2,\), expected \(3,\)'),
]


@pytest.mark.parametrize('call,error,message', ERRORS, ids=[f'error{i}' for i in range(len(ERRORS))])
def test_bad_input_is_named(call, error, message):
    with pytest.raises(error, match=message):
        call()
