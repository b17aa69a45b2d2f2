"""Layer, the container of parameters, and the basic layers: Linear, BatchNorm, EmbedID, Dropout,
LayerNorm.

How to write a layer (what Conv2d, RNN, VGG16... build on):

- call ``super().__init__()`` first, then assign ``Parameter``s and sub-``Layer``s to attributes: each
  assignment registers the name, in assignment order, and ``params()`` walks them in that order;
- a parameter whose shape depends on the input is created as ``Parameter(None, name='W')`` in
  ``__init__`` and filled (``self.W.data = ...``) at the first ``forward`` with the input's array
  module (``xp = dezero.cuda.get_array_module(x)``), so it is born on the input's device;
  ``load_weights`` also fills such a parameter;
- array state that is not trained (running statistics) is declared with ``register_buffer``: it moves
  with ``to_gpu``/``to_cpu``, is saved with the weights (unless ``persistent=False``) and never gets a
  gradient;
- define ``forward(*inputs)``; ``layer(*inputs)`` calls it.
"""
from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

import dezero.functions as F
from dezero._checks import check_directory, describe, dtype_of, in_range, positive_int
from dezero._files import atomic_file, read_npz
from dezero.core import Parameter, Variable
from dezero.cuda import array_types, as_cupy, as_numpy, get_array_module

__all__ = ['Layer', 'Linear', 'BatchNorm', 'EmbedID', 'Dropout', 'LayerNorm']


