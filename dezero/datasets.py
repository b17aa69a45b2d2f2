"""Datasets: the ``Dataset`` base (sample and batch access) and the book's data sets.

A Dataset holds ``data`` and ``label`` (label may be None) filled by ``prepare()``; ``ds[i]`` returns
one transformed ``(x, t)`` pair and ``ds.get_batch(indices)`` a stacked batch, gathered with a single
array indexing operation whenever the data are arrays and the transforms can work on batches.

Files (MNIST, CIFAR, ...) are read from the cache directory (``~/.dezero``, or ``$DEZERO_CACHE_DIR``)
and downloaded there with ``get_file`` when absent and a network exists.
"""
from __future__ import annotations

import ast
import gzip
import importlib
import os
import pickle
import tarfile
import zlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from dezero._checks import check_callable
from dezero._files import atomic_file, read_npz
from dezero.cuda import array_types, as_numpy, get_array_module
from dezero.download import DownloadError, cache_dir, get_cache_dir, get_file  # noqa: F401  (cache_dir: book name)
from dezero.transforms import Compose, Flatten, Normalize, ToFloat, Transform


class _Identity(Transform):
    """The transform used when none is given: returns the sample (or batch) itself."""

    batchable = True

    def __call__(self, x: Any) -> Any:
        return x

    def apply_batch(self, xs: Any) -> Any:
        return xs


# =============================================================================
# Dataset and batch gathering
# =============================================================================
def _stack(items: list[Any], owner: str, source: str) -> Any:
    """Stack the samples ``items`` into a batch; ``owner`` and ``source`` (what produced the samples)
    name the culprit when their shapes differ."""
    if all(item is None for item in items):
        return None
    xp = get_array_module(items[0]) if items else np
    arrays = [xp.asarray(item) for item in items]
    try:
        return xp.stack(arrays)
    except ValueError:
        first = arrays[0].shape
        i = next((i for i, a in enumerate(arrays) if a.shape != first), None)
        if i is None:
            raise
        raise ValueError(f'{owner}: {source} gave samples of different shapes, {first} (sample 0 of the '
                         f'batch) and {arrays[i].shape} (sample {i}); a batch needs samples of one shape'
                         ) from None


def _stack_examples(dataset: Any, indices: Any) -> tuple[Any, Any]:
    examples = [dataset[int(i)] for i in indices]
    owner = type(dataset).__name__
    return (_stack([e[0] for e in examples], owner, 'indexing'),
            _stack([e[1] for e in examples], owner, 'indexing'))


def gather_batch(dataset: Any, indices: Any) -> tuple[Any, Any]:
    """Return the batch ``(x, t)`` of ``dataset`` at ``indices`` (a 1-D integer array).

    ``dataset.get_batch`` is used when the dataset has it (one vectorised gather for a ``Dataset``);
    any other indexable of ``(x, t)`` pairs is read sample by sample and stacked, giving
    ``x (len(indices), ...)`` and ``t (len(indices), ...)``, or ``t = None`` when every label is None.
    """
    get_batch = getattr(dataset, 'get_batch', None)
    if get_batch is not None:
        return get_batch(indices)
    return _stack_examples(dataset, indices)


