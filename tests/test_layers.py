"""dezero.layers.base: registration, traversal, devices, save/load and the basic layers."""
import math
import os

import numpy as np
import pytest
import torch

import dezero
import dezero.functions as F
import dezero.layers as L
from dezero import Layer, Parameter, Variable
from dezero.models import MLP


class Net(Layer):
    def __init__(self):
        super().__init__()
        self.b = Parameter(np.zeros(2), name='b')
        self.inner = L.Linear(2, in_size=3, dtype=np.float64)
        self.W = Parameter(np.ones((3, 2)), name='W')
        self.scale = 2.0  # not registered

    def forward(self, x):
        return self.inner(x) * self.scale + F.linear(x, self.W, self.b)


# --- registration and traversal ------------------------------------------------------------------
def test_registration_follows_assignment_order():
    net = Net()
    assert list(net._params) == ['b', 'inner', 'W']
    names = [name for name, _ in net.named_params()]
    assert names == ['b', 'inner/W', 'inner/b', 'W']
    assert [id(p) for p in net.params()] == [id(net.b), id(net.inner.W), id(net.inner.b), id(net.W)]


def test_params_order_is_deterministic_across_instances():
    shapes = []
    for _ in range(2):
        model = MLP((5, 4, 3), activation=F.relu)
        model(np.ones((1, 2), np.float32))
        shapes.append([p.shape for p in model.params()])
    assert shapes[0] == shapes[1] == [(2, 5), (5,), (5, 4), (4,), (4, 3), (3,)]
    assert [name for name, _ in MLP((5, 4, 3)).named_params()] == [
        'l0/W', 'l0/b', 'l1/W', 'l1/b', 'l2/W', 'l2/b']


def test_reassigning_keeps_position_and_other_values_unregister():
    net = Net()
    net.b = Parameter(np.ones(2))
    assert list(net._params) == ['b', 'inner', 'W']
    net.inner = None
    assert list(net._params) == ['b', 'W']
    net.inner = L.Linear(1)
    assert list(net._params) == ['b', 'W', 'inner']
    net.W = np.ones((3, 2))  # a raw array is not a Parameter
    assert list(net._params) == ['b', 'inner']
    del net.b
    assert list(net._params) == ['inner']
    assert 'scale' not in net._params


def test_nested_layers_and_shared_parameters_are_visited_once():
    class Outer(Layer):
        def __init__(self):
            super().__init__()
            self.a = Net()
            self.shared = self.a.inner  # the same sub-layer twice
            self.tied = self.a.W  # the same parameter twice

    outer = Outer()
    names = [name for name, _ in outer.named_params()]
    assert names == ['a/b', 'a/inner/W', 'a/inner/b', 'a/W']
    assert len(list(outer.params())) == 4


def test_assignment_before_super_init_is_kept():
    class Early(Layer):
        def __init__(self):
            self.W = Parameter(np.ones(2))
            super().__init__()
            self.b = Parameter(np.zeros(2))

    assert [name for name, _ in Early().named_params()] == ['W', 'b']


def test_cleargrads_and_flatten_params():
    net = Net()
    x = np.ones((4, 3))
    net(x).sum().backward()
    assert all(p.grad is not None for p in net.params())
    net.cleargrads()
    assert all(p.grad is None for p in net.params())
    flat = {}
    net._flatten_params(flat)
    assert list(flat) == ['b', 'inner/W', 'inner/b', 'W'] and flat['W'] is net.W


def test_call_returns_one_output_or_a_tuple():
    class Two(Layer):
        def forward(self, x, y):
            return x + y, x * y

    class One(Layer):
        def forward(self, x):
            return (x * 2,)

    s, p = Two()(Variable(np.array(2.0)), Variable(np.array(3.0)))
    assert (float(s.data), float(p.data)) == (5.0, 6.0)
    y = One()(Variable(np.array(2.0)))
    assert isinstance(y, Variable) and float(y.data) == 4.0
    with pytest.raises(NotImplementedError, match='Layer.forward'):
        Layer()(1)


def test_buffers_are_typed():
    layer = Layer()
    layer.register_buffer('stat', np.zeros(3))
    layer.stat = None
    layer.stat = np.ones(2)
    with pytest.raises(TypeError, match="buffer 'stat' holds an array or None, got Variable"):
        layer.stat = Variable(np.ones(2))
    with pytest.raises(TypeError, match='register_buffer.*list'):
        layer.register_buffer('other', [1.0])
    layer.W = Parameter(np.ones(1))
    with pytest.raises(ValueError, match="'W' is already a Parameter"):
        layer.register_buffer('W')


