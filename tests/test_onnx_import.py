"""dezero.onnx.load: files written by PyTorch and by hand with onnx.helper, checked against PyTorch and
ONNX Runtime; gradients to any order through a loaded model; fine-tuning; clear errors for what it
cannot read.
"""
from __future__ import annotations

import collections
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import dezero
import dezero.functions as F
from dezero import Parameter, Variable, optimizers
from dezero.models import MLP

onnx = pytest.importorskip('onnx')
ort = pytest.importorskip('onnxruntime')
import dezero.onnx as dx  # noqa: E402
from tests.test_onnx import (  # noqa: E402
    as_tuple,
    assert_close_to_scale,
    dezero_outputs,
    loss_of,
    rand,
    run_onnxruntime,
)

helper = onnx.helper
T = onnx.TensorProto
INT64_MAX, INT64_MIN = np.iinfo(np.int64).max, np.iinfo(np.int64).min


# =============================================================================
# Models exported by PyTorch itself
# =============================================================================
torch = pytest.importorskip('torch')
nn = torch.nn


class TorchMLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(20, 30)
        self.fc2 = nn.Linear(30, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.tanh(self.fc1(x)))


class TorchMNISTNet(nn.Module):
    """The CNN of PyTorch's MNIST example (examples/mnist/main.py), as published."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv1(x))
        x = torch.relu(self.conv2(x))
        x = torch.nn.functional.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = torch.relu(self.fc1(x))
        x = self.dropout2(x)
        return torch.nn.functional.log_softmax(self.fc2(x), dim=1)


class TorchResidualBlock(nn.Module):
    """A ResNet-style block: two 3x3 conv + batch norm, a 1x1 projection shortcut, a pooled head."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(8)
        self.shortcut = nn.Conv2d(3, 8, 1, stride=1, bias=False)
        self.bn_shortcut = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        h = torch.relu(h + self.bn_shortcut(self.shortcut(x)))
        h = torch.nn.functional.adaptive_avg_pool2d(h, 1)
        return self.fc(h.view(h.size(0), -1))


def _torch_block() -> nn.Module:
    torch.manual_seed(0)
    block = TorchResidualBlock()
    with torch.no_grad():
        for bn in (block.bn1, block.bn2, block.bn_shortcut):
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.2, 0.2)
            bn.running_mean.uniform_(-0.3, 0.3)
            bn.running_var.uniform_(0.5, 2.0)
    return block


TORCH_MODELS = {
    'mlp': (TorchMLP, (20,)),
    'mnist_cnn': (TorchMNISTNet, (1, 28, 28)),
    'residual_block': (_torch_block, (3, 8, 8)),
}
# dynamo: torch 2.13's default exporter (torch.export + onnxscript); torchscript: the older tracer.
# Without their graph optimisations both keep BatchNormalization nodes instead of folding them.
TORCH_EXPORTERS = {
    'dynamo': dict(dynamo=True),
    'dynamo_unoptimized': dict(dynamo=True, optimize=False),
    'torchscript': dict(dynamo=False),
    'torchscript_unfolded': dict(dynamo=False, do_constant_folding=False),
}


def _torch_export(module: nn.Module, example: torch.Tensor, path: Path, options: dict) -> None:
    kwargs = dict(options, input_names=['x'], output_names=['y'])
    if options['dynamo']:
        kwargs['dynamic_shapes'] = ({0: torch.export.Dim('batch')},)
    else:
        kwargs['dynamic_axes'] = {'x': {0: 'batch'}, 'y': {0: 'batch'}}
    torch.onnx.export(module, (example,), str(path), **kwargs)


@pytest.fixture(scope='module')
def torch_files(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, str], tuple]:
    """``(model name, exporter) -> (torch module in eval mode, path of its ONNX file)``, made once."""
    made: dict[tuple[str, str], tuple] = {}
    directory = tmp_path_factory.mktemp('torch_onnx')

    def get(name: str, exporter: str) -> tuple:
        if (name, exporter) not in made:
            factory, shape = TORCH_MODELS[name]
            torch.manual_seed(0)
            module = factory().eval()
            path = directory / f'{name}_{exporter}.onnx'
            _torch_export(module, torch.from_numpy(rand(2, *shape)), path, TORCH_EXPORTERS[exporter])
            made[name, exporter] = module, path
        return made[name, exporter]
    return get


TORCH_CASES = [('mlp', 'dynamo'), ('mlp', 'torchscript'),
               ('mnist_cnn', 'dynamo'), ('mnist_cnn', 'torchscript'),
               ('residual_block', 'dynamo'), ('residual_block', 'torchscript'),
               ('residual_block', 'dynamo_unoptimized'), ('residual_block', 'torchscript_unfolded')]


