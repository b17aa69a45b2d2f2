"""dezero.utils: gradient checking, array comparisons, shape helpers and Graphviz output."""
import os

import numpy as np
import pytest
import torch

import dezero.functions as F
import dezero.utils
from dezero import Function, Variable, as_variable
from dezero.utils import (
    array_allclose,
    array_equal,
    get_conv_outsize,
    get_deconv_outsize,
    get_dot_graph,
    gradient_check,
    logsumexp,
    max_backward_shape,
    numerical_grad,
    pair,
    plot_dot_graph,
    reshape_sum_backward,
    show_progress,
    sum_to,
)

PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
rng = np.random.default_rng(0)


class WrongSquare(Function):
    """x ** 2 with a deliberately wrong backward (missing the factor 2)."""

    def forward(self, x):
        return x ** 2

    def backward(self, gy):
        return gy * self.inputs[0]


# =============================================================================
# Gradient checking
# =============================================================================
def test_numerical_grad_matches_analytic():
    x = rng.uniform(0.5, 2.0, (2, 3))
    np.testing.assert_allclose(numerical_grad(F.sin, x), np.cos(x), rtol=1e-7)
    np.testing.assert_allclose(numerical_grad(F.exp, Variable(x)), np.exp(x), rtol=1e-7)


def test_numerical_grad_passes_args_and_kwargs_and_restores_input():
    x = np.array([1.0, 2.0, 3.0])
    before = x.copy()

    def scaled_power(a, scale, power=2):
        return as_variable(a) ** power * scale

    grad = numerical_grad(scaled_power, x, 3.0, power=3)
    np.testing.assert_allclose(grad, 9.0 * before ** 2, rtol=1e-7)
    np.testing.assert_array_equal(x, before)


def test_numerical_grad_of_integer_input_is_float():
    grad = numerical_grad(lambda a: as_variable(a) * as_variable(a), np.array([1, 2, 3]))
    assert grad.dtype == np.float64
    np.testing.assert_allclose(grad, [2.0, 4.0, 6.0], rtol=1e-7)


def test_numerical_grad_accepts_functions_returning_arrays():
    np.testing.assert_allclose(numerical_grad(lambda a: a ** 2, np.array([3.0])), [6.0], rtol=1e-7)
    assert gradient_check(lambda a: a ** 2, np.array([3.0, -1.0]))


@pytest.mark.parametrize('f', [F.sin, F.tanh, lambda x: F.sum(F.exp(x), axis=0), lambda x: F.reshape(x, (6,)),
                               lambda x: F.matmul(x, np.arange(12.0).reshape(3, 4))])
def test_gradient_check_accepts_correct_ops(f):
    assert gradient_check(f, rng.standard_normal((2, 3)))


def test_gradient_check_passes_extra_arguments():
    assert gradient_check(F.sum, rng.standard_normal((2, 3)), 1, keepdims=True)
    assert gradient_check(F.matmul, rng.standard_normal((2, 3)), rng.standard_normal((3, 2)))


def test_gradient_check_rejects_a_wrong_backward_and_says_why(capsys):
    x = np.array([1.0, 2.0, 3.0])
    assert gradient_check(lambda a: WrongSquare()(a), x) is False
    out = capsys.readouterr().out
    assert 'differ' in out and '(3,)' in out
    assert gradient_check(lambda a: as_variable(a) ** 2, x) is True


def test_gradient_check_reports_a_missing_gradient(capsys):
    class NoGrad(Function):
        def forward(self, x):
            return x * 2

        def backward(self, gy):
            return None

    assert gradient_check(lambda a: NoGrad()(a), np.ones(2)) is False
    assert 'no gradient' in capsys.readouterr().out


def test_gradient_check_works_in_float64_for_float32_input():
    x = rng.standard_normal((3,)).astype(np.float32)
    assert gradient_check(F.tanh, x)
    assert x.dtype == np.float32


def test_gradient_check_rejects_non_variable_results():
    with pytest.raises(TypeError, match=r'gradient_check.*list.*Variable'):
        gradient_check(lambda a: [1.0], np.ones(3))


# =============================================================================
# Array comparisons
# =============================================================================
def test_array_equal():
    a = np.array([1.0, 2.0])
    assert array_equal(a, a.copy())
    assert array_equal(Variable(a), a)
    assert array_equal(a, Variable(a.copy()))
    assert not array_equal(a, np.array([1.0, 2.5]))
    assert not array_equal(a, np.array([[1.0, 2.0]]))


