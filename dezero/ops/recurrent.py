"""Fused recurrent cells: one LSTM or GRU time step as one Function, ``lstm_step`` and ``gru_step``.

Built from small ops, an LSTM step is about 25 Functions (eight projections, four activations, the
cell update), each paying a call forward and one or more backward: at the small sizes of a recurrent
network that bookkeeping is most of the time. ``LSTMStep`` computes the four gates with one batched
GEMM for the input and one for the hidden state, then the cell update, and returns ``(h', c')``;
``GRUStep`` does the same for a GRU step. The per-gate weights are stacked gate-major, ``(4, in, H)``
in the book's order f, i, o, u, so that each gate's values ``(N, H)`` are contiguous (NumPy's
elementwise loops are about twice as fast on them as on column slices of an ``(N, 4H)`` array) and
so is each weight's gradient.

One source of truth: each step's formulas are written once (``_lstm_cell``/``_gru_cell`` forward,
``_lstm_grads``/``_gru_grads`` backward) over a small namespace of operations. Forward runs them
on arrays. Backward runs them on arrays when no graph is recorded (``create_graph=False``, the
training loop), reusing the gate values saved by forward; with ``create_graph=True`` it runs the
same formulas on Variables with dezero's differentiable ops, recomputing the gates from the inputs,
so that every dependence is in the graph and gradients of any order follow.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dezero import _parallel
from dezero._threads import single_threaded_blas
from dezero.core import Config, Constant, Function, Variable
from dezero.cuda import get_array_module
from dezero.ops.activation import _sigmoid_array, sigmoid
from dezero.ops.linalg import matmul
from dezero.ops.math import tanh
from dezero.ops.misc import concat, stack

__all__ = ['LSTMStep', 'GRUStep', 'lstm_step', 'gru_step']


class _ArrayOps:
    """The formulas' operations on NumPy/CuPy arrays (nothing recorded)."""

    def __init__(self, xp: Any) -> None:
        self.xp = xp

    def matmul(self, a: Any, b: Any) -> Any:
        return _parallel.matmul(a, b)

    def sigmoid(self, a: Any) -> Any:
        return _sigmoid_array(a)

    def tanh(self, a: Any) -> Any:
        return self.xp.tanh(a)

    def stack(self, parts: Sequence[Any]) -> Any:
        return self.xp.stack(parts)

    def concat(self, parts: Sequence[Any]) -> Any:
        return self.xp.concatenate(parts)

    def swap(self, W: Any) -> Any:
        # A contiguous copy: OpenBLAS multiplies by it over twice as fast as by the transposed view.
        return self.xp.ascontiguousarray(W.transpose(0, 2, 1))


class _VariableOps:
    """The same operations as differentiable dezero ops on Variables."""

    matmul = staticmethod(matmul)
    sigmoid = staticmethod(sigmoid)
    tanh = staticmethod(tanh)
    stack = staticmethod(stack)
    concat = staticmethod(concat)

    @staticmethod
    def swap(W: Variable) -> Variable:
        return W.transpose(0, 2, 1)


def _one(a: Any) -> Any:
    """``a (N, H)`` as ``(1, N, H)``, to join a stack of gates."""
    return a.reshape(1, *a.shape)


def _stack_weights(ops: Any, W_xs: Sequence[Any], b_xs: Sequence[Any],
                   W_hs: Sequence[Any] | None) -> tuple[Any, Any, Any]:
    """Per-gate weights stacked gate-major: ``W_x (G, in, H)``, ``b_x (G, 1, H)``, ``W_h (G, H, H)``."""
    b_x = ops.stack(b_xs)
    return ops.stack(W_xs), b_x.reshape(b_x.shape[0], 1, b_x.shape[1]), (
        None if W_hs is None else ops.stack(W_hs))


def _lstm_cell(ops: Any, x: Any, h: Any, c: Any, W_x: Any, b_x: Any, W_h: Any) -> tuple[Any, ...]:
    """Forward formulas: ``(h', c', sig, u, tanh(c'))`` with ``sig = σ(a[:3])`` ``(3, N, H)`` (f, i, o),
    ``u = tanh(a[3])`` and ``a = x @ W_x + b_x + h @ W_h`` ``(4, N, H)``; ``h``, ``c`` may be None (a
    fresh state)."""
    a = ops.matmul(x, W_x) + b_x
    if h is not None:
        a = a + ops.matmul(h, W_h)
    sig, u = ops.sigmoid(a[:3]), ops.tanh(a[3])
    i, o = sig[1], sig[2]
    c_new = i * u if c is None else sig[0] * c + i * u
    tanh_c = ops.tanh(c_new)
    return o * tanh_c, c_new, sig, u, tanh_c


