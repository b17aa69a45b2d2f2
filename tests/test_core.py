"""dezero.core: the Variable/Function engine, its operators and the backward pass.

Forward values, first derivatives (finite differences and PyTorch), higher derivatives against closed
forms, Newton's method through double backprop, broadcasting gradients (with a hypothesis property
test), graph memory (deep chains, reference counting), configuration and error messages.
"""
import gc
import math
import weakref

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dezero
import dezero.functions as F
from dezero import (
    Config,
    Function,
    Parameter,
    Variable,
    as_array,
    as_variable,
    no_grad,
    setup_variable,
    using_config,
)
from dezero.utils import gradient_check
from tests.oracle import check_op, to_torch

rng = np.random.default_rng(0)


def scalar(value: float) -> Variable:
    return Variable(np.array(value))


def nth_derivative(f, x0: float, order: int) -> list[float]:
    """[f(x0), f'(x0), ..., f^(order)(x0)] of a scalar function by repeated create_graph backward."""
    x = scalar(x0)
    y = f(x)
    values = [float(y.data)]
    for _ in range(order):
        x.cleargrad()
        y.backward(create_graph=True)
        y = x.grad
        values.append(float(y.data))
    return values


# =============================================================================
# Forward values and first derivatives
# =============================================================================
def test_forward_values_of_operators():
    a = np.array([[1.5, -2.0, 3.0]])
    b = np.array([[0.5], [4.0]])
    x, y = Variable(a), Variable(b)
    np.testing.assert_array_equal((x + y).data, a + b)
    np.testing.assert_array_equal((x - y).data, a - b)
    np.testing.assert_array_equal((x * y).data, a * b)
    np.testing.assert_array_equal((x / y).data, a / b)
    np.testing.assert_array_equal((y ** x).data, b ** a)
    np.testing.assert_array_equal((-x).data, -a)
    np.testing.assert_array_equal((x ** 3).data, a ** 3)


FIRST_ORDER = [
    ('square', lambda x: x ** 2),
    ('cube_minus', lambda x: x ** 3 - 2 * x),
    ('quotient', lambda x: (x + 3.0) / (x * x + 1.0)),
    ('rsub_rdiv', lambda x: 2.0 - 1.0 / (x + 4.0)),
    ('rpow', lambda x: 2 ** x),
    ('var_exponent', lambda x: (x * x + 1.0) ** (x + 2.0)),
    ('neg_matmul', lambda x: -(x.reshape(2, 3) @ np.arange(6.0).reshape(3, 2))),
    ('slice', lambda x: x[1:] * x[:-1]),
    ('composite', lambda x: F.tanh(F.exp(-x) * F.sin(x)).sum()),
]


@pytest.mark.parametrize('name,f', FIRST_ORDER, ids=[c[0] for c in FIRST_ORDER])
def test_gradient_check(name, f):
    x = rng.uniform(0.5, 1.5, (6,))
    # numerical_grad feeds f raw arrays; as_variable keeps the operators on Variables.
    assert gradient_check(lambda a: f(as_variable(a)), x)


# =============================================================================
# Higher derivatives against closed forms
# =============================================================================
def _tanh_derivatives(x):
    t = math.tanh(x)
    return [t, 1 - t * t, -2 * t * (1 - t * t), -2 * (1 - t * t) * (1 - 3 * t * t)]


CLOSED_FORMS = [
    ('quartic', lambda x: x ** 4 - 2 * x ** 2,
     lambda x: [x ** 4 - 2 * x ** 2, 4 * x ** 3 - 4 * x, 12 * x ** 2 - 4, 24 * x]),
    ('sin', F.sin, lambda x: [math.sin(x), math.cos(x), -math.sin(x), -math.cos(x)]),
    ('tanh', F.tanh, _tanh_derivatives),
    ('exp2x', lambda x: F.exp(2 * x), lambda x: [math.exp(2 * x) * 2 ** k for k in range(4)]),
    ('reciprocal', lambda x: 1 / x, lambda x: [1 / x, -1 / x ** 2, 2 / x ** 3, -6 / x ** 4]),
    ('rpow', lambda x: 2 ** x, lambda x: [2 ** x * math.log(2) ** k for k in range(4)]),
    ('log', F.log, lambda x: [math.log(x), 1 / x, -1 / x ** 2, 2 / x ** 3]),
    ('x_pow_x', lambda x: x ** x,
     lambda x: [x ** x, x ** x * (math.log(x) + 1), x ** x * ((math.log(x) + 1) ** 2 + 1 / x),
                x ** x * ((math.log(x) + 1) ** 3 + 3 * (math.log(x) + 1) / x - 1 / x ** 2)]),
]


