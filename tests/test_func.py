"""dezero.func against torch.func, as a table of functions written twice (dezero, torch) side by side.

Every row is checked, in float64 to 1e-8, for jacobian (reverse mode), vjp and jvp; scalar rows also
for grad, value_and_grad, hessian and hvp, and R -> R rows for grad(grad(grad(f))). Each transform runs
twice: on arrays (results must be arrays) and on Variables (results must be Variables, and no Variable
passed in may end with a ``.grad``). Then the contract's corners: nesting through closures, parameters
not among argnums, errors naming the transform, and functional_call with a second-order MAML step.
"""
from __future__ import annotations

import doctest
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch

import dezero.func
import dezero.functions as F
import dezero.layers as L
from dezero import Parameter, Variable, no_grad
from dezero.func import (
    functional_call,
    grad,
    hessian,
    hvp,
    jacobian,
    jvp,
    value_and_grad,
    vjp,
)
from dezero.models import MLP

# torch.func.jvp's first call registers TorchScript decompositions, which warns on torch 2.13.
pytestmark = pytest.mark.filterwarnings('ignore:`torch.jit.script` is deprecated:DeprecationWarning')
torch.set_num_threads(1)
TOL = {'rtol': 1e-8, 'atol': 1e-8}
tf = torch.func


# =============================================================================
# Structures: map over nested tuples/lists/dicts, compare leaf by leaf
# =============================================================================
def tree_map(fn: Callable[[Any], Any], tree: Any) -> Any:
    if isinstance(tree, (tuple, list)):
        return type(tree)(tree_map(fn, item) for item in tree)
    if isinstance(tree, dict):
        return {key: tree_map(fn, item) for key, item in tree.items()}
    return fn(tree)


def tree_leaves(tree: Any) -> list[Any]:
    if isinstance(tree, (tuple, list)):
        return [leaf for item in tree for leaf in tree_leaves(item)]
    if isinstance(tree, dict):
        return [leaf for item in tree.values() for leaf in tree_leaves(item)]
    return [tree]


def to_torch(tree: Any) -> Any:
    return tree_map(lambda a: torch.from_numpy(np.array(a)), tree)


def to_variables(tree: Any) -> Any:
    return tree_map(lambda a: Variable(np.array(a)), tree)


def assert_tree_close(ours: Any, theirs: Any, what: str, expect: type = np.ndarray) -> None:
    """Same structure (dict keys, tuple lengths), each leaf of type ``expect`` and within 1e-8."""
    if isinstance(theirs, (tuple, list)):
        assert isinstance(ours, (tuple, list)) and len(ours) == len(theirs), f'{what}: {type(ours)}'
        for k, (a, b) in enumerate(zip(ours, theirs)):
            assert_tree_close(a, b, f'{what}[{k}]', expect)
    elif isinstance(theirs, dict):
        assert isinstance(ours, dict) and list(ours) == list(theirs), f'{what}: keys {list(ours)}'
        for key in theirs:
            assert_tree_close(ours[key], theirs[key], f'{what}[{key!r}]', expect)
    else:
        assert isinstance(ours, expect), f'{what}: got {type(ours).__name__}, expected {expect.__name__}'
        data = ours.data if isinstance(ours, Variable) else ours
        expected = theirs.detach().numpy()
        assert data.shape == expected.shape, f'{what}: shape {data.shape} != {expected.shape}'
        assert data.dtype == np.float64, f'{what}: dtype {data.dtype}'
        np.testing.assert_allclose(data, expected, err_msg=what, **TOL)


# =============================================================================
# The table
# =============================================================================
rng = np.random.default_rng(0)
A = rng.standard_normal((4, 3))
LABELS = np.array([0, 2, 1, 3, 2])
MLP_X, MLP_Y = rng.standard_normal((6, 3)), rng.standard_normal((6, 1))
LSTM_IN, LSTM_H = 3, 2
LSTM_H0, LSTM_C0 = rng.standard_normal((2, LSTM_H)), rng.standard_normal((2, LSTM_H))

mlp = MLP((5, 1), activation=F.tanh)
mlp(MLP_X)  # creates the (float32) weights; every test passes its own float64 ones
MLP_PARAMS = {path: rng.standard_normal(p.shape) * 0.7 for path, p in mlp.named_params()}

lstm = L.LSTM(LSTM_H, in_size=LSTM_IN)
LSTM_PARAMS = {path: rng.standard_normal(p.shape) * 0.6 for path, p in lstm.named_params()}