@pytest.mark.parametrize('name, exporter', TORCH_CASES)
def test_pytorch_export_loads_and_matches_pytorch(name: str, exporter: str, torch_files: Callable) -> None:
    module, path = torch_files(name, exporter)
    shape = TORCH_MODELS[name][1]
    model = dx.load(path)
    assert model.input_names == ['x'] and model.output_names == ['y']
    for n in (2, 3):  # the traced batch size and another one
        x = rand(n, *shape, seed=n)
        with torch.no_grad():
            expected = module(torch.from_numpy(x)).numpy()
        assert_close_to_scale(dezero_outputs(model, x)[0], expected, 1e-5, f'batch {n}')


@pytest.mark.parametrize('name, exporter', [('mlp', 'dynamo'), ('mnist_cnn', 'torchscript'),
                                            ('residual_block', 'torchscript_unfolded')])
def test_pytorch_export_gives_pytorchs_gradients(name: str, exporter: str, torch_files: Callable) -> None:
    module, path = torch_files(name, exporter)
    model = dx.load(path)
    x = rand(3, *TORCH_MODELS[name][1], seed=5)
    x_variable = Variable(x.copy())
    with dezero.test_mode():
        y = model(x_variable)
        loss_of([y]).backward()
    weights = np.random.default_rng(0).standard_normal(y.shape).astype(np.float32)
    x_tensor = torch.from_numpy(x.copy()).requires_grad_(True)
    module.zero_grad()
    (module(x_tensor) * torch.from_numpy(weights)).sum().backward()
    assert_close_to_scale(x_variable.grad.data, x_tensor.grad.numpy(), 1e-5, 'input gradient')
    torch_params = dict(module.named_parameters())
    names = [n for n, _ in model.named_params()]
    assert set(torch_params) <= set(names)  # every torch parameter arrived under its own name
    for name_, param in model.named_params():
        if name_ in torch_params:
            assert_close_to_scale(param.grad.data, torch_params[name_].grad.numpy(), 1e-5, name_)


def test_batch_norm_statistics_are_buffers(torch_files: Callable) -> None:
    _, path = torch_files('residual_block', 'torchscript_unfolded')
    model = dx.load(path)
    params = dict(model.named_params())
    assert 'bn1.weight' in params and 'bn1.running_mean' not in params
    assert isinstance(model.__dict__['bn1.running_mean'], np.ndarray)
    # Training mode normalises with batch statistics and updates the running ones, as dezero's batch_norm.
    before = model.__dict__['bn1.running_mean'].copy()
    model(rand(4, 3, 8, 8))
    assert not np.allclose(model.__dict__['bn1.running_mean'], before)


def test_batch_normalization_trains_with_the_files_momentum(tmp_path: Path) -> None:
    tensors = _batch_norm_tensors(3)
    path = tmp_path / 'bn.onnx'
    nodes = [node('BatchNormalization', BN_INPUTS, ['y'], momentum=0.8, epsilon=1e-3)]
    onnx.save(_model(nodes, {'x': rand(2, 3, 4, 5)}, tensors, ['y'], 17), str(path))
    model = dx.load(path)
    x = rand(4, 3, 4, 5, seed=3)
    y = model(x)  # training mode: normalised with the batch's own statistics
    np.testing.assert_allclose(y.data.mean(axis=(0, 2, 3)), tensors['b'], atol=1e-5)
    expected_mean = 0.8 * tensors['m'] + 0.2 * x.mean(axis=(0, 2, 3))
    np.testing.assert_allclose(model.m, expected_mean, rtol=1e-5)
    assert [name for name, _ in model.named_params()] == ['s', 'b']


# =============================================================================
# Hand-built graphs, one row per operator form, checked against ONNX Runtime
# =============================================================================
node = helper.make_node


def _model(nodes: list, inputs: dict[str, np.ndarray], initializers: dict[str, np.ndarray],
           outputs: list[str], opset: int) -> onnx.ModelProto:
    """A model of ``nodes``; inputs get a symbolic first axis, outputs are float (shapes inferred)."""
    graph_inputs = [helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(a.dtype),
                                                  ['N', *a.shape[1:]]) for name, a in inputs.items()]
    graph_outputs = [helper.make_tensor_value_info(name, T.FLOAT, None) for name in outputs]
    tensors = [onnx.numpy_helper.from_array(np.asarray(a), name) for name, a in initializers.items()]
    graph = helper.make_graph(nodes, 'case', graph_inputs, graph_outputs, tensors)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', opset)])
    model.ir_version = helper.find_min_ir_version_for(list(model.opset_import))
    # The checker wants every output's rank: inferred, or else taken from what ONNX Runtime computes.
    model = onnx.shape_inference.infer_shapes(model)
    shapeless = [o for o in model.graph.output if not o.type.tensor_type.HasField('shape')]
    if shapeless:
        session = ort.InferenceSession(model.SerializeToString(), providers=['CPUExecutionProvider'])
        results = dict(zip(outputs, session.run(None, inputs)))
        for output in shapeless:
            dims = [f'{output.name}_{k}' for k in range(results[output.name].ndim)]
            output.type.CopyFrom(helper.make_tensor_type_proto(T.FLOAT, dims))
    return model


