"""dezero.datasets: Dataset protocol, the book's toy data, and file-backed sets read from small files
the tests write (no network). Real Fashion-MNIST is checked when Debian's package is installed."""
import functools
import gzip
import http.server
import io
import os
import pickle
import socket
import tarfile
import threading

import numpy as np
import pytest

from dezero import datasets as D
from dezero import transforms as T

FASHION_DIR = '/usr/share/datasets/fashion-mnist'
MNIST_FILES = ['train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz',
               't10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz']


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    directory = tmp_path / 'cache'
    directory.mkdir()
    monkeypatch.setenv('DEZERO_CACHE_DIR', str(directory))
    return directory


def dead_url():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return f'http://127.0.0.1:{s.getsockname()[1]}/'


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Every download URL points at a closed local port, so nothing can reach the network."""
    base = dead_url()
    monkeypatch.setattr(D.MNIST, 'urls', (base,))
    monkeypatch.setattr(D.FashionMNIST, 'urls', (base,))
    monkeypatch.setattr(D.FashionMNIST, 'system_dirs', ())
    for cls in (D.CIFAR10, D.CIFAR100, D.ImageNet, D.Shakespear):
        monkeypatch.setattr(cls, 'url', base + cls.file_name)


# =============================================================================
# Dataset base
# =============================================================================
class Squares(D.Dataset):
    def prepare(self):
        self.data = np.arange(10, dtype=np.float32).reshape(10, 1)
        self.label = (np.arange(10) ** 2).astype(np.int32)


def test_dataset_item_len_and_transforms():
    ds = Squares()
    assert len(ds) == 10
    x, t = ds[3]
    assert x.shape == (1,) and x[0] == 3 and t == 9
    ds = Squares(transform=lambda x: x * 2, target_transform=lambda t: t + 1)
    x, t = ds[np.int64(4)]
    assert x[0] == 8 and t == 17
    assert ds[-1][1] == 82
    with pytest.raises(IndexError):
        ds[10]
    assert [t for _, t in Squares()] == [i * i for i in range(10)]  # iteration stops at IndexError


def test_dataset_without_label():
    class Unlabelled(D.Dataset):
        def prepare(self):
            self.data = np.arange(5)

    ds = Unlabelled()
    assert ds[2] == (2, None)
    x, t = ds.get_batch(np.array([4, 0]))
    np.testing.assert_array_equal(x, [4, 0])
    assert t is None


@pytest.mark.parametrize('index', [1.0, slice(0, 2), [1, 2], True, '1'])
def test_dataset_index_must_be_int(index):
    with pytest.raises(TypeError, match='Squares: an index must be an int, got'):
        Squares()[index]


def test_dataset_without_data():
    ds = D.Dataset()
    with pytest.raises(TypeError, match=r'Dataset: no data; prepare\(\) must set self.data'):
        len(ds)
    with pytest.raises(TypeError, match='no data'):
        ds[0]


@pytest.mark.parametrize('indices', [np.array([[0, 1]]), np.array([0.5]), ['a']])
def test_get_batch_index_errors(indices):
    with pytest.raises(TypeError, match=r'Squares.get_batch: indices must be a 1-D integer array'):
        Squares().get_batch(indices)


def per_sample(transform):
    """The same transform, hidden behind a plain function so the batch path cannot be used."""
    return lambda x: transform(x)


@pytest.mark.parametrize('transform', [
    None, T.Compose([T.Flatten(), T.ToFloat(), T.Normalize(0., 255.)]), T.ToFloat(np.float64),
    T.Compose([T.ToFloat(), T.Normalize([10., 20., 30.], [2., 4., 8.])])])
def test_get_batch_fast_path_equals_per_sample_path(transform):
    class Images(D.Dataset):
        def prepare(self):
            rng = np.random.default_rng(1)
            self.data = rng.integers(0, 256, (40, 3, 4, 5), dtype=np.uint8)
            self.label = rng.integers(0, 10, 40).astype(np.uint8)

    fast = Images(transform=transform)
    slow = Images(transform=per_sample(fast.transform), target_transform=per_sample(lambda t: t))
    indices = np.random.default_rng(2).permutation(40)[:13]
    x_fast, t_fast = fast.get_batch(indices)
    x_slow, t_slow = slow.get_batch(indices)
    assert x_fast.dtype == x_slow.dtype and t_fast.dtype == t_slow.dtype == np.uint8
    np.testing.assert_array_equal(x_fast, x_slow)
    np.testing.assert_array_equal(t_fast, t_slow)
    np.testing.assert_array_equal(x_slow[0], fast[indices[0]][0])


def test_get_batch_is_one_gather_on_the_fast_path():
    calls = []

    class Counting(T.Transform):
        batchable = True

        def __call__(self, x):
            calls.append('sample')
            return x

        def apply_batch(self, xs):
            calls.append(xs.shape)
            return xs

    x, t = Squares(transform=Counting()).get_batch(np.array([1, 2, 3]))
    assert calls == [(3, 1)]
    np.testing.assert_array_equal(t, [1, 4, 9])


def test_get_batch_uses_an_overridden_getitem():
    class Doubling(Squares):
        def __getitem__(self, index):
            x, t = super().__getitem__(index)
            return x * 2, t

    x, t = Doubling().get_batch(np.array([1, 5]))
    np.testing.assert_array_equal(x, [[2], [10]])
    np.testing.assert_array_equal(t, [1, 25])


def test_gather_batch_on_a_plain_list():
    pairs = [(np.full(2, i, np.float32), i) for i in range(6)]
    x, t = D.gather_batch(pairs, np.array([5, 1]))
    np.testing.assert_array_equal(x, [[5, 5], [1, 1]])
    np.testing.assert_array_equal(t, [5, 1])


# =============================================================================
# Spiral and SinCurve
# =============================================================================
def spiral_by_formula(seed):
    """SPEC's formula, one point at a time."""
    np.random.seed(seed)
    points, labels = [], []
    for j in range(3):
        for i in range(100):
            rate = i / 100
            theta = 4.0 * j + 4.0 * rate + 0.2 * np.random.randn()
            points.append([rate * np.sin(theta), rate * np.cos(theta)])
            labels.append(j)
    order = np.random.permutation(300)
    return np.array(points, np.float32)[order], np.array(labels)[order]