def mlp_ours(params):
    return F.mean_squared_error(functional_call(mlp, params, MLP_X), MLP_Y)


def mlp_theirs(params):
    h = torch.tanh(torch.from_numpy(MLP_X) @ params['l0/W'] + params['l0/b'])
    y = h @ params['l1/W'] + params['l1/b']
    return ((y - torch.from_numpy(MLP_Y)) ** 2).sum() / len(MLP_X)


def lstm_ours(x, params):
    """One step of dezero's LSTM layer from a given state: (h', c')."""
    lstm.h, lstm.c = LSTM_H0, LSTM_C0
    h = functional_call(lstm, params, x)
    return h, lstm.c


def lstm_theirs(x, params):
    h0, c0 = torch.from_numpy(LSTM_H0), torch.from_numpy(LSTM_C0)

    def gate(g):
        return x @ params[f'x2{g}/W'] + params[f'x2{g}/b'] + h0 @ params[f'h2{g}/W']

    f, i, o = torch.sigmoid(gate('f')), torch.sigmoid(gate('i')), torch.sigmoid(gate('o'))
    c = f * c0 + i * torch.tanh(gate('u'))
    return o * torch.tanh(c), c


def lstm_loss(state):
    """A scalar of an LSTM step's (h', c'), the same code for dezero and torch."""
    h, c = state
    return (h * h).sum() + c.sum()


def torch_softmax_cross_entropy(scores, labels):
    return torch.nn.functional.cross_entropy(scores, torch.from_numpy(labels))


@dataclass
class Case:
    name: str
    ours: Callable[..., Any]
    theirs: Callable[..., Any]
    args: tuple[Any, ...]
    argnums: int | tuple[int, ...] = 0


def _x(*shape):
    return rng.standard_normal(shape)


SCALAR_CASES = [
    Case('polynomial', lambda x: F.sum(3 * x ** 4 - 2 * x ** 3 + x - 1),
         lambda x: (3 * x ** 4 - 2 * x ** 3 + x - 1).sum(), (_x(4),)),
    Case('polynomial_two_args', lambda x, y: F.sum(x ** 2 * y + x * y ** 3),
         lambda x, y: (x ** 2 * y + x * y ** 3).sum(), (_x(3), _x(3)), (0, 1)),
    Case('sin_exp_log', lambda x: F.sum(F.log(F.exp(F.sin(x)) + x ** 2 + 1)),
         lambda x: torch.log(torch.exp(torch.sin(x)) + x ** 2 + 1).sum(), (_x(2, 3),)),
    Case('matmul', lambda x, W: F.sum(F.tanh(x @ W) ** 2),
         lambda x, W: (torch.tanh(x @ W) ** 2).sum(), (_x(3, 4), _x(4, 2)), (0, 1)),
    Case('softmax_cross_entropy', lambda x, W: F.softmax_cross_entropy(x @ W, LABELS),
         lambda x, W: torch_softmax_cross_entropy(x @ W, LABELS), (_x(5, 3), _x(3, 4)), (0, 1)),
    Case('conv2d', lambda x, W, b: F.sum(F.tanh(F.conv2d(x, W, b, stride=1, pad=1)) ** 2),
         lambda x, W, b: (torch.tanh(torch.nn.functional.conv2d(x, W, b, stride=1, padding=1)) ** 2).sum(),
         (_x(1, 2, 4, 4), _x(2, 2, 3, 3) * 0.5, _x(2)), (0, 1, 2)),
    Case('mlp_loss', mlp_ours, mlp_theirs, (MLP_PARAMS,)),
    Case('lstm_step_loss', lambda x, p: lstm_loss(lstm_ours(x, p)), lambda x, p: lstm_loss(lstm_theirs(x, p)),
         (_x(2, LSTM_IN), LSTM_PARAMS), (0, 1)),
]