def test_array_allclose():
    a = np.array([1.0, 2.0])
    assert array_allclose(a, a + 1e-7)
    assert array_allclose(Variable(a), Variable(a + 1e-7))
    assert not array_allclose(a, a + 1e-3)
    assert array_allclose(a, a + 1e-3, atol=1e-2)
    assert array_allclose(a, a * 1.001, rtol=1e-2)
    # Exactly np.allclose: shapes broadcast, so a (1,) result equals a scalar (the book's tests rely
    # on it), and shapes that cannot broadcast are not close.
    assert array_allclose(a, np.array([[1.0, 2.0]]))
    assert array_allclose(Variable(np.array([3.0])), 3.0)
    assert array_allclose([1.0, 2.0], a)
    with pytest.raises(ValueError, match=r'array_allclose: shapes \(2,\) and \(3,\) cannot be broadcast'):
        array_allclose(a, np.ones(3))
    assert array_equal(Variable(np.array(3.0)), 3.0)
    assert not array_equal(np.array([3.0]), 3.0)  # np.array_equal compares shapes


def test_show_progress_is_the_books_urlretrieve_hook(capsys):
    show_progress(0, 1024, 6144)
    show_progress(1, 1024, 6144)
    show_progress(7, 1024, 6144)  # the last block overshoots the size: capped at 100%
    show_progress(3, 1024, -1)  # urlretrieve passes -1 when the server sends no size
    out = capsys.readouterr().out
    assert out == ('\r[' + '.' * 30 + '] 0.00%'
                   '\r[' + '#' * 5 + '.' * 25 + '] 16.67%'
                   '\r[' + '#' * 30 + '] 100.00%'
                   '\r3072 bytes')


# =============================================================================
# Shape arithmetic
# =============================================================================
@pytest.mark.parametrize('in_shape,shape', [((2, 3, 4), (3, 1)), ((2, 3), (3,)), ((2, 3), ()),
                                            ((2, 3), (1, 1)), ((2, 3), (2, 3)), ((4, 1, 3), (1, 1, 3))])
def test_sum_to_undoes_broadcasting(in_shape, shape):
    x = rng.standard_normal(in_shape)
    y = sum_to(x, shape)
    assert y.shape == shape
    expected = torch.from_numpy(x)
    lead = x.ndim - len(shape)
    dims = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape)
                                      if n == 1 and x.shape[lead + i] != 1)
    if dims:
        expected = expected.sum(dim=dims, keepdim=True)
    np.testing.assert_allclose(y, expected.reshape(shape).numpy(), rtol=1e-12)


@pytest.mark.parametrize('x_shape,axis,keepdims,expected', [
    ((2, 3, 4), 1, False, (2, 1, 4)),
    ((2, 3, 4), -1, False, (2, 3, 1)),
    ((2, 3, 4), (0, 2), False, (1, 3, 1)),
    ((2, 3, 4), (0, -1), False, (1, 3, 1)),
    ((2, 3, 4), None, False, (1, 1, 1)),
    ((2, 3, 4), 1, True, (2, 1, 4)),
    ((2, 3, 4), None, True, (1, 1, 1)),
    ((5,), 0, False, (1,)),
    ((), None, False, ()),
])
def test_reshape_sum_backward(x_shape, axis, keepdims, expected):
    x = rng.standard_normal(x_shape)
    gy = np.asarray(x.sum(axis=axis, keepdims=keepdims))
    g = reshape_sum_backward(gy, x_shape, axis, keepdims)
    assert g.shape == expected
    np.testing.assert_array_equal(np.broadcast_to(g, x_shape),
                                  np.broadcast_to(x.sum(axis=axis, keepdims=True), x_shape))
    gv = reshape_sum_backward(Variable(gy), x_shape, axis, keepdims)  # Variables too, as in Sum.backward
    assert isinstance(gv, Variable) and gv.shape == expected


@pytest.mark.parametrize('axis,expected', [(None, [1, 1, 1]), (0, [1, 3, 4]), (-1, [2, 3, 1]),
                                           ((0, 2), [1, 3, 1]), ((1, -1), [2, 1, 1])])
def test_max_backward_shape(axis, expected):
    x = np.zeros((2, 3, 4))
    assert list(max_backward_shape(x, axis)) == expected
    assert np.broadcast_to(x.max(axis=axis, keepdims=True), x.shape).shape == x.shape


@pytest.mark.parametrize('axis', [0, 1, -1])
@pytest.mark.parametrize('scale', [1.0, 1000.0])
def test_logsumexp_matches_torch(axis, scale):
    x = rng.standard_normal((3, 4, 5)) * scale
    got = logsumexp(x, axis=axis)
    expected = torch.logsumexp(torch.from_numpy(x), dim=axis, keepdim=True).numpy()
    assert got.shape == expected.shape
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_logsumexp_default_axis_is_1():
    x = np.array([[0.0, np.log(3.0)], [1.0, 1.0]])
    np.testing.assert_allclose(logsumexp(x), [[np.log(4.0)], [1.0 + np.log(2.0)]], rtol=1e-14)