@pytest.mark.parametrize('train,seed', [(True, 1984), (False, 2020)])
def test_spiral_matches_formula(train, seed):
    x, t = D.get_spiral(train)
    x_ref, t_ref = spiral_by_formula(seed)
    assert x.shape == (300, 2) and x.dtype == np.float32
    assert t.shape == (300,) and t.dtype == np.int32
    np.testing.assert_array_equal(x, x_ref)
    np.testing.assert_array_equal(t, t_ref)
    assert np.bincount(t).tolist() == [100, 100, 100]


def test_spiral_known_values():
    x, t = D.get_spiral(train=True)
    np.testing.assert_allclose(x[0], [-0.13981389, -0.00721657], rtol=1e-6)
    np.testing.assert_allclose(x[1], [0.37049392, 0.5820947], rtol=1e-6)
    assert t[:10].tolist() == [1, 1, 2, 0, 1, 2, 0, 0, 1, 2]
    assert not np.array_equal(D.get_spiral(train=False)[0], x)


def test_spiral_dataset():
    ds = D.Spiral()
    x, t = D.get_spiral()
    assert len(ds) == 300
    np.testing.assert_array_equal(ds[7][0], x[7])
    assert ds[7][1] == t[7]
    np.testing.assert_array_equal(D.Spiral(train=False).data, D.get_spiral(False)[0])


def test_sin_curve():
    test = D.SinCurve(train=False)
    y = np.cos(np.linspace(0, 2 * np.pi, 1000)).astype(np.float32)
    assert test.data.shape == test.label.shape == (999, 1) and test.data.dtype == np.float32
    np.testing.assert_array_equal(test.data[:, 0], y[:-1])
    np.testing.assert_array_equal(test.label[:, 0], y[1:])
    train = D.SinCurve(train=True)
    clean = np.sin(np.linspace(0, 2 * np.pi, 1000))
    noise = np.concatenate([train.data[:, 0], train.label[-1:, 0]]) - clean
    assert np.abs(noise).max() <= 0.05 + 1e-6 and noise.std() > 0.02
    np.testing.assert_array_equal(train.data[1:], train.label[:-1])


# =============================================================================
# IDX files and MNIST
# =============================================================================
def idx_bytes(array, type_code=0x08):
    header = bytes([0, 0, type_code, array.ndim]) + np.array(array.shape, '>u4').tobytes()
    return header + array.astype(array.dtype.newbyteorder('>')).tobytes()