def _ints(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int64)


def _positive(*shape: int) -> np.ndarray:
    return np.random.default_rng(7).uniform(0.5, 2.0, shape).astype(np.float32)


def _tensor(array: np.ndarray) -> onnx.TensorProto:
    return onnx.numpy_helper.from_array(array)


BN_INPUTS = ['x', 's', 'b', 'm', 'v']


def _batch_norm_tensors(channels: int) -> dict[str, np.ndarray]:
    return dict(s=rand(channels), b=rand(channels, seed=1), m=rand(channels, seed=2), v=_positive(channels))


OpCase = collections.namedtuple('OpCase', 'nodes inputs initializers outputs opset')


def case(nodes: Any, x: tuple = (), initializers: dict | None = None, outputs: tuple = ('y',),
         opset: int = 17, inputs: Callable[[int], dict] | None = None) -> OpCase:
    """``nodes`` run on ``x`` (shape without the batch axis) or on ``inputs(n)``."""
    make = inputs or (lambda n: {'x': rand(n, *x, seed=n)})
    nodes = nodes if isinstance(nodes, list) else [nodes]
    return OpCase(nodes, make, initializers or {}, list(outputs), opset)


CONDITION = np.array([True, False, True, False])
OP_CASES = {
    # Gemm and MatMul
    'Gemm': case(node('Gemm', ['x', 'W', 'b'], ['y']), (4,), dict(W=rand(4, 3), b=rand(3))),
    'Gemm_transB_alpha_beta': case(node('Gemm', ['x', 'W', 'c'], ['y'], transB=1, alpha=0.5, beta=2.0), (4,),
                                   dict(W=rand(3, 4), c=rand(1, 3))),
    'Gemm_transA_scalar_C': case([node('Transpose', ['x'], ['xt']),
                                  node('Gemm', ['xt', 'W', 'c'], ['y'], transA=1)], (4,),
                                 dict(W=rand(4, 3), c=np.array(0.5, np.float32))),
    'Gemm_without_C': case(node('Gemm', ['x', 'W'], ['y'], transB=1), (4,), dict(W=rand(3, 4))),
    'MatMul': case([node('MatMul', ['x', 'W'], ['a']), node('Transpose', ['x'], ['xt'], perm=[0, 2, 1]),
                    node('MatMul', ['x', 'xt'], ['b'])], (3, 4), dict(W=rand(4, 5)), ('a', 'b')),
    # convolutions
    'Conv': case(node('Conv', ['x', 'W', 'b'], ['y'], kernel_shape=[3, 2], strides=[2, 1], pads=[1, 0, 1, 0]),
                 (3, 9, 8), dict(W=rand(5, 3, 3, 2), b=rand(5))),
    'Conv_same_upper': case(node('Conv', ['x', 'W'], ['y'], auto_pad='SAME_UPPER'), (3, 7, 6),
                            dict(W=rand(4, 3, 3, 3))),
    'Conv_valid_strided': case(node('Conv', ['x', 'W'], ['y'], auto_pad='VALID', strides=[2, 2]), (3, 7, 6),
                               dict(W=rand(4, 3, 3, 3))),
    'ConvTranspose': case(node('ConvTranspose', ['x', 'W', 'b'], ['y'], strides=[2, 2], pads=[1, 1, 1, 1],
                               output_padding=[1, 0]), (3, 5, 6), dict(W=rand(3, 4, 3, 3), b=rand(4))),
    'ConvTranspose_output_shape': case(node('ConvTranspose', ['x', 'W'], ['y'], strides=[2, 2],
                                            output_shape=[9, 11]), (3, 5, 6), dict(W=rand(3, 4, 3, 3))),
    # pooling
    'MaxPool': case(node('MaxPool', ['x'], ['y'], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
                    (3, 9, 8)),
    'MaxPool_ceil_mode': case(node('MaxPool', ['x'], ['y'], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1),
                              (3, 8, 8)),
    'MaxPool_ceil_mode_padded': case(node('MaxPool', ['x'], ['y'], kernel_shape=[3, 3], strides=[2, 2],
                                          pads=[1, 1, 1, 1], ceil_mode=1), (3, 8, 9)),
    'AveragePool_exclude_pad': case(node('AveragePool', ['x'], ['y'], kernel_shape=[3, 3], strides=[2, 2],
                                         pads=[1, 1, 1, 1]), (3, 9, 8)),
    'AveragePool_include_pad': case(node('AveragePool', ['x'], ['y'], kernel_shape=[3, 2], strides=[2, 1],
                                         pads=[1, 1, 1, 1], count_include_pad=1), (3, 9, 8)),
    'AveragePool_unpadded': case(node('AveragePool', ['x'], ['y'], kernel_shape=[2, 2], strides=[2, 2]),
                                 (3, 8, 8)),
    'GlobalAveragePool_GlobalMaxPool': case([node('GlobalAveragePool', ['x'], ['a']),
                                             node('GlobalMaxPool', ['x'], ['b'])], (3, 5, 4),
                                            outputs=('a', 'b')),
    # batch normalisation
    'BatchNormalization': case(node('BatchNormalization', BN_INPUTS, ['y'], epsilon=1e-3), (3, 4, 5),
                               _batch_norm_tensors(3)),
    'BatchNormalization_2d': case(node('BatchNormalization', BN_INPUTS, ['y']), (6,), _batch_norm_tensors(6)),
    'BatchNormalization_3d': case(node('BatchNormalization', BN_INPUTS, ['y']), (3, 7),
                                  _batch_norm_tensors(3)),
    # flattening and reshaping
    'Flatten': case(node('Flatten', ['x'], ['y']), (3, 4, 5)),
    'Flatten_axis_2': case(node('Flatten', ['x'], ['y'], axis=2), (3, 4, 5)),
    'Flatten_axis_0': case(node('Flatten', ['x'], ['y'], axis=0), (3, 4, 5)),
    'Reshape_0_-1': case(node('Reshape', ['x', 's'], ['y']), (3, 4, 5), dict(s=_ints(0, -1))),
    'Reshape_0_3_-1': case(node('Reshape', ['x', 's'], ['y']), (3, 4, 5), dict(s=_ints(0, 3, -1))),
    'Reshape_allowzero_-1_60': case(node('Reshape', ['x', 's'], ['y'], allowzero=1), (3, 4, 5),
                                    dict(s=_ints(-1, 60)), opset=14),
    # the flatten chains exporters write: Shape → Gather → Unsqueeze → Concat → Reshape
    'flatten_chain_opset13': case([node('Shape', ['x'], ['shape']),
                                   node('Constant', [], ['zero'], value=_tensor(np.array(0, np.int64))),
                                   node('Gather', ['shape', 'zero'], ['n'], axis=0),
                                   node('Constant', [], ['axes'], value_ints=[0]),
                                   node('Unsqueeze', ['n', 'axes'], ['n1']),
                                   node('Constant', [], ['rest'], value_ints=[-1]),
                                   node('Concat', ['n1', 'rest'], ['target'], axis=0),
                                   node('Reshape', ['x', 'target'], ['y'])], (3, 4, 5), opset=13),
    'flatten_chain_opset11': case([node('Shape', ['x'], ['shape']),
                                   node('Gather', ['shape', 'zero'], ['n'], axis=0),
                                   node('Unsqueeze', ['n'], ['n1'], axes=[0]),
                                   node('Concat', ['n1', 'rest'], ['target'], axis=0),
                                   node('Reshape', ['x', 'target'], ['y'])], (3, 4, 5),
                                  dict(zero=np.array(0, np.int64), rest=_ints(-1)), opset=11),
    'flatten_chain_dynamo': case([node('Shape', ['x'], ['n'], start=0, end=1),
                                  node('Squeeze', ['n'], ['n0']),
                                  node('Reshape', ['n0', 'minus_one'], ['n1']),
                                  node('Concat', ['n1', 'minus_one'], ['target'], axis=0),
                                  node('Reshape', ['x', 'target'], ['y'], allowzero=1)], (3, 4, 5),
                                 dict(minus_one=_ints(-1)), opset=18),
    # constants, identity, dropout
    'Constant_kinds': case([node('Constant', [], ['c1'], value=_tensor(rand(5))),
                            node('Constant', [], ['c2'], value_float=2.0),
                            node('Constant', [], ['c3'], value_floats=[1.0, 2.0, 3.0, 4.0, 5.0]),
                            node('Constant', [], ['c4'], value_int=3),
                            node('Constant', [], ['c5'], value_ints=[1, 2, 3, 4, 5]),
                            node('Cast', ['c4'], ['f4'], to=T.FLOAT),
                            node('Cast', ['c5'], ['f5'], to=T.FLOAT),
                            node('Mul', ['x', 'c1'], ['a']), node('Add', ['a', 'c2'], ['b']),
                            node('Mul', ['b', 'c3'], ['c']), node('Add', ['c', 'f4'], ['d']),
                            node('Sub', ['d', 'f5'], ['y'])], (5,), opset=13),
    'Identity_Dropout_opset12': case([node('Identity', ['x'], ['a']), node('Dropout', ['a', 'r'], ['y'])],
                                     (4,), dict(r=np.array(0.3, np.float32)), opset=12),
    'Dropout_opset10': case(node('Dropout', ['x'], ['y'], ratio=0.3), (4,), opset=10),
    # elementwise
    'arithmetic': case([node('Add', ['x', 'c'], ['a']), node('Sub', ['c', 'a'], ['b']),
                        node('Mul', ['b', 'x'], ['d']), node('Div', ['d', 'c2'], ['e']),
                        node('Pow', ['e', 'two'], ['p']), node('Neg', ['p'], ['y'])], (3, 5),
                       dict(c=rand(5), c2=_positive(3, 1), two=np.array(2.0, np.float32))),
    'Pow_Sqrt_Log_Exp': case([node('Mul', ['x', 'x'], ['sq']), node('Add', ['sq', 'one'], ['z']),
                              node('Sqrt', ['z'], ['a']), node('Log', ['z'], ['b']),
                              node('Exp', ['x'], ['c']),
                              node('Pow', ['z', 'x'], ['d'])], (6,), dict(one=np.array(1.0, np.float32)),
                             ('a', 'b', 'c', 'd')),
    'activations': case([node('Relu', ['x'], ['a']), node('Sigmoid', ['x'], ['b']),
                         node('Tanh', ['x'], ['c']),
                         node('Sin', ['x'], ['d']), node('Cos', ['x'], ['e']),
                         node('LeakyRelu', ['x'], ['f'], alpha=0.2), node('Softplus', ['x'], ['g']),
                         node('Erf', ['x'], ['h'])], (6,), outputs=tuple('abcdefgh')),
    'Gelu_opset20': case([node('Gelu', ['x'], ['a']), node('Gelu', ['x'], ['b'], approximate='tanh')], (6,),
                         outputs=('a', 'b'), opset=20),
    'Clip_opset11': case([node('Clip', ['x', 'lo', 'hi'], ['a']), node('Clip', ['x', '', 'hi'], ['b'])],
                         (6,), dict(lo=np.array(-0.5, np.float32), hi=np.array(0.3, np.float32)), ('a', 'b'),
                         opset=11),
    'Clip_opset6': case(node('Clip', ['x'], ['y'], min=-0.5, max=0.4), (6,), opset=6),
    'Softmax_LogSoftmax_opset13': case([node('Softmax', ['x'], ['a'], axis=1),
                                        node('LogSoftmax', ['x'], ['b'])], (4, 5), outputs=('a', 'b'),
                                       opset=13),
    'Softmax_LogSoftmax_opset11_2d': case([node('Softmax', ['x'], ['a']),
                                           node('LogSoftmax', ['x'], ['b'], axis=2)], (4, 5),
                                          outputs=('a', 'b'), opset=11),
    # shapes and indexing
    'Concat_Transpose': case([node('Mul', ['x', 'two'], ['x2']), node('Concat', ['x', 'x2'], ['a'], axis=-1),
                              node('Transpose', ['x'], ['b'])], (4, 5), dict(two=np.array(2.0, np.float32)),
                             ('a', 'b')),
    'Gather': case([node('Gather', ['x', 'i'], ['a'], axis=1), node('Gather', ['x', 'j'], ['b'], axis=2)],
                   (4, 5), dict(i=_ints(0, -1, 2), j=np.array(1, np.int64)), ('a', 'b')),
    'Gather_embedding': case(node('Gather', ['W', 'ids'], ['y']), initializers=dict(W=rand(10, 4)),
                             inputs=lambda n: {'ids': np.random.default_rng(n).integers(0, 10, (n, 5))}),
    'Unsqueeze_Squeeze_opset13': case([node('Unsqueeze', ['x', 'axes'], ['a']),
                                       node('Squeeze', ['a', 'one'], ['b']), node('Squeeze', ['a'], ['c'])],
                                      (4, 5), dict(axes=_ints(1, -1), one=_ints(1)), ('a', 'b', 'c'),
                                      opset=13),
    'Unsqueeze_Squeeze_opset11': case([node('Unsqueeze', ['x'], ['a'], axes=[1, -1]),
                                       node('Squeeze', ['a'], ['b'], axes=[1])], (4, 5), outputs=('a', 'b'),
                                      opset=11),
    'Reduce_opset13': case([node('ReduceMean', ['x'], ['a'], axes=[1], keepdims=0),
                            node('ReduceSum', ['x', 'axes'], ['b']),
                            node('ReduceMax', ['x'], ['c'], axes=[1, 2]),
                            node('ReduceMin', ['x'], ['d'], axes=[-1], keepdims=0),
                            node('ReduceSum', ['x'], ['e'], keepdims=0)], (4, 5), dict(axes=_ints(2)),
                           tuple('abcde'), opset=13),
    'Reduce_opset18': case([node('ReduceMean', ['x', 'axes'], ['a']),
                            node('ReduceMax', ['x', 'one'], ['b'], keepdims=0),
                            node('ReduceMin', ['x', 'axes'], ['c']),
                            node('ReduceSum', ['x', 'none'], ['d'], noop_with_empty_axes=1)], (4, 5),
                           dict(axes=_ints(1, 2), one=_ints(1), none=_ints()), tuple('abcd'), opset=18),
    'Shape_Cast_CastLike': case([node('Shape', ['x'], ['s'], start=1, end=2),
                                 node('Cast', ['s'], ['f'], to=T.FLOAT),
                                 node('Mul', ['x', 'f'], ['a']), node('CastLike', ['three', 'x'], ['c']),
                                 node('Mul', ['a', 'c'], ['y'])], (4, 5), dict(three=_ints(3)), opset=15),
    'Slice': case([node('Slice', ['x', 'st', 'en', 'ax', 'sp'], ['a']),
                   node('Slice', ['x', 'st2', 'en2', 'ax2', 'sp2'], ['b']),
                   node('Slice', ['x', 'st3', 'en3'], ['c'])], (5, 6),
                  dict(st=_ints(1, 0), en=_ints(4, INT64_MAX), ax=_ints(1, 2), sp=_ints(1, 2),
                       st2=_ints(-1), en2=_ints(INT64_MIN), ax2=_ints(-1), sp2=_ints(-1),
                       st3=_ints(0, 1), en3=_ints(2, -1)), ('a', 'b', 'c'), opset=13),
    'Slice_opset9': case(node('Slice', ['x'], ['y'], starts=[1, 0], ends=[4, 3], axes=[1, 2]), (5, 6),
                         opset=9),
    'Expand_ConstantOfShape': case([node('Expand', ['x', 'shape'], ['a']),
                                    node('ConstantOfShape', ['shape2'], ['c'],
                                         value=_tensor(np.array([2.5], np.float32))),
                                    node('Add', ['a', 'c'], ['y'])], (1, 4),
                                   dict(shape=_ints(1, 3, 4), shape2=_ints(3, 4))),
    'Where': case(node('Where', ['cond', 'x', 'c'], ['y']), (4,), dict(cond=CONDITION, c=rand(4))),
    # losses
    'SoftmaxCrossEntropyLoss': case([node('SoftmaxCrossEntropyLoss', ['x', 't'], [r], reduction=r)
                                     for r in ('mean', 'sum', 'none')], outputs=('mean', 'sum', 'none'),
                                    inputs=lambda n: {'x': rand(n, 5, seed=n),
                                                      't': np.random.default_rng(n).integers(0, 5, n)},
                                    opset=13),
}


@pytest.mark.parametrize('name', OP_CASES)
def test_operator_matches_onnxruntime(name: str, tmp_path: Path) -> None:
    nodes, make_inputs, initializers, outputs, opset = OP_CASES[name]
    path = tmp_path / f'{name}.onnx'
    onnx.save(_model(nodes, make_inputs(2), initializers, outputs, opset), str(path))
    model = dx.load(path)
    for n in (2, 3):
        inputs = list(make_inputs(n).values())
        expected = run_onnxruntime(path, *inputs)
        got = dezero_outputs(model, *inputs)
        for output, a, b in zip(outputs, got, expected):
            assert_close_to_scale(a, b, 1e-5, f'{name} output {output} at batch {n}')


def test_every_operator_is_exercised() -> None:
    used = {n.op_type for c in OP_CASES.values() for n in c.nodes}
    assert set(dx._importer.SUPPORTED_OPS) <= used


def test_float_initializers_are_parameters_and_integer_ones_constants(tmp_path: Path) -> None:
    nodes, make_inputs, initializers, outputs, opset = OP_CASES['Reshape_0_-1']
    nodes = [node('Gemm', ['x2', 'W', 'b'], ['y2'], transB=1), node('Reshape', ['y2', 's'], ['y'])]
    path = tmp_path / 'kinds.onnx'
    tensors = dict(W=rand(6, 4), b=rand(6), s=_ints(0, 2, 3))
    onnx.save(_model(nodes, {'x2': rand(2, 4)}, tensors, ['y'], 17), str(path))
    model = dx.load(path)
    assert [name for name, _ in model.named_params()] == ['W', 'b']
    assert all(isinstance(p, Parameter) for p in model.params())
    assert dezero_outputs(model, rand(5, 4))[0].shape == (5, 2, 3)


# =============================================================================
# Gradients, fine-tuning, weights
# =============================================================================
def test_second_order_gradient_through_a_loaded_model(tmp_path: Path) -> None:
    np.random.seed(0)
    original = MLP((8, 8, 1), activation=F.tanh)
    x = rand(4, 3)
    path = tmp_path / 'mlp.onnx'
    dx.export(original, x, path=path)
    loaded = dx.load(path)

    def second_order(model: Any) -> tuple[np.ndarray, dict]:
        xv = Variable(x.copy())
        model.cleargrads()
        y = F.sum(model(xv))
        y.backward(create_graph=True)
        gx = xv.grad
        xv.cleargrad()
        model.cleargrads()
        F.sum(gx * gx).backward()
        return xv.grad.data, {name: p.grad.data for name, p in model.named_params() if p.grad is not None}

    gx2, grads = second_order(original)
    gx2_loaded, grads_loaded = second_order(loaded)
    assert_close_to_scale(gx2_loaded, gx2, 1e-6, 'second derivative w.r.t. x')
    assert set(grads_loaded) == set(grads)
    for name, g in grads.items():
        assert_close_to_scale(grads_loaded[name], g, 1e-6, f'mixed second derivative w.r.t. {name}')


def test_fine_tuning_a_loaded_model_and_saving_its_weights(tmp_path: Path) -> None:
    np.random.seed(0)
    original = MLP((16, 3), activation=F.relu)
    x, t = rand(32, 5), np.random.default_rng(0).integers(0, 3, 32)
    path = tmp_path / 'mlp.onnx'
    dx.export(original, x, path=path)
    model = dx.load(path)
    assert model.l0.W is dict(model.named_params())['l0/W']  # slash paths are nested layers
    optimizer = optimizers.Adam(alpha=0.01).setup(model)
    losses = []
    for _ in range(20):
        loss = F.softmax_cross_entropy(model(x), t)
        model.cleargrads()
        loss.backward()
        optimizer.update()
        losses.append(float(loss.data))
    assert losses[-1] < 0.8 * losses[0]
    # The fine-tuned weights keep the original names: the dezero MLP reads them back.
    weights = tmp_path / 'tuned.npz'
    model.save_weights(weights)
    original.load_weights(weights)
    assert_close_to_scale(dezero_outputs(original, x)[0], dezero_outputs(model, x)[0], 1e-6, 'tuned outputs')


def test_loaded_model_checks_its_inputs(tmp_path: Path) -> None:
    path = tmp_path / 'mlp.onnx'
    dx.export(MLP((3,)), rand(2, 4), path=path)
    model = dx.load(path)
    with pytest.raises(TypeError, match=r"expected 1 inputs \['input'\], got 2"):
        model(rand(2, 4), rand(2, 4))
    # float64 arrays are converted to the declared float32
    assert model(np.ones((2, 4))).dtype == np.float32


# =============================================================================
# What cannot be read: clear errors
# =============================================================================
def _save(tmp_path: Path, nodes: list, initializers: dict | None = None, opset: int = 17,
          x_shape: tuple = (2, 3, 6, 6)) -> Path:
    path = tmp_path / 'model.onnx'
    onnx.save(_model(nodes, {'x': rand(*x_shape)}, initializers or {}, ['y'], opset), str(path))
    return path


def test_unsupported_operator_names_op_node_and_opset(tmp_path: Path) -> None:
    path = _save(tmp_path, [node('Hardmax', ['x'], ['y'], name='my_hardmax')], opset=16)
    with pytest.raises(NotImplementedError, match=r"model\.onnx': operator Hardmax \(node 'my_hardmax', "
                                                  r'opset 16\) is not supported'):
        dx.load(path)


@pytest.mark.parametrize('nodes, initializers, match', [
    ([node('Conv', ['x', 'W'], ['y'], group=3, name='grouped')], dict(W=rand(3, 1, 3, 3)),
     r"Conv node 'grouped' \(opset 17\): group=3 is not supported"),
    ([node('Conv', ['x', 'W'], ['y'], dilations=[2, 2], name='dilated')], dict(W=rand(3, 3, 3, 3)),
     r"Conv node 'dilated'.*dilations \[2, 2\]"),
    ([node('Conv', ['x', 'W'], ['y'], pads=[0, 0, 1, 1], name='uneven')], dict(W=rand(3, 3, 3, 3)),
     r"Conv node 'uneven'.*pads \[0, 0, 1, 1\] are not symmetric"),
    ([node('MaxPool', ['x'], ['y', 'i'], kernel_shape=[2, 2], name='indexed')], {},
     r"MaxPool node 'indexed'.*Indices output"),
])
def test_unsupported_attributes_name_the_node(nodes: list, initializers: dict, match: str,
                                              tmp_path: Path) -> None:
    with pytest.raises(NotImplementedError, match=match):
        dx.load(_save(tmp_path, nodes, initializers))


def test_uneven_same_padding_is_reported_at_run_time(tmp_path: Path) -> None:
    path = _save(tmp_path, [node('Conv', ['x', 'W'], ['y'], auto_pad='SAME_UPPER', name='same')],
                 dict(W=rand(3, 3, 2, 2)))
    model = dx.load(path)
    with pytest.raises(NotImplementedError, match=r"Conv node 'same'.*uneven padding"):
        model(rand(2, 3, 6, 6))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"dezero.onnx.load: no such file '.*nothing\.onnx'"):
        dx.load(tmp_path / 'nothing.onnx')


