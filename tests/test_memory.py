"""dezero._memory: the pool of large NumPy arrays' memory, reused only once every view has died."""
import copy
import gc
import pickle
import threading

import numpy as np
import pytest

import dezero.functions as F
from dezero import _memory

BIG = (512, 1024)  # 2 MiB of float32: pooled


def _address(a: np.ndarray) -> int:
    return a.__array_interface__['data'][0]


@pytest.fixture(autouse=True)
def empty_pool():
    _memory.release_idle()
    yield
    _memory.release_idle()


def test_large_arrays_come_from_the_pool_small_ones_do_not():
    a = _memory.empty(np, BIG, np.float32)
    assert a.shape == BIG and a.dtype == np.float32 and type(a) is np.ndarray
    assert a.flags.c_contiguous and a.flags.writeable and not a.flags.owndata
    small = _memory.empty(np, (10, 10), np.float32)
    assert small.flags.owndata
    assert _memory.empty(np, (300_000,), object).flags.owndata  # object arrays never pooled
    assert np.all(_memory.empty(np, (300_000,), object) == None)  # noqa: E711


def test_memory_is_reused_after_the_array_dies():
    a = _memory.empty(np, BIG, np.float32)
    where = _address(a)
    del a
    assert _memory.idle_bytes() == 4 * BIG[0] * BIG[1]
    b = _memory.empty(np, BIG[::-1], np.float32)  # same size, another shape
    assert _address(b) == where and b.shape == BIG[::-1]
    assert _memory.idle_bytes() == 0


@pytest.mark.parametrize('make_view', [
    lambda a: a[1:], lambda a: a.T, lambda a: a.reshape(-1), lambda a: np.asarray(a),
    lambda a: a.view(np.int32), lambda a: a[::2, ::3], lambda a: a.view(np.ma.MaskedArray),
    lambda a: memoryview(a),
], ids=['slice', 'T', 'reshape', 'asarray', 'dtype-view', 'strided', 'subclass', 'memoryview'])
def test_a_live_view_keeps_the_memory(make_view):
    expected = np.array(make_view(np.full(BIG, 7, np.float32)))
    a = _memory.empty(np, BIG, np.float32)
    a[...] = 7
    where = _address(a)
    view = make_view(a)
    del a
    gc.collect()
    assert _memory.idle_bytes() == 0
    other = _memory.empty(np, BIG, np.float32)  # may not get the viewed memory
    other[...] = -1
    assert _address(other) != where
    np.testing.assert_array_equal(np.asarray(view), expected)
    del view
    gc.collect()
    assert _memory.idle_bytes() == 4 * BIG[0] * BIG[1]


def test_zeros_is_zero_even_on_reused_memory():
    a = _memory.empty(np, BIG, np.float64)
    a[...] = np.nan
    del a
    z = _memory.zeros(np, BIG, np.float64)
    assert not z.flags.owndata and np.all(z == 0)
    assert _memory.zeros(np, (3,), np.float32).tolist() == [0, 0, 0]


def test_the_idle_memory_is_capped(monkeypatch):
    monkeypatch.setattr(_memory, '_MAX_IDLE_BYTES', 4 * BIG[0] * BIG[1])
    a, b = _memory.empty(np, BIG, np.float32), _memory.empty(np, BIG, np.float32)
    del a, b
    assert _memory.idle_bytes() == 4 * BIG[0] * BIG[1]  # the second block was freed


def test_arrays_in_a_reference_cycle_return_at_collection():
    holder = {'array': _memory.empty(np, BIG, np.float32)}
    holder['self'] = holder
    del holder
    gc.collect()
    assert _memory.idle_bytes() == 4 * BIG[0] * BIG[1]


def test_pooled_arrays_copy_and_pickle_as_ordinary_arrays():
    a = _memory.empty(np, BIG, np.float32)
    a[...] = np.arange(BIG[1], dtype=np.float32)
    for other in (pickle.loads(pickle.dumps(a)), copy.deepcopy(a), a.copy()):
        assert type(other) is np.ndarray
        np.testing.assert_array_equal(other, a)


def test_other_array_modules_are_passed_through():
    class FakeModule:
        @staticmethod
        def empty(shape, dtype):
            return ('empty', shape, dtype)

        @staticmethod
        def zeros(shape, dtype):
            return ('zeros', shape, dtype)

    assert _memory.empty(FakeModule, BIG, np.float32) == ('empty', BIG, np.float32)
    assert _memory.zeros(FakeModule, BIG, np.float32) == ('zeros', BIG, np.float32)


def test_threads_lending_and_returning_at_once_keep_the_books():
    errors = []

    def churn(seed: int) -> None:
        rng = np.random.default_rng(seed)
        try:
            for _ in range(200):
                size = int(rng.integers(1, 4)) * (1 << 18)
                a = _memory.empty(np, (size,), np.float32)
                a[...] = seed
                if not np.all(a == seed):
                    errors.append('overwritten')
        except Exception as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=churn, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert _memory.idle_bytes() == sum(len(b) for blocks in _memory._pool.idle.values() for b in blocks)
    assert _memory._pool.lent == {}


def test_release_idle_frees_the_waiting_blocks():
    _memory.empty(np, BIG, np.float32)  # dies at once
    assert _memory.idle_bytes() > 0
    _memory.release_idle()
    assert _memory.idle_bytes() == 0


def test_kernels_reuse_the_memory_of_dead_outputs():
    x = np.random.default_rng(0).standard_normal((64, 64, 24, 24)).astype(np.float32)
    y = F.relu(x).data
    where = _address(y)
    expected = np.maximum(x, 0)
    np.testing.assert_array_equal(y, expected)
    del y
    again = F.relu(x).data
    assert _address(again) == where
    np.testing.assert_array_equal(again, expected)
    assert not F.pooling(x, 2, 2).data.flags.owndata  # max pooling's output is pooled too
