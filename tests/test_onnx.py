"""dezero.onnx: packaging, and ``export`` checked by ONNX Runtime (never by reading our own files back).

Every exported model passes ``onnx.checker`` (full check), ONNX Runtime's outputs match dezero's to
1e-5 relative to the output scale at the traced batch size and at another one, and the file loads back
(``dezero.onnx.load``) with the same outputs and gradients. Helpers here are shared with
``test_onnx_import.py`` and ``test_onnx_example.py``.
"""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import dezero
import dezero.functions as F
import dezero.layers as L
from dezero import Model, Parameter, Variable
from dezero.models import MLP

onnx = pytest.importorskip('onnx')
ort = pytest.importorskip('onnxruntime')
import dezero.onnx as dx  # noqa: E402  (after the skips: it needs onnx)

REPO = Path(__file__).resolve().parent.parent


# =============================================================================
# Helpers
# =============================================================================
def run_onnxruntime(path: Any, *inputs: np.ndarray) -> list[np.ndarray]:
    """Outputs of ONNX Runtime (CPU) for the graph inputs ``inputs``, in order."""
    session = ort.InferenceSession(str(path), providers=['CPUExecutionProvider'])
    names = [i.name for i in session.get_inputs()]
    return session.run(None, dict(zip(names, inputs)))