class Layer:
    """Base of every layer and model: a tree of named Parameters, sub-Layers and array buffers.

    Assigning a ``Parameter`` or a ``Layer`` to an attribute registers it under that name (re-assigning
    keeps its place; assigning anything else removes the name), like PyTorch's ``Module``. ``params()``
    yields every Parameter of the tree in that order, each once (a shared parameter or sub-layer is
    visited once). Weights are saved as an ``.npz`` archive whose keys are the slash-joined attribute
    paths (``'l0/W'``).

    ``layer(*inputs)`` returns ``forward(*inputs)``: one output, or a tuple for several. (The book also
    keeps weak references to the inputs and outputs; nothing reads them, so they are not kept.)

    Example::

        class TwoLayerNet(Layer):
            def __init__(self):
                super().__init__()
                self.l1 = Linear(10)
                self.l2 = Linear(1)

            def forward(self, x):
                return self.l2(F.sigmoid(self.l1(x)))

        model = TwoLayerNet()
        y = model(np.random.rand(100, 1))      # (100, 1)
        [p.shape for p in model.params()]      # [(1, 10), (10,), (10, 1), (1,)]
    """

    def __init__(self) -> None:
        # setdefault: a subclass that assigned attributes before calling super().__init__() keeps them.
        self.__dict__.setdefault('_params', {})
        self.__dict__.setdefault('_buffers', {})

    # --- registration -------------------------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        state = self.__dict__
        if '_params' not in state:
            Layer.__init__(self)
        registry: dict[str, None] = state['_params']
        buffers: dict[str, bool] = state['_buffers']
        if isinstance(value, (Parameter, Layer)):
            registry[name] = None  # an existing key keeps its position
            buffers.pop(name, None)
            if isinstance(value, Parameter) and getattr(value, '_owner', None) is None:
                value._owner = type(self).__name__  # named by the error if it is used while still lazy
        else:
            registry.pop(name, None)
            if name in buffers and value is not None and not isinstance(value, array_types):
                raise TypeError(f'{type(self).__name__}: buffer {name!r} holds an array or None, got '
                                f'{type(value).__name__}; delete the attribute first to reuse the name')
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        self._params.pop(name, None)
        self._buffers.pop(name, None)
        object.__delattr__(self, name)

    def register_buffer(self, name: str, value: Any = None, persistent: bool = True) -> None:
        """Declare array state ``name`` (an array or None) that is not a Parameter.

        A buffer moves with ``to_gpu``/``to_cpu``, is saved and loaded with the weights when
        ``persistent`` and never receives a gradient (BatchNorm's running mean and variance). Later
        assignments of an array or None to the name keep it a buffer.
        """
        if value is not None and not isinstance(value, array_types):
            raise TypeError(f'{type(self).__name__}.register_buffer: {name!r} must be an array or None, '
                            f'got {type(value).__name__}')
        if name in self.__dict__.get('_params', {}):
            raise ValueError(f'{type(self).__name__}.register_buffer: {name!r} is already a '
                             'Parameter or Layer attribute')
        self.__dict__.setdefault('_buffers', {})[name] = persistent
        setattr(self, name, value)

    # --- traversal ----------------------------------------------------------------------------
    def params(self) -> Iterator[Parameter]:
        """Yield every Parameter of this layer and its sub-layers, recursively, in assignment order."""
        for _, owner, name, is_param in self._entries('', set()):
            if is_param:
                yield owner.__dict__[name]

    def named_params(self, prefix: str = '') -> Iterator[tuple[str, Parameter]]:
        """Yield ``(path, Parameter)`` pairs in ``params()`` order; paths look like ``'l0/W'``."""
        for path, owner, name, is_param in self._entries(prefix, set()):
            if is_param:
                yield path, owner.__dict__[name]

    def _entries(self, prefix: str, seen: set[int]) -> Iterator[tuple[str, Layer, str, bool]]:
        """Yield ``(path, owning layer, attribute name, is_parameter)`` for every Parameter and buffer
        of the tree; a Parameter or Layer reached twice (shared) is yielded once."""
        state = self.__dict__
        for name in self._params:
            obj = state[name]
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            if isinstance(obj, Layer):
                yield from obj._entries(prefix + name + '/', seen)
            else:
                yield prefix + name, self, name, True
        for name in self._buffers:
            yield prefix + name, self, name, False

    def _flatten_params(self, params_dict: dict[str, Parameter], parent_key: str = '') -> None:
        """Fill ``params_dict`` with ``path -> Parameter`` (the book's helper; paths joined by '/')."""
        prefix = parent_key + '/' if parent_key else ''
        for path, param in self.named_params(prefix):
            params_dict[path] = param

    def cleargrads(self) -> None:
        """Set the gradient of every Parameter to None."""
        for param in self.params():
            param.cleargrad()

    # --- running ------------------------------------------------------------------------------
    def __call__(self, *inputs: Any, **kwargs: Any) -> Any:
        outputs = self.forward(*inputs, **kwargs)
        if outputs.__class__ is tuple and len(outputs) == 1:
            return outputs[0]
        return outputs

    def forward(self, *inputs: Any) -> Any:
        raise NotImplementedError(f'{type(self).__name__}.forward is not implemented')

    # --- devices ------------------------------------------------------------------------------
    def to_cpu(self) -> Layer:
        """Move every Parameter and buffer of the tree to NumPy arrays; returns self."""
        self._move(as_numpy)
        return self

    def to_gpu(self) -> Layer:
        """Move every Parameter and buffer of the tree to CuPy arrays; returns self. Parameters still
        None are created on the device of their first input."""
        self._move(as_cupy)
        return self

    def _move(self, convert: Any) -> None:
        for _, owner, name, is_param in self._all_entries():
            if is_param:
                param = owner.__dict__[name]
                if param.data is not None:
                    param.data = convert(param.data)
                if param.grad is not None and param.grad.data is not None:
                    param.grad.data = convert(param.grad.data)
            else:
                value = owner.__dict__[name]
                if value is not None:
                    setattr(owner, name, convert(value))

    def _all_entries(self) -> Iterator[tuple[str, Layer, str, bool]]:
        return self._entries('', set())

    # --- saving and loading -------------------------------------------------------------------
    def _persistent_arrays(self) -> dict[str, tuple[Layer, str, bool]]:
        return {path: (owner, name, is_param) for path, owner, name, is_param in self._all_entries()
                if is_param or owner._buffers[name]}

    def save_weights(self, path: str | os.PathLike) -> None:
        """Write every Parameter and persistent buffer to the NumPy archive ``path``.

        As with ``np.savez``, ``'.npz'`` is appended when ``path`` does not end with it. Keys are the
        attribute paths (``'l0/W'``, ``'bn/avg_mean'``); entries still None (lazy, never run) are left
        out. GPU arrays are copied to the host; the layer stays on its device. The archive is written to
        a temporary file in the same directory and renamed over ``path``, so ``path`` is either the old
        file or the complete new one, never half-written.
        """
        path = os.fspath(path)
        if not path.endswith('.npz'):
            path += '.npz'
        where = f'{type(self).__name__}.save_weights'
        arrays = {key: as_numpy(data) for key, data in self.state_dict().items()}
        check_directory(where, path)
        with atomic_file(path) as tmp_path, open(tmp_path, 'wb') as file:
            np.savez(file, **arrays)
            file.flush()
            os.fsync(file.fileno())

    def load_weights(self, path: str | os.PathLike) -> None:
        """Read an archive written by ``save_weights`` into this layer's Parameters and buffers.

        ``path`` may omit the ``'.npz'`` that ``save_weights`` appended. The names and shapes must match
        the layer's: missing keys, unexpected keys and shape mismatches are all reported in one
        ``ValueError`` naming the file, and nothing is changed then. A Parameter or buffer still None
        (lazy) is filled from the file. Arrays are placed on the layer's device (that of its first
        existing array; NumPy when it has none) and keep the dtype of the array they replace.
        A missing file raises ``FileNotFoundError``; a truncated or foreign file ``ValueError``.
        """
        path = os.fspath(path)
        where = f'{type(self).__name__}.load_weights'
        if not os.path.exists(path) and os.path.exists(path + '.npz'):
            path += '.npz'
        if not os.path.exists(path):
            raise FileNotFoundError(f"{where}: no such file '{path}'")
        if os.path.isdir(path):
            raise IsADirectoryError(f"{where}: '{path}' is a directory; expected an .npz weights file")
        self._assign_arrays(read_npz(path, where, 'weights archive'), where, f"'{path}'")

    def _assign_arrays(self, file_arrays: dict[str, Any], where: str, source: str) -> None:
        """Check ``file_arrays`` (path -> array) against the layer's Parameters and persistent buffers
        and assign them, or raise one ``ValueError`` naming ``source`` and every difference."""
        targets = self._persistent_arrays()
        current = {}
        for key, (owner, name, is_param) in targets.items():
            value = owner.__dict__[name]
            current[key] = value.data if is_param else value
        missing = [key for key, data in current.items() if data is not None and key not in file_arrays]
        unexpected = [key for key in file_arrays if key not in targets]
        mismatched = [f'{key}: file {file_arrays[key].shape}, model {data.shape}'
                      for key, data in current.items()
                      if data is not None and key in file_arrays and file_arrays[key].shape != data.shape]
        if missing or unexpected or mismatched:
            problems = []
            if missing:
                problems.append(f'missing keys {missing}')
            if unexpected:
                problems.append(f'unexpected keys {unexpected}')
            if mismatched:
                problems.append('shape mismatches [' + '; '.join(mismatched) + ']')
            raise ValueError(f"{where}: {source} does not fit {type(self).__name__}: " + ', '.join(problems))

        device_array = next((data for data in current.values() if data is not None), None)
        on_gpu = device_array is not None and not isinstance(device_array, np.ndarray)
        for key, array in file_arrays.items():
            owner, name, is_param = targets[key]
            old = current[key]
            if old is not None and array.dtype != old.dtype:
                array = array.astype(old.dtype)
            array = as_cupy(array) if on_gpu else as_numpy(array)
            if is_param:
                owner.__dict__[name].data = array
            else:
                setattr(owner, name, array)

    # --- state of a run: in-memory weights and sizes --------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Copies of every Parameter and persistent buffer, keyed by the paths ``save_weights`` uses
        (``'l0/W'``, ``'bn/avg_mean'``), on the layer's device; entries still None (lazy) are left out.

        Example: ``best = model.state_dict()`` ... ``model.load_state_dict(best)``.
        """
        state = {}
        for key, (owner, name, is_param) in self._persistent_arrays().items():
            value = owner.__dict__[name]
            data = value.data if is_param else value
            if data is not None:
                state[key] = data.copy()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Copy the arrays of ``state`` (as from ``state_dict()``) into the Parameters and buffers.

        As ``load_weights``: names and shapes must match (all differences are reported in one
        ``ValueError`` and nothing is changed then), lazy entries are filled, arrays go to the layer's
        device and keep the dtype of the array they replace.
        """
        if not isinstance(state, Mapping):
            raise TypeError(f'{type(self).__name__}.load_state_dict: expected a dict of arrays by '
                            f'parameter path, as state_dict() returns; got {describe(state)}')
        self._assign_arrays({key: array.copy() for key, array in state.items()},
                            f'{type(self).__name__}.load_state_dict', 'the state dict')

    def num_params(self, buffers: bool = False) -> int:
        """The number of elements in all Parameters (0 for those still None); with ``buffers``, the
        number in all array buffers instead (running statistics)."""
        total = 0
        for _, owner, name, is_param in self._all_entries():
            if is_param != buffers:
                value = owner.__dict__[name]
                data = value.data if is_param else value
                total += 0 if data is None else int(data.size)
        return total


