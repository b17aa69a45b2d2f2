"""Image classification networks: VGG16, ResNet-50/101/152 and SqueezeNet 1.1, optionally pretrained.

Every layer is built with its input size known (batch normalisation with ``BatchNorm(size=C)``), so the
parameters exist, and can be counted, saved or loaded with every name checked, right after construction.

``pretrained=True`` resolves the weights file first (in the cache directory, ``~/.dezero`` or
``$DEZERO_CACHE_DIR``, downloading it from the class's ``WEIGHTS_PATH`` when absent) and loads it with
``Layer.load_weights``, which checks every name and shape. Parameter names follow the book
(``conv1_1/W``, ``fc6/b``, ``res2/a/conv1/W`` ...) so its weight files load unchanged.
"""
from __future__ import annotations

import os
import urllib.parse
from typing import Any

import numpy as np

from dezero.core import Variable
from dezero.download import DownloadError, get_cache_dir, get_file
from dezero.layers.base import BatchNorm, Layer, Linear
from dezero.layers.conv import Conv2d
from dezero.models.base import Model
from dezero.ops.activation import relu
from dezero.ops.misc import concat, dropout
from dezero.ops.pooling import pooling
from dezero.ops.reduction import average
from dezero.ops.shape import reshape

__all__ = ['VGG16', 'ResNet', 'ResNet50', 'ResNet101', 'ResNet152', 'SqueezeNet', 'BuildingBlock',
           'Bottleneck', 'BottleneckA', 'BottleneckB', 'Fire']

# Where the book's pretrained weights are published; each model appends its file name.
WEIGHTS_URL = 'https://github.com/koki0702/dezero-models/releases/download/v0.1/'


def _weights_file(model_name: str, url: str) -> str:
    """Return the local path of the weights at ``url``: the cache copy, else a fresh download.

    Raises ``DownloadError`` naming the exact file and directory where it is expected when it is
    neither cached nor downloadable (no network, HTTP error ...).
    """
    file_name = os.path.basename(urllib.parse.urlparse(url).path)
    try:
        return get_file(url)
    except DownloadError as e:
        directory = get_cache_dir()
        reason = e.__cause__ if e.__cause__ is not None else e
        raise DownloadError(
            f'{model_name}(pretrained=True): the weights file {file_name!r} is not in the cache '
            f'directory {directory} and could not be downloaded from {url} ({reason}). Download it '
            f'by other means and place it at {os.path.join(directory, file_name)} (set the '
            f'environment variable DEZERO_CACHE_DIR to use another directory)') from e


def _check_images(model_name: str, x: Any) -> None:
    shape = getattr(x, 'shape', None)
    if shape is None or len(shape) != 4 or shape[1] != 3:
        raise ValueError(f'{model_name}: expected images of shape (N, 3, H, W), got '
                         f'{type(x).__name__} of shape {shape}')


def _global_average_pooling(x: Variable) -> Variable:
    """``(N, C, H, W)`` → ``(N, C)``: the mean over each feature map."""
    return average(x, axis=(2, 3))


# =============================================================================
# VGG16
# =============================================================================
# (output channels, number of 3x3 convolutions) per block; a 2x2 max-pool ends each block.
_VGG16_BLOCKS = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))
_BGR_MEAN = (103.939, 116.779, 123.68)


