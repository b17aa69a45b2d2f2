"""Export: the define-by-run graph of one forward pass, written as ONNX nodes.

Tracing needs no hook: one forward pass (test mode, graph recording on) leaves every output linked to
its creator Function and every Function to its inputs. The Functions behind the outputs are ordered
by generation (a consumer's is always higher than its producers'), and each is written by the emitter
that ``_EMITTERS`` registers for its class. A value that depends on neither a graph input nor a
Parameter was already computed by the trace, so it is written as a Constant node (constant folding).

With ``dynamic_batch`` the first axis of the inputs is the symbolic ``batch``. Every Variable whose
first axis carries that batch (judged from the traced shapes: it follows an input's first axis) is
marked, so that shape-carrying ops write shapes that do not bake the traced batch size (``Reshape``
with ``0`` or ``-1`` there, ``Expand`` with ones, a division by the batch size read by ``Shape``).
"""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

import dezero
from dezero import core
from dezero._files import atomic_file
from dezero.core import Function, Parameter, Variable, using_config
from dezero.cuda import array_types, as_numpy
from dezero.layers.base import Layer
from dezero.onnx._common import MAX_OPSET, MIN_EXPORT_OPSET, onnx_elem_type
from dezero.ops import activation, conv, linalg, loss, misc, pooling, recurrent, reduction, shape
from dezero.ops import math as math_ops
from dezero.utils import get_deconv_outsize

__all__ = ['DEFAULT_OPSET', 'export']

# Opset 17 is read by every current runtime (ONNX Runtime, TensorRT 8.6+, OpenVINO 2023+).
DEFAULT_OPSET = 17
_WHERE = 'dezero.onnx.export'
_INT64_MAX = int(np.iinfo(np.int64).max)
_INT64_MIN = int(np.iinfo(np.int64).min)


# =============================================================================
# The graph being written
# =============================================================================
class _Graph:
    """Nodes and initializers of the ONNX graph, and the ONNX name of every Variable written so far.

    ``batched`` holds the ids of the Variables whose first axis is the symbolic batch, ``folded`` those
    whose first axis is the batch times other sizes (a Reshape merged them).
    """

    def __init__(self, opset: int, batch_size: int | None) -> None:
        self.opset = opset
        self.batch_size = batch_size
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.names: dict[int, str] = {}
        self.batched: set[int] = set()
        self.folded: set[int] = set()
        self.scope = ''
        self._taken: set[str] = set()

    def fresh(self, base: str) -> str:
        """A name not used before, ``base`` itself when free."""
        name, k = base, 1
        while name in self._taken:
            name = f'{base}_{k}'
            k += 1
        self._taken.add(name)
        return name

    def reserve(self, name: str) -> None:
        self._taken.add(name)

    def node(self, op_type: str, inputs: Sequence[str], outputs: Sequence[str] | None = None,
             **attrs: Any) -> list[str]:
        """Append a node (named after the Function being written) and return its output names."""
        name = self.fresh(f'{self.scope}/{op_type}' if self.scope else op_type)
        if outputs is None:
            outputs = [self.fresh(f'{name}:0')]
        self.nodes.append(helper.make_node(op_type, list(inputs), list(outputs), name=name, **attrs))
        return list(outputs)

    def one(self, op_type: str, inputs: Sequence[str], output: str | None = None, **attrs: Any) -> str:
        """``node`` for a single output: returns its name."""
        return self.node(op_type, inputs, None if output is None else [output], **attrs)[0]

    def constant(self, value: Any, dtype: Any = None) -> str:
        """A Constant node holding ``value`` (an array or scalar, cast to ``dtype`` when given)."""
        array = np.asarray(as_numpy(value), dtype=dtype)
        name = self.fresh(f'{self.scope}/const' if self.scope else 'const')
        tensor = numpy_helper.from_array(array, name)
        self.nodes.append(helper.make_node('Constant', [], [name], name=name, value=tensor))
        return name

    def ints(self, values: Sequence[int]) -> str:
        """A 1-D int64 Constant (shapes, axes, pads)."""
        return self.constant(np.array(list(values), dtype=np.int64).reshape(-1))

    def value(self, var: Variable) -> str:
        """The ONNX name of ``var``: its tensor when written already, else a Constant of its data."""
        name = self.names.get(id(var))
        if name is None:
            name = self.names[id(var)] = self.constant(var.data)
        return name

    def cast(self, name: str, from_dtype: Any, to_dtype: Any) -> str:
        """``name`` converted to ``to_dtype`` (ONNX ops do not promote types as NumPy does)."""
        if np.dtype(from_dtype) == np.dtype(to_dtype):
            return name
        return self.one('Cast', [name], to=onnx_elem_type(to_dtype))

    def reduce(self, op_type: str, x: str, axes: Sequence[int] | None, keepdims: bool,
               output: str | None = None) -> str:
        """A Reduce* node over ``axes`` (all axes when None); axes are an input from opset 18 (13 for
        ReduceSum), an attribute before."""
        if axes is not None and len(axes) == 0:
            return self.one('Identity', [x], output)
        if axes is None:
            return self.one(op_type, [x], output, keepdims=int(keepdims))
        if self.opset >= (13 if op_type == 'ReduceSum' else 18):
            return self.one(op_type, [x, self.ints(axes)], output, keepdims=int(keepdims))
        return self.one(op_type, [x], output, axes=list(axes), keepdims=int(keepdims))

    def is_batched(self, var: Variable) -> bool:
        """Whether the first axis of ``var`` is the batch."""
        return id(var) in self.batched

    def carries_batch(self, var: Variable) -> bool:
        """Whether the first axis of ``var`` is the batch, or the batch times other axes (``(N*T, D)``)."""
        return id(var) in self.batched or id(var) in self.folded