def write_gz(path, payload):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with gzip.open(path, 'wb') as f:
        f.write(payload)


def write_mnist(directory, n_train=6, n_test=4, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {}
    for prefix, n in (('train', n_train), ('t10k', n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        write_gz(os.path.join(directory, f'{prefix}-images-idx3-ubyte.gz'), idx_bytes(images))
        write_gz(os.path.join(directory, f'{prefix}-labels-idx1-ubyte.gz'), idx_bytes(labels))
        arrays[prefix] = images, labels
    return arrays


def test_read_idx_types_and_shapes(tmp_path):
    for code, dtype in ((0x08, np.uint8), (0x0C, np.int32), (0x0D, np.float32), (0x0B, np.int16)):
        array = (np.arange(24) - 5).astype(dtype).reshape(2, 3, 4)
        path = str(tmp_path / f'a{code}.gz')
        write_gz(path, idx_bytes(array, code))
        back = D.read_idx(path, 3)
        assert back.dtype == dtype and back.dtype.isnative and back.flags.writeable
        np.testing.assert_array_equal(back, array)
    raw = tmp_path / 'raw.idx'
    raw.write_bytes(idx_bytes(np.arange(5, dtype=np.uint8)))
    np.testing.assert_array_equal(D.read_idx(str(raw)), np.arange(5))


@pytest.mark.parametrize('content,message', [
    (b'\x00\x00\x08', 'is not an IDX file'),
    (b'\x08\x00\x00\x01' + b'\x00' * 8, 'is not an IDX file'),
    (idx_bytes(np.zeros((2, 2), np.uint8)), 'holds a 2-dimensional array, expected 3'),
    (idx_bytes(np.zeros((2, 2, 2), np.uint8))[:-1], 'has 7 bytes of data, but its header announces'),
    (idx_bytes(np.zeros((2, 2, 2), np.uint8))[:10], 'truncated inside its header'),
])
def test_read_idx_rejects_bad_content(tmp_path, content, message):
    path = str(tmp_path / 'bad.gz')
    write_gz(path, content)
    with pytest.raises(ValueError, match=message) as info:
        D.read_idx(path, 3)
    assert path in str(info.value)


def test_read_idx_rejects_bad_gzip(tmp_path):
    path = tmp_path / 'x.gz'
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode='wb') as f:
        f.write(idx_bytes(np.zeros((3, 4, 4), np.uint8)))
    path.write_bytes(buffer.getvalue()[:-12])  # cut inside the stream
    with pytest.raises(ValueError, match=f'read_idx: {path} is truncated or not a gzip file'):
        D.read_idx(str(path), 3)
    path.write_bytes(b'plain text, no gzip here')
    with pytest.raises(ValueError, match='truncated or not a gzip file'):
        D.read_idx(str(path), 3)


def test_mnist_from_cache(cache):
    arrays = write_mnist(cache)
    raw = D.MNIST(train=True, transform=None)
    images, labels = arrays['train']
    assert raw.data.shape == (6, 1, 28, 28) and raw.data.dtype == np.uint8
    assert raw.label.dtype == np.uint8
    np.testing.assert_array_equal(raw.data[:, 0], images)
    np.testing.assert_array_equal(raw.label, labels)
    x, t = D.MNIST(train=True)[2]  # default transform: flat float32 in [0, 1]
    assert x.shape == (784,) and x.dtype == np.float32 and t == labels[2]
    np.testing.assert_allclose(x, images[2].ravel() / 255, rtol=1e-6)
    test = D.MNIST(train=False)
    assert len(test) == 4
    np.testing.assert_array_equal(test.label, arrays['t10k'][1])
    assert D.MNIST.labels() == {i: str(i) for i in range(10)}


def test_mnist_mismatched_counts(cache):
    write_mnist(cache)
    write_gz(str(cache / 'train-labels-idx1-ubyte.gz'), idx_bytes(np.zeros(5, np.uint8)))
    with pytest.raises(ValueError, match='are not matching uint8 images and labels'):
        D.MNIST()


def test_mnist_missing_and_no_network_names_files_and_directory(cache):
    with pytest.raises(FileNotFoundError) as info:
        D.MNIST()
    message = str(info.value)
    assert message.startswith('MNIST: the file train-images-idx3-ubyte.gz is not in')
    assert all(name in message for name in MNIST_FILES)
    assert message.endswith(f'in {cache}')
    assert os.listdir(cache) == []


def test_mnist_downloads_into_cache(cache, tmp_path, monkeypatch):
    served = tmp_path / 'served'
    arrays = write_mnist(served)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *args: None
    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={'poll_interval': 0.05}, daemon=True)
    thread.start()
    try:
        url = f'http://127.0.0.1:{httpd.server_address[1]}/'
        monkeypatch.setattr(D.MNIST, 'urls', (dead_url(), url))  # the first mirror is down
        ds = D.MNIST(train=False, transform=None)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
    np.testing.assert_array_equal(ds.data[:, 0], arrays['t10k'][0])
    assert sorted(os.listdir(cache)) == ['t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz']


def test_fashion_mnist_prefers_cache_subfolder(cache, tmp_path, monkeypatch):
    arrays = write_mnist(cache / 'fashion-mnist', seed=3)
    write_mnist(tmp_path / 'system', seed=4)
    monkeypatch.setattr(D.FashionMNIST, 'system_dirs', (str(tmp_path / 'system'),))
    ds = D.FashionMNIST(transform=None)
    np.testing.assert_array_equal(ds.data[:, 0], arrays['train'][0])


def test_fashion_mnist_system_directory(tmp_path, monkeypatch):
    arrays = write_mnist(tmp_path / 'system', seed=4)
    monkeypatch.setattr(D.FashionMNIST, 'system_dirs', (str(tmp_path / 'system'),))
    ds = D.FashionMNIST(train=False, transform=None)
    np.testing.assert_array_equal(ds.label, arrays['t10k'][1])


def test_fashion_mnist_missing(cache):
    with pytest.raises(FileNotFoundError, match=f'FashionMNIST: .*Put the file.*in {cache}/fashion-mnist'):
        D.FashionMNIST()


def test_fashion_mnist_labels():
    names = D.FashionMNIST.labels()
    assert len(names) == 10 and names[0] == 'T-shirt/top' and names[9] == 'Ankle boot'


@pytest.mark.skipif(not os.path.isdir(FASHION_DIR),
                    reason=f'Fashion-MNIST not installed in {FASHION_DIR} (Debian dataset-fashion-mnist)')
@pytest.mark.parametrize('train,n', [(True, 60000), (False, 10000)])
def test_real_fashion_mnist(monkeypatch, train, n):
    monkeypatch.setattr(D.FashionMNIST, 'system_dirs', (FASHION_DIR,))
    ds = D.FashionMNIST(train=train)
    assert ds.data.shape == (n, 1, 28, 28) and ds.data.dtype == np.uint8
    assert ds.label.shape == (n,) and ds.label.dtype == np.uint8
    assert np.bincount(ds.label).tolist() == [n // 10] * 10
    assert ds.label[0] == 9  # both splits start with an ankle boot
    assert ds.data.max() == 255 and ds.data.min() == 0
    x, t = ds[0]
    assert x.shape == (784,) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1


def test_mnist_show(cache, monkeypatch):
    matplotlib = pytest.importorskip('matplotlib')
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    shown = []
    monkeypatch.setattr(plt, 'show', lambda: shown.append(plt.gca().images[0].get_array().shape))
    write_mnist(cache)
    D.MNIST().show(row=2, col=3)
    plt.close('all')
    assert shown == [(56, 84)]


# =============================================================================
# CIFAR
# =============================================================================
def write_tar(path, members):
    with tarfile.open(path, 'w:gz') as tar:
        for name, obj in members.items():
            payload = obj if isinstance(obj, bytes) else pickle.dumps(obj, protocol=2)
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))