class VGG16(Model):
    """VGG-16 (configuration D): 13 convolutions 3x3 (pad 1) + ReLU in five blocks, each closed by a
    2x2 max-pool of stride 2, then ``fc6`` (25088 → 4096), ``fc7`` (4096 → 4096) with ReLU and dropout
    after each, and ``fc8`` (4096 → 1000) giving class scores.

    ``x (N, 3, 224, 224)`` (BGR, mean-subtracted: see ``preprocess``) → ``(N, 1000)``. 138,357,544
    parameters named ``conv{block}_{k}/W, /b`` and ``fc{6,7,8}/W, /b``. With ``pretrained=True`` the
    ImageNet weights ``vgg16.npz`` are loaded from the cache directory (downloaded the first time).

    Example::

        model = VGG16(pretrained=True)
        x = VGG16.preprocess(PIL.Image.open('zebra.jpg'))[np.newaxis]
        with dezero.test_mode():
            label = model(x).data.argmax()
    """

    WEIGHTS_PATH = WEIGHTS_URL + 'vgg16.npz'

    def __init__(self, pretrained: bool = False) -> None:
        super().__init__()
        # Resolved first: a missing file should fail before allocating half a gigabyte of weights.
        path = _weights_file('VGG16', self.WEIGHTS_PATH) if pretrained else None
        in_channels = 3
        self._blocks: list[list[str]] = []
        for block, (channels, n_convs) in enumerate(_VGG16_BLOCKS, start=1):
            names = []
            for k in range(1, n_convs + 1):
                name = f'conv{block}_{k}'
                setattr(self, name, Conv2d(channels, 3, stride=1, pad=1, in_channels=in_channels))
                names.append(name)
                in_channels = channels
            self._blocks.append(names)
        self.fc6 = Linear(4096, in_size=512 * 7 * 7)
        self.fc7 = Linear(4096, in_size=4096)
        self.fc8 = Linear(1000, in_size=4096)
        if path is not None:
            self.load_weights(path)

    def forward(self, x: Any) -> Variable:
        _check_images('VGG16', x)
        input_shape = x.shape
        for names in self._blocks:
            for name in names:
                x = relu(getattr(self, name)(x))
            x = pooling(x, 2, 2)
        if x.shape[1:] != (512, 7, 7):
            raise ValueError(f'VGG16: an input of shape {input_shape} gives features of shape '
                             f'{x.shape}, but fc6 needs (N, 512, 7, 7): use 224x224 images '
                             '(VGG16.preprocess resizes them)')
        x = reshape(x, (x.shape[0], -1))
        x = dropout(relu(self.fc6(x)))
        x = dropout(relu(self.fc7(x)))
        return self.fc8(x)

    @staticmethod
    def preprocess(image: Any, size: tuple[int, int] | None = (224, 224),
                   dtype: Any = np.float32) -> np.ndarray:
        """Turn a PIL image into the network's input: ``(3, H, W)`` BGR, ImageNet mean subtracted.

        The image is converted to RGB, resized to ``size`` = (width, height) (skipped when None), its
        channels reversed to BGR and the per-channel mean ``(103.939, 116.779, 123.68)`` (B, G, R)
        subtracted; the result is a CHW array of ``dtype``. Add the batch axis with ``x[np.newaxis]``.
        """
        try:
            from PIL import Image
        except ImportError:
            raise ImportError("VGG16.preprocess needs Pillow; install the 'image' extra "
                              "(pip install 'dezero[image]')") from None
        if not isinstance(image, Image.Image):
            raise TypeError(f'VGG16.preprocess: expected a PIL.Image.Image, got {type(image).__name__}')
        image = image.convert('RGB')
        if size:
            image = image.resize(tuple(size))
        array = np.asarray(image, dtype=dtype)[:, :, ::-1]
        array = array - np.array(_BGR_MEAN, dtype=dtype)
        return np.ascontiguousarray(array.transpose(2, 0, 1))


# =============================================================================
# ResNet
# =============================================================================
class Bottleneck(Layer):
    """ResNet bottleneck block: 1x1 (reduce) → 3x3 → 1x1 (expand) convolutions, each followed by batch
    normalisation, ReLU between them and after the residual sum.

    ``x (N, in_channels, H, W)`` → ``(N, out_channels, H', W')`` with ``H' = (H - 1) // stride + 1``. The
    stride sits on the first 1x1 convolution (the original MSRA ResNet, as the book), or with
    ``downsample_fb`` on the 3x3 one (Facebook's ResNet). The shortcut is a strided 1x1 convolution
    ``conv4`` + ``bn4`` when ``projection`` is True (the book's BottleneckA), the identity when False
    (BottleneckB); None chooses the projection exactly when the shape changes (``stride != 1`` or
    ``in_channels != out_channels``). Convolutions have no bias: batch normalisation's ``beta`` plays
    that role.
    """

    def __init__(self, in_channels: int, mid_channels: int, out_channels: int, stride: int = 1,
                 projection: bool | None = None, downsample_fb: bool = False) -> None:
        super().__init__()
        if projection is None:
            projection = stride != 1 or in_channels != out_channels
        elif not projection and (stride != 1 or in_channels != out_channels):
            raise ValueError(f'{type(self).__name__}: an identity shortcut needs stride 1 and '
                             f'in_channels == out_channels, got stride {stride}, {in_channels} -> '
                             f'{out_channels} channels')
        stride_1x1, stride_3x3 = (1, stride) if downsample_fb else (stride, 1)
        self.conv1 = Conv2d(mid_channels, 1, stride_1x1, 0, nobias=True, in_channels=in_channels)
        self.bn1 = BatchNorm(size=mid_channels)
        self.conv2 = Conv2d(mid_channels, 3, stride_3x3, 1, nobias=True, in_channels=mid_channels)
        self.bn2 = BatchNorm(size=mid_channels)
        self.conv3 = Conv2d(out_channels, 1, 1, 0, nobias=True, in_channels=mid_channels)
        self.bn3 = BatchNorm(size=out_channels)
        self.has_projection = projection
        if self.has_projection:
            self.conv4 = Conv2d(out_channels, 1, stride, 0, nobias=True, in_channels=in_channels)
            self.bn4 = BatchNorm(size=out_channels)

    def forward(self, x: Variable) -> Variable:
        h = relu(self.bn1(self.conv1(x)))
        h = relu(self.bn2(self.conv2(h)))
        h = self.bn3(self.conv3(h))
        shortcut = self.bn4(self.conv4(x)) if self.has_projection else x
        return relu(h + shortcut)