def _output(f: Function, index: int = 0) -> Variable:
    """Output ``index`` of ``f`` (alive: the export holds every Variable it reached)."""
    return f.outputs[index]()


def _shapes(f: Function) -> str:
    return ', '.join(str(tuple(x.shape)) for x in f.inputs)


def _unsupported(f: Function, why: str) -> NotImplementedError:
    return NotImplementedError(f'{_WHERE}: {type(f).__name__} with inputs of shapes {_shapes(f)} '
                               f'cannot be written as ONNX: {why}')


# =============================================================================
# Emitters: one per Function class. Each gets the graph, the Function, the ONNX names of its inputs
# (``xs``) and the names its outputs must have (``ys``).
# =============================================================================
Emitter = Callable[[_Graph, Function, list, list], None]


def _same_op(op_type: str, **attrs: Any) -> Emitter:
    """The Function is one ONNX op of the same inputs."""
    def emit(g: _Graph, f: Function, xs: list, ys: list) -> None:
        g.node(op_type, xs, ys, **attrs)
    return emit


def _binary(op_type: str) -> Emitter:
    """An elementwise op of two Variables, both cast to the output's dtype (NumPy promotes, ONNX not)."""
    def emit(g: _Graph, f: Function, xs: list, ys: list) -> None:
        dtype = _output(f).dtype
        operands = [g.cast(name, x.dtype, dtype) for name, x in zip(xs, f.inputs)]
        g.node(op_type, operands, ys)
    return emit


def _with_constant(op_type: str, constant_first: bool = False) -> Emitter:
    """A one-input op holding the constant operand ``f.c`` (AddConstant, RDivConstant...)."""
    def emit(g: _Graph, f: Function, xs: list, ys: list) -> None:
        dtype = _output(f).dtype
        x = g.cast(xs[0], f.inputs[0].dtype, dtype)
        c = g.constant(f.c, dtype)
        g.node(op_type, [c, x] if constant_first else [x, c], ys)
    return emit


def _emit_sum_to(g: _Graph, f: Function, xs: list, ys: list) -> None:
    x_shape = f.inputs[0].shape
    lead = len(x_shape) - len(f.shape)
    axes = list(range(lead)) + [i + lead for i, n in enumerate(f.shape) if n == 1]
    if not lead:
        g.reduce('ReduceSum', xs[0], axes, True, ys[0])
        return
    summed = g.reduce('ReduceSum', xs[0], axes, True)
    g.node('Squeeze', [summed, g.ints(range(lead))], ys)


def _emit_broadcast_to(g: _Graph, f: Function, xs: list, ys: list) -> None:
    x = f.inputs[0]
    lead = len(f.shape) - x.ndim
    # Expand broadcasts both ways, so an axis the input already has is written as 1: the input's batch
    # is never baked.
    target = [1 if i >= lead and x.shape[i - lead] == n else n for i, n in enumerate(f.shape)]
    g.node('Expand', [xs[0], g.ints(target)], ys)


def _emit_reshape(g: _Graph, f: Function, xs: list, ys: list) -> None:
    x, y = f.inputs[0], _output(f)
    target = list(y.shape)
    if g.carries_batch(x) and target and target[0] % g.batch_size == 0:
        # The input's batch dependence sits in its first axis, and so does the output's: Reshape's 0
        # copies the input's first axis (the batch), -1 takes whatever the run's batch leaves.
        target[0] = 0 if g.is_batched(x) and g.is_batched(y) else -1
    g.node('Reshape', [xs[0], g.ints(target)], ys)


def _permutation(f: Function) -> list[int]:
    ndim = f.inputs[0].ndim
    if f.axes is None:
        return list(range(ndim))[::-1]
    return [a % ndim for a in f.axes]


def _emit_transpose(g: _Graph, f: Function, xs: list, ys: list) -> None:
    g.node('Transpose', xs, ys, perm=_permutation(f))


def _is_array(s: Any) -> bool:
    return isinstance(s, array_types)


