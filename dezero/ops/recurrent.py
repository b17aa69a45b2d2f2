"""Fused recurrent cells: one LSTM or GRU time step as one Function, ``lstm_step`` and ``gru_step``.

Built from small ops, an LSTM step is about 25 Functions (eight projections, four activations, the
cell update), each paying a call forward and one or more backward: at the small sizes of a recurrent
network that bookkeeping is most of the time. ``LSTMStep`` computes all its gates with one batched
GEMM, then the cell update, and returns ``(h', c')``; ``GRUStep`` does the same for a GRU step with
one GEMM for the input and one for the hidden state.

The weights come packed gate-major (``PackedGates``): an LSTM's ``W (G, R, H)`` holds for each gate,
in the book's order f, i, o, u, the rows of ``W_h``, ``W_x`` and the bias, so that
``a = [h, x, 1] @ W`` is every gate's ``x @ W_x + b + h @ W_h`` at once and the gradient of all the
weights is one product, ``[h, x, 1].T @ g_a``. Gate-major, each gate's values ``(N, H)`` are
contiguous (NumPy's elementwise loops are about twice as fast on them as on column slices of an
``(N, 4H)`` array). The recurrent layers keep their per-gate Parameters as slices of such a packed
array (``dezero.layers.recurrent``), so that a step reads them without copying, through one
``PackedGates`` Variable shared by the steps of a window: the steps' weight gradients add up as one
array per step, split into the Parameters' gradients once per backward pass.

One source of truth: each step's formulas are written once (``_lstm_cell``/``_gru_cell`` forward,
``_lstm_grads``/``_gru_grads`` backward) over a namespace of operations (``dezero.ops._formulas``).
Forward runs them on arrays. Backward runs them on arrays when no graph is recorded
(``create_graph=False``, the training loop), reusing the gate values saved by forward; with
``create_graph=True`` it runs the same formulas on Variables with dezero's differentiable ops,
recomputing the gates from the inputs, so that every dependence is in the graph and gradients of any
order follow.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dezero._checks import describe
from dezero._threads import single_threaded_blas
from dezero.core import Config, Constant, Function, Variable
from dezero.cuda import get_array_module
from dezero.ops._formulas import ArrayOps, VariableOps

__all__ = ['LSTMStep', 'GRUStep', 'PackedGates', 'lstm_step', 'gru_step', 'pack_gates']


def _tanh_to_sigmoid(t: Any) -> Any:
    """``(1 + t) / 2`` in place: ``σ(z)`` from ``t = tanh(z / 2)``."""
    t *= 0.5
    t += 0.5
    return t


class _CellArrays(ArrayOps):
    """The cells' operations on arrays. Gate sigmoids use ``σ(z) = (1 + tanh(z / 2)) / 2``: four
    ufunc passes instead of the six of the exp form, and an LSTM's four gates take one ``tanh``."""

    @staticmethod
    def gate_sigmoid(a: Any) -> Any:
        s = a * 0.5
        get_array_module(a).tanh(s, out=s)
        return _tanh_to_sigmoid(s)

    @staticmethod
    def activate(a: Any) -> Any:
        """σ of the gates ``a[:-1]`` and tanh of the last (the cell candidate), in place (``a`` is a
        temporary of the formula): one ``tanh`` for all the gates."""
        head = a[:-1]
        head *= 0.5
        get_array_module(a).tanh(a, out=a)
        _tanh_to_sigmoid(head)
        return a

    @staticmethod
    def activation_slopes(gates: Any) -> Any:
        """The activations' derivatives from their values ``gates``: ``σ' = σ (1 - σ)`` for the
        sigmoid gates, ``tanh' = (1 - u)(1 + u)`` for the last; about two passes over the gates."""
        slopes = 1 - gates
        slopes[:-1] *= gates[:-1]
        slopes[-1] *= 1 + gates[-1]
        return slopes

    @staticmethod
    def swap(W: Any) -> Any:
        # A contiguous copy: OpenBLAS multiplies by it over twice as fast as by the transposed view.
        return get_array_module(W).ascontiguousarray(W.transpose(0, 2, 1))


class _CellVariables(VariableOps):
    """The same operations as differentiable dezero ops on Variables."""

    @staticmethod
    def gate_sigmoid(a: Variable) -> Variable:
        return VariableOps.sigmoid(a)

    @staticmethod
    def activate(a: Variable) -> Variable:
        return VariableOps.concat([VariableOps.sigmoid(a[:-1]), VariableOps.tanh(a[-1:])])

    @staticmethod
    def activation_slopes(gates: Variable) -> Variable:
        sig, u = gates[:-1], gates[-1:]
        return VariableOps.concat([sig * (1 - sig), 1 - u * u])

    @staticmethod
    def swap(W: Variable) -> Variable:
        return W.transpose(0, 2, 1)


