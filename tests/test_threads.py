"""dezero._threads: the thread count (DEZERO_NUM_THREADS, set_num_threads) and BLAS kept to one thread
inside dezero's calls, restored outside them."""
import os
import subprocess
import sys

import numpy as np
import pytest
import threadpoolctl

import dezero
from dezero import _parallel, _threads


def _blas_threads():
    return [p['num_threads'] for p in threadpoolctl.threadpool_info() if p['user_api'] == 'blas']


def _run_python(code, **env):
    done = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          env={**os.environ, 'PYTHONPATH': os.getcwd(), **env})
    return done.returncode, done.stdout.strip(), done.stderr


@pytest.fixture
def restore_threads():
    count, blas = dezero.get_num_threads(), _blas_threads()
    yield
    _threads._num_threads = count
    threadpoolctl.threadpool_limits(blas[0], user_api='blas')


def test_default_is_the_usable_cores_and_the_environment_variable_sets_it():
    code = 'import dezero; print(dezero.get_num_threads())'
    assert _run_python(code, DEZERO_NUM_THREADS='')[1] == str(len(os.sched_getaffinity(0)))
    assert _run_python(code, DEZERO_NUM_THREADS='3')[1] == '3'
    rc, _, err = _run_python(code, DEZERO_NUM_THREADS='zero')
    assert rc != 0 and "DEZERO_NUM_THREADS must be a positive integer, got 'zero'" in err


def test_import_does_not_load_threadpoolctl():
    assert _run_python('import sys, dezero; print("threadpoolctl" in sys.modules)')[1] == 'False'


def test_set_num_threads_is_honoured_and_sets_the_process_blas_count(restore_threads):
    dezero.set_num_threads(3)
    assert dezero.get_num_threads() == 3
    assert _blas_threads() == [3] * len(_blas_threads())  # like torch.set_num_threads
    for bad in (0, -1, 2.0, True, '2'):
        with pytest.raises(ValueError, match=r'dezero.set_num_threads: n must be a positive int, got'):
            dezero.set_num_threads(bad)


def test_blas_is_one_thread_inside_dezero_calls_and_restored_outside(restore_threads):
    threadpoolctl.threadpool_limits(2, user_api='blas')
    seen = []
    _parallel.run_parts(lambda part, parts: seen.append(_blas_threads()), 2)
    assert seen == [[1] * len(_blas_threads())] * 2
    assert _blas_threads() == [2] * len(seen[0])
    # re-entrant: an inner region leaves the limit to the outer one
    with _threads.single_threaded_blas:
        with _threads.single_threaded_blas:
            assert set(_blas_threads()) == {1}
        assert set(_blas_threads()) == {1}
    assert set(_blas_threads()) == {2}
    # a dezero GEMM leaves the user's NumPy its threads
    dezero.functions.matmul(np.ones((300, 300), np.float32), np.ones((300, 300), np.float32))
    assert set(_blas_threads()) == {2}


def test_never_more_busy_threads_than_the_count(monkeypatch, restore_threads):
    """A region of n parts runs on n distinct threads (the caller and n - 1 pool workers), each with
    BLAS on one thread, and a region inside it runs inline: at most n busy threads in all."""
    import threading
    dezero.set_num_threads(3)
    threadpoolctl.threadpool_limits(3, user_api='blas')
    parts = _parallel.available_threads()
    assert parts == 3
    workers = []
    together = threading.Barrier(3, timeout=10)  # the three parts must run at the same time

    def body(part, parts):
        together.wait()
        inner = _parallel.run_parts(lambda p, n: threading.get_ident(), _parallel.available_threads())
        workers.append((threading.get_ident(), inner, _blas_threads()))

    _parallel.run_parts(body, parts)
    assert len({ident for ident, _, _ in workers}) == 3
    assert all(inner == [ident] for ident, inner, _ in workers)  # nested: inline, same thread
    assert all(set(blas) == {1} for _, _, blas in workers)
    assert len(_parallel._workers.inboxes) == 2
    dezero.set_num_threads(1)
    assert _parallel.available_threads() == 1


def test_without_threadpoolctl_dezero_works_on_the_calling_thread(monkeypatch):
    monkeypatch.setitem(sys.modules, 'threadpoolctl', None)  # import fails
    monkeypatch.setattr(_threads, '_controls', None)
    assert not _threads.blas_controllable()
    assert _parallel.available_threads() == 1
    a = np.arange(12.0).reshape(3, 4)
    np.testing.assert_array_equal(_parallel.matmul(a, a.T), a @ a.T)
    x = dezero.Variable(np.random.default_rng(0).standard_normal((2, 3, 6, 6)))
    W = np.random.default_rng(1).standard_normal((4, 3, 3, 3))
    y = dezero.functions.conv2d(x, W)
    y.backward()
    assert y.shape == (2, 4, 4, 4) and x.grad.shape == x.shape
    monkeypatch.setattr(_threads, '_controls', None)  # found again once threadpoolctl is back
