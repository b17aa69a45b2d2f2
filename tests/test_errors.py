"""Bad input over the whole public API: one table row per mistake.

Each row is ``(id, call, error type, words)``: calling ``call()`` must raise ``error`` (or a subclass)
whose message contains every one of ``words``. The words name the dezero function, layer, file or
argument, what was received and what was expected, so a row fails both when the error is a bare
NumPy/Python one from deep inside and when the message says too little.

Files are written in a temporary working directory (``_in_tmp`` below), so file rows use relative
paths.
"""
from __future__ import annotations

import io
import os
import re
import warnings
import zipfile

import numpy as np
import pytest

import dezero
import dezero.functions as F
import dezero.layers as L
import dezero.transforms as T
from dezero import (
    DataLoader,
    Dataset,
    SeqDataLoader,
    Variable,
    cuda,
    optimizers,
    using_config,
    utils,
)
from dezero.datasets import Spiral
from dezero.models import MLP, VGG16, ResNet, Sequential


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv('DEZERO_CACHE_DIR', str(tmp_path / 'cache'))


# =============================================================================
# Helpers that build the bad inputs
# =============================================================================
def _v(*shape):
    return Variable(np.ones(shape))


def _pil(size=(4, 4)):
    image = pytest.importorskip('PIL.Image')
    return image.new('RGB', size)


def _without_cupy():
    if cuda.gpu_enable:
        pytest.skip('CuPy is installed: nothing to report')


def _write(name, content):
    with open(name, 'wb') as f:
        f.write(content)
    return name