def _one(a: Any) -> Any:
    """``a (N, H)`` as ``(1, N, H)``, to join a stack of gates."""
    return a.reshape(1, *a.shape)


def gate_rows(w: Any) -> int:
    """The rows a weight takes in a gate's block: a matrix its rows, a bias ``(H,)`` one."""
    return w.shape[0] if w.ndim == 2 else 1


class PackedGates(Function):
    """The weights of a gated cell as one array ``(G, R, H)``: gate ``g``'s block holds its weights'
    rows one after another (a matrix ``(r, H)`` its ``r`` rows, a bias ``(H,)`` one row). Inputs: the
    same number of weights for every gate, gate by gate. Backward gives each weight its slice of the
    gradient.

    With ``packed``, an array whose slices the weights' data already are (the recurrent layers keep
    them so), forward returns it without copying. While a backward pass runs, the Function also keeps
    the transposed copy of its array by which every step sharing it multiplies (``transposed``); its
    own backward, which comes after theirs, drops it (the weights may change before the next pass).
    """

    def __init__(self, gates: int, packed: Any = None) -> None:
        self.gates = gates
        self.packed = packed
        self._transposed = None

    def forward(self, *weights: Any) -> Any:
        if self.packed is not None:
            return self.packed
        xp = get_array_module(weights[0])
        per_gate = len(weights) // self.gates
        gates = [weights[g * per_gate:(g + 1) * per_gate] for g in range(self.gates)]
        return xp.stack([xp.concatenate([w.reshape(-1, w.shape[-1]) for w in gate]) for gate in gates])

    def transposed(self) -> Any:
        """The packed array with its last two axes swapped, contiguous."""
        if self._transposed is None:
            packed = self.outputs[0]().data if self.packed is None else self.packed
            self._transposed = _CellArrays.swap(packed)
        return self._transposed

    def backward(self, gy: Variable) -> tuple[Variable, ...]:
        self._transposed = None
        per_gate = len(self.inputs) // self.gates
        grads = []
        for g in range(self.gates):
            row = 0
            for w in self.inputs[g * per_gate:(g + 1) * per_gate]:
                rows = gate_rows(w)
                grads.append(gy[g, row:row + rows] if w.ndim == 2 else gy[g, row])
                row += rows
        return tuple(grads)


def pack_gates(weights: Sequence[Sequence[Any]]) -> Variable:
    """``weights[g]``, the weights of gate ``g`` (matrices ``(r, H)`` and biases ``(H,)``, as many for
    every gate), as one Variable ``(G, R, H)``: each gate's weights' rows one after another."""
    if not isinstance(weights, (list, tuple)) or not all(
            isinstance(gate, (list, tuple)) and all(hasattr(w, 'shape') for w in gate) for gate in weights):
        raise TypeError(f'pack_gates: expected a list per gate of weight arrays or Variables, got '
                        f'{describe(weights)}')
    gates = len(weights)
    if gates == 0 or any(len(w) != len(weights[0]) for w in weights) or not weights[0]:
        raise ValueError('pack_gates: expected the same non-zero number of weights for every gate, got '
                         f'{[len(w) for w in weights]}')
    flat = [w for gate in weights for w in gate]
    width = flat[0].shape[-1]
    for gate in weights:
        shapes = [tuple(w.shape) for w in gate]
        if any(len(s) not in (1, 2) or s[-1] != width for s in shapes) or shapes != [
                tuple(w.shape) for w in weights[0]]:
            raise ValueError(f'pack_gates: every gate needs weights of the same shapes, matrices '
                             f'(r, {width}) or biases ({width},); got '
                             f'{[[tuple(w.shape) for w in g] for g in weights]}')
    return PackedGates(gates)(*flat)


def _transposed_weights(W: Variable) -> Any:
    """``W (G, R, H)``'s array with its last two axes swapped: the copy shared through W's
    ``PackedGates`` when it has one, else a new one."""
    creator = W.creator
    if creator.__class__ is PackedGates:
        return creator.transposed()
    return _CellArrays.swap(W.data)


def _with_ones(ops: Any, parts: list[Any]) -> Any:
    """``[parts..., 1]`` as one matrix ``(N, R)``: the left operand of a packed GEMM whose last row is a
    bias."""
    first = parts[0]
    ones = get_array_module(first.data if isinstance(first, Variable) else first).ones(
        (first.shape[0], 1), dtype=first.dtype)
    return ops.concat([*parts, ones], axis=1)