def _lstm_grads(ops: Any, gh: Any, gc: Any, x: Any, h: Any, c: Any, W_x: Any, W_h: Any, sig: Any,
                u: Any, tanh_c: Any, need_x: bool) -> tuple[Any, ...]:
    """Backward formulas: ``(gx, gh, gc, gW_x, gb_x, gW_h)`` of one step from the output gradients
    ``gh``, ``gc`` (None for an absent input: ``x`` when ``need_x`` is False, or a fresh state); the
    weight gradients are stacked like the weights, ``gb_x`` is ``(4, H)``."""
    f, i, o = sig[0], sig[1], sig[2]
    g_cell = gc + gh * o * (1 - tanh_c * tanh_c)
    g_f = g_cell * c if c is not None else g_cell * 0
    g_sig = ops.stack([g_f, g_cell * u, gh * tanh_c]) * sig * (1 - sig)
    g_a = ops.concat([g_sig, _one(g_cell * i * (1 - u * u))])
    gx = ops.matmul(g_a, ops.swap(W_x)).sum(axis=0) if need_x else None
    gh_prev = None if h is None else ops.matmul(g_a, ops.swap(W_h)).sum(axis=0)
    gc_prev = None if c is None else g_cell * f
    gW_h = None if h is None else ops.matmul(h.T, g_a)
    return gx, gh_prev, gc_prev, ops.matmul(x.T, g_a), g_a.sum(axis=1), gW_h


class LSTMStep(Function):
    """One LSTM step: inputs ``x (N, in)``, then ``h (N, H)`` and ``c (N, H)`` when the state has them,
    the four input weights ``(in, H)``, the four biases ``(H,)`` and, with ``h``, the four hidden
    weights ``(H, H)``, each in gate order f, i, o, u; outputs ``h' (N, H)`` and ``c' (N, H)``."""

    def __init__(self, has_h: bool, has_c: bool) -> None:
        self.has_h = has_h
        self.has_c = has_c

    def _split(self, inputs: Sequence[Any]) -> tuple[Any, Any, Any, Sequence[Any], Sequence[Any],
                                                     Sequence[Any] | None]:
        x, rest = inputs[0], list(inputs[1:])
        h = rest.pop(0) if self.has_h else None
        c = rest.pop(0) if self.has_c else None
        return x, h, c, rest[:4], rest[4:8], (rest[8:12] if self.has_h else None)

    def forward(self, *inputs: Any) -> tuple[Any, Any]:
        ops = _ArrayOps(get_array_module(inputs[0]))
        x, h, c, W_xs, b_xs, W_hs = self._split(inputs)
        W_x, b_x, W_h = _stack_weights(ops, W_xs, b_xs, W_hs)
        with single_threaded_blas:  # once for the op's products
            h_new, c_new, sig, u, tanh_c = _lstm_cell(ops, x, h, c, W_x, b_x, W_h)
        # What the first-order backward reads; the create_graph one recomputes it as Variables.
        self.saved = (W_x, W_h, sig, u, tanh_c)
        return h_new, c_new

    def backward(self, gh: Variable | None, gc: Variable | None) -> tuple[Variable | None, ...]:
        x, h, c, W_xs, b_xs, W_hs = self._split(self.inputs)
        need_x = x.__class__ is not Constant
        if Config.enable_backprop:
            ops: Any = _VariableOps
            W_x, b_x, W_h = _stack_weights(ops, W_xs, b_xs, W_hs)
            _, _, sig, u, tanh_c = _lstm_cell(ops, x, h, c, W_x, b_x, W_h)
            zero = Variable(get_array_module(x.data).zeros(u.shape, dtype=u.dtype))
        else:
            ops = _ArrayOps(get_array_module(x.data))
            W_x, W_h, sig, u, tanh_c = self.saved
            x, h, c = x.data, None if h is None else h.data, None if c is None else c.data
            gh, gc = None if gh is None else gh.data, None if gc is None else gc.data
            zero = ops.xp.zeros(u.shape, dtype=u.dtype)
        with single_threaded_blas:
            gx, gh_prev, gc_prev, gW_x, gb_x, gW_h = _lstm_grads(
                ops, zero if gh is None else gh, zero if gc is None else gc, x, h, c, W_x, W_h, sig,
                u, tanh_c, need_x)
        param_grads = [gW_x[k] for k in range(4)] + [gb_x[k] for k in range(4)]
        if gW_h is not None:
            param_grads += [gW_h[k] for k in range(4)]
        if not self.has_c:  # without a cell to forget, f is unused: its weights get no gradient
            for k in range(0, len(param_grads), 4):
                param_grads[k] = None
        state_grads = [g for g, present in ((gh_prev, self.has_h), (gc_prev, self.has_c)) if present]
        out = [gx, *state_grads, *param_grads]
        if not Config.enable_backprop:
            out = [None if g is None else Variable(g) for g in out]
        return tuple(out)