VECTOR_CASES = [
    Case('sin_exp_vector', lambda x: F.sin(x @ A) * F.exp(x[:3]),
         lambda x: torch.sin(x @ torch.from_numpy(A)) * torch.exp(x[:3]), (_x(4),)),
    Case('matmul', lambda x, W: x @ W, lambda x, W: x @ W, (_x(2, 3), _x(3, 4)), (0, 1)),
    Case('softmax', lambda x, W: F.softmax(x @ W, axis=1),
         lambda x, W: torch.softmax(x @ W, dim=1), (_x(2, 3), _x(3, 4)), (0, 1)),
    Case('conv2d', lambda x, W: F.conv2d(x, W, None, stride=2, pad=1),
         lambda x, W: torch.nn.functional.conv2d(x, W, None, stride=2, padding=1),
         (_x(1, 2, 5, 5), _x(3, 2, 3, 3)), (0, 1)),
    Case('mlp_outputs', lambda p: functional_call(mlp, p, MLP_X[:2]),
         lambda p: torch.tanh(torch.from_numpy(MLP_X[:2]) @ p['l0/W'] + p['l0/b']) @ p['l1/W'] + p['l1/b'],
         (MLP_PARAMS,)),
    Case('lstm_step_state', lstm_ours, lstm_theirs, (_x(2, LSTM_IN), LSTM_PARAMS), (0, 1)),
]

# R -> R, for the third derivative.
SCALAR_INPUT_CASES = [
    Case('polynomial', lambda x: 3 * x ** 5 - x ** 3 + 2 * x, lambda x: 3 * x ** 5 - x ** 3 + 2 * x,
         (np.array(0.7),)),
    Case('sin_exp_log', lambda x: F.log(F.exp(F.sin(x)) + x ** 2),
         lambda x: torch.log(torch.exp(torch.sin(x)) + x ** 2), (np.array(1.3),)),
    Case('tanh_times_cos', lambda x: F.tanh(x) * F.cos(2 * x), lambda x: torch.tanh(x) * torch.cos(2 * x),
         (np.array(-0.4),)),
]

ALL_CASES = [pytest.param(c, id=f'scalar-{c.name}') for c in SCALAR_CASES] + \
            [pytest.param(c, id=f'vector-{c.name}') for c in VECTOR_CASES]
scalar_cases = pytest.mark.parametrize('case', SCALAR_CASES, ids=[c.name for c in SCALAR_CASES])


def run_both(case: Case, ours_call: Callable[..., Any], theirs_call: Callable[..., Any], what: str,
             extra: tuple[Any, ...] = ()) -> None:
    """``ours_call(*args, *extra)`` on arrays gives arrays, on Variables gives Variables; both match
    ``theirs_call`` on tensors, and no Variable passed in ends with a gradient."""
    expected = theirs_call(*to_torch(case.args), *to_torch(extra))
    assert_tree_close(ours_call(*case.args, *extra), expected, f'{case.name} {what} (arrays)')
    variables = to_variables(case.args), to_variables(extra)
    result = ours_call(*variables[0], *variables[1])
    assert_tree_close(result, expected, f'{case.name} {what} (Variables)', expect=Variable)
    left = [v for v in tree_leaves(variables) if v.grad is not None]
    assert not left, f'{case.name} {what}: gradients left on {len(left)} input Variables'


def tangents_for(args: tuple[Any, ...], seed: int) -> tuple[Any, ...]:
    local = np.random.default_rng(seed)
    return tree_map(lambda a: local.standard_normal(np.shape(a)), args)


# =============================================================================
# Against torch.func, row by row
# =============================================================================
@scalar_cases
def test_grad(case: Case) -> None:
    run_both(case, grad(case.ours, argnums=case.argnums), tf.grad(case.theirs, argnums=case.argnums),
             'grad')


@scalar_cases
def test_value_and_grad(case: Case) -> None:
    def ours(*args):
        return value_and_grad(case.ours, argnums=case.argnums)(*args)

    def theirs(*args):
        g, value = tf.grad_and_value(case.theirs, argnums=case.argnums)(*args)
        return value, g

    run_both(case, ours, theirs, 'value_and_grad')


@scalar_cases
def test_hessian(case: Case) -> None:
    run_both(case, hessian(case.ours, argnums=case.argnums), tf.hessian(case.theirs, argnums=case.argnums),
             'hessian')


@scalar_cases
def test_hvp(case: Case) -> None:
    """Reverse over reverse vs torch's forward over reverse, jvp(grad(f))."""
    tangents = tangents_for(case.args, 1)
    n = len(case.args)

    def theirs(*flat):
        primals, vs = flat[:n], flat[n:]
        value = case.theirs(*primals)
        return value, tf.jvp(tf.grad(case.theirs, argnums=tuple(range(n))), primals, vs)[1]

    run_both(case, lambda *flat: hvp(case.ours, flat[:n], flat[n:]), theirs, 'hvp', tangents)