class Dataset:
    """Base of every dataset: ``prepare()`` fills ``self.data`` and ``self.label`` (or leaves it None).

    ``ds[i]`` → ``(transform(data[i]), target_transform(label[i]))``, or ``(x, None)`` without labels;
    ``len(ds)`` = ``len(data)``. A subclass either overrides ``prepare`` (array data, fast batches) or
    ``__getitem__``/``__len__`` (anything else, e.g. files read per sample).

    Example: ``class Squares(Dataset): def prepare(self): self.data = np.arange(10.); self.label =
    self.data ** 2`` then ``Squares()[3]`` → ``(3.0, 9.0)``.
    """

    def __init__(self, train: bool = True, transform: Callable[[Any], Any] | None = None,
                 target_transform: Callable[[Any], Any] | None = None) -> None:
        self.train = train
        for what, value in (('transform', transform), ('target_transform', target_transform)):
            if value is not None:
                check_callable(type(self).__name__, what, value, 'a callable (or None)',
                               'combine several transforms with Compose([...])', Transform)
        self.transform = _Identity() if transform is None else transform
        self.target_transform = _Identity() if target_transform is None else target_transform
        self.data: Any = None
        self.label: Any = None
        self.prepare()

    def prepare(self) -> None:
        """Fill ``self.data`` and ``self.label``; the base class has nothing to load."""

    def _check_index(self, index: Any) -> None:
        if not isinstance(index, (int, np.integer)) or isinstance(index, bool):
            raise TypeError(f'{type(self).__name__}: an index must be an int, got {type(index).__name__} '
                            f'({index!r:.40}); use get_batch(indices) or a DataLoader for batches')
        if self.data is None:
            raise TypeError(f'{type(self).__name__}: no data; prepare() must set self.data')

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        self._check_index(index)
        try:
            x = self.data[index]
        except IndexError:
            n = len(self.data)
            raise IndexError(f'{type(self).__name__}: index {index} is out of range for a dataset of {n} '
                             f'samples (expected {-n} <= index < {n})') from None
        x = self.transform(x)
        t = None if self.label is None else self.target_transform(self.label[index])
        return x, t

    def __len__(self) -> int:
        if self.data is None:
            raise TypeError(f'{type(self).__name__}: no data; prepare() must set self.data')
        return len(self.data)

    def get_batch(self, indices: Any) -> tuple[Any, Any]:
        """Return ``(x, t)`` for the 1-D integer ``indices``: the samples of ``ds[i]`` stacked.

        With array data and ``batchable`` transforms, each of ``data`` and ``label`` is gathered by
        one indexing operation and transformed once as a batch; otherwise (a subclass's own
        ``__getitem__``, list data, per-sample transforms) samples are read one by one and stacked.
        The two paths give identical arrays. ``t`` is None when there are no labels.
        """
        indices = np.asarray(indices)
        if indices.size == 0:
            indices = indices.astype(np.intp)
        if indices.ndim != 1 or indices.dtype.kind not in 'iu':
            raise TypeError(f'{type(self).__name__}.get_batch: indices must be a 1-D integer array, got '
                            f'{indices.dtype} array of shape {indices.shape}')
        if type(self).__getitem__ is not Dataset.__getitem__:
            return _stack_examples(self, indices)
        if self.data is None:
            raise TypeError(f'{type(self).__name__}: no data; prepare() must set self.data')
        x = self._gather(self.data, self.transform, indices, 'transform')
        t = None if self.label is None else self._gather(self.label, self.target_transform, indices,
                                                          'target_transform')
        return x, t

    def _gather(self, array: Any, transform: Any, indices: np.ndarray, what: str) -> Any:
        if isinstance(array, array_types) and getattr(transform, 'batchable', False):
            return transform.apply_batch(array[indices])
        return _stack([transform(array[i]) for i in indices], type(self).__name__, f'the {what}')