def lstm_step(x: Any, h: Any, c: Any, W_x: Sequence[Any], b_x: Sequence[Any],
              W_h: Sequence[Any] | None) -> tuple[Variable, Variable]:
    """One LSTM step ``(h', c')`` from ``x (N, in)`` and the state ``h``, ``c`` ``(N, H)`` (None for a
    fresh state: then ``W_h`` is not used and ``c' = i * u``).

    ``W_x`` holds the four input weights ``(in, H)``, ``b_x`` the four biases ``(H,)``, ``W_h`` the four
    hidden weights ``(H, H)``, each in gate order f, i, o, u: ``f, i, o = σ(x @ W_x[k] + b_x[k] + h @
    W_h[k])``, ``u = tanh(...)``, ``c' = f * c + i * u``, ``h' = o * tanh(c')`` (the book's LSTM).
    """
    has_h = h is not None
    inputs = [x] + ([h] if has_h else []) + ([c] if c is not None else []) + list(W_x) + list(b_x)
    if has_h:
        inputs += list(W_h)
    h_new, c_new = LSTMStep(has_h, c is not None)(*inputs)
    return h_new, c_new


def _gru_cell(ops: Any, x: Any, h: Any, W_x: Any, b_x: Any, W_h: Any, b_hn: Any) -> tuple[Any, ...]:
    """Forward formulas of a GRU step: ``(h', rz, n, hn)`` with ``rz = σ(a[:2])`` ``(2, N, H)`` (r, z),
    ``n = tanh(a[2] + r * hn)``, ``a = x @ W_x + b_x`` and ``hn = h @ W_h[2] + b_hn`` (``b_hn`` alone
    for a fresh state)."""
    a = ops.matmul(x, W_x) + b_x
    if h is None:
        rz, hn = ops.sigmoid(a[:2]), b_hn
    else:
        a_h = ops.matmul(h, W_h)
        rz, hn = ops.sigmoid(a[:2] + a_h[:2]), a_h[2] + b_hn
    n = ops.tanh(a[2] + rz[0] * hn)
    z = rz[1]
    h_new = (1 - z) * n if h is None else (1 - z) * n + z * h
    return h_new, rz, n, hn


def _gru_grads(ops: Any, gh: Any, x: Any, h: Any, W_x: Any, W_h: Any, rz: Any, n: Any, hn: Any,
               need_x: bool) -> tuple[Any, ...]:
    """Backward formulas of a GRU step: ``(gx, gh, gW_x, gb_x, gW_h, gb_hn)`` from ``gh``; None for
    an absent input (``x`` when ``need_x`` is False, or the state and ``W_h`` of a fresh state)."""
    r, z = rz[0], rz[1]
    g_an = gh * (1 - z) * (1 - n * n)
    g_z = gh * (-n if h is None else h - n)
    g_rz = ops.stack([g_an * hn, g_z]) * rz * (1 - rz)
    g_hn = g_an * r
    g_ax = ops.concat([g_rz, _one(g_an)])
    gx = ops.matmul(g_ax, ops.swap(W_x)).sum(axis=0) if need_x else None
    gW_x, gb_x, gb_hn = ops.matmul(x.T, g_ax), g_ax.sum(axis=1), g_hn.sum(axis=0)
    if h is None:
        return gx, None, gW_x, gb_x, None, gb_hn
    g_ah = ops.concat([g_rz, _one(g_hn)])
    gh_prev = ops.matmul(g_ah, ops.swap(W_h)).sum(axis=0) + gh * z
    return gx, gh_prev, gW_x, gb_x, ops.matmul(h.T, g_ah), gb_hn


