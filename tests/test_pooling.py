"""dezero.ops.pooling: max, min and average pooling and pooling_simple against PyTorch (forward,
gradient, gradient of the gradient, finite differences), plus properties and errors. Min pooling's
reference is ``-max_pool2d(-x)``."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import dezero._parallel
import dezero.functions as F
from dezero import Variable
from tests.oracle import assert_float32_kept, check_op

rng = np.random.default_rng(0)

# id, x shape, kernel, stride, pad (torch allows pad <= kernel / 2)
POOL_CASES = [
    ('k2-s2', (2, 3, 6, 6), 2, 2, 0),
    ('k3-s1-p1', (2, 2, 5, 5), 3, 1, 1),
    ('k3x2-s(1,2)-p(1,0)', (1, 2, 6, 7), (3, 2), (1, 2), (1, 0)),
    ('k2-s3-p1-odd', (2, 2, 7, 5), 2, 3, 1),
    ('k3-s2-overlap', (1, 3, 7, 6), 3, 2, 0),
]


@pytest.mark.parametrize('x_shape,kernel,stride,pad', [c[1:] for c in POOL_CASES],
                         ids=[c[0] for c in POOL_CASES])
def test_max_pooling_against_torch(x_shape, kernel, stride, pad):
    check_op(lambda x: F.pooling(x, kernel, stride, pad),
             lambda x: TF.max_pool2d(x, kernel, stride, pad), [rng.standard_normal(x_shape)])


def torch_min_pool2d(x, kernel, stride, pad):
    return -TF.max_pool2d(-x, kernel, stride, pad)


@pytest.mark.parametrize('x_shape,kernel,stride,pad', [c[1:] for c in POOL_CASES],
                         ids=[c[0] for c in POOL_CASES])
def test_min_pooling_against_torch(x_shape, kernel, stride, pad):
    check_op(lambda x: F.min_pooling(x, kernel, stride, pad),
             lambda x: torch_min_pool2d(x, kernel, stride, pad), [rng.standard_normal(x_shape)])


@pytest.mark.parametrize('kernel,stride,pad', [(2, 2, 0), (3, 1, 1), ((3, 2), (2, 1), (1, 1))])
def test_min_pooling_ties_against_torch(kernel, stride, pad):
    # Values from {0, 1, 2}: most windows hold several minima; the gradient goes to the first one,
    # as torch's (finite differences are meaningless at ties, so only torch is the reference).
    x = rng.integers(0, 3, size=(2, 3, 6, 5)).astype(np.float64)
    check_op(lambda x: F.min_pooling(x, kernel, stride, pad),
             lambda x: torch_min_pool2d(x, kernel, stride, pad), [x], numerical=False)


def test_min_pooling_padding_never_wins_and_gradient_goes_to_first_minimum():
    x = 1.0 + rng.uniform(size=(2, 2, 4, 5))
    y = F.min_pooling(Variable(x), 3, 2, 1)
    assert (y.data > 1.0).all()
    assert y.data[0, 0, 0, 0] == x[0, 0, :2, :2].min()
    x = Variable(np.array([[[[1.0, 0.0], [0.0, 3.0]]]]))
    F.min_pooling(x, 2, 2).backward()
    np.testing.assert_array_equal(x.grad.data, [[[[0.0, 1.0], [0.0, 0.0]]]])


@pytest.mark.parametrize('dtype', [np.int32, np.uint8])
def test_min_pooling_of_integers_pads_with_the_largest_value(dtype):
    x = rng.integers(0, 100, size=(1, 2, 5, 5)).astype(dtype)
    y = F.min_pooling(x, 3, 2, 1).data
    expected = -F.pooling(-x.astype(np.int64), 3, 2, 1).data
    assert y.dtype == dtype
    np.testing.assert_array_equal(y, expected)


@pytest.mark.parametrize('x_shape,kernel,stride,pad', [c[1:] for c in POOL_CASES],
                         ids=[c[0] for c in POOL_CASES])
def test_average_pooling_against_torch(x_shape, kernel, stride, pad):
    check_op(lambda x: F.average_pooling(x, kernel, stride, pad),
             lambda x: TF.avg_pool2d(x, kernel, stride, pad, count_include_pad=True),
             [rng.standard_normal(x_shape)])


@pytest.mark.parametrize('x_shape,kernel,stride,pad', [c[1:] for c in POOL_CASES],
                         ids=[c[0] for c in POOL_CASES])
def test_pooling_simple_equals_pooling(x_shape, kernel, stride, pad):
    x = rng.standard_normal(x_shape) - 5.0  # all negative: padding must not win in either
    gy = rng.standard_normal(F.pooling(x, kernel, stride, pad).shape)
    results = []
    for op in (F.pooling, F.pooling_simple):
        xv = Variable(x.copy())
        y = op(xv, kernel, stride, pad)
        (y * gy).sum().backward()
        results.append((y.data, xv.grad.data))
    for ours, simple in zip(*results):
        np.testing.assert_array_equal(simple, ours)


def test_max_pooling_padding_never_wins():
    x = -1.0 - rng.uniform(size=(2, 2, 4, 5))
    y = F.pooling(Variable(x), 3, 2, 1)
    assert (y.data < -1.0).all()
    np.testing.assert_array_equal(y.data, TF.max_pool2d(torch.from_numpy(x), 3, 2, 1).numpy())
    # The corner window sees only pixels (0..1, 0..1): its maximum is theirs.
    assert y.data[0, 0, 0, 0] == x[0, 0, :2, :2].max()


def test_max_pooling_gradient_goes_to_first_maximum():
    x = Variable(np.array([[[[1.0, 3.0], [3.0, 0.0]]]]))
    F.pooling(x, 2, 2).backward()
    np.testing.assert_array_equal(x.grad.data, [[[[0.0, 1.0], [0.0, 0.0]]]])


def test_max_pooling_overlapping_windows_accumulate():
    # With stride 1 the central 9 is the max of all four 2x2 windows, so it collects four gradients.
    x = Variable(np.array([[[[0.0, 1.0, 0.0], [2.0, 9.0, 3.0], [0.0, 4.0, 0.0]]]]))
    F.pooling(x, 2, 1).backward()
    expected = np.zeros((1, 1, 3, 3))
    expected[0, 0, 1, 1] = 4.0
    np.testing.assert_array_equal(x.grad.data, expected)


@pytest.mark.parametrize('ours,theirs', [(F.pooling, TF.max_pool2d), (F.min_pooling, torch_min_pool2d)],
                         ids=['max', 'min'])
def test_pooling_gradient_is_differentiable_both_ways(ours, theirs):
    # Third order through Pooling2DGrad → Pooling2DWithIndexes → Pooling2DGrad against torch.
    x = rng.standard_normal((1, 2, 5, 4))
    xv, xt = Variable(x.copy()), torch.tensor(x, requires_grad=True)
    gy = rng.standard_normal((1, 2, 2, 2))
    gyv, gyt = Variable(gy.copy()), torch.tensor(gy, requires_grad=True)
    v = rng.standard_normal(x.shape)

    y = ours(xv, 2, 2, 0)
    (y * gyv).sum().backward(create_graph=True)
    gx = xv.grad
    gyv.cleargrad()
    (gx * v).sum().backward(create_graph=True)  # d/dgy of <gx, v>: a gather of v
    gather = gyv.grad
    gyv.cleargrad()
    (gather * gather).sum().backward()

    yt = theirs(xt, 2, 2, 0)
    (gxt,) = torch.autograd.grad((yt * gyt).sum(), xt, create_graph=True)
    (gathert,) = torch.autograd.grad((gxt * torch.from_numpy(v)).sum(), gyt, create_graph=True)
    np.testing.assert_allclose(gather.data, gathert.detach().numpy())
    assert gyv.grad is None  # the gather of the constant v does not depend on gy


@pytest.mark.parametrize('op', [F.pooling, F.min_pooling], ids=['max', 'min'])
@pytest.mark.parametrize('kernel,stride,pad', [(2, 2, 0), (3, 2, 1), ((2, 3), 1, (1, 0))])
def test_pooling_without_a_graph_gives_the_same_values(op, kernel, stride, pad):
    # Under no_grad only the extremum is computed (no argmax); values must not change, NaN included.
    x = rng.standard_normal((3, 4, 9, 8)).astype(np.float32)
    x[0, 1, 2, 3] = np.nan
    recorded = op(dezero.Variable(x), kernel, stride, pad)
    with dezero.no_grad():
        bare = op(x, kernel, stride, pad)
    assert bare.creator is None and recorded.creator is not None
    np.testing.assert_array_equal(bare.data, recorded.data)
    assert np.isnan(bare.data).sum() == np.isnan(recorded.data).sum() > 0


def test_max_pooling_split_over_threads(monkeypatch):
    # A size threshold of 1 sends even these small arrays through the multithreaded split path.
    monkeypatch.setattr(dezero._parallel, '_SPLIT_MIN_SIZE', 1)
    for kernel, stride in [(2, 2), (3, 1)]:
        x = rng.permutation(3 * 2 * 6 * 7).reshape(3, 2, 6, 7).astype(np.float64)
        check_op(lambda x, k=kernel, s=stride: F.pooling(x, k, s),
                 lambda x, k=kernel, s=stride: TF.max_pool2d(x, k, s), [x])
        check_op(lambda x, k=kernel, s=stride: F.min_pooling(x, k, s),
                 lambda x, k=kernel, s=stride: torch_min_pool2d(x, k, s, 0), [x])


@pytest.mark.parametrize('name,op', [
    ('pooling', lambda x: F.pooling(x, 2, 2, 1)),
    ('pooling_simple', lambda x: F.pooling_simple(x, 2, 2, 1)),
    ('min_pooling', lambda x: F.min_pooling(x, (3, 2), (1, 2), (1, 0))),
    ('average_pooling', lambda x: F.average_pooling(x, 3, 1, 1)),
])
def test_float32_stays_float32(name, op):
    assert_float32_kept(op, (2, 3, 5, 6), name)


@pytest.mark.parametrize('call,message', [
    (lambda: F.pooling(np.ones((2, 5, 5)), 2), r'pooling: expected x .*\(2, 5, 5\)'),
    (lambda: F.pooling(np.ones((1, 1, 3, 3)), 4, 1, 0), r'pooling: kernel 4x4 is larger .* 3x3'),
    (lambda: F.pooling(np.ones((1, 1, 3, 3)), 2, 1, 2), 'pooling: pad'),
    (lambda: F.pooling_simple(np.ones((1, 1, 3, 3)), (4, 1)), 'pooling: kernel 4x1'),
    (lambda: F.pooling_simple(np.ones((1, 1, 3, 3)), 2, 1, (0, 2)), 'pooling: pad'),
    (lambda: F.average_pooling(np.ones((1, 1, 3, 3)), 2, 0), 'average_pooling: stride'),
    (lambda: F.min_pooling(np.ones((2, 5, 5)), 2), r'min_pooling: expected x .*\(2, 5, 5\)'),
    (lambda: F.min_pooling(np.ones((1, 1, 3, 3)), (2, 4)), r'min_pooling: kernel 2x4 is larger'),
    (lambda: F.min_pooling(np.ones((1, 1, 3, 3)), 2, 1, 2), r'min_pooling: pad .* has no minimum'),
    (lambda: F.min_pooling(np.ones((1, 1, 3, 3)), 2, (1, 0)), 'min_pooling: stride'),
])
def test_bad_input_raises_clear_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()