def _lstm_cell(ops: Any, x: Any, h: Any, c: Any, W: Any) -> tuple[Any, ...]:
    """Forward formulas: ``(h', c', gates, tanh(c'), z)``. ``W (G, R, H)`` holds per gate
    ``[W_h; W_x; b]`` (``[W_x; b]`` for a fresh state, when ``h`` and ``c`` may be None) and
    ``z = [h, x, 1]``, so that ``a = z @ W = x @ W_x + b (+ h @ W_h)`` in one GEMM; ``gates (G, N, H)``
    holds σ(a) for f, i, o (i, o without a cell) and then ``u = tanh(a_u)``. The derivatives at ``a``
    are left to backward, which computes them from ``gates``: a step run without a graph never needs
    them, and a training step saves an array of the gates' size per step (measured 4-8% faster on
    the book's LSTM window)."""
    z = _with_ones(ops, [x] if h is None else [h, x])
    gates = ops.activate(ops.matmul(z, W))
    i, o, u = gates[-3], gates[-2], gates[-1]
    c_new = i * u if c is None else gates[0] * c + i * u
    tanh_c = ops.tanh(c_new)
    return o * tanh_c, c_new, gates, tanh_c, z


def _lstm_grads(ops: Any, gh: Any, gc: Any, z: Any, c: Any, W_T: Any, gates: Any,
                tanh_c: Any, need_z: bool) -> tuple[Any, Any, Any]:
    """Backward formulas: ``(gz, gc, gW)`` of one step from the output gradients ``gh`` and ``gc`` (None
    when c' got none): ``gz (N, R)`` the gradient of ``z = [h, x, 1]`` (None unless ``need_z``),
    ``W_T`` the packed weights with their last two axes swapped; gc None without a cell.

    The augmented assignments update the formula's own temporaries in place on arrays and make new
    Variables on Variables (which have no in-place operators)."""
    i, o, u = gates[-3], gates[-2], gates[-1]
    g_cell = gh * o
    g_cell *= 1 - tanh_c * tanh_c
    if gc is not None:
        g_cell += gc
    reaching = [g_cell * u, gh * tanh_c] if c is None else [g_cell * c, g_cell * u, gh * tanh_c]
    # The gradient reaching each gate times its derivative, all the gates in one product.
    g_a = ops.stack(reaching + [g_cell * i])
    g_a *= ops.activation_slopes(gates)
    gz = ops.matmul(g_a, W_T).sum(axis=0) if need_z else None
    gc_prev = None if c is None else g_cell * gates[0]
    return gz, gc_prev, ops.matmul(z.T, g_a)


class LSTMStep(Function):
    """One LSTM step: inputs ``x (N, in)``, then ``h (N, H)`` and ``c (N, H)`` when the state has them,
    and the packed weights ``W (G, R, H)``: per gate ``[W_h; W_x; b]`` (``R = H + in + 1``), or
    ``[W_x; b]`` without ``h`` (``R = in + 1``); ``G`` is 4 (gates f, i, o, u) with a cell ``c``, else 3
    (i, o, u: without a cell to forget, f is unused). Outputs ``h' (N, H)`` and ``c' (N, H)``."""

    def __init__(self, has_h: bool, has_c: bool) -> None:
        self.has_h = has_h
        self.has_c = has_c

    def _split(self, inputs: Sequence[Any]) -> tuple[Any, ...]:
        """``(x, h, c, W)`` from the inputs, None for what the state lacks."""
        x, rest = inputs[0], list(inputs[1:])
        h = rest.pop(0) if self.has_h else None
        c = rest.pop(0) if self.has_c else None
        return x, h, c, rest[0]

    def forward(self, *inputs: Any) -> tuple[Any, Any]:
        x, h, c, W = self._split(inputs)
        with single_threaded_blas:  # once for the op's products
            h_new, c_new, gates, tanh_c, z = _lstm_cell(_CellArrays, x, h, c, W)
        # What the first-order backward reads; the create_graph one recomputes it as Variables.
        self.saved = (gates, tanh_c, z)
        return h_new, c_new

    def backward(self, gh: Variable | None, gc: Variable | None) -> tuple[Variable | None, ...]:
        x, h, c, W = self._split(self.inputs)
        need_x = x.__class__ is not Constant
        need_z = need_x or h is not None
        if Config.enable_backprop:
            ops: Any = _CellVariables
            _, _, gates, tanh_c, z = _lstm_cell(ops, x, h, c, W)
            W_T = ops.swap(W) if need_z else None
        else:
            ops = _CellArrays
            gates, tanh_c, z = self.saved
            W_T = _transposed_weights(W) if need_z else None
            c = None if c is None else c.data
            gh, gc = None if gh is None else gh.data, None if gc is None else gc.data
        if gh is None:  # only c' has a gradient
            gh = tanh_c * 0
        with single_threaded_blas:
            gz, gc_prev, gW = _lstm_grads(ops, gh, gc, z, c, W_T, gates, tanh_c, need_z)
        hidden = h.shape[1] if h is not None else 0  # z = [h, x, 1]: h's columns come first
        out = [gz[:, hidden:hidden + x.shape[1]] if need_x else None]
        out += [gz[:, :hidden]] if self.has_h else []
        out += [gc_prev] * self.has_c + [gW]
        if not Config.enable_backprop:
            out = [None if g is None else Variable(g) for g in out]
        return tuple(out)


