"""Recurrent layers: RNN, LSTM (the book's) and GRU (beyond). Each call advances one time step.

A recurrent layer keeps its hidden state between calls, so ``layer(x_t)`` for t = 0, 1, ... runs a
sequence one step at a time. ``reset_state()`` starts a new sequence. For truncated backpropagation
through time, call ``loss.unchain_backward()`` after each update: the state stays, the graph behind it
goes.

Parameter names (the keys in ``save_weights`` files) follow the book: one ``Linear`` per gate and
source, ``x2*`` for the input projection (with bias) and ``h2*`` for the hidden projection (no bias,
except GRU's ``h2n``, which PyTorch's formulation needs inside the reset gate). Separate projections
were kept rather than one fused ``Linear`` of width 4H so that the book's weight files stay loadable.
"""
from __future__ import annotations

from typing import Any

from dezero._checks import describe, positive_int
from dezero.core import Variable
from dezero.cuda import get_array_module
from dezero.layers.base import Layer, Linear
from dezero.ops.math import tanh
from dezero.ops.recurrent import gru_step, lstm_step

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

    def reset_state(self) -> None:
        """Forget the hidden state ``h`` and the cell ``c``: the next call starts a new sequence."""
        self.h = None
        self.c = None

    def forward(self, x: Any) -> Variable:
        _check_step_input('LSTM', x, self.h)
        x_gates = (self.x2f, self.x2i, self.x2o, self.x2u)
        _build_input_weights(x_gates, x)
        h_weights = None if self.h is None else [g.W for g in (self.h2f, self.h2i, self.h2o, self.h2u)]
        # One fused Function per step (dezero.ops.recurrent); the forget gate only matters when
        # there is a cell to forget.
        self.h, self.c = lstm_step(x, self.h, self.c, [g.W for g in x_gates], [g.b for g in x_gates],
                                   h_weights)
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

    def reset_state(self) -> None:
        """Forget the hidden state: the next call starts from zeros."""
        self.h = None

    def forward(self, x: Any) -> Variable:
        _check_step_input('GRU', x, self.h)
        x_gates = (self.x2r, self.x2z, self.x2n)
        _build_input_weights(x_gates, x)
        h_weights = None if self.h is None else [g.W for g in (self.h2r, self.h2z, self.h2n)]
        # One fused Function per step (dezero.ops.recurrent); for a fresh state (h = 0) every h2*
        # product vanishes but h2n's bias, which the reset gate still scales.
        self.h = gru_step(x, self.h, [g.W for g in x_gates], [g.b for g in x_gates], h_weights, self.h2n.b)
        return self.h