def _emit_get_item(g: _Graph, f: Function, xs: list, ys: list) -> None:
    """Basic indexing as Slice → Squeeze (ints) → Unsqueeze (None); one integer array among slices
    as Slice → Gather (an array that is a graph input, such as embed_id's ids, stays an input)."""
    x = f.inputs[0]
    items = list(f.slices) if isinstance(f.slices, tuple) else [f.slices]
    items = [np.flatnonzero(as_numpy(s)) if _is_array(s) and s.dtype == np.bool_ and s.ndim == 1 else s
             for s in items]
    # Identity tests only: ``==`` on an array item would compare elementwise.
    arrays = [s for s in items if _is_array(s)]
    has_int = any(isinstance(s, (int, np.integer)) for s in items)
    has_none = any(s is None for s in items)
    ellipses = [i for i, s in enumerate(items) if s is Ellipsis]
    if (any(isinstance(s, bool) for s in items) or len(ellipses) > 1 or len(arrays) > 1
            or any(s.dtype.kind not in 'iu' for s in arrays) or (arrays and (has_int or has_none))):
        raise _unsupported(f, f'index {f.slices!r}: only ints, slices, None and Ellipsis, or one integer '
                              'array among slices, are written')
    used_axes = sum(1 for s in items if s is not None and s is not Ellipsis)
    if ellipses:
        k = ellipses[0]
        items[k:k + 1] = [slice(None)] * (x.ndim - used_axes)
    starts, ends, axes, steps, squeeze, unsqueeze = [], [], [], [], [], []
    gather = None
    axis = out_axis = 0
    for s in items:
        if s is None:
            unsqueeze.append(out_axis)
            out_axis += 1
        elif isinstance(s, slice):
            step = 1 if s.step is None else int(s.step)
            if s.start is not None or s.stop is not None or step != 1:
                starts.append((0 if step > 0 else _INT64_MAX) if s.start is None else int(s.start))
                ends.append((_INT64_MAX if step > 0 else _INT64_MIN) if s.stop is None else int(s.stop))
                axes.append(axis)
                steps.append(step)
            axis += 1
            out_axis += 1
        elif _is_array(s):
            gather = (axis, s)
            axis += 1
            out_axis += s.ndim
        else:
            i = int(s)
            starts.append(i)
            ends.append(_INT64_MAX if i == -1 else i + 1)
            axes.append(axis)
            steps.append(1)
            squeeze.append(axis)
            axis += 1
    steps_to_write: list[tuple[str, list[str], dict]] = []
    if starts:
        steps_to_write.append(('Slice', [g.ints(starts), g.ints(ends), g.ints(axes), g.ints(steps)], {}))
    if gather is not None:
        steps_to_write.append(('Gather', [_index_input(g, gather[1])], {'axis': gather[0]}))
    if squeeze:
        steps_to_write.append(('Squeeze', [g.ints(squeeze)], {}))
    if unsqueeze:
        steps_to_write.append(('Unsqueeze', [g.ints(unsqueeze)], {}))
    if not steps_to_write:
        steps_to_write.append(('Identity', [], {}))
    current = xs[0]
    for k, (op_type, extra, attrs) in enumerate(steps_to_write):
        last = k == len(steps_to_write) - 1
        current = g.one(op_type, [current, *extra], ys[0] if last else None, **attrs)


def _index_input(g: _Graph, array: Any) -> str:
    """The indices of a Gather (int32 or int64): the graph input holding ``array``, else a constant."""
    return _target(g, array, array.dtype if array.dtype in (np.int32, np.int64) else np.int64)


def _reduction(op_type: str) -> Emitter:
    """Sum (axis, keepdims) or Max/Min (axes, keepdims)."""
    def emit(g: _Graph, f: Function, xs: list, ys: list) -> None:
        ndim = f.inputs[0].ndim
        axis = f.axis if hasattr(f, 'axis') else f.axes
        if axis is None:
            axes = None
        else:
            axes = sorted({int(a) % max(ndim, 1) for a in ((axis,) if np.isscalar(axis) else axis)})
        g.reduce(op_type, xs[0], axes, f.keepdims, ys[0])
    return emit


def _emit_log_sum_exp(g: _Graph, f: Function, xs: list, ys: list) -> None:
    axes = list(f.axes)
    top = g.reduce('ReduceMax', xs[0], axes, True)
    shifted = g.one('Exp', [g.one('Sub', [xs[0], top])])
    total = g.one('Add', [g.one('Log', [g.reduce('ReduceSum', shifted, axes, True)]), top],
                  None if not f.keepdims else ys[0])
    if not f.keepdims:
        g.node('Squeeze', [total, g.ints(axes)], ys)


def _softmax_axes(f: Function) -> list[int] | None:
    """The softmax axes as a list, or None when they are one int (ONNX's Softmax takes one axis)."""
    if np.isscalar(f.axis):
        return None
    ndim = f.inputs[0].ndim
    return sorted({int(a) % ndim for a in f.axis})


def _emit_softmax(g: _Graph, f: Function, xs: list, ys: list) -> None:
    axes = _softmax_axes(f)
    if axes is None:
        g.node('Softmax', xs, ys, axis=int(f.axis))
        return
    shifted = g.one('Exp', [g.one('Sub', [xs[0], g.reduce('ReduceMax', xs[0], axes, True)])])
    g.node('Div', [shifted, g.reduce('ReduceSum', shifted, axes, True)], ys)


def _emit_log_softmax(g: _Graph, f: Function, xs: list, ys: list) -> None:
    axes = _softmax_axes(f)
    if axes is None:
        g.node('LogSoftmax', xs, ys, axis=int(f.axis))
        return
    shifted = g.one('Sub', [xs[0], g.reduce('ReduceMax', xs[0], axes, True)])
    log_total = g.one('Log', [g.reduce('ReduceSum', g.one('Exp', [shifted]), axes, True)])
    g.node('Sub', [shifted, log_total], ys)