@pytest.mark.parametrize('case', ALL_CASES)
def test_jacobian(case: Case) -> None:
    run_both(case, jacobian(case.ours, argnums=case.argnums), tf.jacrev(case.theirs, argnums=case.argnums),
             'jacobian')


@pytest.mark.parametrize('case', ALL_CASES)
def test_jvp(case: Case) -> None:
    tangents = tangents_for(case.args, 2)
    n = len(case.args)
    run_both(case, lambda *flat: jvp(case.ours, flat[:n], flat[n:]),
             lambda *flat: tf.jvp(case.theirs, flat[:n], flat[n:]), 'jvp', tangents)


@pytest.mark.parametrize('case', ALL_CASES)
def test_vjp(case: Case) -> None:
    expected_output = case.theirs(*to_torch(case.args))
    cotangents = tree_map(lambda t: torch.from_numpy(np.random.default_rng(3).standard_normal(t.shape)),
                          expected_output)
    cotangent_arrays = tree_map(lambda t: t.numpy(), cotangents)

    def ours(*args):
        output, vjp_fn = vjp(case.ours, *args)
        return output, vjp_fn(cotangent_arrays), vjp_fn(cotangent_arrays)  # vjp_fn may be called again

    def theirs(*args):
        output, vjp_fn = tf.vjp(case.theirs, *args)
        return output, vjp_fn(cotangents), vjp_fn(cotangents)

    run_both(case, ours, theirs, 'vjp')


@pytest.mark.parametrize('case', SCALAR_INPUT_CASES, ids=[c.name for c in SCALAR_INPUT_CASES])
def test_third_derivative(case: Case) -> None:
    run_both(case, grad(grad(grad(case.ours))), tf.grad(tf.grad(tf.grad(case.theirs))), 'grad^3')


@pytest.mark.parametrize('case', SCALAR_CASES[:4], ids=[c.name for c in SCALAR_CASES[:4]])
def test_third_derivative_tensor(case: Case) -> None:
    """jacobian(hessian(f)): the full third-derivative tensor of R^n -> R functions."""
    run_both(case, jacobian(hessian(case.ours, argnums=case.argnums), argnums=case.argnums),
             tf.jacrev(tf.hessian(case.theirs, argnums=case.argnums), argnums=case.argnums), 'd3f')


NESTED_CASES = [SCALAR_CASES[2], SCALAR_CASES[4], SCALAR_CASES[7]]


@pytest.mark.parametrize('case', NESTED_CASES, ids=[c.name for c in NESTED_CASES])
@pytest.mark.parametrize('outer', ['grad_of_jvp', 'grad_of_hvp', 'jacobian_of_vjp', 'jvp_of_grad'])
def test_transforms_of_transforms(case: Case, outer: str) -> None:
    """Each transform's result differentiated again, with respect to the primal."""
    x, rest = case.args[0], case.args[1:]
    v = tangents_for((x,), 4)[0]
    ours_f = lambda x: case.ours(x, *rest)  # noqa: E731
    theirs_f = lambda x: case.theirs(x, *to_torch(rest))  # noqa: E731
    v_t = to_torch(v)

    def squared_norm(tree):
        return sum((leaf * leaf).sum() for leaf in tree_leaves(tree))

    if outer == 'grad_of_jvp':
        ours = grad(lambda x: squared_norm(jvp(ours_f, (x,), (v,))[1]))
        theirs = tf.grad(lambda x: squared_norm(tf.jvp(theirs_f, (x,), (v_t,))[1]))
    elif outer == 'grad_of_hvp':
        ours = grad(lambda x: squared_norm(hvp(ours_f, (x,), (v,))[1]))
        theirs = tf.grad(lambda x: squared_norm(tf.jvp(tf.grad(theirs_f), (x,), (v_t,))[1]))
    elif outer == 'jacobian_of_vjp':
        ours = jacobian(lambda x: vjp(ours_f, x)[1](np.array(1.0))[0])
        theirs = tf.jacrev(lambda x: tf.vjp(theirs_f, x)[1](torch.tensor(1.0, dtype=torch.float64))[0])
    else:
        ours = lambda x: jvp(grad(ours_f), (x,), (v,))  # noqa: E731
        theirs = lambda x: tf.jvp(tf.grad(theirs_f), (x,), (v_t,))  # noqa: E731
    run_both(Case(case.name, ours_f, theirs_f, (x,)), ours, theirs, outer)


