"""Model (a Layer that can plot itself) and the generic networks Sequential and MLP."""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

import dezero.functions as F
from dezero import utils
from dezero._checks import check_callable, describe
from dezero.core import Variable, using_config
from dezero.layers.base import Layer, Linear

__all__ = ['Model', 'Sequential', 'MLP']


class Model(Layer):
    """A Layer that is a whole network; adds ``plot``."""

    def plot(self, *inputs: Any, to_file: str = 'model.png') -> None:
        """Run one forward pass on ``inputs`` and draw its graph to ``to_file`` with Graphviz (format
        from the extension). With several outputs, the graph behind the first is drawn."""
        with using_config('enable_backprop', True):
            y = self.forward(*inputs)
        if isinstance(y, (tuple, list)):
            y = y[0]
        utils.plot_dot_graph(y, verbose=True, to_file=to_file)

    def summary(self, *inputs: Any, print_fn: Callable[[str], Any] | None = print) -> str:
        """A table of every layer: path, type, output shape and parameter count, with totals.

        Runs one forward pass on ``inputs`` (e.g. one batch of shape ``(1, C, H, W)``) in test mode
        without recording a graph (lazy layers are created by it, as by a first call). A row per layer,
        the model first as ``(model)``, then each sub-layer by its path (``res2/a/conv1``); ``Params``
        counts the Parameters assigned to that layer itself (``--`` for none), so the column adds up to
        the total; a layer called several times shows its first output shape and ``xN``, one never
        called ``-``. Then the totals: the elements of all Parameters (``num_params()``) with their
        size, and of the buffers (running statistics). The text goes to ``print_fn`` (None: not
        printed) and is returned.
        """
        from dezero.models._summary import summarize
        return summarize(self, inputs, print_fn)


class Sequential(Model):
    """Apply ``layers`` in order: ``Sequential(L.Linear(10), F.relu, L.Linear(1))(x)``.

    Items are Layers or plain callables (activation functions). The i-th item, when it is a Layer, is
    registered as ``l<i>`` (its position, as PyTorch's Sequential numbers its children), so weights
    are saved under ``l0/W``, ``l2/W``... ``len``, iteration and indexing reach the items.
    """

    def __init__(self, *layers: Layer | Callable[[Any], Any]) -> None:
        super().__init__()
        for i, layer in enumerate(layers):
            check_callable('Sequential', f'item {i}', layer, 'a Layer or a callable',
                           'pass the layers as separate arguments: Sequential(*layers)', Layer)
            if isinstance(layer, Layer):
                setattr(self, f'l{i}', layer)
        self.layers = list(layers)

    def forward(self, x: Any) -> Any:
        for layer in self.layers:
            x = layer(x)
        return x

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self) -> Iterator[Layer | Callable[[Any], Any]]:
        return iter(self.layers)

    def __getitem__(self, index: int) -> Layer | Callable[[Any], Any]:
        return self.layers[index]


class MLP(Model):
    """Multi-layer perceptron: ``Linear`` layers ``l0, l1, ...`` of output sizes ``fc_output_sizes``
    with ``activation`` between them and none after the last. ``(N, in) → (N, fc_output_sizes[-1])``;
    input sizes are inferred at the first call.

    Example: ``MLP((10, 1))(np.random.rand(100, 1)).shape`` → ``(100, 1)``.
    """

    def __init__(self, fc_output_sizes: Sequence[int],
                 activation: Callable[[Any], Variable] = F.sigmoid) -> None:
        super().__init__()
        try:
            sizes = list(fc_output_sizes)
        except TypeError:
            raise TypeError(f'MLP: fc_output_sizes must be a sequence of positive ints such as (10, 1), '
                            f'got {describe(fc_output_sizes)}') from None
        check_callable('MLP', 'activation', activation)
        if not sizes or not all(isinstance(size, (int, np.integer)) and size > 0 for size in sizes):
            raise ValueError(f'MLP: fc_output_sizes must be a non-empty sequence of positive ints, '
                             f'got {fc_output_sizes!r}')
        self.activation = activation
        self.layers = []
        for i, out_size in enumerate(sizes):
            layer = Linear(out_size)
            setattr(self, f'l{i}', layer)
            self.layers.append(layer)

    def forward(self, x: Any) -> Variable:
        for layer in self.layers[:-1]:
            x = self.activation(layer(x))
        return self.layers[-1](x)