@pytest.mark.parametrize('name,f,expected', CLOSED_FORMS, ids=[c[0] for c in CLOSED_FORMS])
@pytest.mark.parametrize('x0', [0.7, 1.9])
def test_derivatives_to_third_order(name, f, expected, x0):
    np.testing.assert_allclose(nth_derivative(f, x0, 3), expected(x0), rtol=1e-12, atol=1e-12)


def sphere(x, y):
    return x ** 2 + y ** 2


def matyas(x, y):
    return 0.26 * (x ** 2 + y ** 2) - 0.48 * x * y


def goldstein(x, y):
    return ((1 + (x + y + 1) ** 2 * (19 - 14 * x + 3 * x ** 2 - 14 * y + 6 * x * y + 3 * y ** 2))
            * (30 + (2 * x - 3 * y) ** 2 * (18 - 32 * x + 12 * x ** 2 + 48 * y - 36 * x * y + 27 * y ** 2)))


@pytest.mark.parametrize('f,expected', [(sphere, (2.0, 2.0)), (matyas, (0.04, 0.04)),
                                        (goldstein, (-5376.0, 8064.0))])
def test_book_benchmark_gradients_at_one_one(f, expected):
    x, y = scalar(1.0), scalar(1.0)
    z = f(x, y)
    z.backward()
    np.testing.assert_allclose([x.grad.data, y.grad.data], expected, rtol=1e-12)


def test_rosenbrock_gradient_and_hessian_by_double_backprop():
    x0, x1 = scalar(0.0), scalar(2.0)
    y = 100 * (x1 - x0 ** 2) ** 2 + (1 - x0) ** 2
    y.backward(create_graph=True)
    g0, g1 = x0.grad, x1.grad
    np.testing.assert_allclose([g0.data, g1.data], [-2.0, 400.0])  # the book's step 28
    rows = []
    for g in (g0, g1):
        x0.cleargrad()
        x1.cleargrad()
        g.backward()
        rows.append([x0.grad.data, x1.grad.data])
    # d2f/dx0^2 = 1200 x0^2 - 400 x1 + 2, d2f/dx0dx1 = -400 x0, d2f/dx1^2 = 200
    np.testing.assert_allclose(rows, [[-798.0, 0.0], [0.0, 200.0]])


def test_newton_method_with_second_derivatives():
    # The book's step 33: f(x) = x^4 - 2x^2 from x = 2, x <- x - f'(x) / f''(x).
    book = [2.0, 1.4545454545454546, 1.1510467893775467, 1.0253259289766978, 1.0009084519430513,
            1.0000012353089454, 1.000000000002289, 1.0, 1.0, 1.0]
    x = scalar(2.0)
    history = []
    for _ in range(10):
        history.append(float(x.data))
        y = x ** 4 - 2 * x ** 2
        x.cleargrad()
        y.backward(create_graph=True)
        gx = x.grad
        assert gx.creator is not None
        x.cleargrad()
        gx.backward()
        gx2 = x.grad
        x.data = x.data - gx.data / gx2.data
    np.testing.assert_allclose(history, book, rtol=1e-14, atol=0)
    assert all(abs(v - 1) > 1e-10 for v in history[:6])
    assert history[6] != 1.0
    assert all(abs(v - 1) < 1e-10 for v in history[7:])