def test_maml_meta_gradient_matches_torch() -> None:
    """The outer gradient through one inner SGD step on functional_call (second order)."""
    lr = 0.3
    x_support, y_support = MLP_X[:3], MLP_Y[:3]
    x_query, y_query = MLP_X[3:], MLP_Y[3:]

    def loss_ours(params, x, y):
        return F.mean_squared_error(functional_call(mlp, params, x), y)

    def meta_loss_ours(params):
        grads = grad(loss_ours)(params, x_support, y_support)
        adapted = {k: params[k] - lr * grads[k] for k in params}
        return loss_ours(adapted, x_query, y_query)

    def loss_theirs(params, x, y):
        h = torch.tanh(torch.from_numpy(x) @ params['l0/W'] + params['l0/b'])
        return ((h @ params['l1/W'] + params['l1/b'] - torch.from_numpy(y)) ** 2).sum() / len(x)

    def meta_loss_theirs(params):
        grads = tf.grad(loss_theirs)(params, x_support, y_support)
        return loss_theirs({k: params[k] - lr * grads[k] for k in params}, x_query, y_query)

    case = Case('maml', meta_loss_ours, meta_loss_theirs, (MLP_PARAMS,))
    run_both(case, value_and_grad(meta_loss_ours), lambda p: tf.grad_and_value(meta_loss_theirs)(p)[::-1],
             'meta value_and_grad')

    # The same meta-gradient, written as a training loop would: Parameters and backward().
    params = {k: Parameter(v.copy()) for k, v in MLP_PARAMS.items()}
    meta_loss_ours(params).backward()
    expected = tf.grad(meta_loss_theirs)(to_torch(MLP_PARAMS))
    assert_tree_close({k: p.grad.data for k, p in params.items()}, expected, 'maml by backward')


# =============================================================================
# The contract: results, structures, no gradients left behind, nesting
# =============================================================================
def f_cubic(x):
    return F.sum(x ** 3)


def test_arrays_in_arrays_out_variables_in_variables_out() -> None:
    x = np.array([1.0, 2.0])
    assert type(grad(f_cubic)(x)) is np.ndarray
    assert type(grad(f_cubic)(1.5)) is np.ndarray  # a Python float counts as an array
    v = Variable(x.copy())
    g = grad(f_cubic)(v)
    assert isinstance(g, Variable) and g.creator is not None
    assert v.grad is None
    # The caller can differentiate the result itself: d/dx sum(3x^2) = 6x.
    F.sum(g).backward()
    np.testing.assert_allclose(v.grad.data, 6 * x)


def test_closed_over_parameters_keep_their_gradients() -> None:
    model = L.Linear(2, in_size=3, dtype=np.float64)
    model.W.grad = Variable(np.full((3, 2), 7.0))
    old_grad = model.W.grad
    x = np.arange(3.0).reshape(1, 3)
    g = grad(lambda x: F.sum(model(x) ** 2))(x)
    np.testing.assert_allclose(g, 2 * (x @ model.W.data + model.b.data) @ model.W.data.T)
    assert model.W.grad is old_grad and np.all(old_grad.data == 7.0)
    assert model.b.grad is None
    hessian(lambda x: F.sum(model(x) ** 3))(x)
    jvp(lambda x: model(x), (x,), (np.ones_like(x),))
    assert model.W.grad is old_grad and model.b.grad is None


def test_outer_graph_is_left_intact() -> None:
    """f closes over a Variable with a creator from the caller's own graph: that graph is neither
    traversed into nor changed."""
    a = Variable(np.array(2.0))
    b = a * 3.0
    creator = b.creator
    g = grad(lambda x: F.sum(x * b))(np.array([1.0, 1.0]))
    np.testing.assert_allclose(g, [6.0, 6.0])
    assert a.grad is None and b.grad is None and b.creator is creator
    b.backward()
    assert float(a.grad.data) == 3.0


def test_derivative_through_a_closure_inside_a_transform() -> None:
    """The inner grad gets arrays but runs inside the outer transform, so it returns Variables and
    the outer derivative with respect to the closed-over y flows: d/dy sum(d/dx sum(x^2 y)) = sum 2x."""
    x0 = np.array([1.0, -2.0, 4.0])

    def outer(y):
        return F.sum(grad(lambda x: F.sum(x ** 2 * y))(x0))

    np.testing.assert_allclose(grad(outer)(np.array(1.5)), np.sum(2 * x0))