# =============================================================================
# Basic layers
# =============================================================================
class Linear(Layer):
    """Fully connected layer: ``y = x @ W + b`` with ``x (N, in_size)``, ``W (in_size, out_size)``,
    ``b (out_size,)`` → ``y (N, out_size)``.

    When ``in_size`` is None, ``W`` is created at the first call from the input's last axis. ``W`` is
    drawn ``randn(in, out) * sqrt(1/in)`` in ``dtype`` (with NumPy's global generator, as in the book);
    ``b`` starts at zero; ``nobias=True`` leaves it out.

    Example: ``Linear(3)(np.zeros((5, 2), np.float32)).shape`` → ``(5, 3)``.
    """

    def __init__(self, out_size: int, nobias: bool = False, dtype: Any = np.float32,
                 in_size: int | None = None) -> None:
        super().__init__()
        self.in_size = None if in_size is None else positive_int('Linear', 'in_size', in_size)
        self.out_size = positive_int('Linear', 'out_size', out_size)
        self.dtype = dtype_of('Linear', 'dtype', dtype)
        self.W = Parameter(None, name='W')
        if in_size is not None:
            self._init_W()
        self.b = None if nobias else Parameter(np.zeros(self.out_size, dtype=self.dtype), name='b')

    def _init_W(self, xp: Any = np) -> None:
        in_size, out_size = self.in_size, self.out_size
        # A Python float scale keeps the float32 draw float32 (an np.float64 scalar would promote it).
        W = xp.random.randn(in_size, out_size).astype(self.dtype)
        W *= math.sqrt(1.0 / in_size)
        self.W.data = W

    def forward(self, x: Any) -> Variable:
        if self.W.data is None:
            ndim = getattr(x, 'ndim', None)
            if ndim is None:
                raise TypeError(f'Linear: expected a Variable or an array of shape (N, in_size), got '
                                f'{describe(x)}')
            if ndim < 2:
                raise ValueError(f'Linear: expected an input of shape (N, in_size), got shape {x.shape}')
            self.in_size = x.shape[-1]
            self._init_W(get_array_module(x))
        return F.linear(x, self.W, self.b)