def test_double_backprop_matches_torch():
    # d/d(x, W) of ||grad_x f||^2 for f = sum(tanh(W @ x + b) * c), with a broadcast bias.
    W0, x0 = rng.standard_normal((4, 3)), rng.standard_normal((3, 2))
    b0, c0 = rng.standard_normal((4, 1)), rng.standard_normal((2,))
    W, x = Variable(W0), Variable(x0)
    y = (F.tanh(W @ x + b0) * c0).sum()
    y.backward(create_graph=True)
    gx = x.grad
    W.cleargrad()
    x.cleargrad()
    (gx * gx).sum().backward()

    Wt, xt = to_torch(W0, True), to_torch(x0, True)
    yt = (torch.tanh(Wt @ xt + to_torch(b0)) * to_torch(c0)).sum()
    (gxt,) = torch.autograd.grad(yt, [xt], create_graph=True)
    gWt2, gxt2 = torch.autograd.grad((gxt * gxt).sum(), [Wt, xt])
    np.testing.assert_allclose(gx.data, gxt.detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(x.grad.data, gxt2.numpy(), rtol=1e-10)
    np.testing.assert_allclose(W.grad.data, gWt2.numpy(), rtol=1e-10)


# =============================================================================
# Broadcasting: gradients come back in each input's shape
# =============================================================================
BINARY = [
    ('add', lambda a, b: a + b),
    ('sub', lambda a, b: a - b),
    ('mul', lambda a, b: a * b),
    ('div', lambda a, b: a / b),
    ('pow', lambda a, b: a ** b),
]
BROADCAST_SHAPES = [((3, 1), (1, 4)), ((2, 3), (3,)), ((), (2, 3)), ((2, 3), ()), ((2, 1, 3), (4, 1))]


def _positive(shape, seed=0):
    return np.random.default_rng(seed).uniform(0.5, 2.0, shape)


@pytest.mark.parametrize('name,op', BINARY, ids=[c[0] for c in BINARY])
@pytest.mark.parametrize('shapes', BROADCAST_SHAPES, ids=str)
def test_broadcast_gradients_against_torch(name, op, shapes):
    a, b = _positive(shapes[0], 1), _positive(shapes[1], 2)
    check_op(op, op, [a, b])


@pytest.mark.parametrize('name,op', BINARY, ids=[c[0] for c in BINARY])
def test_array_and_scalar_constants_reduce_to_variable_shape(name, op):
    x0 = _positive((3, 1))
    for constant in [_positive((1, 4)), 1.5, np.float64(1.5)]:
        for swapped in (False, True):
            x = Variable(x0.copy())
            y = op(constant, x) if swapped else op(x, constant)
            y.backward()
            xt = to_torch(x0, True)
            ct = to_torch(np.asarray(constant))
            yt = op(ct, xt) if swapped else op(xt, ct)
            yt.sum().backward()
            assert x.grad.shape == (3, 1)
            np.testing.assert_allclose(y.data, yt.detach().numpy(), rtol=1e-12)
            np.testing.assert_allclose(x.grad.data, xt.grad.numpy(), rtol=1e-12)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3),
       op_index=st.integers(0, len(BINARY) - 1), seed=st.integers(0, 2 ** 16))