def _emit_softplus(g: _Graph, f: Function, xs: list, ys: list) -> None:
    if f.beta == 1:
        g.node('Softplus', xs, ys)
        return
    beta = g.constant(f.beta, f.inputs[0].dtype)
    g.node('Div', [g.one('Softplus', [g.one('Mul', [xs[0], beta])]), beta], ys)


def _emit_log_sigmoid(g: _Graph, f: Function, xs: list, ys: list) -> None:
    g.node('Neg', [g.one('Softplus', [g.one('Neg', xs)])], ys)


def _emit_clip(g: _Graph, f: Function, xs: list, ys: list) -> None:
    dtype = f.inputs[0].dtype
    bounds = ['' if b is None else g.constant(b, dtype) for b in (f.x_min, f.x_max)]
    g.node('Clip', [xs[0], *bounds], ys)


def _emit_leaky_relu(g: _Graph, f: Function, xs: list, ys: list) -> None:
    g.node('LeakyRelu', xs, ys, alpha=float(f.slope))


def _emit_concat(g: _Graph, f: Function, xs: list, ys: list) -> None:
    g.node('Concat', xs, ys, axis=f.axis)


def _emit_stack(g: _Graph, f: Function, xs: list, ys: list) -> None:
    axis = g.ints([f.axis])
    g.node('Concat', [g.one('Unsqueeze', [x, axis]) for x in xs], ys, axis=f.axis)


def _emit_where(g: _Graph, f: Function, xs: list, ys: list) -> None:
    dtype = _output(f).dtype
    operands = [g.cast(name, x.dtype, dtype) for name, x in zip(xs, f.inputs)]
    g.node('Where', [g.constant(f.condition), *operands], ys)


def _emit_linear(g: _Graph, f: Function, xs: list, ys: list) -> None:
    g.node('Gemm', xs, ys)


def _window_attrs(kernel: Sequence[int], stride: Sequence[int], pad: Sequence[int]) -> dict:
    ph, pw = pad
    return {'kernel_shape': list(kernel), 'strides': list(stride), 'pads': [ph, pw, ph, pw]}


def _emit_conv2d(g: _Graph, f: Function, xs: list, ys: list) -> None:
    W = f.inputs[1]
    g.node('Conv', xs, ys, dilations=[1, 1], group=1, **_window_attrs(W.shape[2:], f.stride, f.pad))


def _emit_deconv2d(g: _Graph, f: Function, xs: list, ys: list) -> None:
    x, W = f.inputs[0], f.inputs[1]
    kernel = W.shape[2:]
    default = [get_deconv_outsize(size, k, s, p)
               for size, k, s, p in zip(x.shape[2:], kernel, f.stride, f.pad)]
    # An explicit outsize beyond the default is ONNX's output_padding (always < stride).
    output_padding = [out - d for out, d in zip(_output(f).shape[2:], default)]
    g.node('ConvTranspose', xs, ys, dilations=[1, 1], group=1, output_padding=output_padding,
           **_window_attrs(kernel, f.stride, f.pad))


def _emit_max_pooling(g: _Graph, f: Function, xs: list, ys: list) -> None:
    # Padding never wins the max in either framework; both round the output size down.
    g.node('MaxPool', xs, ys, ceil_mode=0, **_window_attrs(f.kernel_size, f.stride, f.pad))


def _emit_min_pooling(g: _Graph, f: Function, xs: list, ys: list) -> None:
    # ONNX has no MinPool: min over a window is -max(-x), and padding never wins either way.
    pooled = g.one('MaxPool', [g.one('Neg', xs)], ceil_mode=0,
                   **_window_attrs(f.kernel_size, f.stride, f.pad))
    g.node('Neg', [pooled], ys)


def _emit_average_pooling(g: _Graph, f: Function, xs: list, ys: list) -> None:
    # dezero divides by KH*KW whatever the padding: ONNX's count_include_pad=1.
    g.node('AveragePool', xs, ys, ceil_mode=0, count_include_pad=1,
           **_window_attrs(f.kernel_size, f.stride, f.pad))


def _batch_count(g: _Graph, name: str, rows: int, batched: bool, dtype: Any) -> str:
    """The first-axis length of tensor ``name`` as a scalar of ``dtype``: ``rows`` (traced), or read
    with Shape at run time when that axis is the batch."""
    if not batched:
        return g.constant(rows, dtype)
    length = g.one('Gather', [g.one('Shape', [name]), g.constant(0, np.int64)], axis=0)
    return g.one('Cast', [length], to=onnx_elem_type(dtype))


def _emit_mean_squared_error(g: _Graph, f: Function, xs: list, ys: list) -> None:
    x0, x1 = f.inputs
    dtype = _output(f).dtype
    diff = g.one('Sub', [g.cast(xs[0], x0.dtype, dtype), g.cast(xs[1], x1.dtype, dtype)])
    total = g.reduce('ReduceSum', g.one('Mul', [diff, diff]), None, False)
    rows = np.broadcast_shapes(x0.shape, x1.shape)[0]
    count = _batch_count(g, diff, rows, g.is_batched(x0) or g.is_batched(x1), dtype)
    g.node('Div', [total, count], ys)


def _target(g: _Graph, array: Any, dtype: Any) -> str:
    """A loss's labels or targets: the graph input holding ``array`` when there is one, else a constant."""
    name = g.names.get(id(array))
    if name is None:
        return g.constant(array, dtype)
    return g.cast(name, array.dtype, dtype)