class BottleneckA(Bottleneck):
    """The book's first bottleneck of a ResNet stage: always a projection shortcut (``conv4`` + ``bn4``),
    ``(N, in_channels, H, W)`` → ``(N, out_channels, H', W')``; see ``Bottleneck``."""

    def __init__(self, in_channels: int, mid_channels: int, out_channels: int, stride: int = 2,
                 downsample_fb: bool = False) -> None:
        super().__init__(in_channels, mid_channels, out_channels, stride, projection=True,
                         downsample_fb=downsample_fb)


class BottleneckB(Bottleneck):
    """The book's later bottlenecks of a ResNet stage: identity shortcut, ``(N, in_channels, H, W)`` →
    the same shape; see ``Bottleneck``."""

    def __init__(self, in_channels: int, mid_channels: int) -> None:
        super().__init__(in_channels, mid_channels, in_channels, projection=False)


class BuildingBlock(Layer):
    """One ResNet stage: ``n_blocks`` bottlenecks, ``a`` (a ``BottleneckA``: changes channels and
    stride) then ``b1``, ``b2`` ... (``BottleneckB``: keep them). ``(N, in_channels, H, W)`` →
    ``(N, out_channels, H', W')``. ``downsample_fb`` puts the stride on the 3x3 convolution.
    """

    def __init__(self, n_blocks: int, in_channels: int, mid_channels: int, out_channels: int,
                 stride: int, downsample_fb: bool = False) -> None:
        super().__init__()
        self.a = BottleneckA(in_channels, mid_channels, out_channels, stride, downsample_fb)
        self._names = ['a']
        for i in range(1, n_blocks):
            setattr(self, f'b{i}', BottleneckB(out_channels, mid_channels))
            self._names.append(f'b{i}')

    def forward(self, x: Variable) -> Variable:
        for name in self._names:
            x = getattr(self, name)(x)
        return x


_RESNET_BLOCKS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}


class ResNet(Model):
    """Deep residual network with bottleneck blocks (He et al. 2015), 50, 101 or 152 layers.

    ``conv1`` 7x7 stride 2 pad 3 (64 channels, with bias) + ``bn1`` + ReLU, a 3x3 max-pool of stride 2,
    four stages ``res2``..``res5`` (output channels 256, 512, 1024, 2048; the last three halve the
    resolution) of ``(3, 4, 6, 3)``, ``(3, 4, 23, 3)`` or ``(3, 8, 36, 3)`` bottlenecks, a global
    average pool and ``fc6`` (2048 → 1000). ``x (N, 3, H, W)`` → ``(N, 1000)``; any ``H, W >= 5``
    works, since the final pool averages whatever resolution remains (224 for ImageNet). Batch
    normalisation parameters and statistics are created at the first call (or by loading weights).
    With ``pretrained=True`` the weights ``resnet{n_layers}.npz`` are loaded from the cache directory
    (downloaded the first time).

    Example: ``ResNet(50)(np.zeros((1, 3, 64, 64), np.float32)).shape`` → ``(1, 1000)``.
    """

    WEIGHTS_PATH = WEIGHTS_URL + 'resnet{}.npz'

    def __init__(self, n_layers: int = 152, pretrained: bool = False) -> None:
        super().__init__()
        if n_layers not in _RESNET_BLOCKS:
            raise ValueError(f'ResNet: n_layers must be 50, 101 or 152, got {n_layers!r}')
        self.n_layers = n_layers
        path = _weights_file(f'ResNet{n_layers}', self.WEIGHTS_PATH.format(n_layers)) if pretrained else None
        blocks = _RESNET_BLOCKS[n_layers]
        self.conv1 = Conv2d(64, 7, 2, 3, in_channels=3)
        self.bn1 = BatchNorm(size=64)
        self.res2 = BuildingBlock(blocks[0], 64, 64, 256, 1)
        self.res3 = BuildingBlock(blocks[1], 256, 128, 512, 2)
        self.res4 = BuildingBlock(blocks[2], 512, 256, 1024, 2)
        self.res5 = BuildingBlock(blocks[3], 1024, 512, 2048, 2)
        self.fc6 = Linear(1000, in_size=2048)
        if path is not None:
            self.load_weights(path)

    def forward(self, x: Any) -> Variable:
        _check_images(f'ResNet{self.n_layers}', x)
        x = relu(self.bn1(self.conv1(x)))
        x = pooling(x, 3, 2)
        x = self.res2(x)
        x = self.res3(x)
        x = self.res4(x)
        x = self.res5(x)
        return self.fc6(_global_average_pooling(x))