def cifar_batch(n, rng, label_keys=(b'labels',)):
    batch = {b'batch_label': b'test', b'data': rng.integers(0, 256, (n, 3072), dtype=np.uint8)}
    for key in label_keys:
        batch[key] = rng.integers(0, 10, n).tolist()
    return batch


def test_cifar10(cache):
    rng = np.random.default_rng(0)
    batches = {f'cifar-10-batches-py/data_batch_{i}': cifar_batch(3, rng) for i in range(1, 6)}
    batches['cifar-10-batches-py/test_batch'] = cifar_batch(2, rng)
    write_tar(cache / 'cifar-10-python.tar.gz', batches)
    train = D.CIFAR10(transform=None)
    assert train.data.shape == (15, 3, 32, 32) and train.data.dtype == np.uint8
    expected = np.concatenate([batches[f'cifar-10-batches-py/data_batch_{i}'][b'data'] for i in range(1, 6)])
    np.testing.assert_array_equal(train.data.reshape(15, -1), expected)
    assert train.label.tolist() == sum((batches[f'cifar-10-batches-py/data_batch_{i}'][b'labels']
                                        for i in range(1, 6)), [])
    test = D.CIFAR10(train=False)
    x, t = test[1]
    assert x.shape == (3, 32, 32) and x.dtype == np.float32
    np.testing.assert_allclose(x.ravel(), batches['cifar-10-batches-py/test_batch'][b'data'][1] / 255,
                               rtol=1e-6)
    assert D.CIFAR10.labels()[0] == 'airplane' and len(D.CIFAR10.labels()) == 10