def _emit_softmax_cross_entropy(g: _Graph, f: Function, xs: list, ys: list) -> None:
    g.node('SoftmaxCrossEntropyLoss', [xs[0], _target(g, f.t, np.int64)], ys, reduction='mean')


def _emit_sigmoid_cross_entropy(g: _Graph, f: Function, xs: list, ys: list) -> None:
    x = f.inputs[0]
    t = _target(g, f.t, x.dtype)
    losses = g.one('Sub', [g.one('Softplus', xs), g.one('Mul', [t, xs[0]])])
    total = g.reduce('ReduceSum', losses, None, False)
    g.node('Div', [total, _batch_count(g, xs[0], len(x), g.is_batched(x), x.dtype)], ys)


def _emit_binary_cross_entropy(g: _Graph, f: Function, xs: list, ys: list) -> None:
    p = f.inputs[0]
    t = _target(g, f.t, p.dtype)
    one, floor = g.constant(1, p.dtype), g.constant(loss._LOG_FLOOR, p.dtype)
    log_p = g.one('Clip', [g.one('Log', xs), floor, ''])
    log_q = g.one('Clip', [g.one('Log', [g.one('Sub', [one, xs[0]])]), floor, ''])
    terms = g.one('Add', [g.one('Mul', [t, log_p]), g.one('Mul', [g.one('Sub', [one, t]), log_q])])
    total = g.one('Neg', [g.reduce('ReduceSum', terms, None, False)])
    g.node('Div', [total, _batch_count(g, xs[0], len(p), g.is_batched(p), p.dtype)], ys)


def _emit_packed_gates(g: _Graph, f: Function, xs: list, ys: list) -> None:
    """Each gate's weights' rows one after another, ``(G, R, H)`` (a bias is one row)."""
    per_gate = len(xs) // f.gates
    blocks = []
    for k in range(f.gates):
        rows = [name if w.ndim == 2 else g.one('Unsqueeze', [name, g.ints([0])])
                for name, w in zip(xs[k * per_gate:(k + 1) * per_gate], f.inputs[k * per_gate:])]
        block = rows[0] if len(rows) == 1 else g.one('Concat', rows, axis=0)
        blocks.append(g.one('Unsqueeze', [block, g.ints([0])]))
    g.node('Concat', blocks, ys, axis=0)


def _rows(g: _Graph, packed: str, start: int, stop: int) -> str:
    """Rows ``start:stop`` of every gate's block of a packed ``(G, R, H)``: ``(G, stop - start, H)``."""
    return g.one('Slice', [packed, g.ints([start]), g.ints([stop]), g.ints([1])])


def _gate(g: _Graph, stacked: str, k: int) -> str:
    """Gate ``k`` of a gate-major ``(G, ...)``."""
    return g.one('Gather', [stacked, g.constant(k, np.int64)], axis=0)


def _input_gates(g: _Graph, x: str, packed: str, first_row: int, width: int) -> str:
    """``x @ W_x + b`` for every gate, ``(G, N, H)``, from a packed ``(G, R, H)`` whose rows
    ``first_row:`` are ``[W_x; b]`` (``W_x`` of ``width`` rows)."""
    product = g.one('MatMul', [x, _rows(g, packed, first_row, first_row + width)])
    return g.one('Add', [product, _rows(g, packed, first_row + width, first_row + width + 1)])


def _emit_lstm_step(g: _Graph, f: Function, xs: list, ys: list) -> None:
    """The fused LSTM step as its gates: ``a = x @ W_x + b (+ h @ W_h)`` for f, i, o, u (i, o, u without
    a cell) from the packed ``W`` (per gate ``[W_h; W_x; b]``); ``c' = σ(a_f) * c + σ(a_i) * tanh(a_u)``,
    ``h' = σ(a_o) * tanh(c')``."""
    rest = list(xs[1:])
    h = rest.pop(0) if f.has_h else None
    c = rest.pop(0) if f.has_c else None
    hidden = f.inputs[-1].shape[2] if f.has_h else 0
    a = _input_gates(g, xs[0], rest[0], hidden, f.inputs[0].shape[1])
    if h is not None:
        a = g.one('Add', [a, g.one('MatMul', [h, _rows(g, rest[0], 0, hidden)])])
    gates = [_gate(g, a, k) for k in range(4 if f.has_c else 3)]
    input_, output = (g.one('Sigmoid', [a]) for a in gates[-3:-1])
    new = g.one('Mul', [input_, g.one('Tanh', [gates[-1]])])
    if c is None:
        g.one('Identity', [new], ys[1])
    else:
        g.one('Add', [g.one('Mul', [g.one('Sigmoid', [gates[0]]), c]), new], ys[1])
    g.one('Mul', [output, g.one('Tanh', [ys[1]])], ys[0])


