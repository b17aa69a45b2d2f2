"""Checkpoints: the whole state of a training run in one ``.npz`` file, to stop and resume bit for bit.

Example::

    for epoch in range(start, epochs):
        for x, t in loader:
            ...
        dezero.save_checkpoint('run.npz', model, optimizer, loader, epoch=epoch + 1)

    # later, in a fresh process, after building model, optimizer (and schedule) and loader alike:
    start = dezero.load_checkpoint('run.npz', model, optimizer, loader)['epoch']

One file holds the model's weights and buffers (``Layer.state_dict``), the optimizer's state
(``Optimizer.state_dict``: per-parameter arrays, hyperparameters, step counts and the state of the
schedule attached to it), NumPy's global random state (weight initialisation, dropout and shuffling
draw from it), the loader's position and your own values (``extra``). A ``DataLoader`` draws the order
of the next epoch when an epoch ends, so pass the loader too for the resumed run to see the same
batches; save at an epoch boundary (resuming inside an epoch is not supported by ``for`` loops).
The file is an ordinary ``.npz`` archive without any pickled object (it is read with
``allow_pickle=False``, so a checkpoint from elsewhere cannot run code): arrays under ``model/``,
``optimizer/``, ``rng/``, ``loader/`` and ``extra/``, and a JSON ``metadata`` entry for the rest.
It is written to a temporary file and renamed, so ``path`` is always a complete checkpoint.
CuPy's random generator is not saved: on a GPU, dropout masks of a resumed run differ.
"""
from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from dezero._checks import describe
from dezero._files import atomic_file, read_npz
from dezero.cuda import as_numpy
from dezero.layers.base import Layer

__all__ = ['save_checkpoint', 'load_checkpoint']

_FORMAT = 'dezero-checkpoint'
_VERSION = 1


def _check_model(where: str, model: Any) -> None:
    if not isinstance(model, Layer):
        raise TypeError(f'{where}: model must be a Layer or Model, got {describe(model)}')


def _npz_path(path: str | os.PathLike) -> str:
    path = os.fspath(path)
    return path if path.endswith('.npz') else path + '.npz'


def _json_value(key: str, value: Any) -> Any:
    """``value`` made JSON-encodable (NumPy scalars become Python numbers), or a TypeError naming ``key``."""
    if isinstance(value, np.generic):
        value = value.item()
    try:
        json.dumps(value)
    except (TypeError, ValueError) as error:
        raise TypeError(f'save_checkpoint: extra value {key!r} of type {type(value).__name__} cannot be '
                        'saved; use numbers, strings, lists and dicts of them, or NumPy arrays') from error
    return value


def save_checkpoint(path: str | os.PathLike, model: Layer, optimizer: Any = None, loader: Any = None,
                    **extra: Any) -> None:
    """Write the state of a training run to ``path`` (``'.npz'`` appended when missing), atomically.

    Args:
        path: the checkpoint file; its directory must exist.
        model: the Layer or Model being trained (its Parameters and persistent buffers are saved).
        optimizer: its optimizer, saved with the schedule attached to it (None: weights only).
        loader: the training ``DataLoader``, whose order for the coming epoch is saved.
        **extra: your values: NumPy arrays, or numbers, strings, lists and dicts of them (JSON),
            such as ``epoch=3``; ``load_checkpoint`` returns them.
    """
    _check_model('save_checkpoint', model)
    path = _npz_path(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"save_checkpoint: cannot write '{path}': directory '{directory}' "
                                'does not exist')
    arrays = {f'model/{key}': as_numpy(array) for key, array in model.state_dict().items()}
    metadata: dict[str, Any] = {'format': _FORMAT, 'version': _VERSION, 'model': type(model).__name__}
    if optimizer is not None:
        state = optimizer.state_dict()
        for param_path, named in state['state'].items():
            for name, array in named.items():
                arrays[f'optimizer/{param_path}/{name}'] = as_numpy(array)
        metadata['optimizer'] = {key: value for key, value in state.items() if key != 'state'}
    generator, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    arrays['rng/keys'] = keys
    metadata['rng'] = {'generator': generator, 'position': int(position), 'has_gauss': int(has_gauss),
                       'cached_gaussian': float(cached_gaussian)}
    if loader is not None:
        arrays['loader/index'] = as_numpy(loader.index)
        metadata['loader'] = {'iteration': int(loader.iteration)}
    metadata['extra'] = {}
    for key, value in extra.items():
        if isinstance(value, np.ndarray):
            arrays[f'extra/{key}'] = value
        else:
            metadata['extra'][key] = _json_value(key, value)
    arrays['metadata'] = np.frombuffer(json.dumps(metadata).encode('utf-8'), dtype=np.uint8)
    with atomic_file(path) as tmp_path, open(tmp_path, 'wb') as file:
        np.savez(file, **arrays)
        file.flush()
        os.fsync(file.fileno())