def test_cifar100_label_types(cache):
    rng = np.random.default_rng(1)
    keys = (b'fine_labels', b'coarse_labels')
    train, test = cifar_batch(4, rng, keys), cifar_batch(2, rng, keys)
    write_tar(cache / 'cifar-100-python.tar.gz',
              {'cifar-100-python/train': train, 'cifar-100-python/test': test})
    assert D.CIFAR100().label.tolist() == train[b'fine_labels']
    assert D.CIFAR100(train=False, label_type='coarse').label.tolist() == test[b'coarse_labels']
    fine, coarse = D.CIFAR100.labels(), D.CIFAR100.labels('coarse')
    assert len(fine) == len(set(fine.values())) == 100 and len(coarse) == 20
    assert fine[0] == 'apple' and fine[99] == 'worm' and coarse[19] == 'vehicles_2'
    with pytest.raises(ValueError, match="CIFAR100: label_type must be 'fine' or 'coarse', got 'mid'"):
        D.CIFAR100(label_type='mid')


class Exploit:
    def __reduce__(self):
        return (os.system, ('echo pwned',))


def test_cifar_refuses_arbitrary_pickles(cache):
    write_tar(cache / 'cifar-10-python.tar.gz', {'cifar-10-batches-py/test_batch': {b'data': Exploit()}})
    with pytest.raises(ValueError, match=r'CIFAR10: .*cifar-10-python.tar.gz .*refusing to load posix.sys'):
        D.CIFAR10(train=False)


@pytest.mark.parametrize('members,message', [
    ({'other/test_batch': {b'data': 1}}, "has no member 'cifar-10-batches-py/test_batch'"),
    ({'cifar-10-batches-py/test_batch': b'not a pickle'}, 'truncated or not the expected archive'),
    ({'cifar-10-batches-py/test_batch': {b'data': np.zeros((2, 5), np.uint8), b'labels': [0, 1]}},
     'does not hold CIFAR batches'),
])
def test_cifar_bad_archives(cache, members, message):
    write_tar(cache / 'cifar-10-python.tar.gz', members)
    with pytest.raises(ValueError, match=message):
        D.CIFAR10(train=False)


def test_cifar_truncated_archive(cache):
    path = cache / 'cifar-10-python.tar.gz'
    rng = np.random.default_rng(0)
    write_tar(path, {'cifar-10-batches-py/test_batch': cifar_batch(50, rng)})
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(ValueError, match='truncated or not the expected archive'):
        D.CIFAR10(train=False)


def test_cifar_missing(cache):
    expected = f'CIFAR10: the file cifar-10-python.tar.gz is not in {cache}'
    with pytest.raises(FileNotFoundError, match=expected):
        D.CIFAR10()


# =============================================================================
# ImageNet labels and Shakespeare
# =============================================================================
def test_imagenet_labels_dict_literal(cache):
    (cache / 'imagenet1000_clsidx_to_labels.txt').write_text(
        "{0: 'tench, Tinca tinca',\n 1: 'goldfish, Carassius auratus',\n 999: 'toilet tissue'}\n")
    assert D.ImageNet.labels() == {0: 'tench, Tinca tinca', 1: 'goldfish, Carassius auratus',
                                   999: 'toilet tissue'}