def test_broadcasting_property_against_torch(shapes, op_index, seed):
    op = BINARY[op_index][1]
    shape_a, shape_b = shapes.input_shapes
    a, b = _positive(shape_a, seed), _positive(shape_b, seed + 1)
    xa, xb = Variable(a), Variable(b)
    y = op(xa, xb)
    gy = np.random.default_rng(seed).standard_normal(y.shape)
    (y * gy).sum().backward()
    ta, tb = to_torch(a, True), to_torch(b, True)
    yt = op(ta, tb)
    (yt * to_torch(gy)).sum().backward()
    assert y.shape == shapes.result_shape
    np.testing.assert_allclose(y.data, yt.detach().numpy(), rtol=1e-12)
    assert xa.grad.shape == shape_a and xb.grad.shape == shape_b
    np.testing.assert_allclose(xa.grad.data, ta.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(xb.grad.data, tb.grad.numpy(), rtol=1e-10, atol=1e-12)


# =============================================================================
# Elementwise backward formulas: run on arrays when nothing is recorded, on Variables with create_graph
# =============================================================================
CONSTANT = _positive((4, 1, 3), 3)  # broadcasts a (2, 3) input: its gradient must be summed back
ELEMENTWISE = [
    ('add', lambda a, b: a + b), ('sub', lambda a, b: a - b), ('mul', lambda a, b: a * b),
    ('div', lambda a, b: a / b), ('pow', lambda a, b: a ** b),
    ('neg', lambda a: -a), ('add_scalar', lambda a: a + 2.0), ('sub_scalar', lambda a: a - 2.0),
    ('rsub_scalar', lambda a: 2.0 - a), ('mul_scalar', lambda a: a * 1.5), ('div_scalar', lambda a: a / 1.5),
    ('rdiv_scalar', lambda a: 1.5 / a), ('pow_scalar', lambda a: a ** 3), ('rpow_scalar', lambda a: 2.0 ** a),
    ('add_array', lambda a: a + CONSTANT), ('rsub_array', lambda a: CONSTANT - a),
    ('mul_array', lambda a: a * CONSTANT), ('div_array', lambda a: a / CONSTANT),
    ('rdiv_array', lambda a: CONSTANT / a), ('pow_array', lambda a: a ** CONSTANT),
    ('rpow_array', lambda a: CONSTANT ** a),
    ('sin', F.sin), ('cos', F.cos), ('tanh', F.tanh), ('exp', F.exp), ('log', F.log), ('sigmoid', F.sigmoid),
]


def _gradients(f, arrays, seed, create_graph):
    xs = [Variable(a.copy()) for a in arrays]
    y = f(*xs)
    y.grad = Variable(seed.astype(y.dtype))
    y.backward(create_graph=create_graph)
    return [x.grad for x in xs]


@pytest.mark.parametrize('name,f', ELEMENTWISE, ids=[c[0] for c in ELEMENTWISE])
@pytest.mark.parametrize('dtype', [np.float32, np.float64])
def test_first_order_backward_equals_the_recorded_one_and_records_nothing(name, f, dtype):
    arity = f.__code__.co_argcount
    shapes = [(2, 3), (3,)] if arity == 2 else [(2, 3)]  # (3,): the binary ops broadcast
    arrays = [_positive(shape, i).astype(dtype) for i, shape in enumerate(shapes)]
    y_shape = np.broadcast_shapes(*shapes, CONSTANT.shape if 'array' in name else ())
    seed = np.random.default_rng(5).standard_normal(y_shape)
    first = _gradients(f, arrays, seed, create_graph=False)
    recorded = _gradients(f, arrays, seed, create_graph=True)
    for a, g, g_recorded in zip(arrays, first, recorded):
        assert g.creator is None
        assert type(g.data) is np.ndarray and g.shape == a.shape and g.dtype == dtype
        assert g_recorded.shape == a.shape and g_recorded.dtype == dtype
        np.testing.assert_allclose(g.data, g_recorded.data, rtol=1e-6 if dtype == np.float32 else 1e-14)
    if not name.startswith(('add', 'sub', 'neg', 'rsub')):
        assert recorded[0].creator is not None  # differentiable again: depends on the input


@pytest.mark.parametrize('name,f', ELEMENTWISE, ids=[c[0] for c in ELEMENTWISE])
def test_first_order_backward_of_zero_dimensional_inputs_gives_arrays(name, f):
    arrays = [np.array(0.7 + 0.4 * i) for i in range(f.__code__.co_argcount)]
    for g in _gradients(f, arrays, np.array(1.0) if 'array' not in name else np.ones(CONSTANT.shape), False):
        assert type(g.data) is np.ndarray and g.shape == () and g.creator is None


# =============================================================================
# Graph memory: deep chains and reference counting
# =============================================================================
def test_deep_chain_backpropagates_and_is_freed_by_refcount():
    x = scalar(1.0)
    y = x * 1.0
    first_function = weakref.ref(y.creator)
    first_output = weakref.ref(y)
    for _ in range(100_000 - 1):
        y = y * 1.0
    assert y.generation == 100_000
    y.backward()
    assert x.grad.data == 1.0
    gc.disable()
    try:
        gc.collect()
        assert first_function() is not None and first_output() is not None
        del y
        assert first_function() is None
        assert first_output() is None
    finally:
        gc.enable()


def test_function_holds_only_weak_references_to_outputs():
    x = scalar(3.0)
    y = F.exp(x)
    func = y.creator
    assert isinstance(func.outputs[0], weakref.ref)
    assert func.outputs[0]() is y
    assert func.inputs[0] is x
    gc.disable()
    try:
        y_ref = weakref.ref(y)
        del y
        assert y_ref() is None  # no cycle function <-> output
        assert func.outputs[0]() is None
    finally:
        gc.enable()


def test_no_grad_records_nothing():
    x = scalar(2.0)
    with no_grad():
        assert Config.enable_backprop is False
        y = F.sin(x * x) + x
    assert Config.enable_backprop is True
    assert y.creator is None and y.generation == 0
    y.backward()
    assert x.grad is None
    np.testing.assert_allclose(y.data, math.sin(4.0) + 2.0)


def test_test_mode_and_using_config_restore_even_on_error():
    with dezero.test_mode():  # not imported by name: pytest would collect it
        assert Config.train is False
    assert Config.train is True
    with pytest.raises(ZeroDivisionError):
        with using_config('enable_backprop', False), using_config('train', False):
            assert Config.enable_backprop is False and Config.train is False
            raise ZeroDivisionError
    assert Config.enable_backprop is True and Config.train is True
    with pytest.raises(AttributeError, match='no_such_setting'):
        with using_config('no_such_setting', 1):
            pass
    assert not hasattr(Config, 'no_such_setting')


# =============================================================================
# Backward semantics
# =============================================================================
def test_generation_ordering_in_diamond_graph():
    # The book's step 16: a is used twice, so its gradient must be complete before a's creator runs.
    x = scalar(2.0)
    a = x ** 2
    y = a ** 2 + a ** 2
    y.backward()
    assert y.data == 32.0
    assert x.grad.data == 64.0
    assert (x.generation, a.generation, y.generation) == (0, 1, 3)


def test_generation_ordering_with_unequal_branches():
    # One branch of a is much longer: a must still be visited only after both have delivered.
    x = scalar(0.5)
    a = F.sin(x)
    b = a
    for _ in range(5):
        b = F.tanh(b)
    y = a * b
    y.backward()
    xt = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    at = torch.sin(xt)
    bt = at
    for _ in range(5):
        bt = torch.tanh(bt)
    (at * bt).backward()
    np.testing.assert_allclose(x.grad.data, xt.grad.numpy(), rtol=1e-14)


def test_retain_grad():
    x = scalar(3.0)
    a = x * x
    y = a + 1.0
    y.backward()
    assert a.grad is None and y.grad is None
    assert x.grad.data == 6.0
    x.cleargrad()
    y.backward(retain_grad=True)
    assert y.grad.data == 1.0 and a.grad.data == 1.0 and x.grad.data == 6.0


def test_accumulation_never_writes_into_shared_or_earlier_gradients():
    x = Variable(np.array([1.0, 2.0]))
    y = x + x
    y.backward(retain_grad=True)
    np.testing.assert_array_equal(x.grad.data, [2.0, 2.0])
    np.testing.assert_array_equal(y.grad.data, [1.0, 1.0])  # the seed was not bumped in place
    assert not np.shares_memory(x.grad.data, y.grad.data)
    first = x.grad
    y.grad = None
    y.backward()
    np.testing.assert_array_equal(x.grad.data, [4.0, 4.0])  # accumulates across calls...
    np.testing.assert_array_equal(first.data, [2.0, 2.0])  # ...into a new Variable
    x.cleargrad()
    y.backward()
    np.testing.assert_array_equal(x.grad.data, [2.0, 2.0])


def test_later_terms_add_into_the_sum_the_pass_made():
    """From the third term on, a gradient is added into the sum this pass made for the first two
    (no new array per term); the gradients Add hands to both its inputs are never written."""
    x = Variable(np.array([1.0, 2.0]))
    a = x + x  # backward gives x the same gradient object twice
    y = a * 3.0 + x + x * 2.0
    y.backward(retain_grad=True)
    np.testing.assert_array_equal(x.grad.data, [9.0, 9.0])  # 3 * 2 + 1 + 2
    np.testing.assert_array_equal(a.grad.data, [3.0, 3.0])
    np.testing.assert_array_equal(y.grad.data, [1.0, 1.0])
    assert not np.shares_memory(x.grad.data, a.grad.data)
    terms = [Variable(np.full(2, float(k))) for k in range(4)]
    total = sum(x * t for t in terms[1:]) + x * terms[0]
    x.cleargrad()
    total.backward()
    np.testing.assert_array_equal(x.grad.data, [6.0, 6.0])
    first = x.grad
    total.backward()  # a new pass: the earlier sum is not written
    np.testing.assert_array_equal(first.data, [6.0, 6.0])
    np.testing.assert_array_equal(x.grad.data, [12.0, 12.0])


def test_variable_used_twice_accumulates():
    x = scalar(3.0)
    y = x * x * x + x
    y.backward()
    assert x.grad.data == 28.0


def test_backward_on_leaf_seeds_ones():
    x = Variable(np.array([[1.0, 2.0]], np.float32))
    x.backward()
    assert x.grad.dtype == np.float32 and x.grad.shape == (1, 2)
    np.testing.assert_array_equal(x.grad.data, np.ones((1, 2)))


@pytest.mark.parametrize('dtype', [np.float32, np.float64])
def test_grad_seed_and_gradients_keep_dtype_and_shape(dtype):
    x = Variable(np.ones((2, 3), dtype))
    y = F.sin(x) * 2.0 + 1
    y.backward(retain_grad=True)
    assert y.grad.shape == (2, 3) and y.grad.dtype == dtype
    np.testing.assert_array_equal(y.grad.data, 1.0)
    assert x.grad.dtype == dtype and x.grad.shape == (2, 3)


def test_preset_grad_is_used_as_seed():
    x = Variable(np.array([1.0, 2.0]))
    y = x * 3.0
    y.grad = Variable(np.array([10.0, -1.0]))
    y.backward()
    np.testing.assert_array_equal(x.grad.data, [30.0, -3.0])


def test_create_graph_decides_whether_gradients_have_creators():
    x = scalar(2.0)
    y = x ** 3
    y.backward()
    assert x.grad.creator is None
    x.cleargrad()
    y.backward(create_graph=True)
    assert x.grad.creator is not None
    assert Config.enable_backprop is True


def test_unchain_and_unchain_backward():
    x = scalar(2.0)
    a = x * 3.0
    y = a * a
    a.unchain()
    assert a.creator is None
    y.backward()
    assert a.grad.data == 12.0 and x.grad is None

    x = scalar(2.0)
    a = F.exp(x)
    b = a * 2.0
    z = b + a
    z.unchain_backward()
    assert z.creator is not None  # the edges behind z are cut, not z's own creator
    assert b.creator is None and a.creator is None
    z.backward()
    assert a.grad.data == 1.0 and x.grad is None


def test_unchain_backward_handles_a_deep_chain():
    x = scalar(1.0)
    y = x
    for _ in range(20_000):
        y = -y
    y.unchain_backward()
    y.backward()
    assert x.grad is None


def test_multi_output_function():
    class Split(Function):
        def forward(self, x):
            return x[:2], x[2:]

        def backward(self, g0, g1):
            return concat(g0, g1)

    def concat(g0, g1):
        return _Concat()(g0, g1)

    class _Concat(Function):
        def forward(self, a, b):
            return np.concatenate([a, b])

        def backward(self, gy):
            return gy[:2], gy[2:]

    x = Variable(np.array([1.0, 2.0, 3.0, 4.0, 5.0]))
    a, b = Split()(x)
    assert isinstance(a, Variable) and a.generation == 1
    y = (a * 2.0).sum() + (b * b).sum()
    y.backward()
    np.testing.assert_array_equal(x.grad.data, [2.0, 2.0, 6.0, 8.0, 10.0])


# =============================================================================
# Variable API: repr, properties, shape helpers, operators
# =============================================================================
def test_repr():
    assert repr(Variable(None)) == 'variable(None)'
    assert repr(Variable(np.array(1.5))) == 'variable(1.5)'
    assert repr(Variable(np.array([1, 2, 3]))) == 'variable([1 2 3])'
    assert repr(Variable(np.array([[1, 2, 3], [4, 5, 6]]))) == (
        'variable([[1 2 3]\n'
        '          [4 5 6]])')
    assert repr(Variable(np.arange(8).reshape(2, 2, 2))) == (
        'variable([[[0 1]\n'
        '           [2 3]]\n'
        '         \n'
        '          [[4 5]\n'
        '           [6 7]]])')


def test_properties():
    x = Variable(np.zeros((2, 3, 4), np.float32), name='x')
    assert x.name == 'x'
    assert len(x) == 2 and x.shape == (2, 3, 4) and x.ndim == 3 and x.size == 24
    assert x.dtype == np.float32
    assert x.grad is None and x.creator is None and x.generation == 0
    assert x.T.shape == (4, 3, 2)
    assert Variable(np.ones((2, 5))).T.shape == (5, 2)


def test_reshape_transpose_sum_methods():
    a = np.arange(24.0).reshape(2, 3, 4)
    x = Variable(a)
    assert x.reshape((6, 4)).shape == (6, 4)
    assert x.reshape(4, -1).shape == (4, 6)
    assert x.reshape([3, 8]).shape == (3, 8)
    np.testing.assert_array_equal(x.transpose().data, a.transpose())
    np.testing.assert_array_equal(x.transpose((1, 0, 2)).data, a.transpose(1, 0, 2))
    np.testing.assert_array_equal(x.transpose(2, 0, 1).data, a.transpose(2, 0, 1))
    np.testing.assert_array_equal(x.transpose(None).data, a.T)
    np.testing.assert_array_equal(x.sum().data, a.sum())
    np.testing.assert_array_equal(x.sum(axis=1).data, a.sum(axis=1))
    np.testing.assert_array_equal(x.sum(axis=(0, 2), keepdims=True).data, a.sum(axis=(0, 2), keepdims=True))
    y = (x.reshape(6, 4).T.transpose(1, 0) * x.reshape(6, 4)).sum()
    y.backward()
    np.testing.assert_array_equal(x.grad.data, 2 * a)


def test_operators_with_arrays_and_scalars_on_either_side():
    a = np.array([1.0, 2.0, 4.0])
    x = Variable(a)
    cases = [
        (np.array(2.0) * x, 2.0 * a),
        (np.array([1.0, 2.0, 3.0]) + x, a + [1.0, 2.0, 3.0]),
        (np.array([1.0, 2.0, 3.0]) - x, [1.0, 2.0, 3.0] - a),
        (np.array(8.0) / x, 8.0 / a),
        (x * np.array(2.0), 2.0 * a),
        (2.0 - x, 2.0 - a),
        (x - 2, a - 2),
        (3 + x, 3 + a),
        (1 / x, 1 / a),
        (x / 2, a / 2),
        (2 ** x, 2 ** a),
        (x ** 2, a ** 2),
        (np.float64(3.0) * x, 3.0 * a),
        (-x, -a),
        (x[1:], a[1:]),
    ]
    for y, expected in cases:
        assert type(y) is Variable
        np.testing.assert_allclose(y.data, expected, rtol=1e-15)


def test_in_place_array_update_with_a_variable_updates_the_array():
    # The book's steps 28-29 write ``x.data -= lr * x.grad`` with a Variable gradient.
    x = Variable(np.array([1.0, 2.0], np.float32))
    data = x.data
    (x * x).sum().backward()
    x.data -= 0.25 * x.grad
    assert x.data is data and type(x.data) is np.ndarray and x.data.dtype == np.float32
    np.testing.assert_array_equal(x.data, [0.5, 1.0])
    data *= Variable(np.array([2.0, 3.0]))
    np.testing.assert_array_equal(x.data, [1.0, 3.0])
    assert x.creator is None


def test_ndarray_on_the_left_records_the_op_and_comparisons_stay_identity():
    a = np.array([1.0, 2.0])
    x = Variable(np.array([3.0, 4.0]))
    y = np.array([2.0, 5.0]) - x
    assert type(y) is Variable and y.creator is not None
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.data, [-1.0, -1.0])
    assert type(np.negative(x)) is Variable
    assert (a == x) is False and (x == a) is False and (a != x) is True
    assert x not in [a] and [a, x].index(x) == 1
    with pytest.raises(TypeError):
        np.exp(x)
    with pytest.raises(TypeError):
        a < x  # noqa: B015


