"""Ship the trained MLP: export it to ONNX, run the test set through ONNX Runtime, compare with dezero.

Loads the weights ``make demo`` saves (``out/fashion_mnist_mlp.npz``, written by
``train_fashion_mnist.py``: an MLP (512, 256, 10) with ReLU) or, when they are absent, trains the same
MLP briefly. Exports it with ``dezero.onnx.export`` (symbolic batch axis), then classifies the test set
three ways: with dezero, with ONNX Runtime reading the exported file, and with the file loaded back by
``dezero.onnx.load``. The accuracies agree to the last digit.

Like ``make demo``, it uses Fashion-MNIST (Debian's ``dataset-fashion-mnist`` or ``~/.dezero``) and
falls back to the Spiral dataset without it. Needs the 'onnx' extra (``pip install 'dezero[onnx]'``).

Run: ``python examples/export_onnx.py [--weights out/fashion_mnist_mlp.npz]``. Writes
``out/<dataset>_mlp.onnx``.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from _common import add_subset_options, example_parser, int_at_least
from train_fashion_mnist import load_data, train_epoch

import dezero
import dezero.functions as F
import dezero.onnx
from dezero import DataLoader, optimizers
from dezero.models import MLP


def train_briefly(model: MLP, train_set: dezero.Dataset, epochs: int, batch_size: int) -> None:
    """Adam on softmax cross-entropy for ``epochs`` epochs (the recipe of train_fashion_mnist.py)."""
    optimizer = optimizers.Adam(alpha=1e-3).setup(model)
    loader = DataLoader(train_set, batch_size)
    for epoch in range(1, epochs + 1):
        train_epoch(model, optimizer, loader, f'training epoch {epoch}/{epochs}')


def scores(predict: Callable[[np.ndarray], np.ndarray], images: np.ndarray, batch_size: int) -> np.ndarray:
    """``predict`` applied to ``images`` batch by batch: the ``(N, classes)`` scores."""
    return np.concatenate([predict(images[start:start + batch_size])
                           for start in range(0, len(images), batch_size)])


def onnxruntime_session(path: str) -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise SystemExit("export_onnx.py needs ONNX Runtime, part of the 'onnx' extra: "
                         "pip install 'dezero[onnx]'") from None
    return onnxruntime.InferenceSession(path, providers=['CPUExecutionProvider'])


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = example_parser(__doc__)
    parser.add_argument('--weights', default=None,
                        help='weights of the MLP (None: out/<dataset>_mlp.npz, where make demo saves them)')
    parser.add_argument('--epochs', type=int_at_least(1), default=1,
                        help='epochs of training when the weights are absent')
    add_subset_options(parser)
    parser.add_argument('--batch-size', type=int_at_least(1), default=1000,
                        help='images per batch, in every runtime')
    parser.add_argument('--opset', type=int, default=dezero.onnx.DEFAULT_OPSET, help='ONNX opset to write')
    parser.add_argument('--seed', type=int, default=0, help='seed of the weights and shuffling of training')
    parser.add_argument('--out-dir', default='out', help='directory of the ONNX file')
    args = parser.parse_args(argv)

    np.random.seed(args.seed)
    name, train_set, test_set, sizes = load_data(args.train_size, args.test_size)
    weights = args.weights or os.path.join('out', f'{name}_mlp.npz')
    model = MLP(sizes, activation=F.relu)
    start = time.perf_counter()
    if os.path.exists(weights):
        model.load_weights(weights)
        print(f'weights: {weights}')
        trained = False
    else:
        print(f'{weights} not found (make demo writes it): training MLP {sizes} for {args.epochs} epoch(s) '
              f'on {len(train_set)} {name} samples')
        train_briefly(model, train_set, args.epochs, 100)
        trained = True

    images = np.stack([test_set[i][0] for i in range(len(test_set))]).astype(np.float32)
    labels = np.asarray(test_set.label)

    os.makedirs(args.out_dir, exist_ok=True)
    path = os.path.join(args.out_dir, f'{name}_mlp.onnx')
    exported = dezero.onnx.export(model, images[:2], path=path, input_names=['images'],
                                  output_names=['scores'], opset=args.opset)
    operators = sorted({node.op_type for node in exported.graph.node})
    print(f'exported {path}: {os.path.getsize(path) / 2 ** 10:.0f} KiB, opset {args.opset}, operators '
          f'{", ".join(operators)}, inputs (batch, {images.shape[1]})')

    def with_dezero(batch: np.ndarray) -> np.ndarray:
        with dezero.no_grad(), dezero.test_mode():
            return model(batch).data

    session = onnxruntime_session(path)
    reloaded = dezero.onnx.load(path)

    def with_reloaded(batch: np.ndarray) -> np.ndarray:
        with dezero.no_grad(), dezero.test_mode():
            return reloaded(batch).data

    results = {
        'dezero': scores(with_dezero, images, args.batch_size),
        'ONNX Runtime': scores(lambda batch: session.run(None, {'images': batch})[0], images,
                               args.batch_size),
        'dezero.onnx.load': scores(with_reloaded, images, args.batch_size),
    }
    predictions = {runtime: s.argmax(axis=1) for runtime, s in results.items()}
    accuracies = {runtime: float(np.mean(p == labels)) for runtime, p in predictions.items()}
    difference = float(np.abs(results['ONNX Runtime'] - results['dezero']).max())
    disagreements = int(np.sum(predictions['ONNX Runtime'] != predictions['dezero']))
    print(f'test accuracy on {len(labels)} {name} samples:')
    for runtime, accuracy in accuracies.items():
        correct = int(np.sum(predictions[runtime] == labels))
        print(f'  {runtime:<18} {accuracy:.4f} ({correct}/{len(labels)})')
    print(f'ONNX Runtime vs dezero: {disagreements} predictions differ, largest score difference '
          f'{difference:.2g} ({time.perf_counter() - start:.1f} s)')
    print(f'files written: {path}')
    return {'dezero_accuracy': accuracies['dezero'], 'onnxruntime_accuracy': accuracies['ONNX Runtime'],
            'reloaded_accuracy': accuracies['dezero.onnx.load'], 'max_score_difference': difference,
            'disagreements': disagreements, 'trained': trained, 'files': [path]}


if __name__ == '__main__':
    main()