class BatchNorm(Layer):
    """Batch normalisation over axis 0 (and H, W for ``(N, C, H, W)`` input): ``gamma * x_hat + beta``.

    ``gamma``/``beta`` (Parameters) and the running statistics ``avg_mean``/``avg_var`` (buffers: saved
    with the weights, never trained) have shape ``(C,)`` = ``(x.shape[1],)`` and the input's dtype; they
    are created at the first call, or at construction when ``size`` (C) is given (then in ``dtype``),
    so that a network's parameters exist, and a weight file is checked completely, before any call.
    In training mode the batch statistics are used and the running ones updated in place
    (``avg = decay * avg + (1 - decay) * batch``); in test mode the running ones are used.
    """

    def __init__(self, decay: float = 0.9, eps: float = 2e-5, size: int | None = None,
                 dtype: Any = np.float32) -> None:
        super().__init__()
        self.decay = decay
        self.eps = eps
        self.gamma = Parameter(None, name='gamma')
        self.beta = Parameter(None, name='beta')
        self.register_buffer('avg_mean', None)
        self.register_buffer('avg_var', None)
        if size is not None:
            self._init_params(np, positive_int('BatchNorm', 'size', size),
                              dtype_of('BatchNorm', 'dtype', dtype))

    def _init_params(self, xp: Any, size: int, dtype: Any) -> None:
        if self.gamma.data is None:
            self.gamma.data = xp.ones(size, dtype=dtype)
        if self.beta.data is None:
            self.beta.data = xp.zeros(size, dtype=dtype)
        if self.avg_mean is None:
            self.avg_mean = xp.zeros(size, dtype=dtype)
        if self.avg_var is None:
            self.avg_var = xp.ones(size, dtype=dtype)

    def forward(self, x: Any) -> Variable:
        if self.avg_mean is None or self.gamma.data is None:
            if x.ndim not in (2, 4):
                raise ValueError(f'BatchNorm: expected an input of shape (N, C) or (N, C, H, W), '
                                 f'got shape {x.shape}')
            self._init_params(get_array_module(x), x.shape[1], x.dtype)
        return F.batch_norm(x, self.gamma, self.beta, self.avg_mean, self.avg_var,
                            decay=self.decay, eps=self.eps)


