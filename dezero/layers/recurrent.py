"""Recurrent layers: RNN, LSTM (the book's) and GRU (beyond). Each call advances one time step.

A recurrent layer keeps its hidden state between calls, so ``layer(x_t)`` for t = 0, 1, ... runs a
sequence one step at a time. ``reset_state()`` starts a new sequence. For truncated backpropagation
through time, call ``loss.unchain_backward()`` after each update: the state stays, the graph behind it
goes.

Parameter names (the keys in ``save_weights`` files) follow the book: one ``Linear`` per gate and
source, ``x2*`` for the input projection (with bias) and ``h2*`` for the hidden projection (no bias,
except GRU's ``h2n``, which PyTorch's formulation needs inside the reset gate). Separate projections
were kept rather than one fused ``Linear`` of width 4H so that the book's weight files stay loadable;
LSTM and GRU keep the data of their gate weights as slices of one packed array (``_PackedWeights``),
so that their fused step reads every gate without copying.
"""
from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

from dezero._checks import describe, positive_int
from dezero.core import Config, Parameter, Variable
from dezero.cuda import get_array_module
from dezero.layers.base import Layer, Linear
from dezero.ops.math import tanh
from dezero.ops.recurrent import PackedGates, gate_rows, gru_step, lstm_step, pack_gates

__all__ = ['RNN', 'LSTM', 'GRU']


def _check_sizes(layer: str, hidden_size: Any, in_size: Any) -> int:
    """The hidden size as an int; both sizes must be positive ints (``in_size`` may be None)."""
    if in_size is not None:
        positive_int(layer, 'in_size', in_size)
    return positive_int(layer, 'hidden_size', hidden_size)


def _check_step_input(layer: str, x: Any, state: Variable | None) -> None:
    """Reject a step input that is not ``(N, in_size)`` or whose batch differs from the state's."""
    shape = getattr(x, 'shape', None)
    if shape is None:
        raise TypeError(f'{layer}: expected a Variable or an array of shape (N, in_size) for one time '
                        f'step, got {describe(x)}')
    if len(shape) != 2:
        raise ValueError(f'{layer}: expected an input of shape (N, in_size) for one time step, '
                         f'got {type(x).__name__} of shape {shape}')
    if state is not None and shape[0] != state.shape[0]:
        raise ValueError(f'{layer}: the input has a batch of {shape[0]} rows but the hidden state has '
                         f'{state.shape[0]}; call reset_state() before changing the batch size')


def _build_input_weights(linears: Any, x: Any) -> None:
    """Create the input projections' weights at the first call, from ``x``'s width, in the book's
    order (so a seeded run draws the same weights as when each projection was called in turn)."""
    for linear in linears:
        if linear.W.data is None:
            linear.in_size = x.shape[1]
            linear._init_W(get_array_module(x))