def test_operator_gradients_with_constants():
    x = scalar(3.0)
    cases = [(lambda v: 2.0 - v, -1.0), (lambda v: 1 / v, -1 / 9), (lambda v: 2 ** v, 8 * math.log(2)),
             (lambda v: np.array(2.0) * v, 2.0), (lambda v: v / 4, 0.25), (lambda v: -v, -1.0),
             (lambda v: np.array(6.0) / v, -6 / 9)]
    for f, expected in cases:
        x.cleargrad()
        f(x).backward()
        np.testing.assert_allclose(x.grad.data, expected, rtol=1e-15)


def test_variable_exponent():
    x, y = scalar(2.0), scalar(3.0)
    z = x ** y
    z.backward()
    assert z.data == 8.0
    np.testing.assert_allclose([x.grad.data, y.grad.data], [12.0, 8.0 * math.log(2.0)], rtol=1e-15)


def test_matmul_and_getitem_operators():
    a, w = rng.standard_normal((2, 3)), rng.standard_normal((3, 4))
    x, W = Variable(a), Variable(w)
    np.testing.assert_allclose((x @ W).data, a @ w, rtol=1e-14)
    np.testing.assert_allclose((a @ W).data, a @ w, rtol=1e-14)
    np.testing.assert_allclose((x @ w).data, a @ w, rtol=1e-14)
    assert type(a @ W) is Variable
    y = x[1:, 0]
    np.testing.assert_array_equal(y.data, a[1:, 0])
    y.backward()
    np.testing.assert_array_equal(x.grad.data, [[0, 0, 0], [1, 0, 0]])


