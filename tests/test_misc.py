"""dezero.ops.misc: clip, accuracy, dropout, embed_id, concat, stack, where against PyTorch (value,
gradient, gradient of gradient), modes, dtypes and bad input."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import dezero
import dezero.functions as F
from dezero import Variable
from tests.oracle import check_op

rng = np.random.default_rng(0)


def away_from(bounds, shape):
    """Random values in (-2, 2) kept 0.05 away from each bound (the kinks of clip)."""
    x = rng.uniform(-2, 2, shape)
    for b in bounds:
        x = np.where(np.abs(x - b) < 0.05, b + 0.3, x)
    return x


def seeded_dropout(ratio):
    """Dropout whose mask is the same at every call (check_op calls it many times) and its torch twin."""
    def ours(x):
        np.random.seed(7)
        return F.dropout(x, ratio)

    def theirs(t):
        np.random.seed(7)
        draws = np.random.randint(0, 1 << 16, size=t.shape, dtype=np.uint16)  # the documented draw
        mask = (draws >= round(ratio * (1 << 16))) / (1 - ratio)
        return t * torch.from_numpy(mask)
    return ours, theirs


DROP_OURS, DROP_THEIRS = seeded_dropout(0.3)
IDS = np.array([[0, 2, 2], [4, 0, 1]])
COND = rng.standard_normal((3, 1)) > 0

CASES = [
    ('clip', lambda x: F.clip(x, -0.5, 1.0), lambda t: torch.clamp(t, -0.5, 1.0),
     [away_from((-0.5, 1.0), (4, 5))]),
    ('clip_min_only', lambda x: F.clip(x, 0.2, None), lambda t: torch.clamp(t, min=0.2),
     [away_from((0.2,), (3, 4))]),
    ('clip_max_only', lambda x: F.clip(x, None, 0.2), lambda t: torch.clamp(t, max=0.2),
     [away_from((0.2,), (3, 4))]),
    ('dropout', DROP_OURS, DROP_THEIRS, [rng.standard_normal((6, 5))]),
    ('embed_id', lambda W: F.embed_id(IDS, W), lambda W: TF.embedding(torch.from_numpy(IDS), W),
     [rng.standard_normal((5, 3))]),
    ('concat_axis0', lambda a, b: F.concat([a, b]), lambda a, b: torch.cat([a, b]),
     [rng.standard_normal((2, 3)), rng.standard_normal((4, 3))]),
    ('concat_axis1_three', lambda a, b, c: F.concat((a, b, c), axis=1),
     lambda a, b, c: torch.cat((a, b, c), 1),
     [rng.standard_normal((2, 1, 2)), rng.standard_normal((2, 3, 2)), rng.standard_normal((2, 2, 2))]),
    ('concat_negative_axis', lambda a, b: F.concat([a, b], axis=-1), lambda a, b: torch.cat([a, b], -1),
     [rng.standard_normal((2, 3)), rng.standard_normal((2, 1))]),
    ('stack_axis0', lambda a, b: F.stack([a, b]), lambda a, b: torch.stack([a, b]),
     [rng.standard_normal((2, 3)), rng.standard_normal((2, 3))]),
    ('stack_last_axis', lambda a, b, c: F.stack([a, b, c], axis=-1),
     lambda a, b, c: torch.stack([a, b, c], -1),
     [rng.standard_normal((2, 3)), rng.standard_normal((2, 3)), rng.standard_normal((2, 3))]),
    ('where_broadcast', lambda x, y: F.where(COND, x, y),
     lambda x, y: torch.where(torch.from_numpy(COND), x, y),
     [rng.standard_normal((1, 4)), rng.standard_normal((3, 4))]),
    ('where_scalar_other', lambda x: F.where(COND, x, 0.0),
     lambda x: torch.where(torch.from_numpy(COND), x, 0.0),
     [rng.standard_normal((3, 4))]),
    ('where_constant_first', lambda y: F.where(COND, np.ones((3, 4)), y),
     lambda y: torch.where(torch.from_numpy(COND), torch.ones(3, 4, dtype=torch.float64), y),
     [rng.standard_normal((3, 4))]),
]


@pytest.mark.parametrize('name,ours,theirs,inputs', CASES, ids=[c[0] for c in CASES])
def test_against_torch(name, ours, theirs, inputs):
    check_op(ours, theirs, inputs)


# --- clip ------------------------------------------------------------------------------------
def test_clip_gradient_is_one_inside_including_the_bounds():
    x = Variable(np.array([-3.0, -1.0, 0.0, 1.0, 3.0]))
    y = F.clip(x, -1.0, 1.0)
    y.backward()
    np.testing.assert_array_equal(y.data, [-1, -1, 0, 1, 1])
    np.testing.assert_array_equal(x.grad.data, [0, 1, 1, 1, 0])


def test_clip_keeps_float32():
    x = Variable(np.array([1e-20, 0.5, 2.0], np.float32))
    y = F.clip(x, np.float64(1e-15), 1.0)
    y.backward()
    assert y.dtype == np.float32 and x.grad.dtype == np.float32


@pytest.mark.parametrize('args,message', [((None, None), 'clip: x_min and x_max are both None'),
                                          ((1.0, 0.0), 'clip: x_min 1.0 is greater than x_max 0.0')])
def test_clip_rejects_bad_bounds(args, message):
    with pytest.raises(ValueError, match=message):
        F.clip(Variable(np.zeros(3)), *args)


# --- accuracy --------------------------------------------------------------------------------
def test_accuracy_is_the_fraction_of_correct_rows():
    y = np.array([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1], [0.2, 0.3, 0.5], [0.0, 0.0, 1.0]])
    t = np.array([1, 0, 0, 2])
    acc = F.accuracy(Variable(y), t)
    assert isinstance(acc, Variable) and acc.shape == () and acc.creator is None
    assert float(acc.data) == 0.75
    assert float(F.accuracy(y, Variable(t)).data) == 0.75  # arrays and Variables on either side
    assert F.accuracy(y.astype(np.float32), t).dtype == np.float32


def test_accuracy_rejects_mismatched_labels():
    with pytest.raises(ValueError, match=r'accuracy: y of shape \(4, 3\) and t of shape \(3,\) do not fit'):
        F.accuracy(np.zeros((4, 3)), np.zeros(3, int))
    with pytest.raises(ValueError, match=r'accuracy: y must be scores of shape \(N, C, ...\), got \(4,\)'):
        F.accuracy(np.zeros(4), np.zeros(4, int))


# --- dropout ---------------------------------------------------------------------------------
def test_dropout_train_mode_scales_survivors_and_backward_reuses_the_mask():
    x = Variable(np.ones((200, 50), np.float32))
    y = F.dropout(x, 0.4)
    y.backward()
    values = np.unique(y.data)
    np.testing.assert_allclose(values, [0.0, 1 / 0.6], rtol=1e-6)
    assert abs((y.data == 0).mean() - 0.4) < 0.02
    assert y.dtype == np.float32 and x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad.data, y.data)


def test_dropout_is_identity_in_test_mode():
    x = Variable(rng.standard_normal((3, 4)))
    with dezero.test_mode():
        y = F.dropout(x, 0.5)
    np.testing.assert_array_equal(y.data, x.data)


def test_dropout_ratio_extremes_and_errors():
    x = Variable(np.ones((4, 4)))
    np.testing.assert_array_equal(F.dropout(x, 0.0).data, x.data)
    np.testing.assert_array_equal(F.dropout(x, 1.0).data, np.zeros((4, 4)))
    with pytest.raises(ValueError, match=r'dropout: dropout_ratio must be in \[0, 1\], got 1.5'):
        F.dropout(x, 1.5)


# --- embed_id --------------------------------------------------------------------------------
def test_embed_id_accumulates_repeated_ids():
    W = Variable(np.arange(12.0).reshape(4, 3))
    y = F.embed_id(np.array([1, 1, 3]), W)
    np.testing.assert_array_equal(y.data, W.data[[1, 1, 3]])
    y.backward()
    np.testing.assert_array_equal(W.grad.data, [[0, 0, 0], [2, 2, 2], [0, 0, 0], [1, 1, 1]])


@pytest.mark.parametrize('ids,W,error,message', [
    (np.array([0.0, 1.0]), np.zeros((3, 2)), TypeError,
     'embed_id: x must be an integer array of ids, got float64'),
    (np.array([0, 3]), np.zeros((3, 2)), ValueError, r'embed_id: ids must be in \[0, 3\)'),
    (np.array([0, 1]), np.zeros(3), ValueError, r'embed_id: W must be a \(V, D\) matrix, got shape \(3,\)'),
], ids=['float_ids', 'out_of_range', 'W_not_2d'])
def test_embed_id_errors(ids, W, error, message):
    with pytest.raises(error, match=message):
        F.embed_id(ids, Variable(W))


# --- concat / stack / where ------------------------------------------------------------------
def test_concat_stack_where_keep_float32():
    a = Variable(np.ones((2, 3), np.float32))
    b = Variable(np.zeros((2, 3), np.float32))
    for y in (F.concat([a, b], 1), F.stack([a, b]), F.where(np.eye(2, 3, dtype=bool), a, 2.0)):
        a.cleargrad()
        F.sum(y * y).backward()
        assert y.dtype == np.float32 and a.grad.dtype == np.float32


@pytest.mark.parametrize('call,error,message', [
    (lambda: F.concat([np.zeros((2, 3)), np.zeros((3, 2))]), ValueError,
     r'concat: shapes \[\(2, 3\), \(3, 2\)\] differ outside axis 0'),
    (lambda: F.concat(np.zeros((2, 3))), TypeError, 'concat: expected a non-empty list or tuple'),
    (lambda: F.concat([np.zeros((2, 3))], axis=2), ValueError, 'concat: axis 2 is out of range'),
    (lambda: F.stack([np.zeros((2, 3)), np.zeros((2, 2))]), ValueError, 'stack: all inputs need one shape'),
    (lambda: F.stack([]), TypeError, 'stack: expected a non-empty list or tuple'),
    (lambda: F.where(np.ones(3), np.zeros(3), np.zeros(3)), TypeError,
     'where: condition must be a boolean array, got float64'),
    (lambda: F.where(np.ones(3, bool), Variable(np.zeros(3)), np.zeros(4)), ValueError,
     r'where: shapes \(3,\) \(condition\), \(3,\) and \(4,\) cannot be broadcast'),
], ids=['concat_shapes', 'concat_not_list', 'concat_axis', 'stack_shapes', 'stack_empty', 'where_cond',
        'where_shapes'])
def test_concat_stack_where_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize('ratio', [0.5, 0.25, 0.75, 0.125, 1 / 256, 0.3])
@pytest.mark.parametrize('dtype', [np.float32, np.float64])
def test_dropout_mask_statistics(ratio, dtype):
    # Ratios that are multiples of 1/2 ... 1/256 take the few-bits path: each random byte gives a
    # group of neighbouring mask values, which must still be independent of each other.
    n = 400_000
    np.random.seed(3)
    y = F.dropout(Variable(np.ones(n, dtype)), ratio).data
    np.random.seed(3)
    again = F.dropout(Variable(np.ones(n, dtype)), ratio).data
    np.testing.assert_array_equal(y, again)  # seeded by np.random.seed
    assert y.dtype == dtype
    np.testing.assert_allclose(np.unique(y), [0.0, 1 / (1 - ratio)], rtol=1e-6)
    dropped = y == 0
    sigma = (ratio * (1 - ratio) / n) ** 0.5
    assert abs(dropped.mean() - ratio) < 5 * sigma
    for gap in (1, 2, 3, 4, 8):  # neighbours within and across bytes
        both = (dropped[:-gap] & dropped[gap:]).mean()
        assert abs(both - ratio ** 2) < 5 * (ratio ** 2 * (1 - ratio ** 2) / n) ** 0.5 + 1e-4


def test_dropout_drops_the_stated_fraction_in_float32():
    np.random.seed(0)
    x = Variable(np.ones((200, 500), np.float32))
    y = F.dropout(x, 0.3)
    assert y.dtype == np.float32
    assert abs(float((y.data == 0).mean()) - 0.3) < 0.005
    np.testing.assert_allclose(np.unique(y.data), [0.0, 1 / 0.7], rtol=1e-6)
