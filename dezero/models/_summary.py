"""``Model.summary``: a table of the layers of a model with their output shapes and parameter counts."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from dezero._tables import format_table
from dezero.core import Parameter, no_grad, test_mode
from dezero.layers.base import Layer


def _named_layers(layer: Layer, prefix: str, seen: set[int]) -> Iterator[tuple[str, Layer]]:
    """``(path, sub-layer)`` for every layer below ``layer``, depth first in registration order; a
    layer registered twice (shared) once."""
    for name in layer._params:
        child = layer.__dict__[name]
        if isinstance(child, Layer) and id(child) not in seen:
            seen.add(id(child))
            yield prefix + name, child
            yield from _named_layers(child, prefix + name + '/', seen)


def _own_params(layer: Layer) -> int:
    """Elements of the Parameters assigned to ``layer`` itself (not to its sub-layers)."""
    params = [layer.__dict__[name] for name in layer._params]
    return sum(int(p.data.size) for p in params if isinstance(p, Parameter) and p.data is not None)


def _shape_text(output: Any) -> str:
    if isinstance(output, (tuple, list)):
        return '[' + ', '.join(_shape_text(y) for y in output) + ']'
    shape = getattr(output, 'shape', None)
    return str(tuple(shape)) if shape is not None else type(output).__name__


def summarize(model: Layer, inputs: tuple[Any, ...], print_fn: Callable[[str], Any] | None) -> str:
    """Run ``model(*inputs)`` once (test mode, no graph), recording each layer's output, and return
    the table described in ``Model.summary``."""
    layers = [('(model)', model)] + list(_named_layers(model, '', {id(model)}))
    outputs: dict[int, list[str]] = {id(layer): [] for _, layer in layers}
    saved: list[tuple[Layer, Any]] = []

    def recorder(layer: Layer, forward: Callable[..., Any]) -> Callable[..., Any]:
        def record(*args: Any, **kwargs: Any) -> Any:
            output = forward(*args, **kwargs)
            outputs[id(layer)].append(_shape_text(output))
            return output
        return record

    try:
        for _, layer in layers:
            saved.append((layer, layer.__dict__.get('forward')))
            layer.__dict__['forward'] = recorder(layer, layer.forward)
        with no_grad(), test_mode():
            model(*inputs)
    finally:
        for layer, previous in saved:  # an instance attribute shadowed the class's forward
            if previous is None:
                del layer.__dict__['forward']
            else:
                layer.__dict__['forward'] = previous

    rows = []
    for path, layer in layers:
        shapes = outputs[id(layer)]
        shape = '-' if not shapes else shapes[0] + (f' x{len(shapes)}' if len(shapes) > 1 else '')
        own = _own_params(layer)
        rows.append([path, type(layer).__name__, shape, f'{own:,}' if own else '--'])
    table = format_table(['Layer', 'Type', 'Output shape', 'Params'], rows, align='<<<>')
    rule = '-' * len(table.splitlines()[1])
    n_bytes = sum(int(p.data.nbytes) for p in model.params() if p.data is not None)
    text = '\n'.join([table, rule, f'Parameters: {model.num_params():,} ({n_bytes / 2**20:.2f} MiB)',
                      f'Buffers: {model.num_params(buffers=True):,}'])
    if print_fn is not None:
        print_fn(text)
    return text