def test_imagenet_labels_one_per_line(cache):
    (cache / 'imagenet1000_clsidx_to_labels.txt').write_text('tench\n\ngoldfish\n')
    assert D.ImageNet.labels() == {0: 'tench', 1: 'goldfish'}


@pytest.mark.parametrize('text', ["{0: __import__('os').system('echo pwned')}", "{0: 'a', 1: 'b'",
                                  "{'zero': 'a'}"])
def test_imagenet_labels_never_evaluated(cache, text):
    (cache / 'imagenet1000_clsidx_to_labels.txt').write_text(text)
    with pytest.raises(ValueError, match='ImageNet.labels: .*imagenet1000_clsidx_to_labels.txt'):
        D.ImageNet.labels()


def test_imagenet_labels_missing(cache):
    with pytest.raises(FileNotFoundError, match='ImageNet.labels: the file imagenet1000_clsidx_to_labels'):
        D.ImageNet.labels()
    with pytest.raises(NotImplementedError, match='only ImageNet.labels'):
        D.ImageNet()


def test_shakespear(cache):
    text = 'First Citizen:\nBefore we proceed, hear me speak.\n'
    (cache / 'shakespear.txt').write_text(text)
    ds = D.Shakespear()
    assert [ds.id_to_char[i] for i in range(5)] == ['F', 'i', 'r', 's', 't']
    assert len(ds.char_to_id) == len(set(text))
    ids = [ds.char_to_id[c] for c in text]
    assert ds.data.tolist() == ids[:-1] and ds.label.tolist() == ids[1:]
    assert ds.data.dtype == np.int64 and len(ds) == len(text) - 1
    assert ''.join(ds.id_to_char[int(i)] for i in ds.data) == text[:-1]
    x, t = ds[3]
    assert ds.id_to_char[int(x)] == 's' and ds.id_to_char[int(t)] == 't'


def test_shakespear_bad_files(cache):
    (cache / 'shakespear.txt').write_bytes(b'\xff\xfe\x00bad')
    with pytest.raises(ValueError, match='Shakespear: .*shakespear.txt is not UTF-8 text'):
        D.Shakespear()
    (cache / 'shakespear.txt').write_text('a')
    with pytest.raises(ValueError, match='holds 1 characters, need at least 2'):
        D.Shakespear()
    os.remove(cache / 'shakespear.txt')
    with pytest.raises(FileNotFoundError, match='Shakespear: the file shakespear.txt is not in'):
        D.Shakespear()


# =============================================================================
# The book's array cache
# =============================================================================
def test_cache_npz_round_trip_by_url_and_split(cache):
    url = 'https://example.org/data/cifar-10-python.tar.gz'
    assert D.load_cache_npz(url) == (None, None)
    data, label = np.arange(24, dtype=np.uint8).reshape(2, 3, 4), np.array([1, 0], np.int32)
    path = D.save_cache_npz(data, label, url, train=True)
    assert path == str(cache / 'cifar-10-python.tar.gz.train.npz')
    assert sorted(os.listdir(cache)) == ['cifar-10-python.tar.gz.train.npz']  # no temporary left
    assert D.load_cache_npz(url, train=False) == (None, None)
    x, t = D.load_cache_npz(url, train=True)
    np.testing.assert_array_equal(x, data)
    np.testing.assert_array_equal(t, label)
    assert x.dtype == np.uint8 and t.dtype == np.int32
    # An existing cache is kept as it is, as in the book.
    assert D.save_cache_npz(data + 1, label, url, train=True) is None
    np.testing.assert_array_equal(D.load_cache_npz(url, train=True)[0], data)


def test_cache_npz_errors_name_the_file(cache):
    (cache / 'broken.test.npz').write_bytes(b'PK\x03\x04 not really a zip')
    with pytest.raises(ValueError, match=r"load_cache_npz: '.*broken.test.npz' is a truncated or damaged"):
        D.load_cache_npz('broken')
    np.savez(cache / 'other.test.npz', x=np.ones(2))
    with pytest.raises(ValueError, match=r"load_cache_npz: '.*other.test.npz' holds \['x'\], expected"):
        D.load_cache_npz('other')
    with pytest.raises(TypeError, match='save_cache_npz: label must be a numeric array, got dtype object'):
        D.save_cache_npz(np.ones(2), None, 'nolabel')
    assert not (cache / 'nolabel.test.npz').exists()