class EmbedID(Layer):
    """Embedding table: ``y = W[x]`` with integer ids ``x`` of any shape and ``W (in_size, out_size)``
    → ``y (*x.shape, out_size)``. ``W`` is drawn ``randn`` in ``dtype`` (float32)."""

    def __init__(self, in_size: int, out_size: int, dtype: Any = np.float32) -> None:
        super().__init__()
        self.in_size = positive_int('EmbedID', 'in_size', in_size)
        self.out_size = positive_int('EmbedID', 'out_size', out_size)
        dtype = dtype_of('EmbedID', 'dtype', dtype)
        self.W = Parameter(np.random.randn(self.in_size, self.out_size).astype(dtype), name='W')

    def forward(self, x: Any) -> Variable:
        return F.embed_id(x, self.W)


class Dropout(Layer):
    """Inverted dropout: in training mode each element is zeroed with probability ``p`` and the rest
    scaled by ``1 / (1 - p)``; identity in test mode. Any shape; no parameters."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        in_range('Dropout', 'p', p, 0, 1)
        self.p = p

    def forward(self, x: Any) -> Variable:
        return F.dropout(x, self.p)


class LayerNorm(Layer):
    """Layer normalisation over the last axis: ``gamma * (x - mean) / sqrt(var + eps) + beta`` with
    ``x (..., normalized_size)``; ``gamma`` (ones) and ``beta`` (zeros) have shape ``(normalized_size,)``.
    """

    def __init__(self, normalized_size: int, eps: float = 1e-5, dtype: Any = np.float32) -> None:
        super().__init__()
        self.normalized_size = positive_int('LayerNorm', 'normalized_size', normalized_size)
        self.eps = eps
        self.gamma = Parameter(np.ones(normalized_size, dtype=dtype), name='gamma')
        self.beta = Parameter(np.zeros(normalized_size, dtype=dtype), name='beta')

    def forward(self, x: Any) -> Variable:
        return F.layer_norm(x, self.gamma, self.beta, eps=self.eps)
