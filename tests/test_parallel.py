"""dezero._parallel: parallel regions, split GEMMs and chunked convolutions give the serial results."""
import numpy as np
import pytest

import dezero
import dezero.functions as F
from dezero import _parallel, _threads
from dezero.ops import conv as conv_module


@pytest.fixture
def many_threads(monkeypatch):
    """Four threads and thresholds of 1, so that small inputs take the parallel paths."""
    monkeypatch.setattr(_threads, '_num_threads', 4)
    monkeypatch.setattr(_parallel, '_GEMM_MIN_WORK', 1)
    monkeypatch.setattr(_parallel, '_SPLIT_MIN_SIZE', 1)
    monkeypatch.setattr(_parallel, '_BLOCKED_MIN_WORK', 1)


def test_run_parts_returns_every_part_in_order(many_threads):
    assert _parallel.run_parts(lambda part, parts: (part, parts), 4) == [(i, 4) for i in range(4)]
    assert _parallel.run_parts(lambda part, parts: part, 1) == [0]


def test_run_pieces_returns_every_piece_in_order_whoever_ran_it(many_threads):
    import threading
    import time
    ran_on = {}

    def piece(index):
        if index == 0:
            time.sleep(0.2)  # the first piece is slow: the other threads take the rest meanwhile
        ran_on[index] = threading.get_ident()
        return index * index

    assert _parallel.run_pieces(piece, 10, 4) == [i * i for i in range(10)]
    assert ran_on[0] not in {ran_on[i] for i in range(1, 10)}  # nobody waited behind piece 0
    assert _parallel.run_pieces(piece, 3, 1) == [0, 1, 4]
    assert _parallel.run_pieces(piece, 0, 4) == []


def test_an_error_in_a_piece_is_raised_after_the_others(many_threads):
    def piece(index):
        if index == 5:
            raise KeyError('piece 5')
        return index

    with pytest.raises(KeyError, match='piece 5'):
        _parallel.run_pieces(piece, 8, 4)
    assert _parallel.run_pieces(lambda index: -index, 3, 4) == [0, -1, -2]


@pytest.mark.parametrize('length,parts,align', [(10, 3, 1), (100, 4, 8), (5, 4, 16), (0, 2, 1)])
def test_part_bounds_cover_the_range_once(length, parts, align):
    bounds = [_parallel.part_bounds(length, i, parts, align) for i in range(parts)]
    assert bounds[0][0] == 0 and bounds[-1][1] == length
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    assert all(start % align == 0 or start == length for start, _ in bounds)


@pytest.mark.parametrize('a_shape,b_shape', [((37, 5), (5, 11)), ((6, 5), (5, 50)), ((3, 9, 4), (3, 4, 7)),
                                             ((2, 1, 3, 4), (5, 4, 2))])
def test_split_matmul_equals_numpy(many_threads, a_shape, b_shape):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(a_shape), rng.standard_normal(b_shape)
    np.testing.assert_allclose(_parallel.matmul(a, b), a @ b, rtol=1e-12)
    out = np.empty(np.broadcast_shapes(a_shape[:-2], b_shape[:-2]) + (a_shape[-2], b_shape[-1]))
    assert _parallel.matmul(a, b, out=out) is out
    np.testing.assert_allclose(out, a @ b, rtol=1e-12)


def test_apply_blocked_visits_every_block_once(many_threads, monkeypatch):
    monkeypatch.setattr(_parallel, '_BLOCK', 3)
    x = np.arange(20.0).reshape(4, 5)
    out = np.zeros_like(x)
    _parallel.apply_blocked(lambda x, out: np.add(out, x + 1, out=out), x, out)
    np.testing.assert_array_equal(out, x + 1)
    strided = np.zeros((4, 10))[:, ::2]  # not contiguous: one whole call, still correct
    _parallel.apply_blocked(lambda x, out: np.add(out, x, out=out), x, strided)
    np.testing.assert_array_equal(strided, x)


def test_split_apply_on_more_threads_than_rows(many_threads):
    x = np.arange(6.0).reshape(3, 2)
    out = np.empty_like(x)
    _parallel.split_apply(lambda x, out: np.negative(x, out=out), x, out)
    np.testing.assert_array_equal(out, -x)


@pytest.mark.parametrize('per_image_max_k', [0, 10 ** 6], ids=['wide', 'per-image'])
@pytest.mark.parametrize('chunk_bytes', [1, 10 ** 9], ids=['image-per-chunk', 'one-chunk-per-thread'])
def test_conv_family_on_four_threads_matches_one_thread(monkeypatch, chunk_bytes, per_image_max_k):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((7, 3, 8, 8))
    W = rng.standard_normal((5, 3, 3, 3))
    b = rng.standard_normal(5)

    def run():
        xs, Ws, bs = dezero.Variable(x), dezero.Parameter(W), dezero.Parameter(b)
        y = F.conv2d(xs, Ws, bs, stride=1, pad=1)
        z = F.deconv2d(y, Ws, None, stride=2, pad=1)
        (F.sum(y * y) + F.sum(z)).backward()
        return [y.data, z.data, xs.grad.data, Ws.grad.data, bs.grad.data]

    monkeypatch.setattr(conv_module, '_PER_IMAGE_MAX_K', per_image_max_k)
    monkeypatch.setattr(_threads, '_num_threads', 1)
    serial = run()
    monkeypatch.setattr(_threads, '_num_threads', 4)
    monkeypatch.setattr(conv_module, '_CHUNK_BYTES', chunk_bytes)
    for ours, expected in zip(run(), serial):
        np.testing.assert_allclose(ours, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize('threads', [1, 4])
def test_product_with_a_transposed_right_operand(monkeypatch, threads):
    """``gy @ W.T`` with a long inner axis goes through ``(W @ gy.T).T``; same values, C order."""
    monkeypatch.setattr(_threads, '_num_threads', threads)
    monkeypatch.setattr(_parallel, '_GEMM_MIN_WORK', 1)
    rng = np.random.default_rng(2)
    gy, W = rng.standard_normal((7, 600)), rng.standard_normal((50, 600))
    product = _parallel.matmul(gy, W.T)
    assert product.flags.c_contiguous
    np.testing.assert_allclose(product, gy @ W.T, rtol=1e-12)
    out = np.empty((7, 50))
    assert _parallel.matmul(gy, W.T, out=out) is out
    np.testing.assert_allclose(out, gy @ W.T, rtol=1e-12)


def test_an_error_in_any_part_is_raised_and_the_workers_stay_usable(many_threads):
    def body(part, parts):
        if part == 2:
            raise ValueError(f'part {part} failed')
        return part

    with pytest.raises(ValueError, match='part 2 failed'):
        _parallel.run_parts(body, 4)
    assert _parallel.run_parts(lambda part, parts: part * 10, 4) == [0, 10, 20, 30]
    assert not _parallel._region_lock.locked()
