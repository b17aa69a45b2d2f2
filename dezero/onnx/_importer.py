"""Import: an ONNX file as a dezero Model that runs the graph with dezero Functions.

``load`` reads and checks the file, turns the initializers into Parameters (batch normalisation's
running statistics into buffers, integer tensors into constants) and compiles every node with the
builder that ``_BUILDERS`` registers for its op type. A builder reads the node's attributes once, at
load time (rejecting what it cannot run, with the node's name), and returns the step that runs the
node on dezero values.

A value is a Variable when it depends on an input or a Parameter, and a NumPy array otherwise
("static": constants, and shapes read with ``Shape``). Static values are computed with NumPy at run
time, so the ``Shape → Gather → Concat → Reshape`` chains exporters write for a flatten follow the
actual input shape, and a file exported with a symbolic batch runs at any batch size.
"""
from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import external_data_helper, helper, numpy_helper

import dezero.functions as F
from dezero.core import Parameter, Variable, no_grad
from dezero.layers.base import Layer
from dezero.models.base import Model
from dezero.onnx._common import DEFAULT_DOMAINS, MAX_OPSET, numpy_dtype
from dezero.ops.activation import _Erf

__all__ = ['OnnxModel', 'load']

_WHERE = 'dezero.onnx.load'
# Float initializers are Parameters, except these inputs: running statistics (buffers, never
# trained) and settings given as tensors (constants).
_BUFFER_INPUTS = {'BatchNormalization': (3, 4)}
_CONSTANT_INPUTS = {'Dropout': (1, 2), 'Clip': (1, 2)}


class _Node:
    """What a builder reads of one ONNX node: its attributes, names, and the model's opset."""

    def __init__(self, node: onnx.NodeProto, opset: int, path: str) -> None:
        self.op_type = node.op_type
        self.name = node.name
        self.opset = opset
        self.path = path
        self.outputs = list(node.output)
        self.attrs = {a.name: _attribute_value(a) for a in node.attribute}

    def get(self, name: str, default: Any = None) -> Any:
        return self.attrs.get(name, default)

    def error(self, what: str) -> NotImplementedError:
        return NotImplementedError(f"{_WHERE}: '{self.path}': {self.op_type} node '{self.name}' "
                                   f'(opset {self.opset}): {what}')

    def require(self, condition: bool, what: str) -> None:
        if not condition:
            raise self.error(what)


def _attribute_value(attribute: onnx.AttributeProto) -> Any:
    value = helper.get_attribute_value(attribute)
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, onnx.TensorProto):
        return numpy_helper.to_array(value)
    return value


# =============================================================================
# Values: Variables (dynamic) and arrays (static)
# =============================================================================
def _is_static(*values: Any) -> bool:
    return not any(isinstance(v, Variable) for v in values)