def _exported(tmp_path: Path) -> bytes:
    path = tmp_path / 'good.onnx'
    dx.export(MLP((3,)), rand(2, 4), path=path)
    return path.read_bytes()


@pytest.mark.parametrize('content, match', [
    (lambda good: good[:len(good) // 2], 'is truncated or not an ONNX model'),
    (lambda good: good[:-3], 'is truncated or not an ONNX model'),
    (lambda good: b'This is a text file, not a network.\n' * 20, 'is truncated or not an ONNX model'),
    (lambda good: b'\x93NUMPY\x01\x00v\x00' + bytes(200), 'is truncated or not an ONNX model'),
    (lambda good: b'', 'is empty, not an ONNX model'),
])
def test_bad_files_name_the_file_and_the_problem(content: Callable, match: str, tmp_path: Path) -> None:
    path = tmp_path / 'bad.onnx'
    path.write_bytes(content(_exported(tmp_path)))
    with pytest.raises(ValueError, match=f"'{path}' {match}"):
        dx.load(path)


def test_npz_weights_file_is_not_onnx(tmp_path: Path) -> None:
    path = tmp_path / 'weights.npz'
    MLP((3,))(rand(2, 4))
    model = MLP((3,))
    model(rand(2, 4))
    model.save_weights(path)
    with pytest.raises(ValueError, match=f"'{path}' is (truncated or not an ONNX model|not a valid ONNX)"):
        dx.load(path)


def test_newer_opset_than_supported(tmp_path: Path) -> None:
    proto = _model([node('Relu', ['x'], ['y'])], {'x': rand(2, 3)}, {}, ['y'], 17)
    proto.opset_import[0].version = dx.MAX_OPSET + 1
    path = tmp_path / 'future.onnx'
    path.write_bytes(proto.SerializeToString())
    newer = dx.MAX_OPSET + 1
    with pytest.raises(ValueError, match=f"'{path}' uses ONNX opset {newer}, newer than the newest this "
                                         f'version of dezero supports \\({dx.MAX_OPSET}\\)'):
        dx.load(path)


def test_invalid_graph_names_the_file(tmp_path: Path) -> None:
    # Parses, but a node reads a tensor nothing defines.
    graph = helper.make_graph([node('Add', ['x', 'undefined'], ['y'])], 'broken',
                              [helper.make_tensor_value_info('x', T.FLOAT, [2])],
                              [helper.make_tensor_value_info('y', T.FLOAT, [2])])
    path = tmp_path / 'broken.onnx'
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)]), str(path))
    with pytest.raises(ValueError, match=f"'{path}' is not a valid ONNX model"):
        dx.load(path)


def test_round_trip_of_several_outputs(tmp_path: Path) -> None:
    path = tmp_path / 'multi.onnx'
    model = MLP((4, 2))
    x = rand(3, 5)
    model(x)

    class Two(dezero.Model):
        def __init__(self) -> None:
            super().__init__()
            self.net = model

        def forward(self, x: Variable) -> tuple:
            y = self.net(x)
            return y, F.softmax(y)

    dx.export(Two(), x, path=path)
    loaded = dx.load(path)
    outputs = as_tuple(loaded(x))
    assert len(outputs) == 2 and loaded.output_names == ['output_0', 'output_1']
    assert_close_to_scale(outputs[1].data, F.softmax(model(x)).data, 1e-6)