@pytest.mark.parametrize('constant', [2.5, 2, np.float64(2.5), np.float32(2.5), np.array(2.5),
                                      np.array([1.0, 2.0]), np.array([1, 2])],
                         ids=['float', 'int', 'np.float64', 'np.float32', '0d-float64', 'float64-array',
                              'int-array'])
def test_float32_stays_float32_through_constant_ops(constant):
    x = Variable(np.array([1.0, 2.0], np.float32))
    for y in [x + constant, constant + x, x - constant, constant - x, x * constant, constant * x,
              x / constant, constant / x, x ** constant, constant ** x]:
        assert y.dtype == np.float32, y
        x.cleargrad()
        y.backward()
        assert x.grad.dtype == np.float32


def test_float32_variables_together_stay_float32():
    x = Variable(np.array([1.0, 2.0], np.float32))
    y = Variable(np.array([3.0, 0.5], np.float32))
    z = F.exp(x * y / (x + y) - y) ** y
    z.backward()
    assert z.dtype == x.grad.dtype == y.grad.dtype == np.float32


def test_parameter_is_a_variable():
    p = Parameter(np.ones(3))
    assert isinstance(p, Variable) and isinstance(p, Parameter)
    y = (p * p).sum()
    assert type(y) is Variable
    y.backward()
    np.testing.assert_array_equal(p.grad.data, [2.0, 2.0, 2.0])


