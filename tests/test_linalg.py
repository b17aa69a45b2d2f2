"""dezero.ops.linalg: matmul (2-D, batched with broadcast batch axes, 1-D operands) and linear, against
PyTorch to second order (third on a composite), plus dtypes and error messages.
"""
import numpy as np
import pytest
import torch

import dezero.functions as F
from dezero import Variable
from tests.oracle import check_op
from tests.test_shape import check_third_order

rng = np.random.default_rng(0)

MATMUL_SHAPES = [
    ((2, 3), (3, 4)),
    ((1, 5), (5, 1)),
    ((2, 1, 3, 4), (5, 4, 2)),
    ((3, 4, 5), (5, 2)),
    ((4, 5), (3, 5, 2)),
    ((2, 3, 4), (2, 4, 3)),
    ((5,), (5, 3)),
    ((3, 5), (5,)),
    ((4,), (4,)),
    ((2, 3, 4), (4,)),
    ((4,), (2, 4, 3)),
]


@pytest.mark.parametrize('shapes', MATMUL_SHAPES, ids=str)
def test_matmul_against_torch(shapes):
    a, b = rng.standard_normal(shapes[0]), rng.standard_normal(shapes[1])
    check_op(F.matmul, torch.matmul, [a, b])


@pytest.mark.parametrize('shapes', MATMUL_SHAPES[:6], ids=str)
def test_matmul_operator_with_nonlinearity(shapes):
    a, b = rng.standard_normal(shapes[0]), rng.standard_normal(shapes[1])
    check_op(lambda x, w: F.tanh(x @ w), lambda x, w: torch.tanh(x @ w), [a, b])


@pytest.mark.parametrize('shapes', [((2, 3), (3, 4)), ((2, 1, 3, 4), (5, 4, 2)), ((3,), (3, 2))], ids=str)
def test_matmul_third_order(shapes):
    a, b = rng.standard_normal(shapes[0]), rng.standard_normal(shapes[1])
    check_third_order(lambda x, w: F.tanh(x @ w), lambda x, w: torch.tanh(x @ w), [a, b])


def test_matmul_with_a_constant_operand():
    a, w = rng.standard_normal((2, 3)), rng.standard_normal((3, 4))
    check_op(lambda x, W: F.matmul(x, W), torch.matmul, [a, w], wrt=[1])
    check_op(lambda x, W: F.matmul(x, W), torch.matmul, [a, w], wrt=[0])


def _torch_linear(x, W, b=None):
    y = x @ W
    return y if b is None else y + b


LINEAR_CASES = [
    ('bias', ((4, 3), (3, 2), (2,))),
    ('no_bias', ((4, 3), (3, 2))),
    ('single_row', ((1, 5), (5, 3), (3,))),
    ('batched_x', ((2, 4, 3), (3, 2), (2,))),
    ('vector_x', ((3,), (3, 2), (2,))),
]


@pytest.mark.parametrize('name,shapes', LINEAR_CASES, ids=[c[0] for c in LINEAR_CASES])
def test_linear_against_torch(name, shapes):
    inputs = [rng.standard_normal(s) for s in shapes]
    check_op(F.linear, _torch_linear, inputs)
    check_op(lambda *xs: F.sin(F.linear(*xs)), lambda *ts: torch.sin(_torch_linear(*ts)), inputs)


def test_linear_third_order():
    inputs = [rng.standard_normal(s) for s in [(4, 3), (3, 2), (2,)]]
    check_third_order(lambda *xs: F.tanh(F.linear(*xs)), lambda *ts: torch.tanh(_torch_linear(*ts)), inputs)


def test_linear_with_constant_input_skips_only_its_gradient():
    x, W, b = rng.standard_normal((4, 3)), rng.standard_normal((3, 2)), rng.standard_normal(2)
    check_op(F.linear, _torch_linear, [x, W, b], wrt=[1, 2])
    Wv, bv = Variable(W), Variable(b)
    y = F.linear(x, Wv, bv)
    y.backward()
    np.testing.assert_allclose(Wv.grad.data, x.T @ np.ones((4, 2)), rtol=1e-12)
    np.testing.assert_allclose(bv.grad.data, [4.0, 4.0])


@pytest.mark.parametrize('f', [lambda x, W, b: x @ W, F.matmul, F.linear,
                               lambda x, W, b: F.linear(x, W)])
def test_float32_stays_float32(f):
    x = Variable(rng.standard_normal((4, 3)).astype(np.float32))
    W = Variable(rng.standard_normal((3, 2)).astype(np.float32))
    b = Variable(np.zeros(2, np.float32))
    y = f(x, W, b) if f is not F.matmul else f(x, W)
    y.backward()
    assert y.dtype == np.float32 and x.grad.dtype == np.float32 and W.grad.dtype == np.float32


def test_matmul_errors_name_op_and_shapes():
    with pytest.raises(ValueError, match=r'matmul.*\(2, 3\).*\(4, 5\)'):
        F.matmul(Variable(np.ones((2, 3))), Variable(np.ones((4, 5))))
    with pytest.raises(ValueError, match=r'matmul.*\(2, 3\).*\(4, 5\)'):
        Variable(np.ones((2, 3))) @ np.ones((4, 5))
    with pytest.raises(ValueError, match=r'matmul.*\(\).*\(3,\)'):
        F.matmul(Variable(np.array(2.0)), Variable(np.ones(3)))


def test_matmul_batch_broadcast_error_names_op_and_shapes():
    with pytest.raises(ValueError, match=r'matmul.*\(2, 2, 3\).*\(3, 3, 1\)'):
        F.matmul(Variable(np.ones((2, 2, 3))), Variable(np.ones((3, 3, 1))))


def test_linear_errors_name_op_and_shapes():
    with pytest.raises(ValueError, match=r'linear.*\(4, 3\).*\(5, 2\)'):
        F.linear(Variable(np.ones((4, 3))), Variable(np.ones((5, 2))))
    with pytest.raises(ValueError, match=r'linear.*\(3,\).*\(3, 2\)'):
        F.linear(Variable(np.ones((4, 3))), Variable(np.ones((3, 2))), Variable(np.ones(3)))