def lstm_step(x: Any, h: Any, c: Any, W_x: Any, b_x: Any = None,
              W_h: Any = None) -> tuple[Variable, Variable]:
    """One LSTM step ``(h', c')`` from ``x (N, in)`` and the state ``h``, ``c`` ``(N, H)`` (None for a
    fresh state: then ``W_h`` is not used and ``c' = i * u``).

    ``W_x`` holds the four input weights ``(in, H)``, ``b_x`` the four biases ``(H,)``, ``W_h`` the four
    hidden weights ``(H, H)``, each in gate order f, i, o, u: ``f, i, o = σ(x @ W_x[k] + b_x[k] + h @
    W_h[k])``, ``u = tanh(...)``, ``c' = f * c + i * u``, ``h' = o * tanh(c')`` (the book's LSTM).
    Alternatively ``W_x`` is them already packed, ``LSTMStep``'s ``W`` (then ``b_x``, ``W_h`` are None).
    """
    has_h, has_c = h is not None, c is not None
    if b_x is None:
        W = W_x
    else:
        first = 0 if has_c else 1  # without a cell, the forget gate's weights are not used
        if any(len(w) != 4 for w in ((W_x, b_x) + ((W_h,) if has_h else ()))):
            raise ValueError('lstm_step: W_x, b_x and W_h must hold the four gates f, i, o, u')
        W = pack_gates([([W_h[k]] if has_h else []) + [W_x[k], b_x[k]] for k in range(first, 4)])
    return tuple(LSTMStep(has_h, has_c)(*([x] + [h] * has_h + [c] * has_c + [W])))


def _gru_cell(ops: Any, x: Any, h: Any, W_x: Any, W_h: Any, b_hn: Any) -> tuple[Any, ...]:
    """Forward formulas of a GRU step: ``(h', rz, n, hn, z_x)`` with ``rz = σ(a[:2])`` ``(2, N, H)``
    (r, z), ``n = tanh(a[2] + r * hn)``, ``a = z_x @ W_x`` (plus ``h @ W_h`` for r and z) where
    ``W_x (3, in + 1, H)`` holds per gate ``[W_x; b_x]`` and ``z_x = [x, 1]``, and
    ``hn = h @ W_h[2] + b_hn`` (``b_hn`` alone for a fresh state)."""
    z_x = _with_ones(ops, [x])
    a = ops.matmul(z_x, W_x)
    if h is None:
        rz, hn = ops.gate_sigmoid(a[:2]), b_hn
    else:
        a_h = ops.matmul(h, W_h)
        rz, hn = ops.gate_sigmoid(a[:2] + a_h[:2]), a_h[2] + b_hn
    n = ops.tanh(a[2] + rz[0] * hn)
    z = rz[1]
    h_new = n - z * n if h is None else n + z * (h - n)
    return h_new, rz, n, hn, z_x


def _gru_grads(ops: Any, gh: Any, z_x: Any, h: Any, W_xT: Any, W_hT: Any, rz: Any, n: Any,
               hn: Any) -> tuple[Any, ...]:
    """Backward formulas of a GRU step: ``(gz_x, gh, gW_x, gW_h, gb_hn)`` from ``gh``, where ``gz_x``
    is the gradient of ``z_x = [x, 1]`` (None when ``W_xT`` is: x needs none) and ``W_xT``, ``W_hT``
    are the weights with their last two axes swapped. None for what a fresh state lacks."""
    r, z = rz[0], rz[1]
    g_an = gh * (1 - z) * (1 - n * n)
    g_z = gh * (-n if h is None else h - n)
    g_rz = ops.stack([g_an * hn, g_z]) * rz * (1 - rz)
    g_hn = g_an * r
    g_ax = ops.concat([g_rz, _one(g_an)])
    gz_x = None if W_xT is None else ops.matmul(g_ax, W_xT).sum(axis=0)
    gW_x, gb_hn = ops.matmul(z_x.T, g_ax), g_hn.sum(axis=0)
    if h is None:
        return gz_x, None, gW_x, None, gb_hn
    g_ah = ops.concat([g_rz, _one(g_hn)])
    gh_prev = ops.matmul(g_ah, W_hT).sum(axis=0) + gh * z
    return gz_x, gh_prev, gW_x, ops.matmul(h.T, g_ah), gb_hn