def test_the_same_variable_twice_gets_one_gradient_per_position() -> None:
    v = Variable(np.array([1.0, 2.0]))
    ga, gb = grad(lambda a, b: F.sum(a * b ** 2), argnums=(0, 1))(v, v)
    np.testing.assert_allclose(ga.data, v.data ** 2)
    np.testing.assert_allclose(gb.data, 2 * v.data ** 2)
    assert v.grad is None


def test_structures_argnums_and_aux() -> None:
    def f(params, scale, label):
        assert label == 'kept'
        return F.sum(params['w'] ** 2) * scale + F.sum(params['pair'][0] * params['pair'][1]), 'aux'

    params = {'w': np.array([1.0, 2.0]), 'pair': (np.array(3.0), np.array(4.0))}
    (g_params, g_scale), aux = grad(f, argnums=(0, -2), has_aux=True)(params, np.array(2.0), 'kept')
    assert aux == 'aux'
    assert list(g_params) == ['w', 'pair'] and isinstance(g_params['pair'], tuple)
    np.testing.assert_allclose(g_params['w'], [4.0, 8.0])
    np.testing.assert_allclose(g_params['pair'], [4.0, 3.0])
    assert float(g_scale) == 5.0
    (value, aux), _ = value_and_grad(f, has_aux=True)(params, np.array(2.0), label='kept')
    assert float(value) == 22.0 and aux == 'aux'

    def g(x):
        return F.sum(x ** 3), x * 2.0

    J, aux = jacobian(g, has_aux=True)(np.array([1.0, 2.0]))
    np.testing.assert_allclose(J, [3.0, 12.0])
    np.testing.assert_allclose(aux, [2.0, 4.0])
    assert type(aux) is np.ndarray  # aux Variables come back as arrays at top level
    H, aux = hessian(g, has_aux=True)(np.array([1.0, 2.0]))
    np.testing.assert_allclose(H, np.diag([6.0, 12.0]))
    np.testing.assert_allclose(aux, [2.0, 4.0])


def test_unreached_inputs_and_constant_outputs_give_zeros() -> None:
    g_x, g_y = grad(lambda x, y: F.sum(x * 2.0), argnums=(0, 1))(np.ones(2), np.ones((2, 3)))
    np.testing.assert_array_equal(g_y, np.zeros((2, 3)))
    np.testing.assert_array_equal(grad(lambda x: np.float64(3.0))(np.ones(2)), np.zeros(2))
    np.testing.assert_array_equal(jacobian(lambda x: np.zeros(3))(np.ones(2)), np.zeros((3, 2)))
    _, t = jvp(lambda x: np.ones(3), (np.ones(2),), (np.ones(2),))
    np.testing.assert_array_equal(t, np.zeros(3))
    _, (h,) = hvp(lambda x: F.sum(x * 2.0), (np.ones(2),), (np.ones(2),))
    np.testing.assert_array_equal(h, np.zeros(2))


def test_float32_stays_float32() -> None:
    x = np.array([0.5, 1.5], np.float32)
    assert grad(lambda x: F.sum(F.sin(x)))(x).dtype == np.float32
    assert hessian(lambda x: F.sum(F.sin(x)))(x).dtype == np.float32
    assert jvp(F.sin, (x,), (np.ones(2),))[1].dtype == np.float32


def test_works_under_no_grad_and_recovers_from_errors() -> None:
    with no_grad():
        np.testing.assert_allclose(grad(f_cubic)(np.array([2.0])), [12.0])
    p = Parameter(np.array(1.0))

    def failing(x):
        F.sum(x * p)
        raise RuntimeError('boom')

    with pytest.raises(RuntimeError, match='boom'):
        grad(failing)(np.ones(2))
    assert dezero.func._Nesting.depth == 0
    assert type(grad(f_cubic)(np.array([1.0]))) is np.ndarray  # back at top level: arrays again


def test_per_example_gradients_by_a_loop_average_to_the_batch_gradient() -> None:
    def loss(params, x, y):
        return F.mean_squared_error(functional_call(mlp, params, x), y)

    per_example = [grad(loss)(MLP_PARAMS, MLP_X[i:i + 1], MLP_Y[i:i + 1]) for i in range(len(MLP_X))]
    batch = grad(loss)(MLP_PARAMS, MLP_X, MLP_Y)
    for path in MLP_PARAMS:
        np.testing.assert_allclose(np.mean([g[path] for g in per_example], axis=0), batch[path], **TOL)


