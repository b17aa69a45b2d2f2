"""dezero.ops.reduction: sum, average/mean, max, min, logsumexp against PyTorch (value, gradient,
gradient of gradient), ties, stability, dtypes and bad axes."""
import numpy as np
import pytest
import torch

import dezero.functions as F
from dezero import Variable
from tests.oracle import check_op

rng = np.random.default_rng(0)
X3 = rng.standard_normal((2, 3, 4))
X2 = rng.standard_normal((3, 5))

CASES = [
    ('sum_all', lambda x: F.sum(x), lambda t: t.sum(), X3),
    ('sum_axis0', lambda x: F.sum(x, 0), lambda t: t.sum(0), X3),
    ('sum_axes_keepdims', lambda x: F.sum(x, (0, 2), keepdims=True),
     lambda t: t.sum((0, 2), keepdim=True), X3),
    ('average_all', lambda x: F.average(x), lambda t: t.mean(), X3),
    ('average_axis1', lambda x: F.average(x, 1), lambda t: t.mean(1), X3),
    ('average_neg_axis_keepdims', lambda x: F.average(x, -1, keepdims=True),
     lambda t: t.mean(-1, keepdim=True), X3),
    ('average_axes_list', lambda x: F.average(x, [0, 2]), lambda t: t.mean((0, 2)), X3),
    ('mean_alias', lambda x: F.mean(x, 0), lambda t: t.mean(0), X2),
    ('max_all', lambda x: F.max(x), lambda t: torch.amax(t), X3),
    ('max_axis1', lambda x: F.max(x, 1), lambda t: torch.amax(t, 1), X3),
    ('max_axes_keepdims', lambda x: F.max(x, (0, 2), keepdims=True),
     lambda t: torch.amax(t, (0, 2), keepdim=True), X3),
    ('min_all', lambda x: F.min(x), lambda t: torch.amin(t), X3),
    ('min_neg_axis', lambda x: F.min(x, -1), lambda t: torch.amin(t, -1), X3),
    ('logsumexp_default_axis1', lambda x: F.logsumexp(x), lambda t: torch.logsumexp(t, 1), X2),
    ('logsumexp_keepdims', lambda x: F.logsumexp(x, 1, keepdims=True),
     lambda t: torch.logsumexp(t, 1, keepdim=True), X2),
    ('logsumexp_all', lambda x: F.logsumexp(x, None), lambda t: torch.logsumexp(t, (0, 1, 2)), X3),
    ('logsumexp_axes', lambda x: F.logsumexp(x, (0, 2)), lambda t: torch.logsumexp(t, (0, 2)), X3),
]


@pytest.mark.parametrize('name,ours,theirs,x', CASES, ids=[c[0] for c in CASES])
def test_against_torch(name, ours, theirs, x):
    check_op(ours, theirs, [x])


TIES = np.array([[1.0, 3.0, 3.0, -2.0], [2.0, 2.0, 2.0, 0.5], [-1.0, -1.0, 4.0, 4.0]])


@pytest.mark.parametrize('ours,theirs', [
    (lambda x: F.max(x, 1), lambda t: torch.amax(t, 1)),
    (lambda x: F.max(x), lambda t: torch.amax(t)),
    (lambda x: F.min(x, 0), lambda t: torch.amin(t, 0)),
    (lambda x: F.min(x, 1, keepdims=True), lambda t: torch.amin(t, 1, keepdim=True)),
], ids=['max_axis1', 'max_all', 'min_axis0', 'min_keepdims'])
def test_tied_extrema_share_the_gradient_like_torch(ours, theirs):
    # Not differentiable at ties, so no finite differences: torch.amax/amin define the convention.
    check_op(ours, theirs, [TIES], numerical=False)


def test_tied_maxima_split_evenly():
    x = Variable(TIES.copy())
    F.max(x, 1).backward()
    expected = np.array([[0, 0.5, 0.5, 0], [1 / 3, 1 / 3, 1 / 3, 0], [0, 0, 0.5, 0.5]])
    np.testing.assert_allclose(x.grad.data, expected)


def test_logsumexp_is_stable_for_huge_scores():
    x = np.array([[1000.0, -1000.0, 999.0], [-1000.0, -1000.0, -1000.0]])
    check_op(lambda v: F.logsumexp(v, 1), lambda t: torch.logsumexp(t, 1), [x])
    v = Variable(x.astype(np.float32))
    y = F.logsumexp(v)
    F.sum(y).backward()
    assert np.all(np.isfinite(y.data)) and np.all(np.isfinite(v.grad.data))
    np.testing.assert_allclose(y.data, [1000 + np.log1p(np.exp(-1.0)), -1000 + np.log(3.0)], rtol=1e-6)


def test_logsumexp_of_infinite_rows():
    x = np.array([[-np.inf, -np.inf], [np.inf, 0.0], [-np.inf, 2.0]])
    np.testing.assert_array_equal(F.logsumexp(x).data, [-np.inf, np.inf, 2.0])


def test_average_keeps_sum_shape_and_value():
    x = rng.standard_normal((4, 6))
    y = F.average(x, 1)
    np.testing.assert_allclose(y.data, x.mean(1))
    assert F.mean is F.average


@pytest.mark.parametrize('ours', [
    lambda x: F.sum(x, 1), lambda x: F.average(x, 1), lambda x: F.max(x, 0), lambda x: F.min(x),
    lambda x: F.logsumexp(x, 1),
], ids=['sum', 'average', 'max', 'min', 'logsumexp'])
def test_float32_stays_float32(ours):
    x = Variable(rng.standard_normal((3, 4)).astype(np.float32))
    y = ours(x)
    F.sum(y).backward()
    assert y.dtype == np.float32 and x.grad.dtype == np.float32


@pytest.mark.parametrize('fn,name', [(F.average, 'average'), (F.max, 'max'), (F.min, 'min'),
                                     (F.logsumexp, 'logsumexp')])
def test_out_of_range_axis_names_the_function(fn, name):
    with pytest.raises(ValueError, match=rf'{name}: axis 2 is out of range .*\(3, 4\)'):
        fn(Variable(np.zeros((3, 4))), 2)


def test_repeated_axis_is_an_error():
    with pytest.raises(ValueError, match='max: axis .* repeats'):
        F.max(Variable(np.zeros((3, 4))), (1, -1))


def test_average_of_empty_axis_is_an_error():
    with pytest.raises(ValueError, match='average: .*empty'):
        F.average(Variable(np.zeros((0, 3))), 0)


def test_sum_with_an_axis_out_of_range_names_sum_and_the_shape():
    with pytest.raises(ValueError, match=r'sum: axis 5 is out of range for an input of shape \(2, 3\)'):
        F.sum(Variable(np.ones((2, 3))), axis=5)
