"""dezero.ops.loss against PyTorch (value, gradient, gradient of gradient), the book's reductions,
stability for huge scores and logits, broadcasting, dtypes and bad input."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import dezero.functions as F
from dezero import Variable
from tests.oracle import check_op

rng = np.random.default_rng(0)

SCORES = rng.standard_normal((5, 4))
LABELS = np.array([0, 3, 1, 1, 2])
LOGITS = rng.standard_normal((4, 3)) * 3
BITS = rng.integers(0, 2, (4, 3))
PROBS = rng.uniform(0.05, 0.95, (4, 3))
SOFT_TARGETS = rng.uniform(0, 1, (4, 3))


def torch_mse(a, b):
    diff = a - b
    return (diff * diff).sum() / len(diff)


CASES = [
    ('mse', F.mean_squared_error, torch_mse,
     [rng.standard_normal((4, 3)), rng.standard_normal((4, 3))], None),
    ('mse_broadcast_rows', F.mean_squared_error, torch_mse,
     [rng.standard_normal((1, 3)), rng.standard_normal((4, 3))], None),
    ('mse_broadcast_left_bigger', F.mean_squared_error, torch_mse,
     [rng.standard_normal((4, 3)), rng.standard_normal((3,))], None),
    ('mse_vectors', F.mean_squared_error, torch_mse, [rng.standard_normal(6), rng.standard_normal(6)], None),
    ('mse_target_constant', F.mean_squared_error, torch_mse,
     [rng.standard_normal((4, 2)), rng.standard_normal((4, 2))], [0]),
    ('softmax_cross_entropy', F.softmax_cross_entropy, TF.cross_entropy, [SCORES, LABELS], None),
    ('sigmoid_cross_entropy', F.sigmoid_cross_entropy,
     lambda x, t: TF.binary_cross_entropy_with_logits(x, t.double(), reduction='sum') / len(x),
     [LOGITS, BITS], None),
    ('sigmoid_cross_entropy_soft_targets', F.sigmoid_cross_entropy,
     lambda x, t: TF.binary_cross_entropy_with_logits(x, t, reduction='sum') / len(x),
     [LOGITS, SOFT_TARGETS], [0]),
    ('binary_cross_entropy', F.binary_cross_entropy,
     lambda p, t: TF.binary_cross_entropy(p, t.double(), reduction='sum') / len(p), [PROBS, BITS], None),
]


@pytest.mark.parametrize('name,ours,theirs,inputs,wrt', CASES, ids=[c[0] for c in CASES])
def test_against_torch(name, ours, theirs, inputs, wrt):
    check_op(ours, theirs, inputs, wrt)


def test_mse_divides_by_batch_size_not_element_count():
    x0, x1 = np.ones((4, 3)), np.zeros((4, 3))
    assert float(F.mean_squared_error(Variable(x0), x1).data) == 3.0


def test_mse_broadcast_gradients_have_input_shapes():
    a = Variable(rng.standard_normal((1, 3)))
    b = Variable(rng.standard_normal((4, 3)))
    loss = F.mean_squared_error(a, b)
    loss.backward()
    assert a.grad.shape == (1, 3) and b.grad.shape == (4, 3)
    np.testing.assert_allclose(loss.data, ((a.data - b.data) ** 2).sum() / 4)
    np.testing.assert_allclose(a.grad.data, (2 * (a.data - b.data) / 4).sum(0, keepdims=True))


def test_mse_array_target_takes_the_variable_dtype():
    x = Variable(rng.standard_normal((4, 2)).astype(np.float32))
    loss = F.mean_squared_error(x, rng.standard_normal((4, 2)))
    loss.backward()
    assert loss.dtype == np.float32 and x.grad.dtype == np.float32


@pytest.mark.parametrize('label_as', [np.asarray, Variable, lambda t: t.astype(np.int32),
                                      lambda t: t.astype(np.uint8)],
                         ids=['int64', 'variable', 'int32', 'uint8'])
def test_softmax_cross_entropy_label_forms(label_as):
    x = Variable(SCORES.copy())
    t = label_as(LABELS)
    loss = F.softmax_cross_entropy(x, t)
    loss.backward()
    expected = TF.cross_entropy(torch.from_numpy(SCORES), torch.from_numpy(LABELS))
    np.testing.assert_allclose(loss.data, expected.item())
    if isinstance(t, Variable):
        assert t.grad is None


def test_softmax_cross_entropy_gradient_formula():
    x = Variable(SCORES.copy())
    F.softmax_cross_entropy(x, LABELS).backward()
    e = np.exp(SCORES - SCORES.max(1, keepdims=True))
    onehot = np.eye(4)[LABELS]
    np.testing.assert_allclose(x.grad.data, (e / e.sum(1, keepdims=True) - onehot) / 5)


def test_softmax_cross_entropy_is_stable_for_huge_scores():
    x = np.array([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 999.0], [5.0, -1000.0, 1000.0]])
    t = np.array([1, 2, 0])
    check_op(F.softmax_cross_entropy, TF.cross_entropy, [x, t])
    xv = Variable(x.astype(np.float32))
    loss = F.softmax_cross_entropy(xv, t)
    loss.backward()
    expected = TF.cross_entropy(torch.from_numpy(x), torch.from_numpy(t)).item()
    assert np.isfinite(loss.data) and np.all(np.isfinite(xv.grad.data))
    np.testing.assert_allclose(loss.data, expected, rtol=1e-6)


def test_sigmoid_cross_entropy_of_large_logits_is_exact():
    x = np.array([[40.0, -40.0], [40.0, -40.0]])
    t = np.array([[1, 0], [0, 1]])
    check_op(F.sigmoid_cross_entropy,
             lambda a, b: TF.binary_cross_entropy_with_logits(a, b.double(), reduction='sum') / len(a),
             [x, t])
    xv = Variable(x.astype(np.float32))
    loss = F.sigmoid_cross_entropy(xv, t)
    loss.backward()
    # Confident and right costs ~0, confident and wrong costs 40 per element; gradient never clipped.
    np.testing.assert_allclose(loss.data, 80 / 2, rtol=1e-6)
    np.testing.assert_allclose(xv.grad.data, [[0.0, 0.0], [0.5, -0.5]], atol=1e-7)


def test_binary_cross_entropy_at_exact_zero_and_one_is_finite_like_torch():
    p = np.array([[0.0, 1.0, 0.0], [1.0, 0.5, 0.25]])
    t = np.array([[1, 0, 0], [1, 1, 0]])
    pv = Variable(p.copy())
    loss = F.binary_cross_entropy(pv, t)
    loss.backward()
    pt = torch.from_numpy(p).requires_grad_(True)
    lt = TF.binary_cross_entropy(pt, torch.from_numpy(t).double(), reduction='sum') / 2
    lt.backward()
    np.testing.assert_allclose(loss.data, lt.item())
    np.testing.assert_allclose(pv.grad.data, pt.grad.numpy())
    assert np.all(np.isfinite(pv.grad.data))


LOSSES32 = [
    (F.softmax_cross_entropy, LABELS, SCORES),
    (F.sigmoid_cross_entropy, BITS, LOGITS),
    (F.binary_cross_entropy, BITS, PROBS),
    (F.mean_squared_error, rng.standard_normal((5, 4)).astype(np.float32), SCORES),
]


@pytest.mark.parametrize('loss_fn,t,x', LOSSES32, ids=['softmax_ce', 'sigmoid_ce', 'bce', 'mse'])
def test_float32_stays_float32(loss_fn, t, x):
    xv = Variable(x.astype(np.float32))
    loss = loss_fn(xv, t)
    loss.backward(create_graph=True)
    assert loss.dtype == np.float32 and xv.grad.dtype == np.float32
    g = xv.grad
    xv.cleargrad()
    F.sum(g * g).backward()
    assert xv.grad.dtype == np.float32


ERRORS = [
    (lambda: F.softmax_cross_entropy(Variable(np.zeros((4, 3))), np.zeros(5, int)), ValueError,
     r'softmax_cross_entropy: x of shape \(4, 3\) and t of shape \(5,\) do not fit'),
    (lambda: F.softmax_cross_entropy(Variable(np.zeros((4, 3))), np.zeros(4)), TypeError,
     r'softmax_cross_entropy: t must hold integer class labels, got dtype float64'),
    (lambda: F.softmax_cross_entropy(Variable(np.zeros(4)), np.zeros(4, int)), ValueError,
     r'softmax_cross_entropy: x of shape \(4,\)'),
    (lambda: F.softmax_cross_entropy(Variable(np.zeros((2, 3, 4))), np.zeros(2, int)), ValueError,
     r'softmax_cross_entropy: x of shape \(2, 3, 4\)'),
    (lambda: F.softmax_cross_entropy(Variable(np.zeros((2, 3))), np.array([0, 3])), ValueError,
     r'softmax_cross_entropy: labels must be in \[0, 3\)'),
    (lambda: F.softmax_cross_entropy(Variable(np.zeros((2, 3))), np.array([-1, 0])), ValueError,
     r'softmax_cross_entropy: labels must be in'),
    (lambda: F.softmax_cross_entropy(Variable(np.zeros((2, 3))), [0, 1]), TypeError,
     r'softmax_cross_entropy: t must be an array or a Variable, got list'),
    (lambda: F.softmax_cross_entropy(Variable(np.zeros((2, 3), int)), np.zeros(2, int)), TypeError,
     r'softmax_cross_entropy: x must be floating point'),
    (lambda: F.sigmoid_cross_entropy(Variable(np.zeros((4, 3))), np.zeros((4, 2), int)), ValueError,
     r'sigmoid_cross_entropy: x of shape \(4, 3\) and t of shape \(4, 2\) differ'),
    (lambda: F.binary_cross_entropy(Variable(np.zeros((4, 3))), np.zeros(4)), ValueError,
     r'binary_cross_entropy: x of shape \(4, 3\) and t of shape \(4,\) differ'),
    (lambda: F.binary_cross_entropy(Variable(np.full((2, 2), 1.5)), np.zeros((2, 2))), ValueError,
     r'binary_cross_entropy: p must hold probabilities in \[0, 1\]'),
    (lambda: F.mean_squared_error(Variable(np.zeros((4, 3))), np.zeros((2, 3))), ValueError,
     r'mean_squared_error: inputs of shapes \(4, 3\) and \(2, 3\) cannot be broadcast'),
    (lambda: F.mean_squared_error(Variable(np.array(1.0)), np.array(2.0)), ValueError,
     r'mean_squared_error: inputs need a batch axis'),
]


@pytest.mark.parametrize('call,error,message', ERRORS, ids=[f'error{i}' for i in range(len(ERRORS))])
def test_bad_input_is_named(call, error, message):
    with pytest.raises(error, match=message):
        call()