def test_as_array_and_as_variable():
    a = np.ones(3)
    assert as_array(a) is a
    s = as_array(2.5)
    assert isinstance(s, np.ndarray) and s.ndim == 0 and s == 2.5
    assert isinstance(as_array(np.float32(1)), np.ndarray)
    x = Variable(a)
    assert as_variable(x) is x
    v = as_variable(a)
    assert isinstance(v, Variable) and v.data is a
    assert as_variable(3.0).data.ndim == 0


def test_setup_variable_is_harmless():
    setup_variable()
    setup_variable()
    x = scalar(2.0)
    y = 3 * x + x * x
    y.backward()
    assert x.grad.data == 7.0


def test_numpy_scalar_results_become_0d_arrays():
    x = Variable(np.array([1.0, 2.0]))
    y = x.sum()
    assert isinstance(y.data, np.ndarray) and y.data.ndim == 0
    z = scalar(2.0) * scalar(3.0)
    assert isinstance(z.data, np.ndarray) and z.data == 6.0


def test_top_level_exports():
    for name in ['Variable', 'Parameter', 'Function', 'Config', 'using_config', 'no_grad', 'test_mode',
                 'as_array', 'as_variable', 'setup_variable', '__version__']:
        assert hasattr(dezero, name), name
    assert dezero.functions is F