def _emit_gru_step(g: _Graph, f: Function, xs: list, ys: list) -> None:
    """The fused GRU step (PyTorch's formulation): ``r, z = σ(x @ W_x + b_x (+ h @ W_h))``,
    ``n = tanh(x @ W_x[n] + b_x[n] + r * (h @ W_h[n] + b_hn))``, ``h' = n + z * (h - n)``, from the
    packed ``W_x`` (per gate ``[W_x; b_x]``) and ``W_h``."""
    x, h, W_x, W_h = (xs[0], xs[1], xs[2], xs[3]) if f.has_h else (xs[0], None, xs[1], None)
    b_hn = xs[-1]
    inputs = _input_gates(g, x, W_x, 0, f.inputs[0].shape[1])
    a = [_gate(g, inputs, k) for k in range(3)]
    if h is None:
        r, z = (g.one('Sigmoid', [a[k]]) for k in range(2))
        hn = b_hn
    else:
        products = g.one('MatMul', [h, W_h])
        r, z = (g.one('Sigmoid', [g.one('Add', [a[k], _gate(g, products, k)])]) for k in range(2))
        hn = g.one('Add', [_gate(g, products, 2), b_hn])
    n = g.one('Tanh', [g.one('Add', [a[2], g.one('Mul', [r, hn])])])
    if h is None:
        g.one('Sub', [n, g.one('Mul', [z, n])], ys[0])
    else:
        g.one('Add', [n, g.one('Mul', [z, g.one('Sub', [h, n])])], ys[0])


_EMITTERS: dict[type, Emitter] = {
    # arithmetic (dezero.core)
    core.Add: _binary('Add'),
    core.Sub: _binary('Sub'),
    core.Mul: _binary('Mul'),
    core.Div: _binary('Div'),
    core.Pow: _binary('Pow'),
    core.Neg: _same_op('Neg'),
    core.AddConstant: _with_constant('Add'),
    core.MulConstant: _with_constant('Mul'),
    core.DivConstant: _with_constant('Div'),
    core.PowConstant: _with_constant('Pow'),
    core.RSubConstant: _with_constant('Sub', constant_first=True),
    core.RDivConstant: _with_constant('Div', constant_first=True),
    core.RPowConstant: _with_constant('Pow', constant_first=True),
    core.SumTo: _emit_sum_to,
    core.BroadcastTo: _emit_broadcast_to,
    # elementwise math and activations
    math_ops.Sin: _same_op('Sin'),
    math_ops.Cos: _same_op('Cos'),
    math_ops.Tanh: _same_op('Tanh'),
    math_ops.Exp: _same_op('Exp'),
    math_ops.Log: _same_op('Log'),
    activation.Sigmoid: _same_op('Sigmoid'),
    activation.ReLU: _same_op('Relu'),
    activation.LeakyReLU: _emit_leaky_relu,
    activation.Softmax: _emit_softmax,
    activation.LogSoftmax: _emit_log_softmax,
    activation.Softplus: _emit_softplus,
    activation.LogSigmoid: _emit_log_sigmoid,
    activation._Erf: _same_op('Erf'),
    misc.Clip: _emit_clip,
    misc.Dropout: _same_op('Identity'),  # never traced (test mode), but identity is its test-mode meaning
    # shapes and indexing
    shape.Reshape: _emit_reshape,
    shape.Transpose: _emit_transpose,
    shape.GetItem: _emit_get_item,
    misc.Concat: _emit_concat,
    misc.Stack: _emit_stack,
    recurrent.PackedGates: _emit_packed_gates,
    misc.Where: _emit_where,
    # reductions
    reduction.Sum: _reduction('ReduceSum'),
    reduction.Max: _reduction('ReduceMax'),
    reduction.Min: _reduction('ReduceMin'),
    reduction.LogSumExp: _emit_log_sum_exp,
    # linear algebra, convolution, pooling
    linalg.MatMul: _same_op('MatMul'),
    linalg.Linear: _emit_linear,
    conv.Conv2d: _emit_conv2d,
    conv.Deconv2d: _emit_deconv2d,
    pooling.Pooling: _emit_max_pooling,
    pooling.MinPooling: _emit_min_pooling,
    pooling.AveragePooling: _emit_average_pooling,
    recurrent.LSTMStep: _emit_lstm_step,
    recurrent.GRUStep: _emit_gru_step,
    # losses (labels and targets given as example inputs stay graph inputs)
    loss.MeanSquaredError: _emit_mean_squared_error,
    loss.SoftmaxCrossEntropy: _emit_softmax_cross_entropy,
    loss.SigmoidCrossEntropy: _emit_sigmoid_cross_entropy,
    loss.BinaryCrossEntropy: _emit_binary_cross_entropy,
}


# =============================================================================
# Tracing
# =============================================================================
def _functions_behind(outputs: Sequence[Variable], stop: set[int]) -> list[Function]:
    """Every Function the outputs depend on (not looking behind the Variables in ``stop``), in an order
    where producers come before consumers."""
    found: dict[int, Function] = {}
    pending = [y.creator for y in outputs if y.creator is not None and id(y) not in stop]
    while pending:
        f = pending.pop()
        if id(f) in found:
            continue
        found[id(f)] = f
        for x in f.inputs:
            if x.creator is not None and id(x) not in stop and id(x.creator) not in found:
                pending.append(x.creator)
    # A consumer's generation exceeds each producer's; ties keep the discovery order (deterministic).
    return sorted(found.values(), key=lambda f: f.generation)