def _read_metadata(path: str, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    raw = arrays.pop('metadata', None)
    if raw is None:
        raise ValueError(f"load_checkpoint: '{path}' is not a dezero checkpoint (no metadata entry; a file "
                         'written by save_weights is read with Layer.load_weights)')
    try:
        if not isinstance(raw, np.ndarray) or raw.dtype != np.uint8:
            raise ValueError(f'a {type(raw).__name__} entry, not the uint8 array of JSON text')
        metadata = json.loads(raw.tobytes().decode('utf-8'))
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"load_checkpoint: '{path}' has damaged metadata: {error}") from error
    if not isinstance(metadata, dict) or metadata.get('format') != _FORMAT:
        raise ValueError(f"load_checkpoint: '{path}' is not a dezero checkpoint")
    if metadata.get('version') != _VERSION:
        raise ValueError(f"load_checkpoint: '{path}' is a version {metadata.get('version')} checkpoint; "
                         f'this dezero reads version {_VERSION}')
    return metadata


def _entries(arrays: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {key[len(prefix):]: array for key, array in arrays.items() if key.startswith(prefix)}


def load_checkpoint(path: str | os.PathLike, model: Layer, optimizer: Any = None,
                    loader: Any = None) -> dict[str, Any]:
    """Restore a run saved by ``save_checkpoint`` and return its ``extra`` values.

    Build ``model``, ``optimizer`` (with ``setup`` and, if the run had one, its schedule) and
    ``loader`` as for the original run, then call this: weights, optimizer and schedule state, the
    loader's order and NumPy's global random state are restored. The checkpoint must fit: parameter
    names and shapes, optimizer class, state and schedule are checked, every difference is reported
    in one ``ValueError`` naming the file, and the model is left as it was. ``optimizer=None`` (or
    ``loader=None``) skips that part of the file; asking for a part the file lacks is an error.
    """
    where = 'load_checkpoint'
    _check_model(where, model)
    path = os.fspath(path)
    if not os.path.exists(path) and os.path.exists(path + '.npz'):
        path += '.npz'
    if not os.path.exists(path):
        raise FileNotFoundError(f"{where}: no such file '{path}'")
    arrays = read_npz(path, where, 'checkpoint')
    metadata = _read_metadata(path, arrays)

    optimizer_state = None
    if optimizer is not None:
        if 'optimizer' not in metadata:
            raise ValueError(f"{where}: '{path}' holds no optimizer state (saved with optimizer=None)")
        per_param: dict[str, dict[str, np.ndarray]] = {}
        for key, array in _entries(arrays, 'optimizer/').items():
            param_path, name = key.rsplit('/', 1)
            per_param.setdefault(param_path, {})[name] = array
        optimizer_state = dict(metadata['optimizer'], state=per_param)
    loader_index = None
    if loader is not None:
        if 'loader' not in metadata:
            raise ValueError(f"{where}: '{path}' holds no loader state (saved with loader=None)")
        loader_index = arrays['loader/index']
        if len(loader_index) != len(loader.index):
            raise ValueError(f"{where}: '{path}' holds the order of {len(loader_index)} samples, the loader "
                             f'has {len(loader.index)}')

    previous = model.state_dict()
    model._assign_arrays(_entries(arrays, 'model/'), where, f"'{path}'")
    if optimizer_state is not None:
        try:
            optimizer.load_state_dict(optimizer_state)
        except ValueError as error:
            model.load_state_dict(previous)
            raise ValueError(f"{where}: '{path}': {error}") from error
    if loader_index is not None:
        loader.index = loader_index
        loader.iteration = metadata['loader']['iteration']
    rng = metadata['rng']
    np.random.set_state((rng['generator'], arrays['rng/keys'], rng['position'], rng['has_gauss'],
                         rng['cached_gaussian']))
    extra = dict(metadata['extra'])
    extra.update(_entries(arrays, 'extra/'))
    return extra