# =============================================================================
# Bad input: each error names the op and what it received
# =============================================================================
@pytest.mark.parametrize('value,type_name', [(3.0, 'float'), ('a', 'str'), ([1, 2], 'list'), (1, 'int')])
def test_variable_rejects_non_arrays(value, type_name):
    with pytest.raises(TypeError, match=rf'Variable.*\b{type_name}\b'):
        Variable(value)


def test_add_shape_mismatch_names_op_and_shapes():
    with pytest.raises(ValueError, match=r'add.*\(2, 3\).*\(4, 5\)'):
        Variable(np.ones((2, 3))) + Variable(np.ones((4, 5)))
    with pytest.raises(ValueError, match=r'add.*\(2, 3\).*\(4, 5\)'):
        Variable(np.ones((2, 3))) + np.ones((4, 5))


@pytest.mark.parametrize('name,op', BINARY[1:], ids=[c[0] for c in BINARY[1:]])
def test_other_binary_shape_mismatches_name_op_and_shapes(name, op):
    with pytest.raises(ValueError, match=rf'{name}.*\(2, 3\).*\(4, 5\)'):
        op(Variable(np.ones((2, 3))), Variable(np.ones((4, 5))))


def test_matmul_shape_mismatch_names_op_and_shapes():
    with pytest.raises(ValueError, match=r'matmul.*\(2, 3\).*\(4, 5\)'):
        Variable(np.ones((2, 3))) @ Variable(np.ones((4, 5)))


def test_unsupported_operand_type_is_named():
    with pytest.raises(TypeError, match='str'):
        Variable(np.ones(2)) * 'a'


def test_gradient_check_rejects_non_variable_results():
    with pytest.raises(TypeError, match=r'gradient_check.*ndarray'):
        gradient_check(lambda x: x.data * 2, np.ones(3))


def test_backward_restores_enable_backprop_after_error():
    class Broken(Function):
        def forward(self, x):
            return x * 2

        def backward(self, gy):
            raise RuntimeError('broken backward')

    y = Broken()(scalar(1.0))
    with pytest.raises(RuntimeError, match='broken backward'):
        y.backward(create_graph=False)
    assert Config.enable_backprop is True


def test_subtracting_a_constant_of_the_wrong_shape_is_reported_as_sub():
    x = Variable(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r'sub: operands of shapes \(2, 3\) and \(4, 5\)'):
        x - np.ones((4, 5))
    with pytest.raises(ValueError, match=r'add: operands of shapes \(2, 3\) and \(4, 5\)'):
        x + np.ones((4, 5))
