"""Callables that preprocess one sample: PIL image steps, array conversion, normalisation.

A transform takes a sample and returns the transformed sample. Those that give the same result on a
whole stacked batch (sample axis first) as on each sample set ``batchable = True`` and implement
``apply_batch``; a Dataset then transforms a DataLoader batch in one vectorised call instead of one
call per sample. Pillow is needed only by the image steps and is imported when they run.

Example::

    t = Compose([Flatten(), ToFloat(), Normalize(0., 255.)])
    t(np.full((1, 28, 28), 255, np.uint8)).shape   # (784,), float32 ones
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from dezero._checks import check_callable, describe, dtype_of, in_range, int_pair
from dezero.cuda import get_array_module
from dezero.utils import pair  # noqa: F401  (the book's transforms module exports it)

BILINEAR = 2  # PIL.Image.BILINEAR (Image.Resampling.BILINEAR), named here so Pillow stays optional


def _pil_image(user: str) -> Any:
    try:
        from PIL import Image
    except ImportError:
        raise ImportError(f"dezero.transforms.{user} needs Pillow; install the 'image' extra "
                          "(pip install 'dezero[image]')") from None
    return Image


def _is_pil(img: Any) -> bool:
    # Checked by module name so that plain-array transforms never import Pillow.
    return type(img).__module__.startswith('PIL.')


def _check_pil(user: str, img: Any) -> None:
    if not _is_pil(img):
        hint = '; convert an array with ToPIL() first' if hasattr(img, 'ndim') else ''
        raise TypeError(f'{user}: expected a PIL image, got {describe(img)}{hint}')


def _not_an_array(user: str, x: Any) -> TypeError:
    """The error for a sample that is not an array (raised after the array method was missing)."""
    hint = '; convert PIL images with ToArray() first' if _is_pil(x) else ''
    return TypeError(f'{user}: expected an array, got {describe(x)}{hint}')


def _image_or_array(user: str, img: Any) -> None:
    if not _is_pil(img) and not hasattr(img, 'ndim'):
        raise TypeError(f'{user}: expected a PIL image or an array, got {describe(img)}')


class Transform:
    """Base of the transforms here: ``__call__(sample)``; ``apply_batch(batch)`` when ``batchable``."""

    batchable = False

    def __call__(self, x: Any) -> Any:
        raise NotImplementedError

    def apply_batch(self, xs: Any) -> Any:
        """Transform a stacked batch ``(N, ...)`` as ``stack([self(x) for x in xs])`` would."""
        raise TypeError(f'{type(self).__name__} does not work on a batch (batchable is False)')

    def __repr__(self) -> str:
        args = ', '.join(f'{k}={v!r}' for k, v in vars(self).items())
        return f'{type(self).__name__}({args})'


class Compose(Transform):
    """Apply ``transforms`` in order; batchable when every one of them is. ``Compose([])`` is identity."""

    def __init__(self, transforms: Sequence[Callable[[Any], Any]] = ()) -> None:
        if callable(transforms) or not isinstance(transforms, Iterable):
            raise TypeError(f'Compose: expected a list of transforms, got {describe(transforms)}; '
                            'write Compose([t]) for a single one')
        self.transforms = list(transforms)
        for i, t in enumerate(self.transforms):
            check_callable('Compose', f'item {i}', t, 'a callable transform', instance_of=Transform)

    @property
    def batchable(self) -> bool:  # type: ignore[override]
        return all(getattr(t, 'batchable', False) for t in self.transforms)

    def __call__(self, x: Any) -> Any:
        for t in self.transforms:
            x = t(x)
        return x

    def apply_batch(self, xs: Any) -> Any:
        for t in self.transforms:
            xs = t.apply_batch(xs)
        return xs

    def __repr__(self) -> str:
        return f'Compose({self.transforms!r})'


# =============================================================================
# PIL image steps
# =============================================================================
class Convert(Transform):
    """Convert a PIL image to ``mode`` ('RGB', 'L', ...); 'BGR' gives an RGB image with R and B swapped."""

    def __init__(self, mode: str = 'RGB') -> None:
        self.mode = mode

    def __call__(self, img: Any) -> Any:
        Image = _pil_image('Convert')
        _check_pil('Convert', img)
        if self.mode == 'BGR':
            r, g, b = img.convert('RGB').split()
            return Image.merge('RGB', (b, g, r))
        try:
            return img.convert(self.mode)
        except ValueError as e:
            raise ValueError(f'Convert: PIL cannot convert an image of mode {img.mode} to mode {self.mode!r} '
                             f"({e}); expected a PIL mode such as 'RGB' or 'L', or 'BGR'") from None


class Resize(Transform):
    """Resize a PIL image to ``size`` = ``k`` (square) or ``(width, height)``, with PIL filter ``mode``."""

    def __init__(self, size: int | tuple[int, int], mode: int = BILINEAR) -> None:
        self.size = int_pair('Resize', 'size', size, 1)
        self.mode = mode

    def __call__(self, img: Any) -> Any:
        _pil_image('Resize')
        _check_pil('Resize', img)
        return img.resize(self.size, self.mode)


class CenterCrop(Transform):
    """Cut the central ``size`` (``k`` or ``(width, height)``) of a PIL image or ``(..., H, W)`` array."""

    def __init__(self, size: int | tuple[int, int]) -> None:
        self.size = int_pair('CenterCrop', 'size', size, 1)

    def __call__(self, img: Any) -> Any:
        out_w, out_h = self.size
        _image_or_array('CenterCrop', img)
        if _is_pil(img):
            w, h = img.size
        elif img.ndim < 2:
            raise ValueError(f'CenterCrop: expected a PIL image or an array of shape (..., H, W), got shape '
                             f'{img.shape}')
        else:
            h, w = img.shape[-2:]
        if out_w > w or out_h > h:
            raise ValueError(f'CenterCrop: crop (width, height) {self.size} is larger than the image '
                             f'({w}, {h})')
        left, top = (w - out_w) // 2, (h - out_h) // 2
        if _is_pil(img):
            return img.crop((left, top, left + out_w, top + out_h))
        return img[..., top:top + out_h, left:left + out_w]


class ToArray(Transform):
    """PIL image → ``(C, H, W)`` array of ``dtype`` (a grayscale image gives ``C = 1``); arrays are cast."""

    def __init__(self, dtype: Any = np.float32) -> None:
        dtype_of('ToArray', 'dtype', dtype)
        self.dtype = dtype

    def __call__(self, img: Any) -> Any:
        if not _is_pil(img):
            try:
                return img.astype(self.dtype, copy=False)
            except AttributeError:
                raise TypeError(f'ToArray: expected a PIL image or an array, got {describe(img)}') from None
        array = np.asarray(img)
        array = array[np.newaxis] if array.ndim == 2 else array.transpose(2, 0, 1)
        return array.astype(self.dtype)


class ToPIL(Transform):
    """``(C, H, W)`` array (C = 1, 3 or 4) or ``(H, W)`` array → PIL image; the dtype must suit PIL."""

    def __call__(self, array: Any) -> Any:
        Image = _pil_image('ToPIL')
        if not isinstance(array, np.ndarray):
            hint = ' (it is already an image)' if _is_pil(array) else ''
            raise TypeError(f'ToPIL: expected a NumPy array of shape (C, H, W) or (H, W), got '
                            f'{describe(array)}{hint}')
        if array.ndim == 3 and array.shape[0] == 1:
            array = array[0]
        elif array.ndim == 3:
            array = array.transpose(1, 2, 0)
        elif array.ndim != 2:
            raise ValueError(f'ToPIL: expected a (C, H, W) or (H, W) array, got shape {array.shape}')
        try:
            return Image.fromarray(np.ascontiguousarray(array))
        except TypeError as e:
            raise TypeError(f'ToPIL: PIL cannot make an image of {array.shape} {array.dtype} data ({e}); '
                            f'convert to uint8 first, e.g. with AsType(np.uint8)') from None


class RandomHorizontalFlip(Transform):
    """Mirror left-right with probability ``p`` (a PIL image, or an array along its last axis)."""

    def __init__(self, p: float = 0.5) -> None:
        in_range('RandomHorizontalFlip', 'p', p, 0, 1)
        self.p = p

    def __call__(self, img: Any) -> Any:
        _image_or_array('RandomHorizontalFlip', img)
        if np.random.rand() >= self.p:
            return img
        if _is_pil(img):
            Image = _pil_image('RandomHorizontalFlip')
            return img.transpose(getattr(Image, 'Transpose', Image).FLIP_LEFT_RIGHT)
        return img[..., ::-1].copy()


# =============================================================================
# Array steps (all batchable)
# =============================================================================
class Normalize(Transform):
    """``(x - mean) / std`` of an array; ``mean``/``std`` are scalars or per-channel sequences.

    Per-channel values broadcast over a ``(C, H, W)`` sample (or a ``(N, C, H, W)`` batch). Floating
    data keeps its dtype (float32 stays float32); integer data becomes float32.
    """

    batchable = True

    def __init__(self, mean: float | Sequence[float] = 0, std: float | Sequence[float] = 1) -> None:
        if np.any(np.asarray(std) == 0):
            raise ValueError(f'Normalize: std must be non-zero (the data is divided by it), got {std!r}')
        self.mean = mean
        self.std = std

    def _constant(self, value: Any, x: Any, dtype: Any, channel_axis: int, what: str) -> Any:
        c = get_array_module(x).asarray(value, dtype=dtype)
        if c.ndim == 0 or c.size == 1:
            return c.reshape(())
        if c.ndim != 1 or x.ndim != channel_axis + 3 or x.shape[channel_axis] != c.size:
            raise ValueError(f'Normalize: a per-channel {what} of {c.size} values needs (C, H, W) '
                             f'samples with C = {c.size}; got data of shape {x.shape}')
        return c.reshape(-1, 1, 1)

    def _normalize(self, x: Any, channel_axis: int) -> Any:
        dtype = x.dtype if x.dtype.kind == 'f' else np.dtype(np.float32)
        mean = self._constant(self.mean, x, dtype, channel_axis, 'mean')
        std = self._constant(self.std, x, dtype, channel_axis, 'std')
        return (x.astype(dtype, copy=False) - mean) / std

    def __call__(self, x: Any) -> Any:
        try:
            return self._normalize(x, 0)
        except AttributeError:
            raise _not_an_array('Normalize', x) from None

    def apply_batch(self, xs: Any) -> Any:
        return self._normalize(xs, 1)


class Flatten(Transform):
    """A sample → 1-D array (a copy); on a batch ``(N, ...)`` → ``(N, -1)``, flattening each sample."""

    batchable = True

    def __call__(self, x: Any) -> Any:
        try:
            return x.flatten()
        except AttributeError:
            raise _not_an_array('Flatten', x) from None

    def apply_batch(self, xs: Any) -> Any:
        return xs.reshape(xs.shape[0], math.prod(xs.shape[1:]))


class AsType(Transform):
    """Cast an array (sample or batch) to ``dtype``."""

    batchable = True

    # The kinds of dtype a subclass accepts ('f' for ToFloat); None: any.
    kinds: str | None = None

    def __init__(self, dtype: Any = np.float32) -> None:
        name = type(self).__name__
        kind = dtype_of(name, 'dtype', dtype).kind
        if self.kinds is not None and kind not in self.kinds:
            expected = 'a floating' if self.kinds == 'f' else 'an integer'
            raise ValueError(f'{name}: dtype {np.dtype(dtype)} is not {expected} dtype')
        self.dtype = dtype

    def __call__(self, x: Any) -> Any:
        try:
            return x.astype(self.dtype)
        except AttributeError:
            raise _not_an_array(type(self).__name__, x) from None

    def apply_batch(self, xs: Any) -> Any:
        return xs.astype(self.dtype)


class ToFloat(AsType):
    """Cast an array to a floating dtype (``float32`` by default); values are not rescaled."""

    kinds = 'f'

    def __init__(self, dtype: Any = np.float32) -> None:
        super().__init__(dtype)


class ToInt(AsType):
    """Cast an array to an integer dtype (Python ``int``, i.e. int64, by default)."""

    kinds = 'iu'

    def __init__(self, dtype: Any = int) -> None:
        super().__init__(dtype)