def test_docstring_examples_run() -> None:
    result = doctest.testmod(dezero.func, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 9 and result.failed == 0


# =============================================================================
# Errors name the transform and what was received
# =============================================================================
two_args = (np.ones(2), np.ones(2))


@pytest.mark.parametrize('call, error, message', [
    (lambda: grad(lambda x: x * 2)(np.ones(3)), ValueError,
     r'grad: f must return a scalar \(shape \(\)\), got a Variable of shape \(3,\)'),
    (lambda: value_and_grad(lambda x: x * 2)(np.ones((2, 1))), ValueError,
     r'value_and_grad: f must return a scalar .*shape \(2, 1\)'),
    (lambda: hvp(lambda x: x * 2, (np.ones(3),), (np.ones(3),)), ValueError, r'hvp: f must return a scalar'),
    (lambda: grad(lambda x: [F.sum(x)])(np.ones(3)), TypeError,
     'grad: f must return a Variable or an array, got a list of length 1'),
    (lambda: grad(lambda x: 'loss')(np.ones(3)), TypeError, "grad: f must return .* got str 'loss'"),
    (lambda: grad(lambda x: 1.0)(np.ones(3)), TypeError, 'grad: f must return .* got float'),
    (lambda: jacobian(lambda x: (x, 'y'))(np.ones(3)), TypeError, "jacobian: f must return .* got str 'y'"),
    (lambda: hessian(lambda x: None)(np.ones(3)), TypeError, 'hessian: f must return .* got NoneType'),
    (lambda: vjp(lambda x: {'a': [1]}, np.ones(2)), TypeError, 'vjp: f must return .* got int'),
    (lambda: grad(lambda x, y: F.sum(x), argnums=2)(*two_args), ValueError,
     r'grad: argnums=2 is out of range for a function called with 2 positional arguments'),
    (lambda: jacobian(lambda x, y: x, argnums=(0, 3))(*two_args), ValueError,
     r'jacobian: argnums=\(0, 3\) is out of range .* 2 positional arguments'),
    (lambda: hessian(lambda x: F.sum(x), argnums=-2)(np.ones(2)), ValueError,
     r'hessian: argnums=-2 is out of range for a function called with 1 positional argument$'),
    (lambda: grad(lambda x: F.sum(x), argnums='0'), TypeError,
     "grad: argnums must be an int or a .* got '0'"),
    (lambda: jacobian(lambda x: x, argnums=()), TypeError, r'jacobian: argnums must be .* got \(\)'),
    (lambda: grad(lambda x: x, argnums=(0, 0)), ValueError, r'grad: argnums \(0, 0\) repeats a position'),
    (lambda: grad(lambda x, y: F.sum(x), argnums=(0, -2))(*two_args), ValueError,
     'names the same argument twice'),
    (lambda: grad(lambda x: F.sum(x))(np.array([1, 2])), TypeError,
     'grad: argument 0 must hold floating-point values to be differentiated, got ndarray with dtype int64'),
    (lambda: grad(lambda x: F.sum(x))('1.0'), TypeError,
     'grad: argument 0 must be a floating-point array, a Variable, or a tuple/list/dict of them, got str'),
    (lambda: grad(lambda x: F.sum(x))({}), ValueError, 'grad: argument 0 is an empty dict'),
    (lambda: grad(3), TypeError, 'grad: f must be callable, got int'),
    (lambda: grad(lambda x: F.sum(x), has_aux=True)(np.ones(2)), TypeError,
     r'grad: with has_aux=True, f must return a pair \(output, aux\), got a Variable of shape \(\)'),
    (lambda: vjp(F.sin, np.ones(2))[1](np.ones(3)), ValueError,
     r'vjp: cotangent 0 has shape \(3,\), expected \(2,\)'),
    (lambda: vjp(lambda x: (x, x), np.ones(2))[1](np.ones(2)), ValueError,
     r'vjp: expected 2 cotangents \(one per output array\), got 1'),
    (lambda: vjp(F.sin), TypeError, 'vjp: expected at least one primal'),
    (lambda: jvp(F.sin, np.ones(2), np.ones(2)), TypeError,
     r'jvp: primals must be a tuple or list \(one entry per argument of f\), got ndarray'),
    (lambda: jvp(F.sin, (np.ones(2),), (np.ones(3),)), ValueError,
     r'jvp: tangent 0 has shape \(3,\), expected \(2,\)'),
    (lambda: hvp(F.sin, (np.ones(2),), ()), ValueError, r'hvp: expected 1 tangent \(one per primal array\)'),
])
def test_errors(call: Callable[[], Any], error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        call()


# =============================================================================
# functional_call
# =============================================================================
def small_net() -> MLP:
    net = MLP((3, 2), activation=F.sigmoid)
    net(np.zeros((1, 2)))
    return net


def test_functional_call_uses_the_given_values_and_restores_the_model() -> None:
    net = small_net()
    own = dict(net.named_params())
    own_data = {k: p.data.copy() for k, p in own.items()}
    x = rng.standard_normal((4, 2))
    np.testing.assert_allclose(functional_call(net, {k: p.data for k, p in own.items()}, x).data, net(x).data)

    values = {k: Variable(rng.standard_normal(p.shape)) for k, p in own.items()}
    y = functional_call(net, values, x)
    h = 1 / (1 + np.exp(-(x @ values['l0/W'].data + values['l0/b'].data)))
    np.testing.assert_allclose(y.data, h @ values['l1/W'].data + values['l1/b'].data, rtol=1e-12)
    F.sum(y).backward()
    assert all(v.grad is not None for v in values.values())
    assert dict(net.named_params()) == own  # the same Parameter objects are back
    assert all(p.grad is None and np.array_equal(p.data, own_data[k]) for k, p in own.items())


def test_functional_call_replaces_a_shared_parameter_everywhere() -> None:
    first = L.Linear(2, in_size=2, dtype=np.float64)
    net = dezero.models.Sequential(first, F.tanh, first)  # one layer used twice: paths l0/* only
    assert [k for k, _ in net.named_params()] == ['l0/W', 'l0/b']
    params = {'l0/W': np.eye(2) * 2.0, 'l0/b': np.zeros(2)}
    x = np.array([[0.1, -0.2]])
    np.testing.assert_allclose(functional_call(net, params, x).data, 2.0 * np.tanh(2.0 * x), rtol=1e-12)


def test_functional_call_restores_on_error_and_strict_false() -> None:
    net = small_net()
    own = dict(net.named_params())

    class Boom(Exception):
        pass

    def failing_forward(x):
        raise Boom

    net.forward = failing_forward
    with pytest.raises(Boom):
        functional_call(net, {k: p.data * 0 for k, p in own.items()}, np.zeros((1, 2)))
    del net.forward
    assert dict(net.named_params()) == own
    x = np.ones((1, 2))
    partial = functional_call(net, {'l1/b': np.array([10.0, 20.0])}, x, strict=False)
    np.testing.assert_allclose(partial.data - net(x).data, [[10.0, 20.0] - own['l1/b'].data], rtol=1e-6)


@pytest.mark.parametrize('params, error, message', [
    ({'l0/W': np.zeros((2, 3))}, KeyError, r"missing paths \['l0/b', 'l1/W', 'l1/b'\]"),
    ({'l0/W': np.zeros((2, 3)), 'l0/b': np.zeros(3), 'l1/W': np.zeros((3, 2)), 'l1/b': np.zeros(2),
      'l2/W': np.zeros(1)}, KeyError, r"unknown paths \['l2/W'\].*its parameters are \['l0/W'"),
    ({'l0/W': np.zeros((3, 2)), 'l0/b': np.zeros(3), 'l1/W': np.zeros((3, 2)), 'l1/b': np.zeros(2)},
     ValueError, r"functional_call: params\['l0/W'\] has shape \(3, 2\), the parameter has shape \(2, 3\)"),
    ({'l0/W': [[0.0]], 'l0/b': np.zeros(3), 'l1/W': np.zeros((3, 2)), 'l1/b': np.zeros(2)},
     TypeError, r"functional_call: params\['l0/W'\] must be an array or a Variable, got list"),
    ([('l0/W', np.zeros((2, 3)))], TypeError, 'functional_call: params must be a dict'),
])
def test_functional_call_errors(params: Any, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        functional_call(small_net(), params, np.zeros((1, 2)))


def test_functional_call_rejects_a_non_layer() -> None:
    with pytest.raises(TypeError, match='functional_call: model must be a Layer, got function'):
        functional_call(F.sin, {}, np.zeros(2))