def test_pair():
    assert pair(3) == (3, 3)
    assert pair(np.int64(2)) == (2, 2)
    assert pair((2, 5)) == (2, 5)
    for bad in [(1, 2, 3), 'ab', 1.5]:
        with pytest.raises(ValueError, match='pair'):
            pair(bad)


@pytest.mark.parametrize('size,k,s,p', [(28, 3, 1, 0), (28, 3, 1, 1), (7, 2, 2, 0), (32, 5, 2, 2),
                                        (4, 4, 1, 0), (5, 3, 2, 1)])
def test_conv_and_deconv_outsize(size, k, s, p):
    out = get_conv_outsize(size, k, s, p)
    expected = torch.nn.functional.conv2d(torch.zeros(1, 1, size, size), torch.zeros(1, 1, k, k),
                                          stride=s, padding=p).shape[-1]
    assert out == expected
    deconv = get_deconv_outsize(out, k, s, p)
    expected_deconv = torch.nn.functional.conv_transpose2d(
        torch.zeros(1, 1, out, out), torch.zeros(1, 1, k, k), stride=s, padding=p).shape[-1]
    assert deconv == expected_deconv


# =============================================================================
# Graph visualisation
# =============================================================================
def _small_graph():
    x0 = Variable(np.ones((2, 3)), name='x0')
    x1 = Variable(np.ones((2, 3), np.float32), name='x1')
    y = F.sin(x0 * x1) + x0
    y.name = 'y'
    return y


def test_get_dot_graph_text():
    text = get_dot_graph(_small_graph())
    assert text.startswith('digraph g {') and text.rstrip().endswith('}')
    for expected in ['x0: (2, 3) float64', 'x1: (2, 3) float32', 'y: (2, 3) float64', 'Mul', 'Sin', 'Add',
                     'color=orange', 'shape=box']:
        assert expected in text, expected
    assert text.count('shape=box') == 3  # each function once, although x0 is used twice
    assert text.count('->') == 8  # Mul: 2 in + 1 out; Sin: 1 + 1; Add: 2 + 1


def test_get_dot_graph_not_verbose_shows_names_only():
    text = get_dot_graph(_small_graph(), verbose=False)
    assert 'label="x0"' in text and 'label="y"' in text
    assert '(2, 3)' not in text and 'float' not in text


def test_get_dot_graph_of_a_deep_chain():
    x = Variable(np.array(1.0))
    y = x
    for _ in range(5000):
        y = -y
    assert get_dot_graph(y).count('label="Neg"') == 5000


def test_plot_dot_graph_writes_png(tmp_path):
    path = tmp_path / 'graph.png'
    plot_dot_graph(_small_graph(), verbose=True, to_file=str(path))
    assert path.read_bytes().startswith(PNG_SIGNATURE)
    assert [p.name for p in tmp_path.iterdir()] == ['graph.png']  # no temporary file left behind


def test_plot_dot_graph_format_follows_extension(tmp_path):
    path = tmp_path / 'graph.svg'
    plot_dot_graph(_small_graph(), to_file=str(path))
    assert b'<svg' in path.read_bytes()


def test_plot_dot_graph_without_graphviz(monkeypatch, tmp_path):
    monkeypatch.setattr(dezero.utils.shutil, 'which', lambda name: None)
    path = tmp_path / 'graph.png'
    with pytest.raises(RuntimeError, match='Graphviz'):
        plot_dot_graph(_small_graph(), to_file=str(path))
    assert not path.exists()


def test_plot_dot_graph_failure_leaves_no_file(monkeypatch, tmp_path):
    class Failed:
        returncode = 1
        stderr = 'syntax error'

    monkeypatch.setattr(dezero.utils.subprocess, 'run', lambda *args, **kwargs: Failed())
    with pytest.raises(RuntimeError, match='syntax error'):
        plot_dot_graph(_small_graph(), to_file=str(tmp_path / 'graph.png'))
    assert list(tmp_path.iterdir()) == []


def test_plot_dot_graph_file_gets_ordinary_permissions(tmp_path):
    old_umask = os.umask(0o022)
    try:
        path = tmp_path / 'graph.png'
        plot_dot_graph(F.sin(Variable(np.array(1.0))), to_file=str(path))
    finally:
        os.umask(old_umask)
    assert path.stat().st_mode & 0o777 == 0o644