def _attribute_inputs(f: Function, input_arrays: dict[int, Variable]) -> list[Variable]:
    """Graph inputs a Function reads through an attribute: GetItem's integer-array index (embed_id's
    ids), a loss's labels or targets."""
    if isinstance(f, shape.GetItem):
        items = f.slices if isinstance(f.slices, tuple) else (f.slices,)
    elif isinstance(f, (loss.SoftmaxCrossEntropy, loss.SigmoidCrossEntropy, loss.BinaryCrossEntropy)):
        items = (f.t,)
    else:
        return []
    return [input_arrays[id(s)] for s in items if _is_array(s) and id(s) in input_arrays]


def _follow_batch(g: _Graph, f: Function, attribute_inputs: list[Variable], ys: list[str]) -> None:
    """Name the outputs of ``f`` and mark those whose first axis follows an input's batch: judged from
    the traced shapes (the first axis keeps the size of a batched, or folded, input's first axis)."""
    sources = [x for x in (*f.inputs, *attribute_inputs) if g.carries_batch(x)]
    keeps_first_axis = not (isinstance(f, shape.Transpose) and _permutation(f)[0] != 0)
    for ref, name in zip(f.outputs, ys):
        y = ref()
        if y is None:
            continue
        g.names[id(y)] = name
        if not sources or y.ndim == 0 or not keeps_first_axis:
            continue
        if isinstance(f, shape.Reshape):
            if y.shape[0] % g.batch_size == 0:
                (g.batched if y.shape[0] == g.batch_size else g.folded).add(id(y))
        elif any(y.shape[0] == x.shape[0] for x in sources):
            (g.batched if y.shape[0] == g.batch_size else g.folded).add(id(y))


def _value_info(name: str, var: Variable, batched: bool) -> onnx.ValueInfoProto:
    dims: list[Any] = list(var.shape)
    if batched:
        dims[0] = 'batch'
    return helper.make_tensor_value_info(name, onnx_elem_type(as_numpy(var.data).dtype), dims)


def _build_graph(model: Layer, inputs: list[Variable], outputs: list[Variable], input_names: list[str],
                 output_names: list[str], opset: int, dynamic_batch: bool) -> onnx.GraphProto:
    first = inputs[0]
    batch_size = first.shape[0] if dynamic_batch and first.ndim > 0 and first.shape[0] > 0 else None
    g = _Graph(opset, batch_size)
    for name in (*input_names, *output_names):
        g.reserve(name)
    dynamic: set[int] = set()
    input_arrays: dict[int, Variable] = {}
    for name, x in zip(input_names, inputs):
        g.names[id(x)] = g.names[id(x.data)] = name
        input_arrays[id(x.data)] = x
        dynamic.add(id(x))
        if batch_size is not None and x.ndim > 0 and x.shape[0] == batch_size:
            g.batched.add(id(x))
    # Parameters are initializers under their paths; one the model does not register (made in forward)
    # is still a Parameter: it keeps its own name.
    param_names = {id(param): path for path, param in model.named_params()}
    functions = _functions_behind(outputs, {id(x) for x in inputs})
    for f in functions:
        for x in f.inputs:
            if isinstance(x, Parameter) and id(x) not in dynamic:
                dynamic.add(id(x))
                g.names[id(x)] = g.fresh(param_names.get(id(x)) or x.name or 'param')
                g.initializers.append(numpy_helper.from_array(as_numpy(x.data), g.names[id(x)]))
    # Graph outputs are written directly by the node that makes them (first occurrence).
    written_outputs: dict[int, str] = {}
    for name, y in zip(output_names, outputs):
        if y.creator is not None and id(y) not in g.names and id(y) not in written_outputs:
            written_outputs[id(y)] = name

    for f in functions:
        attribute_inputs = _attribute_inputs(f, input_arrays)
        if not attribute_inputs and not any(id(x) in dynamic for x in f.inputs):
            continue  # depends on constants only: its outputs are folded where they are used
        emit = _EMITTERS.get(type(f))
        if emit is None:
            raise _unsupported(f, f'dezero.onnx has no mapping for {type(f).__name__}')
        xs = [g.value(x) for x in f.inputs]
        g.scope = g.fresh(type(f).__name__)
        ys = []
        for ref in f.outputs:
            y = ref()
            name = written_outputs.get(id(y)) if y is not None else None
            ys.append(name if name is not None else g.fresh(f'{g.scope}:{len(ys)}'))
        emit(g, f, xs, ys)
        dynamic.update(id(ref()) for ref in f.outputs if ref() is not None)
        _follow_batch(g, f, attribute_inputs, ys)
        g.scope = ''

    # Outputs that no node wrote under their name (an input, a parameter, a constant, a repeat).
    for name, y in zip(output_names, outputs):
        if g.names.get(id(y)) != name:
            g.one('Identity', [g.value(y)], name)
    graph_inputs = [_value_info(name, x, id(x) in g.batched) for name, x in zip(input_names, inputs)]
    graph_outputs = [_value_info(name, y, id(y) in g.batched) for name, y in zip(output_names, outputs)]
    return helper.make_graph(g.nodes, type(model).__name__, graph_inputs, graph_outputs, g.initializers)


# =============================================================================
# The public function
# =============================================================================
def _as_input(index: int, x: Any) -> Variable:
    if isinstance(x, Parameter):
        raise TypeError(f'{_WHERE}: example input {index} is a Parameter; pass the input data')
    if isinstance(x, Variable):
        if x.data is None:
            raise ValueError(f'{_WHERE}: example input {index} is a Variable without data')
        return x
    if isinstance(x, array_types):
        return Variable(x)
    if isinstance(x, (int, float, list, tuple, np.generic)):
        return Variable(np.asarray(x))
    raise TypeError(f'{_WHERE}: example input {index} must be an array or a Variable, '
                    f'got {type(x).__name__}')