class GRUStep(Function):
    """One GRU step (PyTorch's formulation): inputs ``x (N, in)``, then ``h (N, H)`` when the state has
    it, the three input weights ``(in, H)``, the three input biases ``(H,)``, with ``h`` the three hidden
    weights ``(H, H)``, and the hidden bias ``b_hn (H,)``, each in gate order r, z, n; output ``h'``."""

    def __init__(self, has_h: bool) -> None:
        self.has_h = has_h

    def _split(self, inputs: Sequence[Any]) -> tuple[Any, Any, Sequence[Any], Sequence[Any],
                                                     Sequence[Any] | None, Any]:
        x, rest = inputs[0], list(inputs[1:])
        h = rest.pop(0) if self.has_h else None
        return x, h, rest[:3], rest[3:6], (rest[6:9] if self.has_h else None), rest[-1]

    def forward(self, *inputs: Any) -> Any:
        ops = _ArrayOps(get_array_module(inputs[0]))
        x, h, W_xs, b_xs, W_hs, b_hn = self._split(inputs)
        W_x, b_x, W_h = _stack_weights(ops, W_xs, b_xs, W_hs)
        with single_threaded_blas:
            h_new, rz, n, hn = _gru_cell(ops, x, h, W_x, b_x, W_h, b_hn)
        self.saved = (W_x, W_h, rz, n, hn)
        return h_new

    def backward(self, gh: Variable) -> tuple[Variable | None, ...]:
        x, h, W_xs, b_xs, W_hs, b_hn = self._split(self.inputs)
        need_x = x.__class__ is not Constant
        if Config.enable_backprop:
            ops: Any = _VariableOps
            W_x, b_x, W_h = _stack_weights(ops, W_xs, b_xs, W_hs)
            _, rz, n, hn = _gru_cell(ops, x, h, W_x, b_x, W_h, b_hn)
        else:
            ops = _ArrayOps(get_array_module(x.data))
            W_x, W_h, rz, n, hn = self.saved
            x, h, gh = x.data, None if h is None else h.data, gh.data
        with single_threaded_blas:
            gx, gh_prev, gW_x, gb_x, gW_h, gb_hn = _gru_grads(ops, gh, x, h, W_x, W_h, rz, n, hn,
                                                              need_x)
        out = [gx] + ([gh_prev] if self.has_h else [])
        out += [gW_x[k] for k in range(3)] + [gb_x[k] for k in range(3)]
        if gW_h is not None:
            out += [gW_h[k] for k in range(3)]
        out.append(gb_hn)
        if not Config.enable_backprop:
            out = [None if g is None else Variable(g) for g in out]
        return tuple(out)


def gru_step(x: Any, h: Any, W_x: Sequence[Any], b_x: Sequence[Any], W_h: Sequence[Any] | None,
             b_hn: Any) -> Variable:
    """One GRU step ``h'`` from ``x (N, in)`` and the state ``h (N, H)`` (None for a fresh state, taken
    as zeros: then ``W_h`` is not used), in PyTorch's formulation.

    ``W_x``, ``b_x``, ``W_h`` hold the three input weights ``(in, H)``, biases ``(H,)`` and hidden weights
    ``(H, H)`` in gate order r, z, n; ``b_hn (H,)`` is the hidden bias of n: ``r, z = σ(x @ W_x[k] +
    b_x[k] + h @ W_h[k])``, ``n = tanh(x @ W_x[2] + b_x[2] + r * (h @ W_h[2] + b_hn))``,
    ``h' = (1 - z) * n + z * h``.
    """
    inputs = [x] + ([h] if h is not None else []) + list(W_x) + list(b_x)
    if h is not None:
        inputs += list(W_h)
    return GRUStep(h is not None)(*inputs, b_hn)