# =============================================================================
# Toy data
# =============================================================================
def get_spiral(train: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The book's spiral: ``x (300, 2)`` float32 points and ``t (300,)`` int32 labels (3 classes).

    For class j and i in 0..99: ``rate = i/100``, ``theta = 4j + 4 rate + 0.2 randn()``, point
    ``(rate sin theta, rate cos theta)``; then the rows are shuffled by a permutation. The global
    NumPy generator is seeded with 1984 (train) or 2020 (test), so the values match the book's.
    """
    num_data, num_class = 100, 3
    np.random.seed(1984 if train else 2020)
    # One randn per point in (class, point) order, the order the book draws them in.
    noise = np.random.randn(num_class, num_data)
    rate = np.arange(num_data) / num_data
    theta = np.arange(num_class)[:, np.newaxis] * 4.0 + 4.0 * rate + noise * 0.2
    radius = 1.0 * rate
    x = np.stack([radius * np.sin(theta), radius * np.cos(theta)], axis=-1)
    x = x.reshape(num_class * num_data, 2).astype(np.float32)
    t = np.repeat(np.arange(num_class, dtype=np.int32), num_data)
    order = np.random.permutation(num_class * num_data)
    return x[order], t[order]


class Spiral(Dataset):
    """``get_spiral(train)`` as a Dataset: 300 points ``(2,)`` float32, labels 0..2 int32."""

    def prepare(self) -> None:
        self.data, self.label = get_spiral(self.train)


class SinCurve(Dataset):
    """1000 samples of ``sin`` on ``[0, 2 pi]`` plus uniform noise in ±0.05 (train) or a clean ``cos`` (test).

    Each sample predicts the next value: ``data = y[:-1]``, ``label = y[1:]``, both ``(999, 1)``
    float32.
    """

    def prepare(self) -> None:
        num_data = 1000
        x = np.linspace(0, 2 * np.pi, num_data)
        if self.train:
            y = np.sin(x) + np.random.uniform(-0.05, 0.05, size=x.shape)
        else:
            y = np.cos(x)
        y = y.astype(np.float32)[:, np.newaxis]
        self.data, self.label = y[:-1], y[1:]


# =============================================================================
# Finding files: the cache directory, then system directories, then a download
# =============================================================================
def _locate(owner: str, name: str, urls: Sequence[str], needed: Sequence[str], subdir: str = '',
            system_dirs: Sequence[str] = ()) -> str:
    """Path of the file ``name`` (one of the ``needed`` files of ``owner``), downloading it if absent."""
    directory = os.path.join(get_cache_dir(), subdir) if subdir else get_cache_dir()
    for d in (directory, *system_dirs):
        if os.path.isfile(os.path.join(d, name)):
            return os.path.join(d, name)
    failures = []
    for url in urls:
        try:
            return get_file(url, f'{subdir}/{name}' if subdir else name)
        except DownloadError as e:
            failures.append(f'{url}: {e.reason}')
    elsewhere = ''.join(f' or {d}' for d in system_dirs)
    raise FileNotFoundError(
        f'{owner}: the file {name} is not in {directory}{elsewhere} and could not be downloaded '
        f'({"; ".join(failures) or "no URL"}). Put the file(s) {", ".join(needed)} in {directory}')


_IDX_TYPES = {0x08: np.dtype(np.uint8), 0x09: np.dtype(np.int8), 0x0B: np.dtype('>i2'),
              0x0C: np.dtype('>i4'), 0x0D: np.dtype('>f4'), 0x0E: np.dtype('>f8')}


def read_idx(path: str, ndim: int | None = None) -> np.ndarray:
    """Read an IDX file (the MNIST format; gzip-compressed when the name ends in ``.gz``).

    The header is checked: magic ``00 00 <type> <ndim>``, ``ndim`` as expected when given, and a body
    of exactly the size the dimensions announce. Returns a native-endian array of those dimensions.
    Raises ``ValueError`` naming the file when it is truncated, corrupt or not IDX.
    """
    try:
        opener = gzip.open if path.endswith('.gz') else open
        with opener(path, 'rb') as f:
            raw = f.read()
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise ValueError(f'read_idx: {path} is truncated or not a gzip file ({e})') from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise ValueError(f'read_idx: {path} is not an IDX file (magic bytes {raw[:4].hex() or "missing"})')
    dtype, file_ndim = _IDX_TYPES[raw[2]], raw[3]
    if ndim is not None and file_ndim != ndim:
        raise ValueError(f'read_idx: {path} holds a {file_ndim}-dimensional array, expected {ndim}')
    header = 4 + 4 * file_ndim
    if len(raw) < header:
        raise ValueError(f'read_idx: {path} is truncated inside its header')
    shape = tuple(int(n) for n in np.frombuffer(raw, '>u4', file_ndim, 4))
    count = int(np.prod(shape, dtype=np.int64))
    if len(raw) - header != count * dtype.itemsize:
        raise ValueError(f'read_idx: {path} has {len(raw) - header} bytes of data, but its header '
                         f'announces {shape} {dtype.name} ({count * dtype.itemsize} bytes)')
    # A writable native-endian copy: the buffer itself is read-only and may be big-endian.
    return np.frombuffer(raw, dtype, count, header).astype(dtype.newbyteorder('=')).reshape(shape)


def _show_grid(owner: str, images: np.ndarray, row: int, col: int) -> None:
    """Show ``row x col`` images drawn at random from ``(N, C, H, W)`` uint8 ``images`` (matplotlib)."""
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError(f"{owner}.show needs matplotlib; install the 'plot' extra "
                          "(pip install 'dezero[plot]')") from None
    n, c, h, w = images.shape
    picked = images[np.random.randint(0, n, row * col)].transpose(0, 2, 3, 1)
    grid = picked.reshape(row, col, h, w, c).transpose(0, 2, 1, 3, 4).reshape(row * h, col * w, c)
    plt.imshow(grid[..., 0] if c == 1 else grid, cmap='gray' if c == 1 else None,
               interpolation='nearest')
    plt.axis('off')
    plt.show()


# =============================================================================
# MNIST family (IDX files)
# =============================================================================
_MNIST_TRANSFORM = Compose([Flatten(), ToFloat(), Normalize(0., 255.)])


class MNIST(Dataset):
    """Handwritten digits: ``data (N, 1, 28, 28)`` uint8, ``label (N,)`` uint8 in 0..9.

    N is 60000 (train) or 10000 (test). The IDX files ``train-images-idx3-ubyte.gz``,
    ``train-labels-idx1-ubyte.gz``, ``t10k-images-idx3-ubyte.gz`` and ``t10k-labels-idx1-ubyte.gz``
    are read from the cache directory and downloaded there when absent. The default transform
    yields ``(784,)`` float32 vectors in [0, 1].
    """

    urls: tuple[str, ...] = ('http://yann.lecun.com/exdb/mnist/',
                             'https://ossci-datasets.s3.amazonaws.com/mnist/')
    subdir = ''
    system_dirs: tuple[str, ...] = ()
    files = {True: ('train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz'),
             False: ('t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz')}

    def __init__(self, train: bool = True, transform: Callable[[Any], Any] | None = _MNIST_TRANSFORM,
                 target_transform: Callable[[Any], Any] | None = None) -> None:
        super().__init__(train, transform, target_transform)

    def _path(self, name: str) -> str:
        needed = self.files[True] + self.files[False]
        return _locate(type(self).__name__, name, [base + name for base in self.urls], needed,
                       self.subdir, self.system_dirs)

    def prepare(self) -> None:
        image_file, label_file = self.files[bool(self.train)]
        image_path, label_path = self._path(image_file), self._path(label_file)
        images = read_idx(image_path, 3)
        labels = read_idx(label_path, 1)
        if images.dtype != np.uint8 or labels.dtype != np.uint8 or len(images) != len(labels):
            raise ValueError(f'{type(self).__name__}: {image_path} ({images.dtype} {images.shape}) and '
                             f'{label_path} ({labels.dtype} {labels.shape}) are not matching uint8 '
                             f'images and labels')
        self.data = images[:, np.newaxis]
        self.label = labels

    def show(self, row: int = 10, col: int = 10) -> None:
        """Display ``row x col`` random images (needs matplotlib)."""
        _show_grid(type(self).__name__, self.data, row, col)

    @staticmethod
    def labels() -> dict[int, str]:
        """Class id → name: ``{0: '0', ..., 9: '9'}``."""
        return {i: str(i) for i in range(10)}


class FashionMNIST(MNIST):
    """Zalando's Fashion-MNIST: MNIST's format and sizes, 10 kinds of clothing (see ``labels()``).

    The files (MNIST's names) are looked for in ``<cache dir>/fashion-mnist``, then in
    ``/usr/share/datasets/fashion-mnist`` (Debian's ``dataset-fashion-mnist``), and downloaded into the
    former when found in neither.
    """

    urls = ('http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/',)
    subdir = 'fashion-mnist'
    system_dirs = ('/usr/share/datasets/fashion-mnist',)

    @staticmethod
    def labels() -> dict[int, str]:
        """Class id → name: T-shirt/top, Trouser, Pullover, Dress, Coat, Sandal, Shirt, Sneaker, Bag,
        Ankle boot."""
        names = ('T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker',
                 'Bag', 'Ankle boot')
        return dict(enumerate(names))


# =============================================================================
# CIFAR (python pickle archives)
# =============================================================================
def _latin1_bytes(text: str, encoding: str = 'latin1') -> bytes:
    # Python 3 pickles bytes in protocol 2 as _codecs.encode(text, 'latin1'); nothing else is allowed.
    if encoding not in ('latin1', 'latin-1'):
        raise pickle.UnpicklingError(f'refusing _codecs.encode with encoding {encoding!r}')
    return text.encode('latin1')


def _pickle_globals() -> dict[tuple[str, str], Any]:
    """The globals a pickled ndarray refers to, under NumPy 1 (numpy.core) and NumPy 2 (numpy._core)."""
    for package in ('numpy._core', 'numpy.core'):  # NumPy 2 warns on numpy.core: try _core first
        try:
            multiarray = importlib.import_module(f'{package}.multiarray')
            numeric = importlib.import_module(f'{package}.numeric')
            break
        except ImportError:
            continue
    allowed: dict[tuple[str, str], Any] = {('numpy', 'ndarray'): np.ndarray, ('numpy', 'dtype'): np.dtype,
                                           ('_codecs', 'encode'): _latin1_bytes}
    for package in ('numpy.core', 'numpy._core'):
        allowed[(f'{package}.multiarray', '_reconstruct')] = multiarray._reconstruct
        allowed[(f'{package}.numeric', '_frombuffer')] = numeric._frombuffer
    return allowed


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain containers and NumPy arrays only: any other class is refused, not imported."""

    allowed = _pickle_globals()

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self.allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f'refusing to load {module}.{name}') from None


def _read_tar_pickles(owner: str, path: str, members: Sequence[str]) -> list[dict]:
    """Unpickle ``members`` of the tar archive ``path`` (read in memory; nothing is extracted)."""
    result = []
    try:
        with tarfile.open(path, 'r:*') as tar:
            for member in members:
                try:
                    f = tar.extractfile(member)
                except KeyError:
                    f = None
                if f is None:
                    raise ValueError(f'{owner}: {path} has no member {member!r}; is it the right archive?')
                result.append(_ArrayUnpickler(f, encoding='bytes').load())
    except (tarfile.TarError, EOFError, zlib.error, OSError, pickle.UnpicklingError) as e:
        raise ValueError(f'{owner}: {path} is truncated or not the expected archive ({e})') from None
    return result


def _cifar_arrays(owner: str, path: str, batches: list[dict], label_key: bytes
                  ) -> tuple[np.ndarray, np.ndarray]:
    images, labels = [], []
    for batch in batches:
        data, label = batch.get(b'data'), batch.get(label_key)
        if (not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2
                or data.shape[1] != 3 * 32 * 32 or label is None or len(label) != len(data)):
            raise ValueError(f'{owner}: {path} does not hold CIFAR batches (uint8 data of 3072 columns '
                             f'and a {label_key.decode()!r} list of the same length)')
        images.append(data.reshape(-1, 3, 32, 32))
        labels.append(np.asarray(label, dtype=np.int64))
    return np.concatenate(images), np.concatenate(labels)


_CIFAR_TRANSFORM = Compose([ToFloat(), Normalize(0., 255.)])


class CIFAR10(Dataset):
    """CIFAR-10: ``data (N, 3, 32, 32)`` uint8 (N = 50000 train, 10000 test), ``label (N,)`` int64 0..9.

    Read from ``cifar-10-python.tar.gz`` in the cache directory (downloaded there when absent). The
    default transform yields float32 ``(3, 32, 32)`` images in [0, 1].
    """

    url = 'https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz'
    file_name = 'cifar-10-python.tar.gz'

    def __init__(self, train: bool = True, transform: Callable[[Any], Any] | None = _CIFAR_TRANSFORM,
                 target_transform: Callable[[Any], Any] | None = None) -> None:
        super().__init__(train, transform, target_transform)

    def _archive(self) -> str:
        owner = type(self).__name__
        return _locate(owner, self.file_name, [self.url], [self.file_name])

    def prepare(self) -> None:
        path = self._archive()
        if self.train:
            members = [f'cifar-10-batches-py/data_batch_{i}' for i in range(1, 6)]
        else:
            members = ['cifar-10-batches-py/test_batch']
        owner = type(self).__name__
        batches = _read_tar_pickles(owner, path, members)
        self.data, self.label = _cifar_arrays(owner, path, batches, b'labels')

    def show(self, row: int = 10, col: int = 10) -> None:
        """Display ``row x col`` random images (needs matplotlib)."""
        _show_grid(type(self).__name__, self.data, row, col)

    @staticmethod
    def labels() -> dict[int, str]:
        """Class id → name (airplane, automobile, bird, cat, deer, dog, frog, horse, ship, truck)."""
        names = ('airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck')
        return dict(enumerate(names))


_CIFAR100_COARSE = (
    'aquatic_mammals', 'fish', 'flowers', 'food_containers', 'fruit_and_vegetables',
    'household_electrical_devices', 'household_furniture', 'insects', 'large_carnivores',
    'large_man-made_outdoor_things', 'large_natural_outdoor_scenes', 'large_omnivores_and_herbivores',
    'medium_mammals', 'non-insect_invertebrates', 'people', 'reptiles', 'small_mammals', 'trees',
    'vehicles_1', 'vehicles_2')
_CIFAR100_FINE = (
    'apple', 'aquarium_fish', 'baby', 'bear', 'beaver', 'bed', 'bee', 'beetle', 'bicycle', 'bottle',
    'bowl', 'boy', 'bridge', 'bus', 'butterfly', 'camel', 'can', 'castle', 'caterpillar', 'cattle',
    'chair', 'chimpanzee', 'clock', 'cloud', 'cockroach', 'couch', 'crab', 'crocodile', 'cup',
    'dinosaur', 'dolphin', 'elephant', 'flatfish', 'forest', 'fox', 'girl', 'hamster', 'house',
    'kangaroo', 'keyboard', 'lamp', 'lawn_mower', 'leopard', 'lion', 'lizard', 'lobster', 'man',
    'maple_tree', 'motorcycle', 'mountain', 'mouse', 'mushroom', 'oak_tree', 'orange', 'orchid',
    'otter', 'palm_tree', 'pear', 'pickup_truck', 'pine_tree', 'plain', 'plate', 'poppy', 'porcupine',
    'possum', 'rabbit', 'raccoon', 'ray', 'road', 'rocket', 'rose', 'sea', 'seal', 'shark', 'shrew',
    'skunk', 'skyscraper', 'snail', 'snake', 'spider', 'squirrel', 'streetcar', 'sunflower',
    'sweet_pepper', 'table', 'tank', 'telephone', 'television', 'tiger', 'tractor', 'train', 'trout',
    'tulip', 'turtle', 'wardrobe', 'whale', 'willow_tree', 'wolf', 'woman', 'worm')


class CIFAR100(CIFAR10):
    """CIFAR-100: as CIFAR10, with 100 ``'fine'`` classes or 20 ``'coarse'`` ones (``label_type``).

    Read from ``cifar-100-python.tar.gz`` in the cache directory (downloaded there when absent).
    """

    url = 'https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz'
    file_name = 'cifar-100-python.tar.gz'

    def __init__(self, train: bool = True, transform: Callable[[Any], Any] | None = _CIFAR_TRANSFORM,
                 target_transform: Callable[[Any], Any] | None = None, label_type: str = 'fine') -> None:
        if label_type not in ('fine', 'coarse'):
            raise ValueError(f"CIFAR100: label_type must be 'fine' or 'coarse', got {label_type!r}")
        self.label_type = label_type
        super().__init__(train, transform, target_transform)

    def prepare(self) -> None:
        path = self._archive()
        member = 'cifar-100-python/' + ('train' if self.train else 'test')
        batches = _read_tar_pickles('CIFAR100', path, [member])
        key = f'{self.label_type}_labels'.encode()
        self.data, self.label = _cifar_arrays('CIFAR100', path, batches, key)

    @staticmethod
    def labels(label_type: str = 'fine') -> dict[int, str]:
        """Class id → name: 100 fine classes (apple, aquarium_fish, ...) or 20 coarse ones."""
        if label_type not in ('fine', 'coarse'):
            raise ValueError(f"CIFAR100.labels: label_type must be 'fine' or 'coarse', got {label_type!r}")
        return dict(enumerate(_CIFAR100_FINE if label_type == 'fine' else _CIFAR100_COARSE))


# =============================================================================
# ImageNet labels and Shakespeare text
# =============================================================================
def _read_text(owner: str, path: str) -> str:
    """The whole of a UTF-8 text file; anything else raises ValueError naming ``owner`` and the file."""
    try:
        with open(path, encoding='utf-8') as f:
            return f.read()
    except UnicodeDecodeError as e:
        raise ValueError(f'{owner}: {path} is not UTF-8 text ({e})') from None


class ImageNet(Dataset):
    """Only the 1000 ImageNet class names (``ImageNet.labels()``); the images are not distributed."""

    url = ('https://gist.githubusercontent.com/yrevar/942d3a0ac09ec9e5eb3a/raw/'
           '238f720ff059c1f82f368259d1ca4ffa5dd8f9f5/imagenet1000_clsidx_to_labels.txt')
    file_name = 'imagenet1000_clsidx_to_labels.txt'

    def prepare(self) -> None:
        raise NotImplementedError('ImageNet: the images cannot be downloaded; only ImageNet.labels() '
                                  'is available')

    @classmethod
    def labels(cls) -> dict[int, str]:
        """Class id → name, from ``imagenet1000_clsidx_to_labels.txt`` in the cache directory.

        The file (downloaded when absent) is a Python dict literal ``{0: 'tench, Tinca tinca', ...}``
        (parsed as a literal, never evaluated) or one class name per line.
        """
        path = _locate('ImageNet.labels', cls.file_name, [cls.url], [cls.file_name])
        text = _read_text('ImageNet.labels', path)
        if not text.lstrip().startswith('{'):
            return dict(enumerate(line.strip() for line in text.splitlines() if line.strip()))
        try:
            table = ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError) as e:
            raise ValueError(f'ImageNet.labels: {path} is not a dict literal of class names ({e})') from None
        if not isinstance(table, dict) or not all(
                isinstance(k, int) and isinstance(v, str) for k, v in table.items()):
            raise ValueError(f'ImageNet.labels: {path} must map int class ids to str names')
        return table


class Shakespear(Dataset):
    """Tiny Shakespeare as characters: ``data = ids[:-1]``, ``label = ids[1:]`` (int64, next character).

    Ids number the characters in order of first appearance; ``char_to_id`` and ``id_to_char`` map
    both ways. Read from ``shakespear.txt`` in the cache directory (downloaded there when absent).
    """

    url = 'https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt'
    file_name = 'shakespear.txt'

    def prepare(self) -> None:
        path = _locate('Shakespear', self.file_name, [self.url], [self.file_name])
        text = _read_text('Shakespear', path)
        if len(text) < 2:
            raise ValueError(f'Shakespear: {path} holds {len(text)} characters, need at least 2')
        codes = np.frombuffer(text.encode('utf-32-le'), dtype='<u4')
        chars, first, inverse = np.unique(codes, return_index=True, return_inverse=True)
        order = np.argsort(first)  # ids by first appearance
        id_of_sorted = np.empty_like(order)
        id_of_sorted[order] = np.arange(len(order))
        ids = id_of_sorted[inverse.ravel()].astype(np.int64)
        self.id_to_char = {i: chr(int(chars[j])) for i, j in enumerate(order)}
        self.char_to_id = {c: i for i, c in self.id_to_char.items()}
        self.data, self.label = ids[:-1], ids[1:]


# =============================================================================
# The book's array cache: (data, label) pairs saved as compressed .npz files
# =============================================================================
def _cache_npz_path(filename: str, train: bool) -> str:
    # Only the last path component counts (``filename`` is often the URL the data came from).
    name = filename.replace('\\', '/').rsplit('/', 1)[-1]
    if name in ('', '.', '..'):
        raise ValueError(f'load_cache_npz/save_cache_npz: cannot name a cache file after {filename!r}')
    return os.path.join(get_cache_dir(), name + ('.train.npz' if train else '.test.npz'))


def load_cache_npz(filename: str, train: bool = False) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The ``(data, label)`` arrays that ``save_cache_npz`` stored for ``filename``, or ``(None, None)``.

    The file is ``<cache dir>/<name>.train.npz`` (``.test.npz`` when not ``train``), ``name`` being the
    part of ``filename`` after its last ``/`` (a URL works). A damaged or foreign file raises
    ``ValueError`` naming it.
    """
    path = _cache_npz_path(filename, train)
    if not os.path.exists(path):
        return None, None
    arrays = read_npz(path, 'load_cache_npz', 'cache archive')
    if 'data' not in arrays or 'label' not in arrays:
        raise ValueError(f"load_cache_npz: '{path}' holds {sorted(arrays)}, expected 'data' and 'label'")
    return arrays['data'], arrays['label']


def save_cache_npz(data: Any, label: Any, filename: str, train: bool = False) -> str | None:
    """Store ``data`` and ``label`` (arrays, CPU or GPU) for ``filename`` as a compressed ``.npz`` in
    the cache directory, where ``load_cache_npz`` finds them.

    Returns the path written; an existing cache file is kept as it is and None returned (as the book).
    The write is atomic: an interrupted save leaves no file, never a truncated one.
    """
    path = _cache_npz_path(filename, train)
    if os.path.exists(path):
        return None
    arrays = {'data': as_numpy(data), 'label': as_numpy(label)}
    for key, array in arrays.items():
        if array.dtype.kind not in 'biufc':
            raise TypeError(f'save_cache_npz: {key} must be a numeric array, got dtype {array.dtype}')
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with atomic_file(path) as tmp_path, open(tmp_path, 'wb') as file:
        np.savez_compressed(file, **arrays)
    return path