def _lift(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` (built from dezero Functions) on dezero values: on static values it runs without a
    graph and returns an array, so constants stay constants."""
    def run(*values: Any, **kwargs: Any) -> Any:
        if _is_static(*values):
            with no_grad():
                result = function(*values, **kwargs)
            return result.data if isinstance(result, Variable) else result
        return function(*values, **kwargs)
    return run


def _ints(value: Any, node: _Node, what: str) -> list[int]:
    """A static integer tensor (a shape, axes...) as a list of ints."""
    if isinstance(value, Variable):
        raise node.error(f'{what} must be a constant or computed from shapes, not from the data')
    return [int(v) for v in np.asarray(value).reshape(-1)]


_reshape = _lift(F.reshape)
_transpose = _lift(F.transpose)


def _get_item(x: Any, index: tuple) -> Any:
    return x[index] if _is_static(x) else F.get_item(x, index)


# =============================================================================
# Builders: one per op type. Each reads a node at load time and returns its step.
# =============================================================================
Step = Callable[..., Any]


def _elementwise(function: Callable[..., Any]) -> Callable[[_Node], Step]:
    lifted = _lift(function)
    return lambda node: lifted


def _build_div(node: _Node) -> Step:
    divide = _lift(F.div)

    def run(a: Any, b: Any) -> Any:
        if _is_static(a, b) and np.asarray(a).dtype.kind in 'iu' and np.asarray(b).dtype.kind in 'iu':
            quotient = np.abs(a) // np.abs(b)  # ONNX's integer division truncates toward zero
            return (quotient * np.sign(a) * np.sign(b)).astype(np.result_type(a, b))
        return divide(a, b)
    return run


def _build_leaky_relu(node: _Node) -> Step:
    alpha = float(node.get('alpha', 0.01))
    return lambda x: _lift(F.leaky_relu)(x, alpha)


def _build_gelu(node: _Node) -> Step:
    approximate = node.get('approximate', 'none')
    node.require(approximate in ('none', 'tanh'), f'approximate={approximate!r} is not supported')
    return lambda x: _lift(F.gelu)(x, approximate)


def _build_clip(node: _Node) -> Step:
    if node.opset < 11:
        bounds = (node.get('min'), node.get('max'))
        return lambda x: _clip(x, *bounds)
    return _clip


def _clip(x: Any, low: Any = None, high: Any = None) -> Any:
    if low is None and high is None:
        return x
    return _lift(F.clip)(x, low, high)


def _softmax_builder(function: Callable[..., Any]) -> Callable[[_Node], Step]:
    def build(node: _Node) -> Step:
        axis = int(node.get('axis', -1 if node.opset >= 13 else 1))
        lifted = _lift(function)

        def run(x: Any) -> Any:
            a = axis % x.ndim
            if node.opset >= 13:
                return lifted(x, a)
            # Before opset 13 the input is seen as 2-D: axes before ``axis`` by those from it.
            rows = math.prod(x.shape[:a])
            return _reshape(lifted(_reshape(x, (rows, -1)), 1), x.shape)
        return run
    return build


def _build_gemm(node: _Node) -> Step:
    alpha, beta = float(node.get('alpha', 1.0)), float(node.get('beta', 1.0))
    trans_a, trans_b = bool(node.get('transA', 0)), bool(node.get('transB', 0))

    def gemm(A: Any, B: Any, C: Any = None) -> Any:
        A = F.transpose(A) if trans_a else A
        B = F.transpose(B) if trans_b else B
        if alpha == 1 and (C is None or (beta == 1 and C.shape == (B.shape[1],))):
            return F.linear(A, B, C)
        y = F.matmul(A, B)
        if alpha != 1:
            y = y * alpha
        if C is not None:
            y = y + (C if beta == 1 else C * beta)
        return y
    return _lift(gemm)


def _window(node: _Node, kernel_from_weight: bool) -> tuple[list | None, list[int], list[int] | None]:
    """Kernel, strides and explicit pads of a 2-D Conv/ConvTranspose/pool node, checked at load."""
    kernel = node.get('kernel_shape')
    node.require(kernel is not None or kernel_from_weight, 'kernel_shape is required')
    node.require(kernel is None or len(kernel) == 2, f'only 2-D windows are supported, got kernel_shape '
                                                     f'{kernel}')
    strides = list(node.get('strides', [1, 1]))
    node.require(len(strides) == 2, f'only 2-D windows are supported, got strides {strides}')
    node.require(all(d == 1 for d in node.get('dilations', [1, 1])),
                 f'dilations {node.get("dilations")} are not supported (only 1)')
    auto_pad = node.get('auto_pad', 'NOTSET')
    node.require(auto_pad in ('NOTSET', 'VALID', 'SAME_UPPER', 'SAME_LOWER'), f'auto_pad={auto_pad!r}')
    pads = node.get('pads')
    if auto_pad == 'VALID':
        pads = [0, 0, 0, 0]
    elif auto_pad == 'NOTSET':
        pads = list(pads) if pads is not None else [0, 0, 0, 0]
        node.require(len(pads) == 4 and pads[0] == pads[2] and pads[1] == pads[3],
                     f'pads {pads} are not symmetric (dezero pads both sides of an axis equally)')
    else:
        pads = None  # SAME_*: computed from the input size at run time
    return (None if kernel is None else list(kernel)), strides, pads


def _symmetric_pad(node: _Node, pads: list[int] | None, in_hw: Sequence[int], kernel: Sequence[int],
                   strides: Sequence[int]) -> tuple[int, int]:
    """``(ph, pw)``: the explicit pads, or those ``auto_pad=SAME_*`` needs for this input size."""
    if pads is not None:
        return pads[0], pads[1]
    result = []
    for size, k, s in zip(in_hw, kernel, strides):
        total = max((-(-size // s) - 1) * s + k - size, 0)
        if total % 2:
            raise node.error(f'auto_pad={node.get("auto_pad")} needs uneven padding ({total}) for an '
                             f'input of size {tuple(in_hw)}, which dezero does not do')
        result.append(total // 2)
    return result[0], result[1]


def _build_conv(node: _Node) -> Step:
    node.require(int(node.get('group', 1)) == 1, f'group={node.get("group")} is not supported (only 1)')
    _, strides, pads = _window(node, kernel_from_weight=True)

    def run(x: Any, W: Any, b: Any = None) -> Any:
        if W.ndim != 4:
            raise node.error(f'only 2-D convolution is supported, got weights of shape {W.shape}')
        pad = _symmetric_pad(node, pads, x.shape[2:], W.shape[2:], strides)
        return _lift(F.conv2d)(x, W, b, tuple(strides), pad)
    return run


def _build_conv_transpose(node: _Node) -> Step:
    node.require(int(node.get('group', 1)) == 1, f'group={node.get("group")} is not supported (only 1)')
    auto_pad = node.get('auto_pad', 'NOTSET')
    node.require(auto_pad in ('NOTSET', 'VALID'), f'auto_pad={auto_pad!r} is not supported')
    _, strides, pads = _window(node, kernel_from_weight=True)
    output_padding = list(node.get('output_padding', [0, 0]))
    output_shape = node.get('output_shape')

    def run(x: Any, W: Any, b: Any = None) -> Any:
        if W.ndim != 4:
            raise node.error(f'only 2-D transposed convolution is supported, got weights of shape {W.shape}')
        kernel = W.shape[2:]
        if output_shape is not None:
            outsize = tuple(output_shape[-2:])
            pad = []
            for size, k, s, op, out in zip(x.shape[2:], kernel, strides, output_padding, outsize):
                total = s * (size - 1) + op + k - out
                if total < 0 or total % 2:
                    raise node.error(f'output_shape {output_shape} needs uneven padding for an input of '
                                     f'shape {x.shape}')
                pad.append(total // 2)
        else:
            pad = pads[:2]
            outsize = tuple(s * (size - 1) + op + k - 2 * p for size, k, s, op, p
                            in zip(x.shape[2:], kernel, strides, output_padding, pad))
        return _lift(F.deconv2d)(x, W, b, tuple(strides), tuple(pad), outsize)
    return run


def _ceil_extra(node: _Node, in_hw: Sequence[int], kernel: Sequence[int], strides: Sequence[int],
                pad: Sequence[int]) -> list[int]:
    """Rows/columns to add at the end so that a floor-mode pool gives ceil_mode's output size (ONNX
    drops a last window that would start in the end padding)."""
    extra = []
    for size, k, s, p in zip(in_hw, kernel, strides, pad):
        out = -(-(size + 2 * p - k) // s) + 1
        if (out - 1) * s >= size + p:
            out -= 1
        extra.append(max((out - 1) * s + k - (size + 2 * p), 0))
    return extra


def _build_max_pool(node: _Node) -> Step:
    kernel, strides, pads = _window(node, kernel_from_weight=False)
    node.require(len(node.outputs) < 2 or not node.outputs[1], 'the Indices output is not supported')
    ceil_mode = bool(node.get('ceil_mode', 0))

    def run(x: Any) -> Any:
        pad = _symmetric_pad(node, pads, x.shape[2:], kernel, strides)
        if ceil_mode:
            extra = _ceil_extra(node, x.shape[2:], kernel, strides, pad)
            for axis, rows in ((2, extra[0]), (3, extra[1])):
                if rows:
                    shape_of_fill = list(x.shape)
                    shape_of_fill[axis] = rows
                    filler = np.full(shape_of_fill, -np.inf, dtype=x.dtype)
                    x = np.concatenate([x, filler], axis) if _is_static(x) else F.concat([x, filler], axis)
        return _lift(F.pooling)(x, tuple(kernel), tuple(strides), pad)
    return run


def _build_average_pool(node: _Node) -> Step:
    kernel, strides, pads = _window(node, kernel_from_weight=False)
    count_include_pad = bool(node.get('count_include_pad', 0))
    ceil_mode = bool(node.get('ceil_mode', 0))

    def run(x: Any) -> Any:
        pad = _symmetric_pad(node, pads, x.shape[2:], kernel, strides)
        if ceil_mode and any(_ceil_extra(node, x.shape[2:], kernel, strides, pad)):
            raise node.error(f'ceil_mode=1 changes the output size for an input of shape {x.shape}')
        y = _lift(F.average_pooling)(x, tuple(kernel), tuple(strides), pad)
        if count_include_pad or pad == (0, 0):
            return y
        # Divide by the pixels inside each window rather than KH*KW: the fraction of them is the
        # average pooling of ones.
        ones = np.ones((1, 1) + tuple(x.shape[2:]), dtype=x.dtype)
        with no_grad():
            inside = F.average_pooling(ones, tuple(kernel), tuple(strides), pad).data
        return _lift(F.div)(y, inside)
    return run


def _global_pool(function: Callable[..., Any]) -> Callable[[_Node], Step]:
    lifted = _lift(function)
    return lambda node: lambda x: lifted(x, tuple(range(2, x.ndim)), True)


def _build_batch_normalization(node: _Node) -> Step:
    epsilon = float(node.get('epsilon', 1e-5))
    momentum = float(node.get('momentum', 0.9))
    node.require(int(node.get('spatial', 1)) == 1, 'spatial=0 is not supported')
    node.require(len([o for o in node.outputs[1:] if o]) == 0,
                 'the running mean and variance outputs (training mode) are not supported')

    def run(x: Any, scale: Any, bias: Any, mean: Any, var: Any) -> Any:
        if x.ndim in (2, 4):
            return _lift(F.batch_norm)(x, scale, bias, mean, var, momentum, epsilon)
        if x.ndim < 2:
            raise node.error(f'the input needs a channel axis, got shape {x.shape}')
        # (N, C, D1, ...) runs as the (N, C, D1*..., 1) image batch_norm normalises per channel.
        image = _reshape(x, x.shape[:2] + (-1, 1))
        return _reshape(_lift(F.batch_norm)(image, scale, bias, mean, var, momentum, epsilon), x.shape)
    return run


def _build_flatten(node: _Node) -> Step:
    axis = int(node.get('axis', 1))

    def run(x: Any) -> Any:
        a = axis + x.ndim if axis < 0 else axis
        return _reshape(x, (math.prod(x.shape[:a]), math.prod(x.shape[a:])))
    return run


def _build_reshape(node: _Node) -> Step:
    node.require(node.opset >= 5, 'Reshape before opset 5 (shape as an attribute) is not supported')
    allow_zero = bool(node.get('allowzero', 0))

    def run(x: Any, shape: Any) -> Any:
        target = _ints(shape, node, 'the shape')
        if not allow_zero:
            target = [x.shape[i] if s == 0 else s for i, s in enumerate(target)]
        return _reshape(x, tuple(target))
    return run


def _build_constant(node: _Node) -> Step:
    attrs = node.attrs
    if 'value' in attrs:
        value = np.array(attrs['value'])
    elif 'value_float' in attrs:
        value = np.array(attrs['value_float'], dtype=np.float32)
    elif 'value_floats' in attrs:
        value = np.array(attrs['value_floats'], dtype=np.float32)
    elif 'value_int' in attrs:
        value = np.array(attrs['value_int'], dtype=np.int64)
    elif 'value_ints' in attrs:
        value = np.array(attrs['value_ints'], dtype=np.int64)
    else:
        raise node.error(f'only tensor, float and int values are supported, got {sorted(attrs)}')
    return lambda: value


def _build_constant_of_shape(node: _Node) -> Step:
    value = node.get('value', np.zeros(1, dtype=np.float32)).reshape(-1)
    return lambda shape: np.full(tuple(_ints(shape, node, 'the shape')), value[0], dtype=value.dtype)


def _build_dropout(node: _Node) -> Step:
    node.require(len(node.outputs) < 2 or not node.outputs[1], 'the mask output is not supported')
    default_ratio = float(node.get('ratio', 0.5))

    # Like every dezero dropout, active in training mode only (ONNX's training_mode input is ignored).
    def run(x: Any, ratio: Any = None, training_mode: Any = None) -> Any:
        r = default_ratio if ratio is None or node.opset < 12 else float(np.asarray(ratio))
        return _lift(F.dropout)(x, r)
    return run


def _build_concat(node: _Node) -> Step:
    axis = int(node.get('axis'))

    def run(*xs: Any) -> Any:
        if _is_static(*xs):
            return np.concatenate([np.asarray(x) for x in xs], axis)
        return F.concat(xs, axis % xs[0].ndim)
    return run


def _build_transpose(node: _Node) -> Step:
    perm = node.get('perm')
    return lambda x: _transpose(x, None if perm is None else tuple(perm))


def _build_gather(node: _Node) -> Step:
    axis = int(node.get('axis', 0))

    def run(data: Any, indices: Any) -> Any:
        if isinstance(indices, Variable):
            raise node.error('indices computed from the data are not supported')
        a = axis % data.ndim
        indices = np.asarray(indices)
        indices = np.where(indices < 0, indices + data.shape[a], indices)
        index = int(indices) if indices.ndim == 0 else indices
        return _get_item(data, (slice(None),) * a + (index,))
    return run


def _axes_argument(node: _Node, since: int) -> Callable[[Any], list[int] | None]:
    """Reads the axes of Squeeze/Unsqueeze/Reduce*: an attribute before opset ``since``, an input
    from it (None when absent)."""
    if node.opset < since:
        axes = node.get('axes')
        return lambda value: None if axes is None else list(axes)
    return lambda value: None if value is None else _ints(value, node, 'axes')


def _build_unsqueeze(node: _Node) -> Step:
    read_axes = _axes_argument(node, 13)

    def run(x: Any, axes_input: Any = None) -> Any:
        axes = read_axes(axes_input)
        if axes is None:
            raise node.error('axes are required')
        rank = x.ndim + len(axes)
        shape = list(x.shape)
        for a in sorted(a % rank for a in axes):
            shape.insert(a, 1)
        return _reshape(x, tuple(shape))
    return run


def _build_squeeze(node: _Node) -> Step:
    read_axes = _axes_argument(node, 13)

    def run(x: Any, axes_input: Any = None) -> Any:
        axes = read_axes(axes_input)
        drop = {i for i, n in enumerate(x.shape) if n == 1} if axes is None else {a % x.ndim for a in axes}
        return _reshape(x, tuple(n for i, n in enumerate(x.shape) if i not in drop))
    return run


def _reduce_builder(function: Callable[..., Any], axes_input_since: int) -> Callable[[_Node], Step]:
    def build(node: _Node) -> Step:
        keepdims = bool(node.get('keepdims', 1))
        noop_with_empty_axes = bool(node.get('noop_with_empty_axes', 0))
        read_axes = _axes_argument(node, axes_input_since)
        lifted = _lift(function)

        def run(x: Any, axes_input: Any = None) -> Any:
            axes = read_axes(axes_input)
            if not axes:
                if noop_with_empty_axes:
                    return x
                axes = range(x.ndim)
            return lifted(x, tuple(sorted({a % x.ndim for a in axes})), keepdims)
        return run
    return build


def _build_shape(node: _Node) -> Step:
    start, end = node.get('start', 0), node.get('end')
    return lambda x: np.array(x.shape[start:end], dtype=np.int64)


def _cast_to(node: _Node, x: Any, dtype: np.dtype) -> Any:
    if _is_static(x):
        return np.asarray(x).astype(dtype)
    if x.dtype != dtype:
        raise node.error(f'casting the data from {x.dtype} to {dtype} is not supported')
    return x


def _build_cast(node: _Node) -> Step:
    dtype = numpy_dtype(int(node.get('to')))
    return lambda x: _cast_to(node, x, dtype)


def _build_cast_like(node: _Node) -> Step:
    return lambda x, like: _cast_to(node, x, like.dtype)


def _build_slice(node: _Node) -> Step:
    def run(data: Any, starts: Any = None, ends: Any = None, axes: Any = None, steps: Any = None) -> Any:
        if node.opset < 10:
            starts, ends, axes = node.get('starts'), node.get('ends'), node.get('axes')
        starts, ends = _ints(starts, node, 'starts'), _ints(ends, node, 'ends')
        axes = list(range(len(starts))) if axes is None else _ints(axes, node, 'axes')
        steps = [1] * len(starts) if steps is None else _ints(steps, node, 'steps')
        index = [slice(None)] * data.ndim
        for start, end, axis, step in zip(starts, ends, axes, steps):
            index[axis % data.ndim] = slice(start, end, step)
        return _get_item(data, tuple(index))
    return run


def _build_expand(node: _Node) -> Step:
    def run(x: Any, shape: Any) -> Any:
        target = np.broadcast_shapes(tuple(x.shape), tuple(_ints(shape, node, 'the shape')))
        if _is_static(x):
            return np.broadcast_to(x, target).copy()
        return F.broadcast_to(x, target)
    return run


def _build_where(node: _Node) -> Step:
    def run(condition: Any, x: Any, y: Any) -> Any:
        if isinstance(condition, Variable):
            raise node.error('a condition computed from the data is not supported')
        if _is_static(x, y):
            return np.where(condition, x, y)
        return F.where(np.asarray(condition, dtype=bool), x, y)
    return run


def _build_softmax_cross_entropy_loss(node: _Node) -> Step:
    reduction = node.get('reduction', 'mean')
    node.require(reduction in ('mean', 'sum', 'none'), f'reduction={reduction!r}')
    node.require('ignore_index' not in node.attrs, 'ignore_index is not supported')
    node.require(len(node.outputs) < 2 or not node.outputs[1], 'the log_prob output is not supported')

    def run(scores: Any, labels: Any, weights: Any = None) -> Any:
        if weights is not None:
            raise node.error('class weights are not supported')
        if scores.ndim != 2:
            raise node.error(f'only (N, C) scores are supported, got shape {scores.shape}')
        labels = np.asarray(labels.data if isinstance(labels, Variable) else labels)
        if reduction == 'mean':
            return _lift(F.softmax_cross_entropy)(scores, labels)
        picked = -_get_item(_lift(F.log_softmax)(scores), (np.arange(len(labels)), labels))
        return picked if reduction == 'none' else _lift(F.sum)(picked)
    return run


_BUILDERS: dict[str, Callable[[_Node], Step]] = {
    # arithmetic and elementwise math
    'Add': _elementwise(F.add),
    'Sub': _elementwise(F.sub),
    'Mul': _elementwise(F.mul),
    'Div': _build_div,
    'Pow': _elementwise(F.pow),
    'Neg': _elementwise(F.neg),
    'Sqrt': _elementwise(lambda x: F.pow(x, 0.5)),
    'Exp': _elementwise(F.exp),
    'Log': _elementwise(F.log),
    'Sin': _elementwise(F.sin),
    'Cos': _elementwise(F.cos),
    'Erf': _elementwise(lambda x: _Erf()(x)),
    # activations
    'Relu': _elementwise(F.relu),
    'Sigmoid': _elementwise(F.sigmoid),
    'Tanh': _elementwise(F.tanh),
    'LeakyRelu': _build_leaky_relu,
    'Softplus': _elementwise(F.softplus),
    'Gelu': _build_gelu,
    'Clip': _build_clip,
    'Softmax': _softmax_builder(F.softmax),
    'LogSoftmax': _softmax_builder(F.log_softmax),
    'Dropout': _build_dropout,
    'SoftmaxCrossEntropyLoss': _build_softmax_cross_entropy_loss,
    # linear algebra, convolution, pooling, normalisation
    'Gemm': _build_gemm,
    'MatMul': _elementwise(F.matmul),
    'Conv': _build_conv,
    'ConvTranspose': _build_conv_transpose,
    'MaxPool': _build_max_pool,
    'AveragePool': _build_average_pool,
    'GlobalAveragePool': _global_pool(F.average),
    'GlobalMaxPool': _global_pool(F.max),
    'BatchNormalization': _build_batch_normalization,
    # shapes, indexing, constants
    'Flatten': _build_flatten,
    'Reshape': _build_reshape,
    'Transpose': _build_transpose,
    'Concat': _build_concat,
    'Gather': _build_gather,
    'Slice': _build_slice,
    'Unsqueeze': _build_unsqueeze,
    'Squeeze': _build_squeeze,
    'Expand': _build_expand,
    'Where': _build_where,
    'Shape': _build_shape,
    'Cast': _build_cast,
    'CastLike': _build_cast_like,
    'Constant': _build_constant,
    'ConstantOfShape': _build_constant_of_shape,
    'Identity': lambda node: lambda x: x,
    # reductions (axes are an input from opset 13 for ReduceSum, 18 for the others)
    'ReduceSum': _reduce_builder(F.sum, 13),
    'ReduceMean': _reduce_builder(F.average, 18),
    'ReduceMax': _reduce_builder(F.max, 18),
    'ReduceMin': _reduce_builder(F.min, 18),
}


# The op types ``load`` reads.
SUPPORTED_OPS = tuple(sorted(_BUILDERS))


# =============================================================================
# The Model
# =============================================================================
class OnnxModel(Model):
    """A dezero Model that runs an ONNX graph, made by ``dezero.onnx.load``.

    ``model(*inputs)`` takes one array or Variable per graph input (``input_names``, in the file's
    order; arrays are converted to the declared element type) and returns one Variable, or a tuple for
    several outputs (``output_names``). The nodes run as dezero Functions, so outputs can be
    differentiated to any order. Float initializers are Parameters under their ONNX names:
    ``named_params()`` gives back ``'l0/W'`` or ``'fc1.weight'``, and a name with slashes is reached as
    nested layers (``model.l0.W``); batch normalisation's running statistics are buffers. As with any
    dezero model, run inference in ``dezero.test_mode()`` (dropout off, batch normalisation on its
    running statistics).
    """

    def __init__(self, path: str, opset: int, input_specs: list[tuple[str, np.dtype]],
                 output_names: list[str], steps: list[tuple[Step, list[str], list[str]]]) -> None:
        super().__init__()
        self._path = path
        self._opset = opset
        self._input_specs = input_specs
        self._output_names = output_names
        self._steps = steps
        self._sources: dict[str, Callable[[], Any]] = {}

    @property
    def input_names(self) -> list[str]:
        """Names of the graph inputs, in the order ``forward`` takes them."""
        return [name for name, _ in self._input_specs]

    @property
    def output_names(self) -> list[str]:
        """Names of the graph outputs, in the order ``forward`` returns them."""
        return list(self._output_names)

    @property
    def opset(self) -> int:
        """The file's ONNX opset."""
        return self._opset

    def _add_initializer(self, name: str, array: np.ndarray, kind: str) -> None:
        """Register initializer ``name`` as a Parameter (``kind='param'``), a buffer or a constant."""
        if kind == 'constant':
            self._sources[name] = lambda: array
            return
        owner, attribute = self._owner_of(name)
        if kind == 'param':
            param = Parameter(array, name=attribute)
            setattr(owner, attribute, param)
            self._sources[name] = lambda: param
        else:
            owner.register_buffer(attribute, array)
            # Read at every call: load_weights and to_gpu replace a buffer's array.
            self._sources[name] = lambda: owner.__dict__[attribute]

    def _owner_of(self, name: str) -> tuple[Layer, str]:
        """The layer and attribute that hold initializer ``name``: sub-layers for the parts of a
        slash-separated path (``'l0/W'`` → ``self.l0.W``) when they are free, else ``self`` under the
        whole name."""
        parts = name.split('/')
        owner: Layer = self
        if all(parts):
            for part in parts[:-1]:
                child = owner.__dict__.get(part)
                if child is None and not hasattr(type(owner), part):
                    child = Layer()
                    setattr(owner, part, child)
                if not isinstance(child, Layer):
                    break
                owner = child
            else:
                leaf = parts[-1]
                if leaf not in owner.__dict__ and not hasattr(type(owner), leaf):
                    return owner, leaf
        if name in self.__dict__ or hasattr(type(self), name):
            raise ValueError(f"{_WHERE}: '{self._path}': initializer name {name!r} clashes with an "
                             f'attribute of {type(self).__name__}')
        return self, name

    def forward(self, *inputs: Any) -> Any:
        if len(inputs) != len(self._input_specs):
            raise TypeError(f'{type(self).__name__} of {self._path!r}: expected {len(self._input_specs)} '
                            f'inputs {self.input_names}, got {len(inputs)}')
        env = {name: source() for name, source in self._sources.items()}
        env[''] = None  # an omitted optional input
        for (name, dtype), x in zip(self._input_specs, inputs):
            if not isinstance(x, Variable):
                x = np.asarray(x)
                if dtype is not None and x.dtype != dtype and np.can_cast(x.dtype, dtype, 'same_kind'):
                    x = x.astype(dtype)
            env[name] = x
        for run, input_names, output_names in self._steps:
            # Trailing omitted optional inputs are dropped, so steps see their defaults.
            while input_names and not input_names[-1]:
                input_names = input_names[:-1]
            results = run(*[env[name] for name in input_names])
            if len(output_names) == 1:
                results = (results,)
            for name, value in zip(output_names, results):
                if name:
                    env[name] = value
        outputs = tuple(v if isinstance(v, Variable) else Variable(np.asarray(v))
                        for v in (env[name] for name in self._output_names))
        return outputs[0] if len(outputs) == 1 else outputs


# =============================================================================
# Reading the file
# =============================================================================
def _read_model(path: str) -> tuple[onnx.ModelProto, bytes]:
    """Parse and check ``path``; every problem is a ValueError naming the file and what is wrong."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"{_WHERE}: no such file '{path}'")
    if os.path.isdir(path):
        raise IsADirectoryError(f"{_WHERE}: '{path}' is a directory, not an ONNX file")
    with open(path, 'rb') as file:
        data = file.read()
    if not data:
        raise ValueError(f"{_WHERE}: '{path}' is empty, not an ONNX model")
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as error:
        raise ValueError(f"{_WHERE}: '{path}' is truncated or not an ONNX model (it does not parse as "
                         f'one: {error})') from error
    if model.ir_version <= 0 or not model.HasField('graph') or not model.opset_import:
        missing = [what for what, ok in (('ir_version', model.ir_version > 0),
                                          ('graph', model.HasField('graph')),
                                          ('opset_import', bool(model.opset_import))) if not ok]
        raise ValueError(f"{_WHERE}: '{path}' is truncated or not an ONNX model (it has no "
                         f'{" and no ".join(missing)})')
    return model, data


def _default_opset(model: onnx.ModelProto, path: str) -> int:
    versions = [entry.version for entry in model.opset_import if entry.domain in DEFAULT_DOMAINS]
    if not versions:
        raise ValueError(f"{_WHERE}: '{path}' imports no version of the standard ONNX operator set")
    opset = max(versions)
    if opset > MAX_OPSET:
        raise ValueError(f"{_WHERE}: '{path}' uses ONNX opset {opset}, newer than the newest this version "
                         f'of dezero supports ({MAX_OPSET}); export it again with opset <= {MAX_OPSET}')
    return opset


def _initializer_kinds(graph: onnx.GraphProto) -> dict[str, str]:
    """'param' for float initializers, 'buffer' for running statistics, 'constant' for the rest."""
    def read_as(table: dict[str, tuple[int, ...]]) -> set[str]:
        return {node.input[i] for node in graph.node for i in table.get(node.op_type, ())
                if i < len(node.input)}

    buffers, constants = read_as(_BUFFER_INPUTS), read_as(_CONSTANT_INPUTS)
    kinds = {}
    for tensor in graph.initializer:
        if numpy_dtype(tensor.data_type).kind != 'f' or tensor.name in constants:
            kinds[tensor.name] = 'constant'
        else:
            kinds[tensor.name] = 'buffer' if tensor.name in buffers else 'param'
    return kinds


def load(path: str | os.PathLike) -> OnnxModel:
    """Read the ONNX file ``path`` as an ``OnnxModel``: a dezero Model running the graph.

    Its forward evaluates the nodes in order with dezero Functions; float initializers become
    Parameters named by their ONNX names (so the model can be fine-tuned, and differentiated to any
    order), batch normalisation's running statistics buffers. Reads everything ``export`` writes and
    the operators common exporters (``torch.onnx.export``...) emit for MLPs, CNNs and ResNets: see
    ``SUPPORTED_OPS``. Shapes computed inside the graph (``Shape → Gather → Concat → Reshape``) follow
    the actual inputs, so a file with a symbolic batch runs at any batch size.

    Example: ``model = dezero.onnx.load('mlp.onnx'); y = model(x)``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file is empty, truncated, not ONNX, invalid, or of a newer opset than
            ``MAX_OPSET``; the message names the file and the problem.
        NotImplementedError: an operator (or an attribute value) is not supported; the message names
            the op type, the node and the opset.
    """
    path = os.fspath(path)
    model, data = _read_model(path)
    opset = _default_opset(model, path)
    graph = model.graph
    for node in graph.node:
        if node.domain not in DEFAULT_DOMAINS or node.op_type not in _BUILDERS:
            domain = f" of domain '{node.domain}'" if node.domain not in DEFAULT_DOMAINS else ''
            raise NotImplementedError(f"{_WHERE}: '{path}': operator {node.op_type}{domain} (node "
                                      f"'{node.name}', opset {opset}) is not supported; supported: "
                                      f'{", ".join(SUPPORTED_OPS)}')
    try:
        if any(external_data_helper.uses_external_data(t) for t in model.graph.initializer):
            onnx.checker.check_model(path)  # also checks that the data files exist
            external_data_helper.load_external_data_for_model(model, os.path.dirname(os.path.abspath(path)))
        else:
            onnx.checker.check_model(data)
    except (onnx.checker.ValidationError, OSError) as error:
        raise ValueError(f"{_WHERE}: '{path}' is not a valid ONNX model: {error}") from error
    steps = [(_BUILDERS[node.op_type](_Node(node, opset, path)), list(node.input), list(node.output))
             for node in graph.node]

    initializer_names = {tensor.name for tensor in graph.initializer}
    input_specs = []
    for value_info in graph.input:
        if value_info.name in initializer_names:
            continue  # IR < 4 lists initializers among the inputs
        elem_type = value_info.type.tensor_type.elem_type
        input_specs.append((value_info.name, numpy_dtype(elem_type) if elem_type else None))
    result = OnnxModel(path, opset, input_specs, [o.name for o in graph.output], steps)
    kinds = _initializer_kinds(graph)
    for tensor in graph.initializer:
        result._add_initializer(tensor.name, numpy_helper.to_array(tensor).copy(), kinds[tensor.name])
    return result