class ResNet50(ResNet):
    """``ResNet(50)``: stages of (3, 4, 6, 3) bottlenecks; weights file ``resnet50.npz``."""

    def __init__(self, pretrained: bool = False) -> None:
        super().__init__(50, pretrained)


class ResNet101(ResNet):
    """``ResNet(101)``: stages of (3, 4, 23, 3) bottlenecks; weights file ``resnet101.npz``."""

    def __init__(self, pretrained: bool = False) -> None:
        super().__init__(101, pretrained)


class ResNet152(ResNet):
    """``ResNet(152)``: stages of (3, 8, 36, 3) bottlenecks; weights file ``resnet152.npz``."""

    def __init__(self, pretrained: bool = False) -> None:
        super().__init__(152, pretrained)


# =============================================================================
# SqueezeNet
# =============================================================================
class Fire(Layer):
    """SqueezeNet fire module: a 1x1 ``squeeze`` convolution, then 1x1 and 3x3 (pad 1) ``expand``
    convolutions whose outputs are concatenated along channels, ReLU after each convolution.

    ``(N, in_channels, H, W)`` → ``(N, expand1x1_channels + expand3x3_channels, H, W)``.
    """

    def __init__(self, in_channels: int, squeeze_channels: int, expand1x1_channels: int,
                 expand3x3_channels: int) -> None:
        super().__init__()
        self.squeeze = Conv2d(squeeze_channels, 1, in_channels=in_channels)
        self.expand1x1 = Conv2d(expand1x1_channels, 1, in_channels=squeeze_channels)
        self.expand3x3 = Conv2d(expand3x3_channels, 3, pad=1, in_channels=squeeze_channels)

    def forward(self, x: Variable) -> Variable:
        s = relu(self.squeeze(x))
        return concat((relu(self.expand1x1(s)), relu(self.expand3x3(s))), axis=1)


# SqueezeNet 1.1: (name, in, squeeze, expand 1x1, expand 3x3); a max-pool follows fire3 and fire5.
_SQUEEZENET_FIRES = (('fire2', 64, 16, 64, 64), ('fire3', 128, 16, 64, 64),
                     ('fire4', 128, 32, 128, 128), ('fire5', 256, 32, 128, 128),
                     ('fire6', 256, 48, 192, 192), ('fire7', 384, 48, 192, 192),
                     ('fire8', 384, 64, 256, 256), ('fire9', 512, 64, 256, 256))
_SQUEEZENET_POOL_AFTER = ('fire3', 'fire5')


class SqueezeNet(Model):
    """SqueezeNet 1.1 (Iandola et al. 2016): AlexNet-level accuracy from 1.2 M parameters. *Beyond the
    book*, which leaves this class empty.

    ``conv1`` 3x3 stride 2 (64 channels) + ReLU, 3x3 max-pool of stride 2, ``fire2``, ``fire3``, pool,
    ``fire4``, ``fire5``, pool, ``fire6``..``fire9``, dropout 0.5, ``conv10`` 1x1 (1000 channels) + ReLU
    and a global average pool. ``x (N, 3, H, W)`` → ``(N, 1000)`` for any ``H, W >= 31`` (224 for
    ImageNet). Pools round their output size down (the reference rounds up; both agree at 224).
    1,235,496 parameters. With ``pretrained=True`` the weights ``squeezenet.npz`` are loaded from the
    cache directory (downloaded the first time).

    Example: ``SqueezeNet()(np.zeros((1, 3, 64, 64), np.float32)).shape`` → ``(1, 1000)``.
    """

    WEIGHTS_PATH = WEIGHTS_URL + 'squeezenet.npz'

    def __init__(self, pretrained: bool = False) -> None:
        super().__init__()
        path = _weights_file('SqueezeNet', self.WEIGHTS_PATH) if pretrained else None
        self.conv1 = Conv2d(64, 3, stride=2, in_channels=3)
        for name, in_channels, squeeze, expand1x1, expand3x3 in _SQUEEZENET_FIRES:
            setattr(self, name, Fire(in_channels, squeeze, expand1x1, expand3x3))
        self.conv10 = Conv2d(1000, 1, in_channels=512)
        if path is not None:
            self.load_weights(path)

    def forward(self, x: Any) -> Variable:
        _check_images('SqueezeNet', x)
        x = pooling(relu(self.conv1(x)), 3, 2)
        for name, *_ in _SQUEEZENET_FIRES:
            x = getattr(self, name)(x)
            if name in _SQUEEZENET_POOL_AFTER:
                x = pooling(x, 3, 2)
        x = relu(self.conv10(dropout(x, 0.5)))
        return _global_average_pooling(x)