def _tensor_names(what: str, names: Sequence[str] | None, count: int, default: str) -> list[str]:
    if names is None:
        return [default] if count == 1 else [f'{default}_{i}' for i in range(count)]
    if isinstance(names, str):
        names = [names]
    names = list(names)
    if len(names) != count or not all(isinstance(n, str) and n for n in names):
        raise ValueError(f'{_WHERE}: {what} must be a list of {count} non-empty strings, got {names!r}')
    return names


def export(model: Layer, *example_inputs: Any, path: str | os.PathLike,
           input_names: Sequence[str] | None = None, output_names: Sequence[str] | None = None,
           opset: int | None = None, dynamic_batch: bool = True) -> onnx.ModelProto:
    """Write ``model`` as the ONNX file ``path``, tracing one forward pass on ``example_inputs``.

    The forward pass runs in test mode (dropout is the identity, batch normalisation uses its running
    statistics) with graph recording on; every Function of the recorded graph becomes ONNX nodes, the
    Parameters it reads become initializers named by their paths in ``model.named_params()``
    (``'l0/W'``), and anything computed from constants alone is folded into Constant nodes. A recurrent
    model is written unrolled over the steps its forward ran.

    Args:
        model: the Layer or Model to export; called as ``model(*example_inputs)``, it returns a
            Variable or a tuple/list of Variables (the graph outputs).
        example_inputs: arrays or Variables, e.g. ``x (N, 1, 28, 28)``; integer arrays that an
            ``embed_id`` reads stay graph inputs.
        path: the ``.onnx`` file to write (atomically: never left half-written).
        input_names, output_names: ONNX names of the inputs and outputs (default ``'input'`` and
            ``'output'``, numbered ``'input_0'``... when there are several).
        opset: the ONNX opset to write, from ``MIN_EXPORT_OPSET`` (13) to ``MAX_OPSET``
            (default ``DEFAULT_OPSET``, 17).
        dynamic_batch: write the first axis of the inputs, and of everything that follows it, as the
            symbolic size ``'batch'``, so the file runs at any batch size (trace with a batch size that
            no other axis has, 2 or more). False writes the traced shapes.

    Returns:
        The ``onnx.ModelProto`` written; it passes ``onnx.checker.check_model(full_check=True)``.

    Raises:
        NotImplementedError: a Function of the graph has no ONNX mapping (the message names its class
            and input shapes).
    """
    if not isinstance(model, Layer):
        raise TypeError(f'{_WHERE}: model must be a dezero Layer or Model, got {type(model).__name__}')
    if not example_inputs:
        raise ValueError(f'{_WHERE}: give at least one example input to trace the forward pass with')
    if opset is None:
        opset = DEFAULT_OPSET
    if not isinstance(opset, (int, np.integer)) or not MIN_EXPORT_OPSET <= opset <= MAX_OPSET:
        raise ValueError(f'{_WHERE}: opset must be an int from {MIN_EXPORT_OPSET} to {MAX_OPSET}, '
                         f'got {opset!r}')
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"{_WHERE}: cannot write '{path}': directory '{directory}' does not exist")
    inputs = [_as_input(i, x) for i, x in enumerate(example_inputs)]
    if len({id(x) for x in inputs}) != len(inputs):
        raise ValueError(f'{_WHERE}: the same Variable is given as two example inputs')
    input_names = _tensor_names('input_names', input_names, len(inputs), 'input')

    with using_config('train', False), using_config('enable_backprop', True):
        result = model(*inputs)
    outputs = list(result) if isinstance(result, (tuple, list)) else [result]
    for i, y in enumerate(outputs):
        if not isinstance(y, Variable):
            raise TypeError(f'{_WHERE}: {type(model).__name__} returned {type(y).__name__} as output {i}; '
                            'the outputs must be Variables')
    output_names = _tensor_names('output_names', output_names, len(outputs), 'output')
    if len(set(input_names + output_names)) != len(input_names) + len(output_names):
        raise ValueError(f'{_WHERE}: input and output names must all differ, got inputs {input_names} '
                         f'and outputs {output_names}')

    graph = _build_graph(model, inputs, outputs, input_names, output_names, int(opset), dynamic_batch)
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', int(opset))],
                                   producer_name='dezero', producer_version=dezero.__version__,
                                   doc_string=f'{type(model).__name__} exported by dezero.onnx.export')
    # The oldest IR version that carries this opset: readable by the most runtimes.
    onnx_model.ir_version = helper.find_min_ir_version_for(list(onnx_model.opset_import))
    try:
        data = onnx_model.SerializeToString()
    except ValueError as error:  # protobuf refuses messages over 2 GiB
        raise ValueError(f'{_WHERE}: {type(model).__name__} does not fit in one ONNX file, which holds at '
                         f'most 2 GiB without external data ({error})') from error
    onnx.checker.check_model(data, full_check=True)
    with atomic_file(path, suffix='.onnx') as tmp_path, open(tmp_path, 'wb') as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    return onnx_model