def assert_close_to_scale(actual: Any, expected: Any, tol: float = 1e-5, what: str = '') -> None:
    """``max |actual - expected| <= tol * max |expected|``: float32 agreement relative to the output scale."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f'{what}: shape {actual.shape} != {expected.shape}'
    if expected.size == 0:
        return
    scale = max(float(np.abs(expected).max()), 1e-30)
    error = float(np.abs(actual.astype(np.float64) - expected).max())
    assert error <= tol * scale, f'{what}: max error {error:.3g} > {tol} x output scale {scale:.3g}'


def as_tuple(y: Any) -> tuple:
    return tuple(y) if isinstance(y, (tuple, list)) else (y,)


def dezero_outputs(model: Any, *inputs: Any) -> list[np.ndarray]:
    with dezero.test_mode(), dezero.no_grad():
        return [y.data for y in as_tuple(model(*inputs))]


def check_export(model: Any, path: Path, traced: Sequence[np.ndarray], other: Sequence[np.ndarray],
                 **kwargs: Any) -> Any:
    """Export ``model`` traced on ``traced``; full check; ONNX Runtime == dezero on ``traced`` and on
    ``other`` (another batch size). Returns the ModelProto."""
    proto = dx.export(model, *traced, path=path, **kwargs)
    onnx.checker.check_model(str(path), full_check=True)
    for inputs in (traced, other):
        expected = dezero_outputs(model, *inputs)
        got = run_onnxruntime(path, *inputs)
        assert len(got) == len(expected)
        for k, (a, b) in enumerate(zip(got, expected)):
            assert_close_to_scale(a, b, 1e-5, f'ONNX Runtime output {k} at batch {len(inputs[0])}')
    return proto


def loss_of(outputs: Sequence[Variable], seed: int = 0) -> Variable:
    """``sum_k sum(y_k * w_k)`` with fixed random weights ``w_k``: a scalar whose gradient is generic."""
    rng = np.random.default_rng(seed)
    total = 0
    for y in outputs:
        total = total + F.sum(y * rng.standard_normal(y.shape).astype(y.dtype))
    return total


def gradients(model: Any, inputs: Sequence[np.ndarray]) -> tuple[list[np.ndarray], dict, dict]:
    """Outputs, parameter gradients by name and input gradients by position of
    ``loss_of(model(*inputs))`` in test mode (float inputs are Variables; those without a gradient,
    such as a loss's targets, are left out)."""
    xs = [Variable(x.copy()) if x.dtype.kind == 'f' else x for x in inputs]
    model.cleargrads()
    with dezero.test_mode():
        outputs = as_tuple(model(*xs))
        loss_of(outputs).backward()
    grads = {name: p.grad.data for name, p in model.named_params() if p.grad is not None}
    input_grads = {k: x.grad.data for k, x in enumerate(xs) if isinstance(x, Variable) and x.grad is not None}
    return [y.data for y in outputs], grads, input_grads


def check_round_trip(model: Any, path: Path, inputs: Sequence[np.ndarray], tol: float = 1e-6) -> Any:
    """``dezero.onnx.load(path)`` has the initializers as Parameters of the same names and values,
    and gives the same outputs and gradients (parameters and inputs) as ``model``."""
    loaded = dx.load(path)
    original = dict(model.named_params())
    loaded_params = dict(loaded.named_params())
    assert loaded_params, 'no parameters loaded'
    for name, param in loaded_params.items():
        assert isinstance(param, Parameter)
        np.testing.assert_array_equal(param.data, original[name].data, err_msg=name)
    ys, grads, input_grads = gradients(model, inputs)
    ys2, grads2, input_grads2 = gradients(loaded, inputs)
    for k, (a, b) in enumerate(zip(ys2, ys)):
        assert_close_to_scale(a, b, tol, f'loaded output {k}')
    assert set(grads2) == set(loaded_params)
    for name, g in grads2.items():
        assert_close_to_scale(g, grads[name], 1e-5, f'gradient of {name}')
    for k, g in input_grads.items():
        assert_close_to_scale(input_grads2[k], g, 1e-5, f'gradient of input {k}')
    return loaded


def rand(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def randomize_batch_norms(layer: dezero.Layer, rng: np.random.Generator) -> None:
    """Give every BatchNorm of ``layer`` non-trivial statistics and affine parameters."""
    for value in list(vars(layer).values()):
        if isinstance(value, L.BatchNorm):
            size = value.gamma.shape[0]
            value.gamma.data = rng.uniform(0.5, 1.5, size).astype(np.float32)
            value.beta.data = rng.normal(0, 0.1, size).astype(np.float32)
            value.avg_mean = rng.normal(0, 0.1, size).astype(np.float32)
            value.avg_var = rng.uniform(0.5, 1.5, size).astype(np.float32)
        elif isinstance(value, dezero.Layer):
            randomize_batch_norms(value, rng)


def load_example(name: str) -> Any:
    from tests.test_examples import load_example as load
    return load(name)


# =============================================================================
# Packaging
# =============================================================================
def run_python(code: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get('PYTHONPATH', ''))
    return subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env=env, cwd=REPO,
                          timeout=120)


def test_import_dezero_does_not_import_onnx() -> None:
    result = run_python('import sys, dezero, dezero.functions, dezero.models\n'
                        "optional = ('onnx', 'onnxruntime', 'dezero.onnx')\n"
                        'print(sorted(m for m in optional if m in sys.modules))')
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == '[]'


def test_dezero_onnx_without_onnx_names_the_extra() -> None:
    result = run_python("import sys\nsys.modules['onnx'] = None\n"
                        'try:\n    import dezero.onnx\nexcept ImportError as e:\n    print(e)\n')
    assert result.returncode == 0, result.stderr
    assert "pip install 'dezero[onnx]'" in result.stdout


# =============================================================================
# The networks of the issue
# =============================================================================
class UnrolledLSTM(Model):
    """The LSTM regressor of examples/rnn_sin_curve.py run over ``steps`` steps of ``x (N, T, 1)``."""

    def __init__(self, steps: int = 10, hidden_size: int = 16) -> None:
        super().__init__()
        self.net = load_example('rnn_sin_curve').SequenceRegressor('lstm', hidden_size)
        self.steps = steps

    def forward(self, x: Variable) -> Variable:
        self.net.reset_state()
        return F.concat([self.net(x[:, t, :]) for t in range(self.steps)], axis=1)


class UnrolledGRU(Model):
    """A GRU and a Linear head run over ``steps`` steps of ``x (N, T, 3)`` (the fused GRU step)."""

    def __init__(self, steps: int = 6, hidden_size: int = 8) -> None:
        super().__init__()
        self.gru = L.GRU(hidden_size)
        self.fc = L.Linear(2)
        self.steps = steps

    def forward(self, x: Variable) -> Variable:
        self.gru.reset_state()
        return F.concat([self.fc(self.gru(x[:, t, :])) for t in range(self.steps)], axis=1)


class VAEDecoder(Model):
    """The decoder of examples/vae_fashion_mnist.py: ``(N, 16)`` codes → ``(N, 784)`` pixels."""

    def __init__(self) -> None:
        super().__init__()
        self.vae = load_example('vae_fashion_mnist').VAE(latent_size=16)
        self.vae(np.zeros((1, 784), np.float32))  # creates the lazily sized weights

    def forward(self, z: Variable) -> Variable:
        return self.vae.decode(z)


def _resnet50() -> Model:
    model = dezero.models.ResNet50()
    randomize_batch_norms(model, np.random.default_rng(0))
    return model


# name → (model factory, traced inputs, inputs at another batch size)
NETWORKS = {
    'mlp': (lambda: MLP((30, 20, 5), activation=F.relu), (rand(2, 7),), (rand(5, 7, seed=1),)),
    'cnn_example': (lambda: load_example('cnn_fashion_mnist').FashionCNN(), (rand(2, 1, 28, 28),),
                    (rand(3, 1, 28, 28, seed=1),)),
    'squeezenet': (dezero.models.SqueezeNet, (rand(2, 3, 64, 64),), (rand(3, 3, 64, 64, seed=1),)),
    'lstm_10_steps': (UnrolledLSTM, (rand(2, 10, 1),), (rand(4, 10, 1, seed=1),)),
    'gru_6_steps': (UnrolledGRU, (rand(2, 6, 3),), (rand(4, 6, 3, seed=1),)),
    'vae_decoder': (VAEDecoder, (rand(2, 16),), (rand(5, 16, seed=1),)),
    'resnet50': (_resnet50, (rand(2, 3, 32, 32),), (rand(3, 3, 32, 32, seed=1),)),
}
SLOW_NETWORKS = {'resnet50'}


@pytest.mark.parametrize('name', [pytest.param(n, marks=pytest.mark.slow) if n in SLOW_NETWORKS else n
                                  for n in NETWORKS])
def test_network_matches_onnxruntime_and_round_trips(name: str, tmp_path: Path) -> None:
    factory, traced, other = NETWORKS[name]
    np.random.seed(0)
    model = factory()
    path = tmp_path / f'{name}.onnx'
    proto = check_export(model, path, traced, other)
    # Parameters are initializers under their paths; nothing else is.
    initializers = [t.name for t in proto.graph.initializer]
    assert set(initializers) <= set(dict(model.named_params()))
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == 'batch'
    check_round_trip(model, path, traced)


@pytest.mark.slow
def test_vgg16_matches_onnxruntime_and_round_trips(tmp_path: Path) -> None:
    # VGG16's fc6 needs 224x224 images: traced on one, checked on two.
    np.random.seed(0)
    model = dezero.models.VGG16()
    path = tmp_path / 'vgg16.onnx'
    check_export(model, path, (rand(1, 3, 224, 224),), (rand(2, 3, 224, 224, seed=1),))
    check_round_trip(model, path, (rand(1, 3, 224, 224),))


# =============================================================================
# Every Function the layers and models use: one row each
# =============================================================================
class FunctionModel(Model):
    """``fn(self, *inputs)`` with Parameters (and sub-layers) given by keyword."""

    def __init__(self, fn: Callable[..., Any], **members: Any) -> None:
        super().__init__()
        for name, value in members.items():
            setattr(self, name, Parameter(value) if isinstance(value, np.ndarray) else value)
        self.fn = fn

    def forward(self, *inputs: Any) -> Any:
        return self.fn(self, *inputs)


def _batch_norm_layer(size: int) -> L.BatchNorm:
    holder = FunctionModel(lambda m, x: x, bn=L.BatchNorm(size=size))
    randomize_batch_norms(holder, np.random.default_rng(size))
    return holder.bn


def _ids(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 10, size=(n, 5))


def _labels(n: int) -> np.ndarray:
    return np.random.default_rng(n).integers(0, 4, n)


def _targets(n: int) -> np.ndarray:
    return np.random.default_rng(n).uniform(0, 1, (n, 6)).astype(np.float32)


CONDITION = np.array([True, False, True, True, False, False])

# id → (fn(model, *xs), members, input factory n → tuple of inputs)
FUNCTION_CASES: dict[str, tuple[Callable, dict, Callable[[int], tuple]]] = {
    'add_sub_mul_div': (lambda m, x: (x + m.a) * m.b - x / (m.a * m.a + 1),
                        dict(a=rand(6), b=rand(6, seed=1)), lambda n: (rand(n, 6),)),
    'constants': (lambda m, x: 2.0 - x * 3 + 1 / (x * x + 1) - x / 4 + (-x) - 0.5, {},
                  lambda n: (rand(n, 6),)),
    'array_constant': (lambda m, x: x * np.arange(6, dtype=np.float32) + np.ones((1, 6), np.float32), {},
                       lambda n: (rand(n, 6),)),
    'pow': (lambda m, x: x ** 2 + 2 ** x + (x * x + 1) ** m.p, dict(p=rand(6)), lambda n: (rand(n, 6),)),
    'sin_cos_tanh_exp_log': (lambda m, x: F.sin(x) + F.cos(x) * F.tanh(x) + F.exp(x) + F.log(x * x + 1), {},
                             lambda n: (rand(n, 6),)),
    'sigmoid_relu_leaky_relu': (lambda m, x: F.sigmoid(x) + F.relu(x) + F.leaky_relu(x, 0.1), {},
                                lambda n: (rand(n, 6),)),
    'softmax_log_softmax': (lambda m, x: F.concat([F.softmax(x, axis=1), F.log_softmax(x, axis=2),
                                                   F.softmax(x, axis=(1, 2)), F.log_softmax(x, axis=(1, 2))],
                                                  axis=1), {}, lambda n: (rand(n, 4, 6),)),
    'softplus_log_sigmoid_gelu_silu': (lambda m, x: F.softplus(x) + F.softplus(x, beta=2) + F.log_sigmoid(x)
                                       + F.gelu(x) + F.gelu(x, approximate='tanh') + F.silu(x), {},
                                       lambda n: (rand(n, 6),)),
    'clip': (lambda m, x: F.clip(x, -0.5, 0.5) + F.clip(x, None, 0.3) + F.clip(x, -0.2, None), {},
             lambda n: (rand(n, 6),)),
    'dropout_is_identity': (lambda m, x: F.dropout(x, 0.5) * 2 + m.drop(x), dict(drop=L.Dropout(0.3)),
                            lambda n: (rand(n, 6),)),
    'reshape_flatten_expand_dims': (lambda m, x: F.flatten(F.expand_dims(F.reshape(x, (-1, 6, 4)), 1))
                                    + F.reshape(x, (x.shape[0], 24)), {}, lambda n: (rand(n, 4, 6),)),
    'batch_folded_reshape': (lambda m, x: F.reshape(F.reshape(x, (-1, 6)) * 2, (x.shape[0], 4, 6)), {},
                             lambda n: (rand(n, 4, 6),)),
    'transpose': (lambda m, x: F.transpose(x, (0, 2, 1)) * 2 + F.transpose(x, (0, -1, -2)), {},
                  lambda n: (rand(n, 4, 6),)),
    'get_item_basic': (lambda m, x: F.concat([x[:, 1], x[:, -1], x[:, ::-1, 0], x[:, 1:5:2, 2],
                                              F.reshape(x[..., None, 3], (x.shape[0], -1))], axis=1), {},
                       lambda n: (rand(n, 5, 6),)),
    'get_item_array': (lambda m, x: F.reshape(x[:, np.array([0, 2, 2, -1])], (x.shape[0], -1)), {},
                       lambda n: (rand(n, 5, 6),)),
    'concat_stack_where': (lambda m, x: F.concat([x, F.stack([x, x * 2], axis=1).reshape(x.shape[0], -1),
                                                  F.where(CONDITION, x, m.a)], axis=1), dict(a=rand(6)),
                           lambda n: (rand(n, 6),)),
    'broadcast_to_sum_to': (lambda m, x: F.broadcast_to(x[:, :1], (x.shape[0], 6)) + F.sum_to(x, (1, 6)),
                            {}, lambda n: (rand(n, 6),)),
    'sum_average': (lambda m, x: F.concat([F.sum(x, axis=1), F.average(x, axis=-1).reshape(-1, 4),
                                           F.sum(x, axis=(1, 2), keepdims=True).reshape(-1, 1)], axis=1), {},
                    lambda n: (rand(n, 4, 6),)),
    'max_min_logsumexp': (lambda m, x: F.concat([F.max(x, axis=1), F.min(x, axis=2).reshape(-1, 4),
                                                 F.logsumexp(x, axis=1),
                                                 F.logsumexp(x, axis=(1, 2), keepdims=True).reshape(-1, 1)],
                                                axis=1), {}, lambda n: (rand(n, 4, 6),)),
    'whole_sum_and_mse': (lambda m, x, t: (F.sum(x), F.mean_squared_error(x, t)), {},
                          lambda n: (rand(n, 6), rand(n, 6, seed=1))),
    'matmul': (lambda m, x: F.concat([F.matmul(x, m.W), F.matmul(x, F.transpose(x, (0, 2, 1))[:, :, :3]),
                                      F.matmul(x, m.v)[:, :, None]], axis=2),
               dict(W=rand(6, 5), v=rand(6)), lambda n: (rand(n, 4, 6),)),
    'linear': (lambda m, x: F.linear(x, m.W, m.b) + F.linear(x, m.W), dict(W=rand(6, 5), b=rand(5)),
               lambda n: (rand(n, 6),)),
    'conv2d': (lambda m, x: F.conv2d(x, m.W, m.b, stride=(2, 1), pad=(1, 0)),
               dict(W=rand(5, 3, 3, 2), b=rand(5)), lambda n: (rand(n, 3, 9, 8),)),
    'deconv2d': (lambda m, x: F.deconv2d(x, m.W, m.b, stride=2, pad=1) * 2
                 + F.deconv2d(x, m.W, None, stride=2, pad=1),
                 dict(W=rand(3, 4, 3, 3), b=rand(4)), lambda n: (rand(n, 3, 5, 6),)),
    'deconv2d_outsize': (lambda m, x: F.deconv2d(x, m.W, None, stride=(2, 3), pad=(1, 0), outsize=(10, 17)),
                         dict(W=rand(3, 4, 3, 3)), lambda n: (rand(n, 3, 5, 5),)),
    'pooling': (lambda m, x: F.concat([F.pooling(x, 3, 2, 1), F.average_pooling(x, 3, 2, 1)], axis=1), {},
                lambda n: (rand(n, 3, 9, 8),)),
    'min_pooling': (lambda m, x: F.concat([F.min_pooling(x, 3, 2, 1), F.pooling(x, 3, 2, 1)], axis=1), {},
                    lambda n: (rand(n, 3, 9, 8),)),
    'pooling_non_square': (lambda m, x: F.pooling(x, (2, 3), (2, 1), (1, 1)) + F.average_pooling(
                           x, (2, 3), (2, 1), (1, 1)), {}, lambda n: (rand(n, 3, 9, 8),)),
    'batch_norm_2d_and_4d': (lambda m, x: m.bn4(x).sum(axis=(2, 3)) + m.bn2(F.reshape(x, (-1, 72)))[:, :3],
                             dict(bn4=_batch_norm_layer(3), bn2=_batch_norm_layer(72)),
                             lambda n: (rand(n, 3, 4, 6),)),
    'layer_norm': (lambda m, x: m.ln(x), dict(ln=L.LayerNorm(6)), lambda n: (rand(n, 4, 6),)),
    'embed_id': (lambda m, ids: m.embed(ids) * 2, dict(embed=L.EmbedID(10, 4)), lambda n: (_ids(n, n),)),
    'losses': (lambda m, x, labels, targets: (F.softmax_cross_entropy(F.linear(x, m.W), labels),
                                              F.sigmoid_cross_entropy(x, targets),
                                              F.binary_cross_entropy(F.sigmoid(x), targets)),
               dict(W=rand(6, 4)), lambda n: (rand(n, 6) * 3, _labels(n), _targets(n))),
}


@pytest.mark.parametrize('case', FUNCTION_CASES)
def test_function_matches_onnxruntime_and_round_trips(case: str, tmp_path: Path) -> None:
    fn, members, make_inputs = FUNCTION_CASES[case]
    np.random.seed(0)
    model = FunctionModel(fn, **members)
    path = tmp_path / f'{case}.onnx'
    check_export(model, path, make_inputs(2), make_inputs(3))
    if any(True for _ in model.params()):
        check_round_trip(model, path, make_inputs(2))
    else:
        loaded = dx.load(path)
        for k, (a, b) in enumerate(zip(dezero_outputs(loaded, *make_inputs(3)),
                                       dezero_outputs(model, *make_inputs(3)))):
            assert_close_to_scale(a, b, 1e-6, f'loaded output {k}')


def test_embed_ids_stay_a_graph_input(tmp_path: Path) -> None:
    model = FunctionModel(lambda m, ids: m.embed(ids), embed=L.EmbedID(10, 4))
    proto = dx.export(model, _ids(2), path=tmp_path / 'embed.onnx', input_names=['ids'])
    (gather,) = [n for n in proto.graph.node if n.op_type == 'Gather']
    assert list(gather.input) == ['embed/W', 'ids']
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.INT64


def test_loss_labels_and_targets_stay_graph_inputs(tmp_path: Path) -> None:
    fn, members, make_inputs = FUNCTION_CASES['losses']
    proto = dx.export(FunctionModel(fn, **members), *make_inputs(2), path=tmp_path / 'losses.onnx',
                      input_names=['x', 'labels', 'targets'])
    (loss,) = [n for n in proto.graph.node if n.op_type == 'SoftmaxCrossEntropyLoss']
    assert loss.input[1] == 'labels'
    assert sum('targets' in n.input for n in proto.graph.node) == 3  # once in sigmoid CE, twice in BCE


# =============================================================================
# What the file holds
# =============================================================================
def test_parameters_are_initializers_named_by_their_paths(tmp_path: Path) -> None:
    model = MLP((8, 3))
    proto = dx.export(model, rand(2, 5), path=tmp_path / 'mlp.onnx')
    initializers = {t.name: onnx.numpy_helper.to_array(t) for t in proto.graph.initializer}
    assert list(initializers) == ['l0/W', 'l0/b', 'l1/W', 'l1/b']
    for name, param in model.named_params():
        np.testing.assert_array_equal(initializers[name], param.data)
    assert [n.op_type for n in proto.graph.node] == ['Gemm', 'Sigmoid', 'Gemm']
    assert proto.producer_name == 'dezero' and proto.opset_import[0].version == dx.DEFAULT_OPSET


def test_constant_subgraphs_are_folded(tmp_path: Path) -> None:
    scale = np.full(6, 0.5, np.float32)
    model = FunctionModel(lambda m, x: x * F.exp(F.sum(F.sin(scale))) + m.b, b=rand(6))
    path = tmp_path / 'folded.onnx'
    proto = check_export(model, path, (rand(2, 6),), (rand(3, 6),))
    assert sorted(n.op_type for n in proto.graph.node) == ['Add', 'Constant', 'Mul']
    (constant,) = [n for n in proto.graph.node if n.op_type == 'Constant']
    folded = onnx.numpy_helper.to_array(constant.attribute[0].t)
    np.testing.assert_allclose(folded, np.exp(np.sin(scale).sum()), rtol=1e-6)


def test_several_outputs_named_and_repeated(tmp_path: Path) -> None:
    model = FunctionModel(lambda m, x: (x * m.a, F.sum(x, axis=1), x, x * m.a))
    model.a = Parameter(rand(6))
    path = tmp_path / 'outputs.onnx'
    proto = check_export(model, path, (rand(2, 6),), (rand(4, 6),), input_names=['x'],
                         output_names=['scaled', 'total', 'same', 'again'])
    assert [o.name for o in proto.graph.output] == ['scaled', 'total', 'same', 'again']
    assert [i.name for i in proto.graph.input] == ['x']


def test_static_batch_writes_the_traced_shapes(tmp_path: Path) -> None:
    model = FunctionModel(lambda m, x: F.flatten(x) * 2)
    path = tmp_path / 'static.onnx'
    proto = dx.export(model, rand(2, 3, 4), path=path, dynamic_batch=False)
    assert [d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim] == [2, 3, 4]
    assert [d.dim_value for d in proto.graph.output[0].type.tensor_type.shape.dim] == [2, 12]
    assert_close_to_scale(run_onnxruntime(path, rand(2, 3, 4))[0], rand(2, 3, 4).reshape(2, 12) * 2)


@pytest.mark.parametrize('opset', [13, 17, 18, 21])
def test_opsets(opset: int, tmp_path: Path) -> None:
    # Reductions take their axes as an attribute before opset 18 (13 for ReduceSum), an input after.
    fn, members, make_inputs = FUNCTION_CASES['max_min_logsumexp']
    model = FunctionModel(fn, **members)
    path = tmp_path / f'opset{opset}.onnx'
    proto = check_export(model, path, make_inputs(2), make_inputs(3), opset=opset)
    assert proto.opset_import[0].version == opset


def test_trace_runs_in_test_mode_and_records_the_graph(tmp_path: Path) -> None:
    seen = []

    def fn(m: Model, x: Variable) -> Variable:
        seen.append((dezero.Config.train, dezero.Config.enable_backprop))
        return F.dropout(x, 0.9) * 1

    model = FunctionModel(fn)
    with dezero.no_grad():
        dx.export(model, rand(2, 6), path=tmp_path / 'mode.onnx')
    assert seen == [(False, True)]
    assert dezero.Config.train is True


# =============================================================================
# Errors
# =============================================================================
def test_function_without_mapping_names_class_and_shapes(tmp_path: Path) -> None:
    model = FunctionModel(lambda m, x: F.im2col(x, 3))
    path = tmp_path / 'im2col.onnx'
    with pytest.raises(NotImplementedError, match=r'Im2col with inputs of shapes \(2, 3, 5, 5\)'):
        dx.export(model, rand(2, 3, 5, 5), path=path)
    assert list(tmp_path.iterdir()) == []  # nothing written, no temporary file left


def test_unsupported_indexing_names_the_index(tmp_path: Path) -> None:
    model = FunctionModel(lambda m, x: x[np.array([0, 1]), np.array([1, 2])])
    with pytest.raises(NotImplementedError, match=r'GetItem with inputs of shapes \(2, 6\).*index'):
        dx.export(model, rand(2, 6), path=tmp_path / 'index.onnx')


@pytest.mark.parametrize('kwargs, error, match', [
    (dict(opset=12), ValueError, 'opset must be an int from 13 to 28, got 12'),
    (dict(opset=29), ValueError, 'opset must be an int from 13'),
    (dict(input_names=['a', 'b']), ValueError, 'input_names must be a list of 1 non-empty strings'),
    (dict(output_names=['x'], input_names=['x']), ValueError, 'must all differ'),
])
def test_bad_arguments(kwargs: dict, error: type, match: str, tmp_path: Path) -> None:
    with pytest.raises(error, match=match):
        dx.export(MLP((3,)), rand(2, 4), path=tmp_path / 'bad.onnx', **kwargs)


def test_bad_model_inputs_and_path(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match='model must be a dezero Layer or Model, got function'):
        dx.export(lambda x: x, rand(2, 4), path=tmp_path / 'f.onnx')
    with pytest.raises(ValueError, match='at least one example input'):
        dx.export(MLP((3,)), path=tmp_path / 'f.onnx')
    with pytest.raises(TypeError, match='example input 0 must be an array or a Variable, got str'):
        dx.export(MLP((3,)), 'x', path=tmp_path / 'f.onnx')
    with pytest.raises(FileNotFoundError, match='does not exist'):
        dx.export(MLP((3,)), rand(2, 4), path=tmp_path / 'missing' / 'f.onnx')
    with pytest.raises(TypeError, match='returned ndarray as output 0'):
        dx.export(FunctionModel(lambda m, x: x.data), rand(2, 4), path=tmp_path / 'f.onnx')


def test_failed_export_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / 'model.onnx'
    path.write_bytes(b'old')
    with pytest.raises(NotImplementedError):
        dx.export(FunctionModel(lambda m, x: F.im2col(x, 3)), rand(2, 3, 5, 5), path=path)
    assert path.read_bytes() == b'old'
    dx.export(MLP((3,)), rand(2, 4), path=path)
    assert [p.name for p in tmp_path.iterdir()] == ['model.onnx']
    onnx.checker.check_model(str(path), full_check=True)


def test_a_parameter_made_in_forward_stays_an_initializer(tmp_path: Path) -> None:
    scale = Parameter(rand(6), name='scale')
    model = FunctionModel(lambda m, x: x * scale)
    proto = check_export(model, tmp_path / 'scale.onnx', (rand(2, 6),), (rand(3, 6),))
    assert [t.name for t in proto.graph.initializer] == ['scale']