class GRUStep(Function):
    """One GRU step (PyTorch's formulation): inputs ``x (N, in)``, then ``h (N, H)`` when the state has
    it, the packed input weights ``W_x (3, in + 1, H)`` (per gate ``[W_x; b_x]``), with ``h`` the hidden
    weights ``W_h (3, H, H)``, and the hidden bias ``b_hn (H,)``, in gate order r, z, n; output ``h'``."""

    def __init__(self, has_h: bool) -> None:
        self.has_h = has_h

    def _split(self, inputs: Sequence[Any]) -> tuple[Any, ...]:
        """``(x, h, W_x, W_h, b_hn)`` from the inputs, None for what a fresh state lacks."""
        if self.has_h:
            return tuple(inputs)
        x, W_x, b_hn = inputs
        return x, None, W_x, None, b_hn

    def forward(self, *inputs: Any) -> Any:
        x, h, W_x, W_h, b_hn = self._split(inputs)
        with single_threaded_blas:
            h_new, rz, n, hn, z_x = _gru_cell(_CellArrays, x, h, W_x, W_h, b_hn)
        self.saved = (rz, n, hn, z_x)
        return h_new

    def backward(self, gh: Variable) -> tuple[Variable | None, ...]:
        x, h, W_x, W_h, b_hn = self._split(self.inputs)
        need_x = x.__class__ is not Constant
        if Config.enable_backprop:
            ops: Any = _CellVariables
            _, rz, n, hn, z_x = _gru_cell(ops, x, h, W_x, W_h, b_hn)
            W_xT = ops.swap(W_x) if need_x else None
            W_hT = None if h is None else ops.swap(W_h)
        else:
            ops = _CellArrays
            rz, n, hn, z_x = self.saved
            W_xT = _transposed_weights(W_x) if need_x else None
            W_hT = None if h is None else _transposed_weights(W_h)
            h, gh = None if h is None else h.data, gh.data
        with single_threaded_blas:
            gz_x, gh_prev, gW_x, gW_h, gb_hn = _gru_grads(ops, gh, z_x, h, W_xT, W_hT, rz, n, hn)
        gx = gz_x[:, :x.shape[1]] if need_x else None
        out = [gx] + [gh_prev] * self.has_h + [gW_x] + [gW_h] * self.has_h + [gb_hn]
        if not Config.enable_backprop:
            out = [None if g is None else Variable(g) for g in out]
        return tuple(out)


def gru_step(x: Any, h: Any, W_x: Any, b_x: Any, W_h: Any, b_hn: Any) -> Variable:
    """One GRU step ``h'`` from ``x (N, in)`` and the state ``h (N, H)`` (None for a fresh state, taken
    as zeros: then ``W_h`` is not used), in PyTorch's formulation.

    ``W_x``, ``b_x``, ``W_h`` hold the three input weights ``(in, H)``, biases ``(H,)`` and hidden weights
    ``(H, H)`` in gate order r, z, n; ``b_hn (H,)`` is the hidden bias of n: ``r, z = σ(x @ W_x[k] +
    b_x[k] + h @ W_h[k])``, ``n = tanh(x @ W_x[2] + b_x[2] + r * (h @ W_h[2] + b_hn))``,
    ``h' = (1 - z) * n + z * h``. Alternatively ``W_x`` and ``W_h`` are already packed, ``GRUStep``'s
    inputs (then ``b_x`` is None).
    """
    if b_x is not None:
        if any(len(w) != 3 for w in ((W_x, b_x) + ((W_h,) if h is not None else ()))):
            raise ValueError('gru_step: W_x, b_x and W_h must hold the three gates r, z, n')
        W_x = pack_gates([[W_x[k], b_x[k]] for k in range(3)])
        W_h = None if h is None else pack_gates([[W_h[k]] for k in range(3)])
    inputs = [x] + ([h, W_x, W_h] if h is not None else [W_x])
    return GRUStep(h is not None)(*inputs, b_hn)