def _npz_bytes(**arrays):
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _absurd_npz(name):
    """An archive whose member ``W.npy`` has a valid header claiming 10**12 float64 (8 TB) and 16 bytes."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {'descr': '<f8', 'fortran_order': False,
                                                  'shape': (10 ** 12,)})
    with zipfile.ZipFile(name, 'w') as archive:
        archive.writestr('W.npy', header.getvalue() + bytes(16))
    return name


def _batch_norm(x_shape, gamma_size, beta_size, mean_size, var_size):
    return F.batch_norm(np.ones(x_shape), np.ones(gamma_size), np.zeros(beta_size), np.zeros(mean_size),
                        np.ones(var_size))


def _load(layer, path):
    layer.load_weights(path)


def _saved(layer, name):
    layer.save_weights(name)
    return name


def _mkdir(name):
    os.mkdir(name)
    return name


def _two_steps(layer, first, second):
    layer(first)
    layer(second)


class _Numbers(Dataset):
    def prepare(self):
        self.data = np.arange(10.0)
        self.label = np.arange(10)


class _Ragged:
    """A transform whose every other sample is one element shorter: samples that cannot be stacked."""

    def __init__(self):
        self.calls = 0

    def __call__(self, x):
        self.calls += 1
        return x if self.calls % 2 else x[:1]


def _first_batch(loader):
    return next(iter(loader))


# =============================================================================
# The table
# =============================================================================
ROWS = [
    # --- Variable and the operators --------------------------------------------------------
    ('Variable_float', lambda: Variable(1.0), TypeError, ['Variable', 'float', 'ndarray']),
    ('Variable_list', lambda: Variable([1, 2]), TypeError, ['Variable', 'list', 'ndarray']),
    ('Variable_str', lambda: Variable('abc'), TypeError, ['Variable', 'str', 'ndarray']),
    ('Variable_of_Variable', lambda: Variable(_v(2)), TypeError, ['Variable', 'got Variable', 'ndarray']),
    ('add_str', lambda: _v(2) + 'a', TypeError, ['add', "str 'a'", 'expected']),
    ('add_list', lambda: _v(2) + [1.0, 2.0], TypeError, ['add', 'list [1.0, 2.0]', 'expected']),
    ('add_None', lambda: _v(2) + None, TypeError, ['add', 'None', 'expected']),
    ('radd_str', lambda: 'a' + _v(2), TypeError, ['add', "str 'a'", 'expected']),
    ('sub_str', lambda: _v(2) - 'a', TypeError, ['sub', "str 'a'", 'expected']),
    ('rsub_list', lambda: [1.0] - _v(2), TypeError, ['sub', 'list', 'expected']),
    ('mul_None', lambda: _v(2) * None, TypeError, ['mul', 'None', 'expected']),
    ('rmul_dict', lambda: {} * _v(2), TypeError, ['mul', 'dict', 'expected']),
    ('div_str', lambda: _v(2) / 'a', TypeError, ['div', "str 'a'", 'expected']),
    ('rdiv_list', lambda: [1.0] / _v(2), TypeError, ['div', 'list', 'expected']),
    ('pow_str_exponent', lambda: _v(2) ** 'a', TypeError, ['pow', "str 'a'", 'expected']),
    ('pow_None_exponent', lambda: _v(2) ** None, TypeError, ['pow', 'None', 'expected']),
    ('rpow_list', lambda: [2.0] ** _v(2), TypeError, ['pow', 'list', 'expected']),
    ('pow_no_data_exponent', lambda: _v(2) ** Variable(None), ValueError, ['pow', 'data is None', 'array']),
    ('matmul_list', lambda: _v(2, 2) @ [[1.0]], TypeError, ['matmul', 'list', 'array']),
    ('rmatmul_str', lambda: 'a' @ _v(2, 2), TypeError, ['matmul', 'str', 'array']),
    ('int_Variable_add_str', lambda: Variable(np.array([1, 2])) + 'a', TypeError,
     ['add', "str 'a'", 'expected']),
    ('add_str_array', lambda: _v(2) + np.array(['a', 'b']), TypeError, ['add', '<U1', 'numeric']),
    ('add_no_data', lambda: Variable(None) + 1.0, ValueError, ['add', 'data is None', 'array']),
    ('radd_no_data', lambda: 1.0 + Variable(None), ValueError, ['add', 'data is None', 'array']),
    ('add_no_data_Variables', lambda: Variable(None) + _v(2), ValueError, ['add', 'data is None', 'array']),
    ('neg_no_data', lambda: -Variable(None), ValueError, ['neg', 'data is None', 'array']),
    ('exp_no_data', lambda: F.exp(Variable(None)), ValueError, ['Exp', 'data is None', 'array']),
    ('sin_str', lambda: F.sin('abc'), TypeError, ['Sin', '<U3', 'numeric']),
    ('tanh_object_array', lambda: F.tanh(np.array([None, 1.0])), TypeError, ['Tanh', 'object', 'numeric']),
    ('sigmoid_None', lambda: F.sigmoid(None), TypeError, ['Sigmoid', 'object', 'numeric']),
    ('backward_no_data', lambda: Variable(None).backward(), ValueError,
     ['backward', 'data is None', 'array']),
    ('using_config_unknown', lambda: using_config('enable_backprob', False).__enter__(), AttributeError,
     ['using_config', "'enable_backprob'", "'enable_backprop'", "'train'"]),

    # --- a lazily created parameter used before its layer ran --------------------------------
    ('lazy_W_shape', lambda: L.Linear(3).W.shape, AttributeError, ['Linear', "'W'", 'first call']),
    ('lazy_W_linear', lambda: F.linear(np.ones((2, 4)), L.Linear(3).W), ValueError,
     ['Linear', "'W'", 'first call']),
    ('lazy_W_matmul', lambda: F.matmul(np.ones((2, 4)), L.Linear(3).W), ValueError,
     ['matmul', 'Linear', "'W'", 'first call']),
    ('lazy_W_sum', lambda: F.sum(L.Conv2d(4, 3).W), ValueError, ['Sum', 'Conv2d', "'W'", 'first call']),
    ('lazy_W_T', lambda: MLP((3, 1)).l0.W.T, ValueError, ['Transpose', 'Linear', "'W'", 'first call']),
    ('lazy_gamma_mul', lambda: L.BatchNorm().gamma * 2.0, ValueError, ['mul', 'BatchNorm', "'gamma'"]),

    # --- shapes ----------------------------------------------------------------------------
    ('reshape_size', lambda: F.reshape(np.ones(6), (4, 2)), ValueError, ['reshape', '(6,)', '(4, 2)']),
    ('reshape_float', lambda: F.reshape(np.ones(6), (2.0, 3)), TypeError, ['reshape', '(2.0, 3)', 'ints']),
    ('reshape_method_float', lambda: _v(6).reshape(3, 2.0), TypeError, ['reshape', '(3, 2.0)', 'ints']),
    ('reshape_str', lambda: F.reshape(np.ones(2), 'ab'), TypeError, ['reshape', "('a', 'b')", 'ints']),
    ('reshape_two_unknown', lambda: F.reshape(np.ones(6), (-1, -1)), ValueError,
     ['reshape', '(-1, -1)', '(6,)']),
    ('reshape_list_input', lambda: F.reshape([1.0, 2.0], (2, 1)), TypeError, ['reshape', 'list', 'Variable']),
    ('transpose_out_of_range', lambda: F.transpose(np.ones((2, 3)), (0, 5)), IndexError,
     ['transpose', '(0, 5)', '(2, 3)', '-2 <= axis < 2']),
    ('transpose_negative', lambda: F.transpose(np.ones((2, 3)), (0, -3)), IndexError,
     ['transpose', '(0, -3)', '-2 <= axis < 2']),
    ('transpose_float', lambda: F.transpose(np.ones((2, 3)), (1.0, 0)), TypeError,
     ['transpose', '(1.0, 0)', 'ints']),
    ('transpose_repeat', lambda: F.transpose(np.ones((2, 3)), (0, 0)), ValueError,
     ['transpose', '(0, 0)', 'permutation']),
    ('transpose_count', lambda: F.transpose(np.ones((2, 3, 4)), (1, 0)), ValueError,
     ['transpose', '(1, 0)', '(2, 3, 4)', 'permutation']),
    ('transpose_method', lambda: _v(2, 3).transpose(2, 0), IndexError,
     ['transpose', '(2, 0)', '-2 <= axis < 2']),
    ('get_item_range', lambda: _v(2, 3)[5], IndexError, ['get_item', '5', '(2, 3)']),
    ('get_item_too_many', lambda: _v(2, 3)[0, 0, 0], IndexError, ['get_item', '(0, 0, 0)', '(2, 3)']),
    ('get_item_float', lambda: _v(2, 3)[1.5], IndexError, ['get_item', '1.5', 'integers']),
    ('get_item_str', lambda: _v(2, 3)['a'], IndexError, ['get_item', "'a'", 'integers']),
    ('get_item_float_array', lambda: F.get_item(np.ones((2, 3)), np.array([0.5])), IndexError,
     ['get_item', '0.5', 'integer']),
    ('expand_dims_range', lambda: F.expand_dims(np.ones((2, 3)), 3), IndexError,
     ['expand_dims', '3', '(2, 3)', '-3 <= axis < 3']),
    ('expand_dims_negative', lambda: F.expand_dims(np.ones((2, 3)), -4), IndexError,
     ['expand_dims', '-4', '-3 <= axis < 3']),
    ('expand_dims_float', lambda: F.expand_dims(np.ones((2, 3)), 1.0), TypeError,
     ['expand_dims', '1.0', 'int']),
    ('flatten_0d', lambda: F.flatten(np.array(1.0)), ValueError, ['flatten', '()', '(N, ...)']),
    ('broadcast_to_shapes', lambda: F.broadcast_to(np.ones((2, 3)), (3, 3)), ValueError,
     ['broadcast_to', '(2, 3)', '(3, 3)']),
    ('sum_to_shapes', lambda: F.sum_to(np.ones((2, 3)), (4,)), ValueError, ['sum_to', '(2, 3)', '(4,)']),
    ('concat_axis', lambda: F.concat([np.ones((2, 3))], axis=2), IndexError,
     ['concat', '2', '-2 <= axis < 2']),
    ('concat_shapes', lambda: F.concat([np.zeros((2, 3)), np.zeros((3, 2))]), ValueError,
     ['concat', '(2, 3)', '(3, 2)', 'axis 0']),
    ('concat_not_list', lambda: F.concat(np.zeros((2, 3))), TypeError,
     ['concat', 'ndarray', 'list or tuple']),
    ('stack_shapes', lambda: F.stack([np.zeros((2, 3)), np.zeros((2, 2))]), ValueError,
     ['stack', '(2, 3)', '(2, 2)', 'one shape']),
    ('stack_axis', lambda: F.stack([np.ones(2)], axis=3), IndexError, ['stack', '3', '-2 <= axis < 2']),
    ('where_condition', lambda: F.where(np.ones(3), np.zeros(3), np.zeros(3)), TypeError,
     ['where', 'float64', 'boolean']),
    ('clip_no_bounds', lambda: F.clip(np.ones(2), None, None), ValueError, ['clip', 'None', 'at least one']),
    ('clip_min_above_max', lambda: F.clip(np.ones(2), 2.0, 1.0), ValueError, ['clip', '2.0', '1.0']),

    # --- reductions ------------------------------------------------------------------------
    ('sum_axis_float', lambda: F.sum(np.ones((2, 3)), axis=1.5), TypeError, ['sum', '1.5', 'int']),
    ('sum_axis_range', lambda: F.sum(np.ones((2, 3)), axis=2), IndexError,
     ['sum', '2', '(2, 3)', '-2 <= axis < 2']),
    ('sum_axis_negative', lambda: F.sum(np.ones((2, 3)), axis=-3), IndexError,
     ['sum', '-3', '-2 <= axis < 2']),
    ('sum_axis_str', lambda: F.sum(np.ones((2, 3)), axis='0'), TypeError, ['sum', "'0'", 'int']),
    ('sum_axis_repeat', lambda: F.sum(np.ones((2, 3)), axis=(0, 0)), ValueError,
     ['sum', '(0, 0)', 'repeats']),
    ('sum_method_float', lambda: _v(2, 3).sum(axis=0.0), TypeError, ['sum', '0.0', 'int']),
    ('max_0d_axis', lambda: F.max(np.array(1.0), axis=0), IndexError, ['max', '0', '()', 'no axes']),
    ('max_axis_float', lambda: F.max(np.ones((2, 3)), axis=0.5), TypeError, ['max', '0.5', 'int']),
    ('max_axis_range', lambda: F.max(np.ones((2, 3)), axis=(0, 3)), IndexError,
     ['max', '(0, 3)', '-2 <= axis < 2']),
    ('min_axis_float', lambda: F.min(np.ones((2, 3)), axis=1.0), TypeError, ['min', '1.0', 'int']),
    ('min_axis_repeat', lambda: F.min(np.ones((2, 3)), axis=(1, -1)), ValueError,
     ['min', '(1, -1)', 'repeats']),
    ('average_axis_float', lambda: F.average(np.ones((2, 3)), axis=1.0), TypeError,
     ['average', '1.0', 'int']),
    ('average_axis_range', lambda: F.average(np.ones((2, 3)), axis=2), IndexError,
     ['average', '2', '(2, 3)', '-2 <= axis < 2']),
    ('average_empty', lambda: F.average(np.ones((0, 3)), axis=0), ValueError, ['average', '(0, 3)', 'empty']),
    ('logsumexp_axis_range', lambda: F.logsumexp(np.ones((2, 3)), axis=5), IndexError,
     ['logsumexp', '5', '-2 <= axis < 2']),

    # --- activations -----------------------------------------------------------------------
    ('softmax_axis_range', lambda: F.softmax(np.ones((2, 3)), axis=2), IndexError,
     ['softmax', '2', '(2, 3)', '-2 <= axis < 2']),
    ('softmax_axis_float', lambda: F.softmax(np.ones((2, 3)), axis=1.0), TypeError,
     ['softmax', '1.0', 'int']),
    ('log_softmax_axis_negative', lambda: F.log_softmax(np.ones((2, 3)), axis=-3), IndexError,
     ['log_softmax', '-3', '-2 <= axis < 2']),
    ('gelu_approximate', lambda: F.gelu(np.ones(2), approximate='fast'), ValueError,
     ['gelu', "'fast'", "'tanh'"]),

    # --- linear algebra --------------------------------------------------------------------
    ('matmul_shapes', lambda: F.matmul(np.ones((2, 3)), np.ones((4, 5))), ValueError,
     ['matmul', '(2, 3)', '(4, 5)']),
    ('matmul_0d', lambda: F.matmul(np.array(1.0), np.ones(3)), ValueError,
     ['matmul', '()', '(3,)', 'at least 1']),
    ('matmul_batch', lambda: F.matmul(np.ones((2, 2, 3)), np.ones((3, 3, 1))), ValueError,
     ['matmul', '(2, 2, 3)', '(3, 3, 1)']),
    ('matmul_vectors', lambda: F.matmul(np.ones(3), np.ones(4)), ValueError, ['matmul', '(3,)', '(4,)']),
    ('linear_shapes', lambda: F.linear(np.ones((2, 3)), np.ones((4, 5))), ValueError,
     ['linear', '(2, 3)', '(4, 5)', '(N, in)']),
    ('linear_bias', lambda: F.linear(np.ones((2, 3)), np.ones((3, 4)), np.ones(5)), ValueError,
     ['linear', '(5,)', '(4,)']),
    ('linear_list', lambda: F.linear([[1.0]], np.ones((1, 1))), TypeError, ['linear', 'list', 'Variable']),

    # --- losses ----------------------------------------------------------------------------
    ('mse_shapes', lambda: F.mean_squared_error(np.ones((2, 3)), np.ones((4, 3))), ValueError,
     ['mean_squared_error', '(2, 3)', '(4, 3)']),
    ('mse_0d', lambda: F.mean_squared_error(Variable(np.array(1.0)), np.array(2.0)), ValueError,
     ['mean_squared_error', '0-d', 'batch axis']),
    ('mse_list', lambda: F.mean_squared_error([1.0, 2.0], np.ones(2)), TypeError,
     ['mean_squared_error', 'list', 'Variable']),
    ('mse_None', lambda: F.mean_squared_error(_v(2), None), TypeError,
     ['mean_squared_error', 'None', 'Variable']),
    ('sce_float_labels', lambda: F.softmax_cross_entropy(_v(2, 3), np.array([0.0, 1.0])), TypeError,
     ['softmax_cross_entropy', 'float64', 'integer']),
    ('sce_label_range', lambda: F.softmax_cross_entropy(_v(2, 3), np.array([0, 5])), ValueError,
     ['softmax_cross_entropy', '[0, 3)', '5']),
    ('sce_negative_label', lambda: F.softmax_cross_entropy(_v(2, 3), np.array([-1, 0])), ValueError,
     ['softmax_cross_entropy', '[0, 3)', '-1']),
    ('sce_shapes', lambda: F.softmax_cross_entropy(_v(2, 3), np.zeros(3, int)), ValueError,
     ['softmax_cross_entropy', '(2, 3)', '(3,)', '(N,)']),
    ('sce_1d_scores', lambda: F.softmax_cross_entropy(_v(3), np.zeros(3, int)), ValueError,
     ['softmax_cross_entropy', '(3,)', '(N, C)']),
    ('sce_list_labels', lambda: F.softmax_cross_entropy(_v(2, 3), [0, 1]), TypeError,
     ['softmax_cross_entropy', 'list', 'array']),
    ('sce_int_scores', lambda: F.softmax_cross_entropy(np.ones((2, 3), int), np.zeros(2, int)), TypeError,
     ['softmax_cross_entropy', 'int64', 'floating']),
    ('sce_str_scores', lambda: F.softmax_cross_entropy('a', np.zeros(2, int)), TypeError,
     ['softmax_cross_entropy', 'str', 'Variable']),
    ('sigmoid_ce_shapes', lambda: F.sigmoid_cross_entropy(_v(4, 3), np.zeros((4, 2))), ValueError,
     ['sigmoid_cross_entropy', '(4, 3)', '(4, 2)']),
    ('sigmoid_ce_str_targets', lambda: F.sigmoid_cross_entropy(_v(2), np.array(['a', 'b'])), TypeError,
     ['sigmoid_cross_entropy', '<U1', '0/1']),
    ('bce_range', lambda: F.binary_cross_entropy(Variable(np.full((2, 2), 1.5)), np.zeros((2, 2))),
     ValueError, ['binary_cross_entropy', '1.5', '[0, 1]']),
    ('bce_shapes', lambda: F.binary_cross_entropy(_v(4, 3), np.zeros(4)), ValueError,
     ['binary_cross_entropy', '(4, 3)', '(4,)']),
    ('accuracy_shapes', lambda: F.accuracy(np.ones((4, 3)), np.zeros(3, int)), ValueError,
     ['accuracy', '(4, 3)', '(3,)', '(4,)']),
    ('accuracy_1d', lambda: F.accuracy(np.ones(4), np.zeros(4)), ValueError, ['accuracy', '(4,)', '(N, C']),

    # --- convolution and pooling -----------------------------------------------------------
    ('conv2d_3d', lambda: F.conv2d(np.ones((3, 5, 5)), np.ones((2, 3, 3, 3))), ValueError,
     ['conv2d', '(3, 5, 5)', '(N, C, H, W)']),
    ('conv2d_channels', lambda: F.conv2d(np.ones((1, 3, 5, 5)), np.ones((2, 4, 3, 3))), ValueError,
     ['conv2d', '(2, 4, 3, 3)', '(1, 3, 5, 5)', '(OC, 3, KH, KW)']),
    ('conv2d_W_3d', lambda: F.conv2d(np.ones((1, 3, 5, 5)), np.ones((2, 3, 3))), ValueError,
     ['conv2d', '(2, 3, 3)', '(OC, 3, KH, KW)']),
    ('conv2d_kernel_too_large', lambda: F.conv2d(np.ones((1, 1, 2, 2)), np.ones((1, 1, 3, 3))), ValueError,
     ['conv2d', '3x3', '2x2']),
    ('conv2d_stride_0', lambda: F.conv2d(np.ones((1, 1, 4, 4)), np.ones((1, 1, 3, 3)), stride=0), ValueError,
     ['conv2d', 'stride', '0', 'at least 1']),
    ('conv2d_stride_float', lambda: F.conv2d(np.ones((1, 1, 4, 4)), np.ones((1, 1, 3, 3)), stride=1.5),
     TypeError, ['conv2d', 'stride', '1.5', 'int']),
    ('conv2d_pad_negative', lambda: F.conv2d(np.ones((1, 1, 4, 4)), np.ones((1, 1, 3, 3)), pad=-1),
     ValueError, ['conv2d', 'pad', '-1', 'at least 0']),
    ('conv2d_pad_triple', lambda: F.conv2d(np.ones((1, 1, 4, 4)), np.ones((1, 1, 3, 3)), pad=(1, 2, 3)),
     ValueError, ['conv2d', 'pad', '(1, 2, 3)', 'pair']),
    ('conv2d_bias', lambda: F.conv2d(np.ones((1, 3, 5, 5)), np.ones((2, 3, 3, 3)), np.ones(3)), ValueError,
     ['conv2d', '(3,)', '(2,)']),
    ('deconv2d_channels', lambda: F.deconv2d(np.ones((1, 3, 5, 5)), np.ones((2, 3, 3, 3))), ValueError,
     ['deconv2d', '(2, 3, 3, 3)', '(1, 3, 5, 5)', '(3, OC, KH, KW)']),
    ('deconv2d_outsize', lambda: F.deconv2d(np.ones((1, 2, 3, 3)), np.ones((2, 3, 3, 3)), stride=2,
                                            outsize=(9, 7)), ValueError, ['deconv2d', '(9, 7)', '(3, 3)']),
    ('deconv2d_stride_0', lambda: F.deconv2d(np.ones((1, 2, 3, 3)), np.ones((2, 3, 3, 3)), stride=0),
     ValueError, ['deconv2d', 'stride', '0', 'at least 1']),
    ('pooling_2d', lambda: F.pooling(np.ones((4, 4)), 2), ValueError, ['pooling', '(4, 4)', '(N, C, H, W)']),
    ('pooling_kernel_too_large', lambda: F.pooling(np.ones((1, 1, 3, 3)), 4), ValueError,
     ['pooling', '4x4', '3x3']),
    ('pooling_stride_0', lambda: F.pooling(np.ones((1, 1, 4, 4)), 2, 0), ValueError,
     ['pooling', 'stride', '0', 'at least 1']),
    ('pooling_pad', lambda: F.pooling(np.ones((1, 1, 3, 3)), 2, 1, 2), ValueError,
     ['pooling', 'pad', '(2, 2)', 'smaller']),
    ('pooling_kernel_float', lambda: F.pooling(np.ones((1, 1, 4, 4)), 2.5), TypeError,
     ['pooling', 'kernel_size', '2.5', 'int']),
    ('average_pooling_kernel_0', lambda: F.average_pooling(np.ones((1, 1, 4, 4)), 0), ValueError,
     ['average_pooling', 'kernel_size', '0', 'at least 1']),
    ('average_pooling_3d', lambda: F.average_pooling(np.ones((1, 3, 3)), 2), ValueError,
     ['average_pooling', '(1, 3, 3)', '(N, C, H, W)']),
    ('im2col_kernel_too_large', lambda: F.im2col(np.ones((1, 1, 3, 3)), 5), ValueError,
     ['im2col', '5x5', '3x3']),
    ('im2col_2d', lambda: F.im2col(np.ones((3, 3)), 2), ValueError, ['im2col', '(3, 3)', '(N, C, H, W)']),
    ('col2im_col_shape', lambda: F.col2im(np.ones((4, 5)), (1, 1, 3, 3), 2), ValueError,
     ['col2im', '(4, 5)', '(4, 4)']),
    ('col2im_input_shape', lambda: F.col2im(np.ones((4, 4)), (1, 3, 3), 2), ValueError,
     ['col2im', '(1, 3, 3)', '(N, C, H, W)']),
    ('conv2d_simple_channels', lambda: F.conv2d_simple(np.ones((1, 3, 5, 5)), np.ones((2, 2, 3, 3))),
     ValueError, ['conv2d', '(2, 2, 3, 3)', '(OC, 3, KH, KW)']),
    ('pooling_simple_kernel', lambda: F.pooling_simple(np.ones((1, 1, 3, 3)), (4, 1)), ValueError,
     ['pooling', '4x1', '3x3']),
    ('get_conv_outsize_stride_0', lambda: utils.get_conv_outsize(4, 3, 0, 0), ValueError,
     ['get_conv_outsize', 'stride', '0']),
    ('pair_str', lambda: utils.pair('a'), ValueError, ['pair', "'a'", 'int']),

    # --- dropout, normalisation, embeddings -----------------------------------------------
    ('dropout_ratio_high', lambda: F.dropout(np.ones(2), 1.5), ValueError, ['dropout', '1.5', '[0, 1]']),
    ('dropout_ratio_negative', lambda: F.dropout(np.ones(2), -0.1), ValueError,
     ['dropout', '-0.1', '[0, 1]']),
    ('dropout_ratio_str', lambda: F.dropout(np.ones(2), 'half'), TypeError, ['dropout', "'half'", 'number']),
    ('batch_norm_3d', lambda: _batch_norm((2, 3, 4), 3, 3, 3, 3), ValueError,
     ['batch_norm', '(2, 3, 4)', '(N, C)']),
    ('batch_norm_gamma', lambda: _batch_norm((2, 3), 2, 3, 3, 3), ValueError,
     ['batch_norm', 'gamma', '(2,)', '(3,)']),
    ('batch_norm_mean', lambda: _batch_norm((2, 3), 3, 3, 4, 3), ValueError,
     ['batch_norm', 'mean', '(4,)', '(3,)']),
    ('batch_norm_var_list', lambda: F.batch_norm(np.ones((2, 3)), np.ones(3), np.zeros(3), np.zeros(3),
                                                 [1.0] * 3),
     TypeError, ['batch_norm', 'var', 'list', 'array']),
    ('layer_norm_gamma', lambda: F.layer_norm(np.zeros((2, 3)), np.ones(2)), ValueError,
     ['layer_norm', '(2,)', '(3,)']),
    ('layer_norm_0d', lambda: F.layer_norm(np.array(1.0)), ValueError,
     ['layer_norm', '0-d', 'at least one axis']),
    ('embed_id_float_ids', lambda: F.embed_id(np.array([0.0, 1.0]), np.zeros((3, 2))), TypeError,
     ['embed_id', 'float64', 'integer']),
    ('embed_id_range', lambda: F.embed_id(np.array([0, 3]), np.zeros((3, 2))), ValueError,
     ['embed_id', '[0, 3)', '[0, 3]']),
    ('embed_id_W_1d', lambda: F.embed_id(np.array([0, 1]), np.zeros(3)), ValueError,
     ['embed_id', '(3,)', '(V, D)']),
    ('embed_id_list', lambda: F.embed_id([0, 1], np.zeros((3, 2))), TypeError,
     ['embed_id', 'list', 'integer array']),

    # --- layers ----------------------------------------------------------------------------
    ('Linear_in_size_0', lambda: L.Linear(3, in_size=0), ValueError, ['Linear', 'in_size', '0', 'positive']),
    ('Linear_in_size_negative', lambda: L.Linear(3, in_size=-2), ValueError,
     ['Linear', 'in_size', '-2', 'positive']),
    ('Linear_in_size_float', lambda: L.Linear(3, in_size=2.5), TypeError,
     ['Linear', 'in_size', '2.5', 'int']),
    ('Linear_out_size_0', lambda: L.Linear(0), ValueError, ['Linear', 'out_size', '0', 'positive']),
    ('Linear_out_size_float', lambda: L.Linear(2.5), TypeError, ['Linear', 'out_size', '2.5', 'int']),
    ('Linear_out_size_tuple', lambda: L.Linear((2, 3)), TypeError, ['Linear', 'out_size', '(2, 3)', 'int']),
    ('Linear_dtype', lambda: L.Linear(3, dtype='float33'), TypeError, ['Linear', 'dtype', "'float33'"]),
    ('Linear_input_1d', lambda: L.Linear(3)(np.ones(3)), ValueError, ['Linear', '(3,)', '(N, in_size)']),
    ('Linear_input_width', lambda: L.Linear(3, in_size=4)(np.ones((2, 5))), ValueError,
     ['linear', '(2, 5)', '(4, 3)']),
    ('Linear_input_list', lambda: L.Linear(3)([[1.0, 2.0]]), TypeError, ['Linear', 'list', 'array']),
    ('Conv2d_out_channels_0', lambda: L.Conv2d(0, 3), ValueError,
     ['Conv2d', 'out_channels', '0', 'positive']),
    ('Conv2d_kernel_0', lambda: L.Conv2d(3, 0), ValueError, ['Conv2d', 'kernel_size', '0', 'at least 1']),
    ('Conv2d_stride_0', lambda: L.Conv2d(3, 3, stride=0), ValueError,
     ['Conv2d', 'stride', '0', 'at least 1']),
    ('Conv2d_pad_negative', lambda: L.Conv2d(3, 3, pad=-1), ValueError,
     ['Conv2d', 'pad', '-1', 'at least 0']),
    ('Conv2d_in_channels_0', lambda: L.Conv2d(3, 3, in_channels=0), ValueError,
     ['Conv2d', 'in_channels', '0', 'positive']),
    ('Conv2d_input_2d', lambda: L.Conv2d(3, 3)(np.zeros((5, 5))), ValueError,
     ['Conv2d', '(5, 5)', '(N, C, H, W)']),
    ('Conv2d_channels', lambda: L.Conv2d(3, 3, in_channels=2)(np.zeros((1, 3, 5, 5))), ValueError,
     ['conv2d', '(3, 2, 3, 3)', '(1, 3, 5, 5)']),
    ('Deconv2d_kernel_float', lambda: L.Deconv2d(3, 2.5), TypeError,
     ['Deconv2d', 'kernel_size', '2.5', 'int']),
    ('Deconv2d_input_3d', lambda: L.Deconv2d(3, 3)(np.zeros((1, 5, 5))), ValueError,
     ['Deconv2d', '(1, 5, 5)', '(N, C, H, W)']),
    ('BatchNorm_3d', lambda: L.BatchNorm()(np.zeros((2, 3, 4))), ValueError,
     ['BatchNorm', '(2, 3, 4)', '(N, C)']),
    ('BatchNorm_size_negative', lambda: L.BatchNorm(size=-1), ValueError,
     ['BatchNorm', 'size', '-1', 'positive']),
    ('EmbedID_negative', lambda: L.EmbedID(-1, 3), ValueError, ['EmbedID', 'in_size', '-1', 'positive']),
    ('EmbedID_float', lambda: L.EmbedID(10, 2.5), TypeError, ['EmbedID', 'out_size', '2.5', 'int']),
    ('EmbedID_float_ids', lambda: L.EmbedID(4, 2)(np.array([0.5])), TypeError,
     ['embed_id', 'float64', 'integer']),
    ('Dropout_p', lambda: L.Dropout(1.5), ValueError, ['Dropout', '1.5', '[0, 1]']),
    ('LayerNorm_size', lambda: L.LayerNorm(-1), ValueError,
     ['LayerNorm', 'normalized_size', '-1', 'positive']),
    ('LayerNorm_input', lambda: L.LayerNorm(4)(np.zeros((2, 3))), ValueError, ['layer_norm', '(4,)', '(3,)']),
    ('RNN_hidden_0', lambda: L.RNN(0), ValueError, ['RNN', 'hidden_size', '0', 'positive']),
    ('RNN_in_size_0', lambda: L.RNN(3, in_size=0), ValueError, ['RNN', 'in_size', '0', 'positive']),
    ('RNN_input_1d', lambda: L.RNN(3)(np.zeros(5)), ValueError, ['RNN', '(5,)', '(N, in_size)']),
    ('RNN_input_list', lambda: L.RNN(3)([[1.0]]), TypeError, ['RNN', 'list', 'array']),
    ('LSTM_hidden_negative', lambda: L.LSTM(-1), ValueError, ['LSTM', 'hidden_size', '-1', 'positive']),
    ('LSTM_batch_change', lambda: _two_steps(L.LSTM(3), np.zeros((2, 4)), np.zeros((3, 4))), ValueError,
     ['LSTM', '3 rows', '2', 'reset_state()']),
    ('GRU_hidden_float', lambda: L.GRU(2.5), TypeError, ['GRU', 'hidden_size', '2.5', 'int']),
    ('GRU_input_3d', lambda: L.GRU(3)(np.zeros((2, 3, 4))), ValueError, ['GRU', '(2, 3, 4)', '(N, in_size)']),

    # --- weight files ----------------------------------------------------------------------
    ('load_weights_missing', lambda: _load(L.Linear(2, in_size=1), 'absent.npz'), FileNotFoundError,
     ['Linear.load_weights', 'absent.npz', 'no such file']),
    ('load_weights_directory', lambda: _load(L.Linear(2, in_size=1), _mkdir('sub')), IsADirectoryError,
     ['Linear.load_weights', "'sub'", 'directory', '.npz']),
    ('load_weights_text', lambda: _load(L.Linear(2, in_size=1), _write('w.npz', b'hello world')), ValueError,
     ['Linear.load_weights', 'w.npz', 'not an .npz']),
    ('load_weights_truncated', lambda: _load(L.Linear(2, in_size=1), _write('cut.npz', _npz_bytes(W=np.ones(
        (1, 2)))[:60])), ValueError, ['Linear.load_weights', 'cut.npz', 'truncated']),
    ('load_weights_npy', lambda: _load(L.Linear(2, in_size=1), _write('one.npz', b'\x93NUMPY' + bytes(20))),
     ValueError, ['Linear.load_weights', 'one.npz', 'single .npy']),
    ('load_weights_absurd_header', lambda: _load(L.Linear(2, in_size=1), _absurd_npz('absurd.npz')),
     ValueError, ['Linear.load_weights', 'absurd.npz', "'W'", '(1000000000000,)', 'bytes']),
    ('load_weights_object_array', lambda: _load(L.Linear(2, in_size=1), _write('obj.npz', _npz_bytes(
        W=np.array([None, 1], dtype=object)))), ValueError, ['Linear.load_weights', 'obj.npz', 'pickle']),
    ('load_weights_shape_mismatch', lambda: _load(L.Linear(3, in_size=1),
                                                  _saved(L.Linear(2, in_size=1), 'w.npz')),
     ValueError, ['Linear.load_weights', 'w.npz', 'W: file (1, 2), model (1, 3)']),
    ('load_weights_missing_keys', lambda: _load(L.Linear(2, in_size=1),
                                                _saved(L.Linear(2, in_size=1, nobias=True), 'w.npz')),
     ValueError, ['Linear.load_weights', 'w.npz', "missing keys ['b']"]),
    ('save_weights_missing_dir', lambda: L.Linear(2, in_size=1).save_weights('nowhere/w.npz'),
     FileNotFoundError, ['Linear.save_weights', 'nowhere', 'does not exist']),

    # --- models ----------------------------------------------------------------------------
    ('MLP_empty', lambda: MLP([]), ValueError, ['MLP', '[]', 'positive ints']),
    ('MLP_zero', lambda: MLP((10, 0)), ValueError, ['MLP', '(10, 0)', 'positive ints']),
    ('MLP_float_size', lambda: MLP((10, 2.5)), ValueError, ['MLP', '(10, 2.5)', 'positive ints']),
    ('MLP_int', lambda: MLP(10), TypeError, ['MLP', 'fc_output_sizes', '10', 'sequence']),
    ('MLP_activation', lambda: MLP((10, 1), activation='relu'), TypeError,
     ['MLP', 'activation', "'relu'", 'callable']),
    ('Sequential_int', lambda: Sequential(L.Linear(2), 3), TypeError,
     ['Sequential', 'item 1', 'int', 'callable']),
    ('Sequential_class', lambda: Sequential(L.Linear, F.relu), TypeError,
     ['Sequential', 'item 0', 'class Linear', 'instance']),
    ('Sequential_list', lambda: Sequential([L.Linear(2), F.relu]), TypeError,
     ['Sequential', 'item 0', 'list', 'Sequential(*']),
    ('ResNet_layers', lambda: ResNet(34), ValueError, ['ResNet', '34', '50, 101 or 152']),
    ('VGG16_preprocess_array', lambda: VGG16.preprocess(np.zeros((3, 4, 4))), TypeError,
     ['VGG16.preprocess', 'ndarray', 'PIL']),

    # --- optimizers ------------------------------------------------------------------------
    ('setup_int', lambda: optimizers.SGD().setup(42), TypeError, ['SGD.setup', 'int', 'Layer']),
    ('setup_None', lambda: optimizers.SGD().setup(None), TypeError, ['SGD.setup', 'None', 'Layer']),
    ('setup_bound_method', lambda: optimizers.SGD().setup(MLP((2,)).params), TypeError,
     ['SGD.setup', 'method', 'MLP.params', 'the model itself']),
    ('setup_array', lambda: optimizers.SGD().setup(np.ones(3)), TypeError, ['SGD.setup', 'ndarray', 'Layer']),
    ('setup_Variables', lambda: optimizers.Adam().setup([_v(2)]), TypeError,
     ['Adam.setup', 'Variable', 'Parameter']),
    ('add_hook_class', lambda: optimizers.SGD().add_hook(optimizers.WeightDecay), TypeError,
     ['add_hook', 'class WeightDecay', 'instance']),
    ('add_hook_not_callable', lambda: optimizers.SGD().add_hook(1e-4), TypeError,
     ['add_hook', 'float', 'callable']),
    ('update_before_setup', lambda: optimizers.SGD().update(), RuntimeError, ['SGD.update', 'setup']),
    ('SGD_lr_negative', lambda: optimizers.SGD(lr=-0.1), ValueError, ['SGD', 'lr', '-0.1', '>= 0']),
    ('SGD_lr_str', lambda: optimizers.SGD(lr='0.1'), TypeError, ['SGD', 'lr', "'0.1'", 'number']),
    ('MomentumSGD_momentum', lambda: optimizers.MomentumSGD(momentum=-0.5), ValueError,
     ['MomentumSGD', 'momentum', '-0.5', '>= 0']),
    ('AdaGrad_eps', lambda: optimizers.AdaGrad(eps=-1e-8), ValueError, ['AdaGrad', 'eps', '-1e-08', '>= 0']),
    ('AdaDelta_rho', lambda: optimizers.AdaDelta(rho=1.5), ValueError, ['AdaDelta', 'rho', '1.5', '[0, 1]']),
    ('RMSprop_alpha', lambda: optimizers.RMSprop(alpha=-0.1), ValueError,
     ['RMSprop', 'alpha', '-0.1', '>= 0']),
    ('Adam_beta1', lambda: optimizers.Adam(beta1=1.0), ValueError, ['Adam', 'beta1', '1.0', '[0, 1)']),
    ('Adam_alpha', lambda: optimizers.Adam(alpha=-1), ValueError, ['Adam', 'alpha', '-1', '>= 0']),
    ('AdamW_weight_decay', lambda: optimizers.AdamW(weight_decay=-0.01), ValueError,
     ['AdamW', 'weight_decay', '-0.01', '>= 0']),
    ('WeightDecay_negative', lambda: optimizers.WeightDecay(-1e-4), ValueError,
     ['WeightDecay', 'rate', '-0.0001', '>= 0']),
    ('ClipGrad_zero', lambda: optimizers.ClipGrad(0), ValueError, ['ClipGrad', 'max_norm', '0', '> 0']),
    ('FreezeParam_int', lambda: optimizers.FreezeParam(3), TypeError,
     ['FreezeParam', 'int', 'Layers or Parameters']),

    # --- datasets and loaders --------------------------------------------------------------
    ('DataLoader_batch_0', lambda: DataLoader(_Numbers(), 0), ValueError,
     ['DataLoader', 'batch_size', '0', 'positive']),
    ('DataLoader_batch_float', lambda: DataLoader(_Numbers(), 2.5), ValueError,
     ['DataLoader', 'batch_size', '2.5', 'positive']),
    ('DataLoader_not_dataset', lambda: DataLoader(5, 2), TypeError, ['DataLoader', 'int', 'len()']),
    ('SeqDataLoader_batch_too_large', lambda: SeqDataLoader(_Numbers(), 20), ValueError,
     ['SeqDataLoader', '20', '10', 'at most']),
    ('SeqDataLoader_batch_0', lambda: SeqDataLoader(_Numbers(), 0), ValueError,
     ['SeqDataLoader', 'batch_size', '0', 'positive']),
    ('DataLoader_gpu_without_cupy', lambda: (_without_cupy(), DataLoader(_Numbers(), 2, gpu=True)),
     RuntimeError, ['DataLoader.to_gpu', 'CuPy', 'dezero[gpu]']),
    ('Dataset_transform_int', lambda: Spiral(transform=5), TypeError,
     ['Spiral', 'transform', 'int', 'callable']),
    ('Dataset_transform_list', lambda: Spiral(transform=[T.Flatten()]), TypeError,
     ['Spiral', 'transform', 'list', 'Compose']),
    ('Dataset_transform_class', lambda: Spiral(transform=T.Flatten), TypeError,
     ['Spiral', 'transform', 'class Flatten', 'instance']),
    ('Dataset_target_transform_str', lambda: Spiral(target_transform='int'), TypeError,
     ['Spiral', 'target_transform', "'int'", 'callable']),
    ('Dataset_index_range', lambda: Spiral()[300], IndexError, ['Spiral', '300', '300 samples']),
    ('Dataset_index_negative', lambda: Spiral()[-301], IndexError, ['Spiral', '-301', '300 samples']),
    ('Dataset_index_float', lambda: Spiral()[1.5], TypeError, ['Spiral', 'float', 'int']),
    ('Dataset_no_data', lambda: Dataset()[0], TypeError, ['Dataset', 'no data', 'prepare()']),
    ('Dataset_ragged_samples', lambda: _first_batch(DataLoader(Spiral(transform=_Ragged()), 4, False)),
     ValueError, ['Spiral', 'transform', 'shapes', '(2,)', '(1,)']),
    ('get_batch_float_indices', lambda: Spiral().get_batch(np.array([0.5])), TypeError,
     ['Spiral.get_batch', 'float64', 'integer']),

    # --- transforms ------------------------------------------------------------------------
    ('Compose_one_transform', lambda: T.Compose(T.Flatten()), TypeError, ['Compose', 'Flatten', 'list']),
    ('Compose_not_callable', lambda: T.Compose([T.Flatten(), 3]), TypeError,
     ['Compose', 'item 1', 'int', 'callable']),
    ('Compose_class', lambda: T.Compose([T.Flatten]), TypeError,
     ['Compose', 'item 0', 'class Flatten', 'instance']),
    ('Convert_array', lambda: T.Convert()(np.zeros((3, 4, 4), np.uint8)), TypeError,
     ['Convert', 'ndarray', 'PIL', 'ToPIL']),
    ('Convert_mode', lambda: T.Convert('XYZ')(_pil()), ValueError, ['Convert', "'XYZ'", 'mode']),
    ('Resize_array', lambda: T.Resize(2)(np.zeros((3, 4, 4))), TypeError,
     ['Resize', 'ndarray', 'PIL', 'ToPIL']),
    ('Resize_list', lambda: T.Resize(2)([[0]]), TypeError, ['Resize', 'list', 'PIL']),
    ('Resize_size_str', lambda: T.Resize('big'), TypeError, ['Resize', 'size', "'big'", 'int']),
    ('Resize_size_0', lambda: T.Resize(0), ValueError, ['Resize', 'size', '0', 'at least 1']),
    ('CenterCrop_list', lambda: T.CenterCrop(2)([[1, 2], [3, 4]]), TypeError, ['CenterCrop', 'list', 'PIL']),
    ('CenterCrop_1d', lambda: T.CenterCrop(2)(np.zeros(5)), ValueError,
     ['CenterCrop', '(5,)', '(..., H, W)']),
    ('CenterCrop_too_large', lambda: T.CenterCrop(8)(np.zeros((3, 5, 7))), ValueError,
     ['CenterCrop', '(8, 8)', '(7, 5)']),
    ('CenterCrop_size_negative', lambda: T.CenterCrop(-1), ValueError,
     ['CenterCrop', 'size', '-1', 'at least 1']),
    ('ToArray_list', lambda: T.ToArray()([1, 2]), TypeError, ['ToArray', 'list', 'PIL']),
    ('ToArray_dtype', lambda: T.ToArray('float33'), TypeError, ['ToArray', 'dtype', "'float33'"]),
    ('ToPIL_image', lambda: T.ToPIL()(_pil()), TypeError, ['ToPIL', 'Image', 'array']),
    ('ToPIL_list', lambda: T.ToPIL()([[0]]), TypeError, ['ToPIL', 'list', 'array']),
    ('ToPIL_shape', lambda: T.ToPIL()(np.zeros((5, 2, 2, 2), np.uint8)), ValueError,
     ['ToPIL', '(5, 2, 2, 2)', '(C, H, W)']),
    ('ToPIL_dtype', lambda: T.ToPIL()(np.zeros((3, 2, 2), np.float64)), TypeError,
     ['ToPIL', 'float64', 'uint8']),
    ('RandomHorizontalFlip_list', lambda: T.RandomHorizontalFlip(1.0)([[1, 2]]), TypeError,
     ['RandomHorizontalFlip', 'list', 'PIL']),
    ('RandomHorizontalFlip_p', lambda: T.RandomHorizontalFlip(1.5), ValueError,
     ['RandomHorizontalFlip', 'p', '1.5', '[0, 1]']),
    ('Normalize_list', lambda: T.Normalize()([1.0, 2.0]), TypeError, ['Normalize', 'list', 'array']),
    ('Normalize_image', lambda: T.Normalize()(_pil()), TypeError, ['Normalize', 'Image', 'ToArray']),
    ('Normalize_channels', lambda: T.Normalize([0.5, 0.5, 0.5])(np.zeros((2, 4, 4))), ValueError,
     ['Normalize', '3 values', '(2, 4, 4)']),
    ('Normalize_std_zero', lambda: T.Normalize(0, 0), ValueError, ['Normalize', 'std', '0', 'non-zero']),
    ('Flatten_image', lambda: T.Flatten()(_pil()), TypeError, ['Flatten', 'Image', 'ToArray']),
    ('Flatten_list', lambda: T.Flatten()([[1, 2]]), TypeError, ['Flatten', 'list', 'array']),
    ('AsType_unknown_dtype', lambda: T.AsType('float33'), TypeError, ['AsType', 'dtype', "'float33'"]),
    ('AsType_list', lambda: T.AsType()([1, 2]), TypeError, ['AsType', 'list', 'array']),
    ('AsType_image', lambda: T.AsType()(_pil()), TypeError, ['AsType', 'Image', 'ToArray']),
    ('ToFloat_int_dtype', lambda: T.ToFloat(np.int32), ValueError, ['ToFloat', 'int32', 'floating']),
    ('ToFloat_unknown_dtype', lambda: T.ToFloat('float33'), TypeError, ['ToFloat', 'dtype', "'float33'"]),
    ('ToInt_float_dtype', lambda: T.ToInt(np.float32), ValueError, ['ToInt', 'float32', 'integer']),

    # --- utils -----------------------------------------------------------------------------
    ('plot_dot_graph_array', lambda: utils.plot_dot_graph(np.ones(3)), TypeError,
     ['plot_dot_graph', 'ndarray', 'Variable']),
    ('plot_dot_graph_missing_dir', lambda: utils.plot_dot_graph(_v(2) * 2, to_file='nowhere/graph.png'),
     FileNotFoundError, ['plot_dot_graph', 'nowhere', 'does not exist']),
    ('get_dot_graph_int', lambda: utils.get_dot_graph(3), TypeError, ['get_dot_graph', 'int', 'Variable']),
    ('Model_plot_missing_dir', lambda: MLP((2,)).plot(np.ones((1, 1)), to_file='nowhere/model.png'),
     FileNotFoundError, ['plot_dot_graph', 'nowhere', 'does not exist']),
    ('gradient_check_array_result', lambda: utils.gradient_check(lambda x: x.data * 2, np.ones(3)), TypeError,
     ['gradient_check', 'ndarray', 'Variable']),
    ('gradient_check_result', lambda: utils.gradient_check(lambda x: 1.0, np.ones(2)), TypeError,
     ['gradient_check', 'float', 'Variable']),
    ('get_file_scheme', lambda: utils.get_file('htp://example.org/a.txt'), ValueError,
     ['get_file', "'htp'", 'http']),
    ('get_file_no_name', lambda: utils.get_file('https://example.org/'), ValueError,
     ['get_file', 'https://example.org/', 'file_name']),
    ('get_file_outside_cache', lambda: utils.get_file('https://example.org/a', file_name='../a'), ValueError,
     ['get_file', "'../a'", 'relative path']),

    # --- cuda ------------------------------------------------------------------------------
    ('as_cupy_without_cupy', lambda: (_without_cupy(), cuda.as_cupy(np.ones(2))), RuntimeError,
     ['as_cupy', 'CuPy', 'dezero[gpu]']),
    ('Variable_to_gpu_without_cupy', lambda: (_without_cupy(), _v(2).to_gpu()), RuntimeError,
     ['as_cupy', 'CuPy', 'dezero[gpu]']),
    ('Layer_to_gpu_without_cupy', lambda: (_without_cupy(), L.Linear(2, in_size=1).to_gpu()), RuntimeError,
     ['as_cupy', 'CuPy', 'dezero[gpu]']),
    # --- training runs and recurrent weights --------------------------------------------------
    ('save_checkpoint_of_a_non_layer', lambda: dezero.save_checkpoint('run.npz', 42), TypeError,
     ['save_checkpoint', 'Layer or Model', 'int 42']),
    ('load_checkpoint_into_a_non_layer', lambda: dezero.load_checkpoint('run.npz', None), TypeError,
     ['load_checkpoint', 'Layer or Model', 'None']),
    ('load_state_dict_of_a_non_mapping', lambda: MLP((2,)).load_state_dict([1, 2]), TypeError,
     ['MLP.load_state_dict', 'dict of arrays', 'list']),
    ('pack_gates_of_a_str', lambda: F.pack_gates('abc'), TypeError,
     ['pack_gates', 'list per gate', "str 'abc'"]),
]


@pytest.mark.parametrize('call,error,words', [row[1:] for row in ROWS], ids=[row[0] for row in ROWS])
def test_bad_input_gives_a_clear_error(call, error, words):
    with pytest.raises(error) as info:
        call()
    message = str(info.value)
    missing = [word for word in words if word not in message]
    assert not missing, f'{type(info.value).__name__}: {message!r} lacks {missing}'


def test_the_table_is_large_and_unambiguous():
    ids = [row[0] for row in ROWS]
    assert len(ids) == len(set(ids))
    assert len(ROWS) >= 150


# =============================================================================
# mean_squared_error: a broadcast that matches neither input warns and keeps the book's value
# =============================================================================
@pytest.mark.parametrize('shape0,shape1', [((4,), (4, 1)), ((4, 1), (4,)), ((3, 1), (1, 3))])
def test_mse_broadcast_to_a_new_shape_warns(shape0, shape1):
    rng = np.random.default_rng(0)
    x0, x1 = rng.standard_normal(shape0), rng.standard_normal(shape1)
    pattern = f'mean_squared_error: .*{re.escape(str(shape0))}.*{re.escape(str(shape1))}'
    with pytest.warns(UserWarning, match=pattern):
        loss = F.mean_squared_error(Variable(x0), x1)
    diff = x0 - x1  # the book's value: the broadcast difference, summed, over its first axis
    np.testing.assert_allclose(loss.data, (diff ** 2).sum() / len(diff))


@pytest.mark.parametrize('shape0,shape1', [((4, 3), (4, 3)), ((1, 3), (4, 3)), ((4, 3), (3,))])
def test_mse_ordinary_broadcast_is_silent(shape0, shape1):
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        F.mean_squared_error(Variable(np.ones(shape0)), np.zeros(shape1))


def test_lazy_parameter_works_once_its_layer_ran():
    layer = L.Linear(3)
    layer(np.ones((2, 4), np.float32))
    assert layer.W.shape == (4, 3) and F.sum(layer.W).shape == ()


def test_absurd_header_is_refused_before_reading():
    # The archive claims 8 TB: refusing it must not depend on a failed allocation.
    path = _absurd_npz('absurd.npz')
    with pytest.raises(ValueError, match='claims'):
        L.Linear(2, in_size=1).load_weights(path)


def test_real_archives_still_load():
    saved = L.Linear(2, in_size=3)
    saved.save_weights('w.npz')
    loaded = L.Linear(2, in_size=3)
    loaded.load_weights('w.npz')
    np.testing.assert_array_equal(loaded.W.data, saved.W.data)
    compressed = L.Linear(2, in_size=3)
    np.savez_compressed('c.npz', W=saved.W.data, b=saved.b.data)
    compressed.load_weights('c.npz')
    np.testing.assert_array_equal(compressed.W.data, saved.W.data)


def test_converter_classes_remain_valid_transforms():
    # Only a dezero Transform class is a forgotten "()": int and np.float32 are converters.
    assert type(Spiral(target_transform=int)[0][1]) is int
    assert T.Compose([np.asarray, np.float32])(1.0) == np.float32(1.0)
