"""dezero.dataloaders: epochs, StopIteration and reshuffle, fresh iterators, batch contents (the
vectorised path equals the per-sample path), SeqDataLoader offsets, and errors."""
import math
import os

import numpy as np
import pytest

from dezero import cuda
from dezero import datasets as D
from dezero import transforms as T
from dezero.dataloaders import DataLoader, SeqDataLoader

FASHION_DIR = '/usr/share/datasets/fashion-mnist'


class Numbers(D.Dataset):
    """data[i] = (i, -i) float32, label[i] = i: every batch shows which samples it holds."""

    def __init__(self, n=23, **kwargs):
        self.n = n
        super().__init__(**kwargs)

    def prepare(self):
        self.data = np.stack([np.arange(self.n), -np.arange(self.n)], axis=1).astype(np.float32)
        self.label = np.arange(self.n)


def epoch(loader):
    return [(x.copy(), None if t is None else t.copy()) for x, t in loader]


@pytest.mark.parametrize('n,batch_size', [(23, 5), (20, 5), (3, 10), (1, 1)])
def test_epoch_covers_every_sample_once(n, batch_size):
    loader = DataLoader(Numbers(n), batch_size)
    assert loader.max_iter == len(loader) == math.ceil(n / batch_size)
    batches = epoch(loader)
    assert len(batches) == loader.max_iter
    sizes = [batch_size] * (n // batch_size) + ([n % batch_size] if n % batch_size else [])
    assert [len(t) for _, t in batches] == sizes
    labels = np.concatenate([t for _, t in batches])
    assert sorted(labels.tolist()) == list(range(n))
    for x, t in batches:
        np.testing.assert_array_equal(x[:, 0], t)
        np.testing.assert_array_equal(x[:, 1], -t)
        assert x.dtype == np.float32


def test_stop_iteration_then_reset_and_reshuffle():
    np.random.seed(0)
    loader = DataLoader(Numbers(12), 4)
    first = [loader.next()[1] for _ in range(3)]
    with pytest.raises(StopIteration):
        next(loader)
    assert loader.iteration == 0  # reset by the StopIteration
    second = [next(loader)[1] for _ in range(3)]
    order1, order2 = np.concatenate(first), np.concatenate(second)
    assert sorted(order1.tolist()) == sorted(order2.tolist()) == list(range(12))
    assert not np.array_equal(order1, order2)


def test_shuffle_follows_np_random_seed():
    np.random.seed(5)
    a = np.concatenate([t for _, t in DataLoader(Numbers(), 4)])
    np.random.seed(5)
    b = np.concatenate([t for _, t in DataLoader(Numbers(), 4)])
    np.testing.assert_array_equal(a, b)


def test_no_shuffle_keeps_order():
    loader = DataLoader(Numbers(10), 4, shuffle=False)
    for _ in range(2):
        assert [t.tolist() for _, t in loader] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_repeated_for_loops_are_full_epochs():
    loader = DataLoader(Numbers(10), 3)
    for _ in range(3):
        assert sum(len(t) for _, t in loader) == 10


def test_for_loop_after_break_starts_a_fresh_epoch():
    loader = DataLoader(Numbers(10), 3, shuffle=False)
    for _ in loader:
        break
    assert loader.iteration == 1
    assert [t.tolist() for _, t in loader][0] == [0, 1, 2]
    x, t = next(loader)  # next() alone continues where the epoch is
    next(loader)
    assert iter(loader) is loader and loader.iteration == 0


def test_fast_path_equals_per_sample_path():
    rng = np.random.default_rng(0)

    class Images(D.Dataset):
        def prepare(self):
            self.data = rng.integers(0, 256, (57, 1, 28, 28), dtype=np.uint8)
            self.label = rng.integers(0, 10, 57).astype(np.uint8)

    transform = T.Compose([T.Flatten(), T.ToFloat(), T.Normalize(0., 255.)])
    fast = Images(transform=transform)
    slow = Images(transform=lambda x: transform(x), target_transform=lambda t: t)
    slow.data, slow.label = fast.data, fast.label
    np.random.seed(3)
    fast_batches = epoch(DataLoader(fast, 10))
    np.random.seed(3)
    slow_batches = epoch(DataLoader(slow, 10))
    np.random.seed(3)
    pairs = [(transform(fast.data[i]), fast.label[i]) for i in range(57)]
    plain_batches = epoch(DataLoader(pairs, 10))  # a list: per-sample indexing only
    for (xf, tf), (xs, ts), (xp, tp) in zip(fast_batches, slow_batches, plain_batches):
        assert xf.shape[1:] == (784,) and xf.dtype == xs.dtype == xp.dtype == np.float32
        assert tf.dtype == ts.dtype == tp.dtype == np.uint8
        np.testing.assert_array_equal(xf, xs)
        np.testing.assert_array_equal(xf, xp)
        np.testing.assert_array_equal(tf, ts)
        np.testing.assert_array_equal(tf, tp)


def test_unlabelled_batches_have_none():
    class Unlabelled(D.Dataset):
        def prepare(self):
            self.data = np.arange(7.0)

    batches = epoch(DataLoader(Unlabelled(), 3, shuffle=False))
    assert [t for _, t in batches] == [None] * 3
    np.testing.assert_array_equal(batches[2][0], [6.0])


def test_spiral_like_the_book():
    loader = DataLoader(D.Spiral(), batch_size=30)
    x, t = next(loader)
    assert x.shape == (30, 2) and x.dtype == np.float32 and t.shape == (30,) and t.dtype == np.int32


@pytest.mark.parametrize('batch_size', [0, -1, 2.5, True, '4'])
def test_bad_batch_size(batch_size):
    with pytest.raises(ValueError, match=r'DataLoader: batch_size must be a positive int, got'):
        DataLoader(Numbers(), batch_size)


def test_dataset_without_len():
    with pytest.raises(TypeError, match='DataLoader: the dataset must support len.. and indexing, got int'):
        DataLoader(5, 2)


@pytest.mark.skipif(cuda.gpu_enable, reason='checks the error raised without CuPy')
def test_to_gpu_without_cupy():
    loader = DataLoader(Numbers(), 4)
    with pytest.raises(RuntimeError, match=r"DataLoader.to_gpu: CuPy is not installed.*'gpu' extra"):
        loader.to_gpu()
    with pytest.raises(RuntimeError, match='CuPy is not installed'):
        SeqDataLoader(Numbers(), 4, gpu=True)
    loader.to_cpu()
    assert isinstance(next(loader)[0], np.ndarray)


@pytest.mark.skipif(not cuda.gpu_enable, reason='needs CuPy and a GPU')
def test_to_gpu_gives_cupy_batches():
    import cupy
    loader = DataLoader(Numbers(), 4, shuffle=False, gpu=True)
    x, t = next(loader)
    assert isinstance(x, cupy.ndarray) and isinstance(t, cupy.ndarray)
    np.testing.assert_array_equal(cupy.asnumpy(t), [0, 1, 2, 3])
    loader.to_cpu()
    assert isinstance(next(loader)[0], np.ndarray)


# =============================================================================
# SeqDataLoader
# =============================================================================
def test_seq_loader_offsets():
    loader = SeqDataLoader(Numbers(23), batch_size=4)  # jump = 5, samples 20..22 unused
    assert loader.max_iter == 5
    batches = epoch(loader)
    assert len(batches) == 5
    for i, (x, t) in enumerate(batches):
        assert t.tolist() == [i, 5 + i, 10 + i, 15 + i]
        np.testing.assert_array_equal(x[:, 0], t)
    assert epoch(loader)[0][1].tolist() == [0, 5, 10, 15]  # next epoch: same order, no shuffle


def test_seq_loader_on_sin_curve_like_the_book():
    ds = D.SinCurve(train=False)
    loader = SeqDataLoader(ds, batch_size=3)
    jump = 999 // 3
    assert loader.max_iter == jump
    x, t = next(loader)
    assert x.shape == t.shape == (3, 1) and x.dtype == np.float32
    np.testing.assert_array_equal(x[:, 0], ds.data[[0, jump, 2 * jump], 0])
    x, t = next(loader)
    np.testing.assert_array_equal(t[:, 0], ds.label[[1, jump + 1, 2 * jump + 1], 0])


def test_seq_loader_batch_larger_than_data():
    # One stream per batch row: more rows than samples would give no batch at all, silently.
    with pytest.raises(ValueError, match=r'SeqDataLoader: batch_size 4 is larger than the dataset'):
        SeqDataLoader(Numbers(3), batch_size=4)
    assert SeqDataLoader(Numbers(3), batch_size=3).max_iter == 1


# =============================================================================
# Real data: the vectorised path over Fashion-MNIST
# =============================================================================
@pytest.mark.skipif(not os.path.isdir(FASHION_DIR), reason=f'Fashion-MNIST not installed in {FASHION_DIR}')
def test_fashion_mnist_epoch_fast_equals_slow(monkeypatch, tmp_path):
    monkeypatch.setenv('DEZERO_CACHE_DIR', str(tmp_path))
    monkeypatch.setattr(D.FashionMNIST, 'system_dirs', (FASHION_DIR,))
    fast = D.FashionMNIST(train=False)
    slow = D.FashionMNIST.__new__(D.FashionMNIST)
    slow.data, slow.label = fast.data[:1000], fast.label[:1000]
    slow.transform, slow.target_transform = (lambda x: fast.transform(x)), (lambda t: t)
    fast.data, fast.label = fast.data[:1000], fast.label[:1000]
    np.random.seed(1)
    a = epoch(DataLoader(fast, 100))
    np.random.seed(1)
    b = epoch(DataLoader(slow, 100))
    assert len(a) == len(b) == 10
    for (xa, ta), (xb, tb) in zip(a, b):
        assert xa.shape == (100, 784) and xa.dtype == np.float32
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ta, tb)