@pytest.mark.skipif(dezero.cuda.gpu_enable, reason='CuPy is installed')
def test_to_gpu_without_cupy_is_a_clear_error():
    with pytest.raises(RuntimeError, match='CuPy is not installed'):
        Net().to_gpu()


def test_to_cpu_keeps_numpy_data():
    net = Net()
    W = net.W.data
    assert net.to_cpu() is net
    assert net.W.data is W


# --- saving and loading ----------------------------------------------------------------------------
def trained_mlp():
    np.random.seed(0)
    model = MLP((4, 2))
    model(np.random.rand(3, 5).astype(np.float32))
    return model


def test_save_load_round_trip(tmp_path):
    model = trained_mlp()
    path = tmp_path / 'my_mlp.npz'
    model.save_weights(str(path))
    with np.load(path) as archive:
        assert sorted(archive.files) == ['l0/W', 'l0/b', 'l1/W', 'l1/b']
        np.testing.assert_array_equal(archive['l0/W'], model.l0.W.data)
    fresh = MLP((4, 2))  # lazy: W is None until the first call
    assert fresh.l0.W.data is None
    fresh.load_weights(str(path))
    for (name, p), (_, q) in zip(model.named_params(), fresh.named_params()):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)
        assert q.dtype == np.float32
    x = np.random.rand(3, 5).astype(np.float32)
    np.testing.assert_array_equal(model(x).data, fresh(x).data)


def test_save_appends_npz_like_numpy_and_load_accepts_both(tmp_path):
    model = trained_mlp()
    model.save_weights(str(tmp_path / 'weights'))
    model.save_weights(tmp_path / 'again.npz')
    assert sorted(os.listdir(tmp_path)) == ['again.npz', 'weights.npz']
    fresh = MLP((4, 2))
    fresh.load_weights(str(tmp_path / 'weights'))
    np.testing.assert_array_equal(fresh.l1.W.data, model.l1.W.data)


def test_load_casts_to_the_models_dtype(tmp_path):
    model = trained_mlp()
    model.save_weights(tmp_path / 'w.npz')
    target = MLP((4, 2))
    target(np.zeros((1, 5), np.float64))
    target.l0.W.data = target.l0.W.data.astype(np.float64)
    target.load_weights(tmp_path / 'w.npz')
    assert target.l0.W.dtype == np.float64 and target.l1.W.dtype == np.float32
    np.testing.assert_allclose(target.l0.W.data, model.l0.W.data)


def test_atomic_save_leaves_old_file_intact(tmp_path, monkeypatch):
    model = trained_mlp()
    path = tmp_path / 'model.npz'
    model.save_weights(path)
    old_bytes = path.read_bytes()

    def broken_savez(file, **arrays):
        file.write(b'partial')
        raise OSError('disk full')

    monkeypatch.setattr(np, 'savez', broken_savez)
    model.l0.W.data += 1
    with pytest.raises(OSError, match='disk full'):
        model.save_weights(path)
    assert os.listdir(tmp_path) == ['model.npz']  # no temporary file left behind
    assert path.read_bytes() == old_bytes
    with pytest.raises(OSError):
        model.save_weights(tmp_path / 'new.npz')
    assert os.listdir(tmp_path) == ['model.npz']


def test_save_keeps_existing_file_permissions(tmp_path):
    model = trained_mlp()
    path = tmp_path / 'model.npz'
    model.save_weights(path)
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # as np.savez would create it
    os.chmod(path, 0o640)
    model.save_weights(path)
    assert path.stat().st_mode & 0o777 == 0o640


def test_save_into_missing_directory_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match='MLP.save_weights.*nowhere'):
        trained_mlp().save_weights(tmp_path / 'nowhere' / 'w.npz')


def test_load_missing_file_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"MLP.load_weights: no such file '.*absent.npz'"):
        MLP((2,)).load_weights(tmp_path / 'absent.npz')