class _PackedWeights:
    """Gate weights of a recurrent layer kept packed: gate ``g``'s Parameters (an LSTM's ``h2f/W``,
    ``x2f/W``, ``x2f/b``, say) are consecutive rows of block ``g`` of one array ``packed (G, R, H)``
    (``PackedGates``' layout), handed to the fused step as one Variable.

    The Parameters stay separate, under the book's names; only their ``data`` are views of ``packed``.
    An optimizer updates them in place, so ``packed`` always holds their values, and the packed
    Variable (``PackedGates``: no copy) is made once and shared by the steps until the graph behind
    it is cut (``unchain_backward``): each step's weight gradient then adds into one array, split
    into the Parameters' gradients once per backward pass. When a Parameter's data is replaced
    (``load_weights``, ``to_gpu``, an assignment), the next call copies the values into a new
    ``packed``. Weights that are not the layer's own Parameters with fitting shapes and one dtype
    (``functional_call`` substitutes Variables) are packed, copied, at each call.
    """

    def __init__(self, params: Sequence[Sequence[Parameter]]) -> None:
        self.params = tuple(tuple(gate) for gate in params)
        self.flat_params = tuple(p for gate in self.params for p in gate)
        self.views: tuple = ()
        self.packed: Any = None
        self.variables: dict[tuple[int, int], Variable] = {}  # (first gate, first weight) -> Variable

    def variable(self, weights: Sequence[Sequence[Variable]], first_gate: int = 0,
                 first_weight: int = 0) -> Variable:
        """The packed ``weights[first_gate:]``, each gate's from its weight ``first_weight`` on;
        ``weights`` are the layer's current weight objects, gate by gate."""
        chosen = [gate[first_weight:] for gate in weights[first_gate:]]
        flat = [w for gate in weights for w in gate]
        # Checked at every step: identity comparisons mapped in C, not a generator per weight.
        if not all(map(operator.is_, flat, self.flat_params)):
            return pack_gates(chosen)
        if not self.views or not all(map(operator.is_, [w.data for w in flat], self.views)):
            if not self._pack():
                return pack_gates(chosen)
        key = (first_gate, first_weight)
        y = self.variables.get(key)
        if y is None or (y.creator is None and Config.enable_backprop):
            row = sum(gate_rows(p.data) for p in self.params[0][:first_weight])
            y = self.variables[key] = PackedGates(len(chosen), self.packed[first_gate:, row:])(
                *[w for gate in chosen for w in gate])
        return y

    def _pack(self) -> bool:
        """Copy the Parameters' data into a new ``packed`` and make their data its slices; False when
        their shapes, dtypes or devices do not fit one array (nothing is changed then)."""
        arrays = [[p.data for p in gate] for gate in self.params]
        first = arrays[0][0]
        shapes = [a.shape for a in arrays[0]]
        if any([a.shape for a in gate] != shapes for gate in arrays) or any(
                len(s) not in (1, 2) or s[-1] != first.shape[-1] for s in shapes) or any(
                a.dtype != first.dtype or type(a) is not type(first) for gate in arrays for a in gate):
            return False
        rows = [gate_rows(a) for a in arrays[0]]
        packed = get_array_module(first).empty((len(arrays), sum(rows), first.shape[-1]), dtype=first.dtype)
        for g, gate in enumerate(self.params):
            row = 0
            for param, count in zip(gate, rows):
                view = packed[g, row:row + count] if param.data.ndim == 2 else packed[g, row]
                view[...] = param.data
                param.data = view
                row += count
        self.packed, self.variables = packed, {}
        self.views = tuple(p.data for gate in self.params for p in gate)
        return True

    def __getstate__(self) -> dict[str, Any]:
        # Packed again after unpickling (the Variables hold a graph, and views unpickle as copies).
        return {'params': self.params}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state['params'])


class RNN(Layer):
    """Elman recurrent layer: ``h_t = tanh(x2h(x_t) + h2h(h_{t-1}))``.

    ``x_t (N, in_size)`` → ``h_t (N, hidden_size)``, also kept as ``self.h`` for the next step. The first
    step after ``reset_state()`` has no previous state and uses ``x2h`` alone. ``in_size`` None means
    "taken from the first input". Parameters: ``x2h/W (in_size, H)``, ``x2h/b (H,)``, ``h2h/W (H, H)``.

    Example: ``rnn = RNN(10); h = rnn(np.zeros((2, 3), np.float32))`` → ``h.shape == (2, 10)``.
    """

    def __init__(self, hidden_size: int, in_size: int | None = None) -> None:
        super().__init__()
        hidden_size = _check_sizes('RNN', hidden_size, in_size)
        self.hidden_size = hidden_size
        self.x2h = Linear(hidden_size, in_size=in_size)
        # hidden -> hidden whatever the input width is (the book passes in_size here, a bug when
        # in_size != hidden_size).
        self.h2h = Linear(hidden_size, in_size=hidden_size, nobias=True)
        self.h: Variable | None = None

    def reset_state(self) -> None:
        """Forget the hidden state: the next call starts a new sequence."""
        self.h = None

    def forward(self, x: Any) -> Variable:
        _check_step_input('RNN', x, self.h)
        if self.h is None:
            h_new = tanh(self.x2h(x))
        else:
            h_new = tanh(self.x2h(x) + self.h2h(self.h))
        self.h = h_new
        return h_new


