"""Classify an image with VGG16 and the book's pretrained ImageNet weights.

The weights file ``vgg16.npz`` (528 MB) must be in the DeZero cache directory (``~/.dezero``, or
``$DEZERO_CACHE_DIR``). When it is missing the script says exactly which file to put where and exits
with status 1; ``--download`` lets VGG16 fetch it instead, where a network is available. The image is
the path given, else the book's ``zebra.jpg`` when it is in the cache directory, else a synthetic
picture of black and white stripes. The top-5 classes are printed with their ImageNet names when
``imagenet1000_clsidx_to_labels.txt`` is in the cache directory (or can be downloaded), else as ids.

Run: ``python examples/vgg16_classify.py [IMAGE] [--top 5] [--download]``. Needs Pillow.
Writes ``out/vgg16_classify.png`` (the image and its top-k probabilities).
"""
from __future__ import annotations

import os
import sys
import time
import urllib.parse
from collections.abc import Sequence
from typing import Any

import numpy as np
from _common import example_parser, int_at_least
from _plotting import pyplot, save_figure

import dezero
import dezero.functions as F
from dezero.datasets import ImageNet
from dezero.download import get_cache_dir
from dezero.models import VGG16

ZEBRA_FILE = 'zebra.jpg'  # where the book's get_file puts its example image


def weights_location() -> tuple[str, str]:
    """(file name, directory) where ``VGG16(pretrained=True)`` looks for its weights."""
    return os.path.basename(urllib.parse.urlparse(VGG16.WEIGHTS_PATH).path), get_cache_dir()


def synthetic_image(size: int = 224) -> Any:
    """A ``size`` x ``size`` RGB PIL image of wavy black and white stripes on a grassy band."""
    from PIL import Image

    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    stripes = 0.5 + 0.5 * np.sign(np.sin(2 * np.pi * (9 * xx + 1.5 * np.sin(2 * np.pi * yy))))
    rgb = np.repeat((stripes * 235 + 10)[:, :, None], 3, axis=2)
    grass = yy > 0.8
    rgb[grass] = (90, 140, 60)
    return Image.fromarray(rgb.astype(np.uint8), mode='RGB')


def load_image(path: str | None) -> tuple[Any, str]:
    """The PIL image to classify and a description of where it came from."""
    from PIL import Image

    if path is not None:
        return Image.open(path), path
    zebra = os.path.join(get_cache_dir(), ZEBRA_FILE)
    if os.path.isfile(zebra):
        return Image.open(zebra), zebra
    return synthetic_image(), 'a synthetic striped image (pass an image path to classify your own)'


def imagenet_labels(allow_download: bool) -> dict[int, str] | None:
    """The class id → name table, or None when its file is absent (and may not be downloaded)."""
    file_name = getattr(ImageNet, 'file_name', 'imagenet1000_clsidx_to_labels.txt')
    if not allow_download and not os.path.isfile(os.path.join(get_cache_dir(), file_name)):
        print(f'(class names: put {file_name} in {get_cache_dir()} to see them)')
        return None
    try:
        return ImageNet.labels()
    except (OSError, ValueError) as e:
        print(f'(class names unavailable: {e})')
        return None


def plot_result(image: Any, top: list[tuple[str, float]], path: str) -> None:
    """The input image beside a bar chart of the top classes, written atomically to ``path``."""
    plt = pyplot()

    fig, (ax_image, ax_bars) = plt.subplots(1, 2, figsize=(10, 4), gridspec_kw={'width_ratios': [1, 1.4]})
    ax_image.imshow(np.asarray(image.convert('RGB').resize((224, 224))))
    ax_image.set_axis_off()
    names = [name if len(name) <= 40 else name[:37] + '...' for name, _ in top][::-1]
    ax_bars.barh(range(len(top)), [p for _, p in top][::-1], color='tab:blue')
    ax_bars.set_yticks(range(len(top)), names)
    ax_bars.set(xlim=(0, 1), xlabel='probability', title='VGG16 top classes')
    fig.tight_layout()
    save_figure(fig, path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = example_parser(__doc__)
    parser.add_argument('image', nargs='?', default=None,
                        help=f"image file to classify; without one, {ZEBRA_FILE} from the cache directory "
                             "when it is there, else a synthetic striped picture")
    parser.add_argument('--top', type=int_at_least(1), default=5,
                        help='how many of the likeliest classes to list')
    parser.add_argument('--download', action='store_true',
                        help='download missing weights and class names (needs a network)')
    parser.add_argument('--out-dir', default='out', help='directory for the result plot')
    args = parser.parse_args(argv)

    file_name, directory = weights_location()
    if not args.download and not os.path.isfile(os.path.join(directory, file_name)):
        print(f'vgg16_classify: the pretrained weights file {file_name} was not found in {directory}.\n'
              f'Place {file_name} (from {VGG16.WEIGHTS_PATH}) at {os.path.join(directory, file_name)}\n'
              f'(set DEZERO_CACHE_DIR to use another directory), or rerun with --download where a '
              f'network is available.', file=sys.stderr)
        return 1
    try:
        import PIL  # noqa: F401
    except ImportError:
        print("vgg16_classify: Pillow is needed to read images; install the 'image' extra "
              "(pip install 'dezero[image]')", file=sys.stderr)
        return 1

    try:
        image, source = load_image(args.image)
    except OSError as e:  # missing or unreadable image file
        print(f'vgg16_classify: cannot read the image {args.image}: {e}', file=sys.stderr)
        return 1
    print(f'image: {source}')
    start = time.perf_counter()
    try:
        model = VGG16(pretrained=True)
    except (OSError, ValueError) as e:  # download failure, truncated or foreign weights file
        print(f'vgg16_classify: could not load the pretrained weights: {e}', file=sys.stderr)
        return 1
    print(f'weights loaded in {time.perf_counter() - start:.1f} s')

    x = VGG16.preprocess(image)[np.newaxis]
    start = time.perf_counter()
    with dezero.test_mode(), dezero.no_grad():
        probabilities = F.softmax(model(x)).data[0]
    print(f'forward pass in {time.perf_counter() - start:.1f} s')

    labels = imagenet_labels(args.download)
    top_ids = np.argsort(probabilities)[::-1][:args.top]
    top = []
    for rank, class_id in enumerate(top_ids, start=1):
        if labels:
            name = labels.get(int(class_id), '?')
            print(f'{rank}. {name} (id {class_id}): {probabilities[class_id]:.4f}')
        else:
            name = f'id {class_id}'
            print(f'{rank}. {name}: {probabilities[class_id]:.4f}')
        top.append((name, float(probabilities[class_id])))

    os.makedirs(args.out_dir, exist_ok=True)
    path = os.path.join(args.out_dir, 'vgg16_classify.png')
    plot_result(image, top, path)
    print(f'result plotted to {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