def write_truncated(path, source):
    data = source.read_bytes()
    path.write_bytes(data[:len(data) // 2])


@pytest.mark.parametrize('kind', ['truncated', 'random', 'text', 'npy', 'pickle'])
def test_load_damaged_or_foreign_file_names_it(tmp_path, kind):
    model = trained_mlp()
    good = tmp_path / 'good.npz'
    model.save_weights(good)
    bad = tmp_path / f'bad_{kind}.npz'
    if kind == 'truncated':
        write_truncated(bad, good)
    elif kind == 'random':
        bad.write_bytes(np.random.default_rng(0).bytes(2000))
    elif kind == 'text':
        bad.write_text('l0/W = [1, 2, 3]\n')
    elif kind == 'npy':
        with open(bad, 'wb') as f:
            np.save(f, np.ones(3))
    else:
        np.savez(bad, **{'l0/W': np.array([{'a': 1}], dtype=object)})
    before = model.l0.W.data.copy()
    with pytest.raises(ValueError, match=f"MLP.load_weights: '.*bad_{kind}.npz'"):
        model.load_weights(bad)
    np.testing.assert_array_equal(model.l0.W.data, before)


def test_load_reports_every_mismatch_in_one_error(tmp_path):
    source = MLP((3, 2, 7))
    source(np.ones((1, 5), np.float32))
    path = tmp_path / 'other.npz'
    source.save_weights(path)
    model = trained_mlp()  # (5 -> 4 -> 2)
    before = model.l1.b.data.copy()
    with pytest.raises(ValueError) as info:
        model.load_weights(path)
    message = str(info.value)
    assert "'" + str(path) + "'" in message
    assert "unexpected keys ['l2/W', 'l2/b']" in message
    assert 'l0/W: file (5, 3), model (5, 4)' in message and 'l1/b: file (2,), model (2,)' not in message
    assert 'l0/b: file (3,), model (4,)' in message

    partial = MLP((4,))
    partial(np.ones((1, 5), np.float32))
    partial.save_weights(tmp_path / 'partial.npz')
    with pytest.raises(ValueError, match=r"missing keys \['l1/W', 'l1/b'\]"):
        model.load_weights(tmp_path / 'partial.npz')
    np.testing.assert_array_equal(model.l1.b.data, before)


# --- Linear ----------------------------------------------------------------------------------------
def test_linear_lazy_init_uses_the_books_draw():
    layer = L.Linear(4)
    assert layer.W.data is None and layer.b.data.dtype == np.float32
    np.random.seed(3)
    expected = np.random.randn(3, 4).astype(np.float32) * np.float32(math.sqrt(1 / 3))
    np.random.seed(3)
    y = layer(np.ones((2, 3), np.float32))
    assert layer.in_size == 3 and layer.W.shape == (3, 4)
    np.testing.assert_array_equal(layer.W.data, expected)
    assert layer.W.dtype == np.float32 and y.dtype == np.float32 and y.shape == (2, 4)


def test_linear_scale_is_sqrt_one_over_in():
    np.random.seed(0)
    layer = L.Linear(200, in_size=2000)
    assert layer.W.shape == (2000, 200)
    assert layer.W.data.std() == pytest.approx(math.sqrt(1 / 2000), rel=0.02)
    np.testing.assert_array_equal(layer.b.data, np.zeros(200, np.float32))


def test_linear_float32_forward_backward():
    layer = L.Linear(3, in_size=4)
    x = Variable(np.random.rand(5, 4).astype(np.float32))
    y = layer(x)
    F.sum(y * y).backward()
    assert y.dtype == np.float32
    assert layer.W.grad.dtype == np.float32 and layer.b.grad.dtype == np.float32
    assert x.grad.dtype == np.float32


def test_linear_matches_torch():
    layer = L.Linear(3, dtype=np.float64, in_size=4)
    x_data = np.random.default_rng(1).standard_normal((5, 4))
    gy = np.random.default_rng(2).standard_normal((5, 3))
    x = Variable(x_data)
    (layer(x) * gy).sum().backward()
    xt = torch.tensor(x_data, requires_grad=True)
    Wt = torch.tensor(layer.W.data, requires_grad=True)
    bt = torch.tensor(layer.b.data, requires_grad=True)
    yt = xt @ Wt + bt
    (yt * torch.tensor(gy)).sum().backward()
    np.testing.assert_allclose(layer(x_data).data, yt.detach().numpy(), rtol=1e-12)
    for ours, theirs in [(x, xt), (layer.W, Wt), (layer.b, bt)]:
        np.testing.assert_allclose(ours.grad.data, theirs.grad.numpy(), rtol=1e-12)


def test_linear_nobias_and_errors():
    layer = L.Linear(2, nobias=True)
    assert layer.b is None and [n for n, _ in layer.named_params()] == ['W']
    with pytest.raises(ValueError, match=r'Linear: expected .* shape \(N, in_size\), got shape \(3,\)'):
        layer(np.ones(3, np.float32))
    with pytest.raises(ValueError, match='linear'):
        L.Linear(2, in_size=3)(np.ones((2, 4), np.float32))
    with pytest.raises(ValueError, match='Linear: out_size must be a positive int'):
        L.Linear(0)


# --- BatchNorm -------------------------------------------------------------------------------------
@pytest.mark.parametrize('shape', [(6, 3), (4, 3, 2, 2)])
def test_batch_norm_layer_matches_torch_and_keeps_statistics_out_of_params(shape):
    x = np.random.default_rng(0).standard_normal(shape) * 2 + 1
    layer = L.BatchNorm()
    y = layer(x)
    ones, zeros = torch.ones(3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64)
    running_mean, running_var = zeros.clone(), ones.clone()
    yt = torch.nn.functional.batch_norm(torch.tensor(x), running_mean, running_var, ones, zeros,
                                        training=True, momentum=0.1, eps=2e-5)
    np.testing.assert_allclose(y.data, yt.numpy(), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(layer.avg_mean, running_mean.numpy(), rtol=1e-9)
    np.testing.assert_allclose(layer.avg_var, running_var.numpy(), rtol=1e-9)
    assert [name for name, _ in layer.named_params()] == ['gamma', 'beta']
    y.sum().backward()
    assert layer.gamma.grad is not None and layer.avg_mean.dtype == x.dtype


def test_batch_norm_statistics_are_saved_and_loaded(tmp_path):
    class Net(Layer):
        def __init__(self):
            super().__init__()
            self.l0 = L.Linear(3, dtype=np.float64)
            self.bn = L.BatchNorm()

        def forward(self, x):
            return self.bn(self.l0(x))

    np.random.seed(0)
    net = Net()
    x = np.random.rand(8, 2)
    net(x)
    net.save_weights(tmp_path / 'bn.npz')
    with np.load(tmp_path / 'bn.npz') as archive:
        assert sorted(archive.files) == ['bn/avg_mean', 'bn/avg_var', 'bn/beta', 'bn/gamma', 'l0/W', 'l0/b']
    fresh = Net()
    fresh.load_weights(tmp_path / 'bn.npz')
    np.testing.assert_array_equal(fresh.bn.avg_var, net.bn.avg_var)
    with dezero.test_mode():
        np.testing.assert_allclose(fresh(x).data, net(x).data)


# --- EmbedID, Dropout, LayerNorm -----------------------------------------------------------------
def test_embed_id():
    np.random.seed(0)
    layer = L.EmbedID(5, 3)
    assert layer.W.dtype == np.float32 and layer.W.shape == (5, 3)
    ids = np.array([[0, 4], [4, 1]])
    y = layer(ids)
    np.testing.assert_array_equal(y.data, layer.W.data[ids])
    y.sum().backward()
    np.testing.assert_array_equal(layer.W.grad.data[:, 0], [1, 1, 0, 0, 2])


def test_dropout_layer():
    np.random.seed(0)
    x = np.ones((100, 100), np.float32)
    y = L.Dropout(0.3)(x).data
    assert abs((y == 0).mean() - 0.3) < 0.02
    np.testing.assert_allclose(y[y != 0], 1 / 0.7, rtol=1e-6)
    with dezero.test_mode():
        np.testing.assert_array_equal(L.Dropout(0.3)(x).data, x)
    assert list(L.Dropout().params()) == []
    with pytest.raises(ValueError, match='Dropout: p must be in'):
        L.Dropout(1.5)


def test_layer_norm_layer_matches_torch():
    x = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)
    layer = L.LayerNorm(4)
    layer.gamma.data[:] = [1, 2, 3, 4]
    y = layer(x)
    yt = torch.nn.functional.layer_norm(torch.tensor(x), (4,), torch.tensor(layer.gamma.data),
                                        torch.tensor(layer.beta.data), eps=1e-5)
    np.testing.assert_allclose(y.data, yt.numpy(), rtol=1e-5, atol=1e-6)
    assert y.dtype == np.float32 and [n for n, _ in layer.named_params()] == ['gamma', 'beta']


def test_batchnorm_with_size_creates_parameters_at_construction():
    bn = L.BatchNorm(size=4)
    assert [p.shape for p in bn.params()] == [(4,), (4,)]
    assert bn.avg_mean.shape == (4,) and bn.avg_var.dtype == np.float32
    y = bn(np.random.default_rng(0).standard_normal((8, 4)).astype(np.float32))
    assert y.shape == (8, 4) and y.dtype == np.float32