class LSTM(Layer):
    """Long short-term memory layer (one step per call).

    With ``σ`` the sigmoid: ``f = σ(x2f(x) + h2f(h))``, ``i = σ(x2i(x) + h2i(h))``,
    ``o = σ(x2o(x) + h2o(h))``, ``u = tanh(x2u(x) + h2u(h))``; then ``c' = f * c + i * u`` and
    ``h' = o * tanh(c')``. After ``reset_state()`` the previous ``h`` and ``c`` are absent (zero): only
    the ``x2*`` projections are used and ``c' = i * u``. ``x (N, in_size)`` → ``h' (N, hidden_size)``;
    ``self.h`` and ``self.c`` keep the state. Parameters: ``x2{f,i,o,u}/W (in_size, H)`` and ``/b (H,)``,
    ``h2{f,i,o,u}/W (H, H)``.

    Example: ``lstm = LSTM(100); y = lstm(np.zeros((30, 1), np.float32))`` → ``y.shape == (30, 100)``.
    """

    def __init__(self, hidden_size: int, in_size: int | None = None) -> None:
        super().__init__()
        H = _check_sizes('LSTM', hidden_size, in_size)
        self.hidden_size = H
        self.x2f = Linear(H, in_size=in_size)
        self.x2i = Linear(H, in_size=in_size)
        self.x2o = Linear(H, in_size=in_size)
        self.x2u = Linear(H, in_size=in_size)
        self.h2f = Linear(H, in_size=H, nobias=True)
        self.h2i = Linear(H, in_size=H, nobias=True)
        self.h2o = Linear(H, in_size=H, nobias=True)
        self.h2u = Linear(H, in_size=H, nobias=True)
        self.h: Variable | None = None
        self.c: Variable | None = None
        self._packed = _PackedWeights(self._gate_weights())

    def _gate_weights(self) -> list[list[Parameter]]:
        """Each gate's weights, gates in order f, i, o, u: ``[h2*/W, x2*/W, x2*/b]`` (LSTMStep's layout)."""
        return [[h2.W, x2.W, x2.b] for x2, h2 in ((self.x2f, self.h2f), (self.x2i, self.h2i),
                                                  (self.x2o, self.h2o), (self.x2u, self.h2u))]

    def reset_state(self) -> None:
        """Forget the hidden state ``h`` and the cell ``c``: the next call starts a new sequence."""
        self.h = None
        self.c = None

    def forward(self, x: Any) -> Variable:
        _check_step_input('LSTM', x, self.h)
        _build_input_weights((self.x2f, self.x2i, self.x2o, self.x2u), x)
        # One fused Function per step (dezero.ops.recurrent); the forget gate only matters when
        # there is a cell to forget.
        W = self._packed.variable(self._gate_weights(), first_gate=0 if self.c is not None else 1,
                                  first_weight=0 if self.h is not None else 1)
        self.h, self.c = lstm_step(x, self.h, self.c, W)
        return self.h


class GRU(Layer):
    """Gated recurrent unit in PyTorch's formulation (one step per call). *Beyond the book.*

    ``r = σ(x2r(x) + h2r(h))``, ``z = σ(x2z(x) + h2z(h))``, ``n = tanh(x2n(x) + r * h2n(h))`` and
    ``h' = (1 - z) * n + z * h``, where ``h2n`` has a bias (PyTorch's ``b_hn``, scaled by ``r``) and
    ``h2r``, ``h2z`` have none (their bias would only add to ``x2r``'s and ``x2z``'s: PyTorch's
    ``b_ir + b_hr`` is our ``x2r/b``). After ``reset_state()`` the previous state is zeros.
    ``x (N, in_size)`` → ``h' (N, hidden_size)``, kept as ``self.h``. Parameters:
    ``x2{r,z,n}/W (in_size, H)``, ``x2{r,z,n}/b (H,)``, ``h2{r,z,n}/W (H, H)``, ``h2n/b (H,)``.

    Example: ``gru = GRU(8); h = gru(np.ones((4, 3), np.float32))`` → ``h.shape == (4, 8)``.
    """

    def __init__(self, hidden_size: int, in_size: int | None = None) -> None:
        super().__init__()
        H = _check_sizes('GRU', hidden_size, in_size)
        self.hidden_size = H
        self.x2r = Linear(H, in_size=in_size)
        self.x2z = Linear(H, in_size=in_size)
        self.x2n = Linear(H, in_size=in_size)
        self.h2r = Linear(H, in_size=H, nobias=True)
        self.h2z = Linear(H, in_size=H, nobias=True)
        self.h2n = Linear(H, in_size=H)
        self.h: Variable | None = None
        self._packed_x = _PackedWeights(self._input_weights())
        self._packed_h = _PackedWeights(self._hidden_weights())

    def _input_weights(self) -> list[list[Parameter]]:
        """Each gate's input weights, gates in order r, z, n: ``[x2*/W, x2*/b]``."""
        return [[g.W, g.b] for g in (self.x2r, self.x2z, self.x2n)]

    def _hidden_weights(self) -> list[list[Parameter]]:
        return [[g.W] for g in (self.h2r, self.h2z, self.h2n)]

    def reset_state(self) -> None:
        """Forget the hidden state: the next call starts from zeros."""
        self.h = None

    def forward(self, x: Any) -> Variable:
        _check_step_input('GRU', x, self.h)
        _build_input_weights((self.x2r, self.x2z, self.x2n), x)
        # One fused Function per step (dezero.ops.recurrent); for a fresh state (h = 0) every h2*
        # product vanishes but h2n's bias, which the reset gate still scales.
        W_x = self._packed_x.variable(self._input_weights())
        W_h = None if self.h is None else self._packed_h.variable(self._hidden_weights())
        self.h = gru_step(x, self.h, W_x, None, W_h, self.h2n.b)
        return self.h
