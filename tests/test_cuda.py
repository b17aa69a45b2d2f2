"""dezero.cuda: array-module dispatch on the CPU, the error without CuPy, and GPU round trips with it."""
import importlib.util

import numpy as np
import pytest

import dezero.functions as F
from dezero import Variable, cuda

HAS_CUPY = importlib.util.find_spec('cupy') is not None
needs_gpu = pytest.mark.skipif(not cuda.gpu_enable, reason='CuPy is not installed (no GPU support here)')


@pytest.mark.parametrize('x', [np.ones((2, 3)), np.array(1.5), Variable(np.ones(2)), Variable(None), 3.0, 2,
                               np.float32(1.0)],
                         ids=['array', '0d-array', 'variable', 'empty-variable', 'float', 'int', 'np-scalar'])
def test_get_array_module_is_numpy_for_cpu_data(x):
    assert cuda.get_array_module(x) is np


def test_as_numpy():
    a = np.arange(3.0)
    assert cuda.as_numpy(a) is a
    assert cuda.as_numpy(Variable(a)) is a
    s = cuda.as_numpy(2.5)
    assert isinstance(s, np.ndarray) and s.ndim == 0 and s == 2.5
    assert isinstance(cuda.as_numpy(np.float32(1.0)), np.ndarray)


@pytest.mark.skipif(HAS_CUPY, reason='CuPy is importable here, so as_cupy does not fail')
def test_as_cupy_without_cupy_names_the_gpu_extra():
    assert cuda.gpu_enable is False
    for x in [np.ones(2), Variable(np.ones(2)), 1.0]:
        with pytest.raises(RuntimeError, match=r"CuPy.*'gpu' extra"):
            cuda.as_cupy(x)


@pytest.mark.skipif(HAS_CUPY, reason='CuPy is importable here, so to_gpu succeeds')
def test_variable_to_gpu_without_cupy_fails_clearly_and_keeps_data():
    x = Variable(np.ones(2))
    with pytest.raises(RuntimeError, match='gpu'):
        x.to_gpu()
    assert isinstance(x.data, np.ndarray)
    x.to_cpu()  # already there: a no-op
    assert isinstance(x.data, np.ndarray)


def test_scatter_add_accumulates_repeated_indices_on_cpu():
    target = np.zeros(4)
    cuda.scatter_add(target, np.array([0, 0, 3]), np.array([1.0, 2.0, 5.0]))
    np.testing.assert_array_equal(target, [3.0, 0.0, 0.0, 5.0])


@needs_gpu
def test_variable_to_gpu_round_trip():
    import cupy
    a = np.arange(6.0).reshape(2, 3)
    x = Variable(a.copy())
    x.to_gpu()
    assert isinstance(x.data, cupy.ndarray)
    assert cuda.get_array_module(x) is cupy
    x.to_cpu()
    assert isinstance(x.data, np.ndarray)
    np.testing.assert_array_equal(x.data, a)


@needs_gpu
def test_backward_on_gpu_matches_cpu():
    import cupy
    a = np.random.default_rng(0).standard_normal((3, 4))
    w = np.random.default_rng(1).standard_normal((4, 2))
    grads = []
    for on_gpu in (False, True):
        x, W = Variable(a.copy()), Variable(w.copy())
        if on_gpu:
            x.to_gpu()
            W.to_gpu()
        y = F.sum(F.tanh(x @ W) * 2.0) + x[1:].sum()
        y.backward()
        assert isinstance(x.grad.data, cupy.ndarray if on_gpu else np.ndarray)
        grads.append((cuda.as_numpy(x.grad.data), cuda.as_numpy(W.grad.data)))
    for cpu, gpu in zip(*grads):
        np.testing.assert_allclose(gpu, cpu, rtol=1e-10)
