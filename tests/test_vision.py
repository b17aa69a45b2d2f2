"""dezero.models.vision: VGG16, ResNet and SqueezeNet architectures (parameter names, shapes and counts,
forward against a PyTorch re-implementation carrying the same weights), VGG16.preprocess, and
pretrained loading from the cache directory, from a local HTTP server, and its errors.

Building VGG16 draws 138 M random weights (~10 s here) and ResNet-101/152 40-60 M, so the tests
that build them are marked slow; ResNet-50 and SqueezeNet run on small images in the quick suite."""
import contextlib
import copy
import functools
import http.server
import os
import socket
import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import dezero
import dezero.layers as L
from dezero.download import DownloadError
from dezero.models import VGG16, ResNet, ResNet50, ResNet101, ResNet152, SqueezeNet

BN_EPS = 2e-5  # BatchNorm's default, as in the book
torch.set_num_threads(1)  # the reference is small; extra threads only fight pytest-xdist workers


# =============================================================================
# A PyTorch re-implementation reading our parameters: the architecture is written here again from
# its description (strides, paddings, pools), so a wiring mistake in the model shows as a mismatch.
# =============================================================================
def _t(a):
    return torch.from_numpy(np.ascontiguousarray(a))


def _conv(layer, x, stride=1, pad=0):
    b = None if layer.b is None else _t(layer.b.data)
    return TF.conv2d(x, _t(layer.W.data), b, stride=stride, padding=pad)


def _bn(bn, x):
    return TF.batch_norm(x, _t(bn.avg_mean), _t(bn.avg_var), _t(bn.gamma.data), _t(bn.beta.data),
                         training=False, eps=BN_EPS)


def _fc(layer, x):
    return x @ _t(layer.W.data) + _t(layer.b.data)


def _torch_squeezenet(m, x):
    h = TF.max_pool2d(TF.relu(_conv(m.conv1, x, stride=2)), 3, 2)
    for k in range(2, 10):
        fire = getattr(m, f'fire{k}')
        s = TF.relu(_conv(fire.squeeze, h))
        h = torch.cat([TF.relu(_conv(fire.expand1x1, s)), TF.relu(_conv(fire.expand3x3, s, pad=1))], 1)
        if k in (3, 5):
            h = TF.max_pool2d(h, 3, 2)
    return TF.relu(_conv(m.conv10, h)).mean((2, 3))


def _torch_resnet(m, x, blocks):
    h = TF.max_pool2d(TF.relu(_bn(m.bn1, _conv(m.conv1, x, stride=2, pad=3))), 3, 2)
    for stage, n_blocks, stride in zip((m.res2, m.res3, m.res4, m.res5), blocks, (1, 2, 2, 2)):
        for i in range(n_blocks):
            block = getattr(stage, 'a' if i == 0 else f'b{i}')
            s = stride if i == 0 else 1  # MSRA ResNet: the stride is on the first 1x1 convolution
            y = TF.relu(_bn(block.bn1, _conv(block.conv1, h, stride=s)))
            y = TF.relu(_bn(block.bn2, _conv(block.conv2, y, pad=1)))
            y = _bn(block.bn3, _conv(block.conv3, y))
            shortcut = _bn(block.bn4, _conv(block.conv4, h, stride=s)) if i == 0 else h
            h = TF.relu(y + shortcut)
    return _fc(m.fc6, h.mean((2, 3)))


def _torch_vgg16(m, x):
    for block, n_convs in enumerate((2, 2, 3, 3, 3), start=1):
        for k in range(1, n_convs + 1):
            x = TF.relu(_conv(getattr(m, f'conv{block}_{k}'), x, pad=1))
        x = TF.max_pool2d(x, 2, 2)
    x = x.reshape(x.shape[0], -1)
    x = TF.relu(_fc(m.fc6, x))
    x = TF.relu(_fc(m.fc7, x))
    return _fc(m.fc8, x)


def _layers(layer):
    yield layer
    for value in vars(layer).values():
        if isinstance(value, L.Layer):
            yield from _layers(value)


def _as_float64_with_random_statistics(model, seed):
    """A float64 copy of ``model`` whose batch norms have non-trivial gamma, beta and statistics."""
    model = copy.deepcopy(model)
    rng = np.random.default_rng(seed)
    for p in model.params():
        p.data = p.data.astype(np.float64)
    for layer in _layers(model):
        if isinstance(layer, L.BatchNorm):
            size = layer.gamma.shape
            layer.gamma.data = rng.uniform(0.5, 1.5, size)
            layer.beta.data = rng.uniform(-0.5, 0.5, size)
            layer.avg_mean = rng.uniform(-0.5, 0.5, size)
            layer.avg_var = rng.uniform(0.5, 2.0, size)
    return model


def _shapes(model):
    return {name: p.shape for name, p in model.named_params()}


# =============================================================================
# SqueezeNet
# =============================================================================
# SqueezeNet 1.1 from the paper's table: fire module -> (input channels, squeeze, expand 1x1, 3x3)
SQUEEZENET_FIRES = {2: (64, 16, 64, 64), 3: (128, 16, 64, 64), 4: (128, 32, 128, 128),
                    5: (256, 32, 128, 128), 6: (256, 48, 192, 192), 7: (384, 48, 192, 192),
                    8: (384, 64, 256, 256), 9: (512, 64, 256, 256)}


@pytest.fixture(scope='module')
def squeezenet():
    np.random.seed(0)
    return SqueezeNet()


def test_squeezenet_parameters(squeezenet):
    expected = {'conv1/W': (64, 3, 3, 3), 'conv1/b': (64,)}
    for k, (c_in, s, e1, e3) in SQUEEZENET_FIRES.items():
        expected.update({f'fire{k}/squeeze/W': (s, c_in, 1, 1), f'fire{k}/squeeze/b': (s,),
                         f'fire{k}/expand1x1/W': (e1, s, 1, 1), f'fire{k}/expand1x1/b': (e1,),
                         f'fire{k}/expand3x3/W': (e3, s, 3, 3), f'fire{k}/expand3x3/b': (e3,)})
    expected.update({'conv10/W': (1000, 512, 1, 1), 'conv10/b': (1000,)})
    shapes = _shapes(squeezenet)
    assert list(shapes) == list(expected)  # registration order too
    assert shapes == expected
    assert sum(p.size for p in squeezenet.params()) == 1_235_496  # torchvision's squeezenet1_1
    assert all(p.dtype == np.float32 for p in squeezenet.params())


def test_squeezenet_forward_matches_torch(squeezenet):
    x = np.random.default_rng(1).standard_normal((2, 3, 64, 64))
    model = _as_float64_with_random_statistics(squeezenet, seed=2)
    with dezero.test_mode():
        y = model(x)
    assert y.shape == (2, 1000)
    np.testing.assert_allclose(y.data, _torch_squeezenet(model, _t(x)).numpy(), rtol=1e-9, atol=1e-12)


def test_squeezenet_float32_training_forward_and_backward(squeezenet):
    x = np.random.default_rng(3).standard_normal((1, 3, 40, 48)).astype(np.float32)
    y = squeezenet(x)  # training mode: dropout before conv10 is active
    assert y.shape == (1, 1000) and y.dtype == np.float32
    squeezenet.cleargrads()
    y.sum().backward()
    grads = [p.grad for p in squeezenet.params()]
    assert all(g is not None and g.dtype == np.float32 for g in grads)
    assert np.abs(squeezenet.conv1.W.grad.data).sum() > 0


# =============================================================================
# ResNet
# =============================================================================
@pytest.fixture(scope='module')
def resnet50():
    np.random.seed(0)
    model = ResNet50()
    # Batch normalisation takes its size from the first input: one small forward creates it.
    y = model(np.random.default_rng(4).standard_normal((2, 3, 16, 16)).astype(np.float32))
    assert y.shape == (2, 1000) and y.dtype == np.float32
    return model


def _check_resnet_parameters(model, blocks, n_params):
    shapes = _shapes(model)
    assert shapes['conv1/W'] == (64, 3, 7, 7) and shapes['conv1/b'] == (64,)
    assert shapes['bn1/gamma'] == (64,) and shapes['fc6/W'] == (2048, 1000) and shapes['fc6/b'] == (1000,)
    stages = [('res2', 64, 64, 256), ('res3', 256, 128, 512), ('res4', 512, 256, 1024),
              ('res5', 1024, 512, 2048)]
    for (stage, c_in, mid, out), n_blocks in zip(stages, blocks):
        assert shapes[f'{stage}/a/conv1/W'] == (mid, c_in, 1, 1)
        assert shapes[f'{stage}/a/conv4/W'] == (out, c_in, 1, 1)  # projection shortcut
        assert shapes[f'{stage}/a/bn4/beta'] == (out,)
        last = f'{stage}/b{n_blocks - 1}'
        assert shapes[f'{last}/conv1/W'] == (mid, out, 1, 1)
        assert shapes[f'{last}/conv2/W'] == (mid, mid, 3, 3)
        assert shapes[f'{last}/conv3/W'] == (out, mid, 1, 1)
        assert f'{last}/conv4/W' not in shapes  # identity shortcut
        assert f'{stage}/b{n_blocks}/conv1/W' not in shapes
        assert not any(k.startswith(stage) and k.endswith('conv1/b') for k in shapes)  # no conv bias
    # torchvision's count plus the 64 biases of conv1 (the book's conv1 has them); the batch-norm
    # running statistics are buffers, not parameters.
    assert sum(p.size for p in model.params()) == n_params


def test_resnet50_parameters(resnet50):
    _check_resnet_parameters(resnet50, (3, 4, 6, 3), 25_557_032 + 64)


def test_resnet50_forward_matches_torch(resnet50):
    x = np.random.default_rng(5).standard_normal((2, 3, 24, 20))  # pools round down on 12x10
    model = _as_float64_with_random_statistics(resnet50, seed=6)
    with dezero.test_mode():
        y = model(x)
    assert y.shape == (2, 1000)
    np.testing.assert_allclose(y.data, _torch_resnet(model, _t(x), (3, 4, 6, 3)).numpy(),
                               rtol=1e-9, atol=1e-11)


def test_resnet50_running_statistics_are_saved(resnet50, tmp_path):
    resnet50.save_weights(tmp_path / 'r.npz')
    with np.load(tmp_path / 'r.npz') as archive:
        keys = set(archive.files)
    assert {'bn1/avg_mean', 'bn1/avg_var', 'res5/b2/bn3/avg_var', 'res2/a/bn4/gamma'} <= keys
    assert len(keys) == len(list(resnet50.params())) + 2 * 53  # 53 batch norms in ResNet-50


@pytest.mark.slow
@pytest.mark.parametrize('cls,n_layers,blocks,n_params', [
    (ResNet101, 101, (3, 4, 23, 3), 44_549_160 + 64),
    (ResNet152, 152, (3, 8, 36, 3), 60_192_808 + 64),
])
def test_deeper_resnets(cls, n_layers, blocks, n_params):
    model = cls()
    assert isinstance(model, ResNet) and model.n_layers == n_layers
    model(np.zeros((1, 3, 32, 32), np.float32))
    _check_resnet_parameters(model, blocks, n_params)


def test_resnet_refuses_other_depths():
    with pytest.raises(ValueError, match=r'ResNet: n_layers must be 50, 101 or 152, got 34'):
        ResNet(34)


@pytest.mark.parametrize('make', [SqueezeNet, ResNet50], ids=['SqueezeNet', 'ResNet50'])
def test_models_refuse_non_image_input(make, request):
    model = request.getfixturevalue(make.__name__.lower())
    with pytest.raises(ValueError, match=r'expected images of shape \(N, 3, H, W\), got .*\(2, 3, 8\)'):
        model(np.zeros((2, 3, 8), np.float32))
    with pytest.raises(ValueError, match=r'\(1, 1, 32, 32\)'):
        model(np.zeros((1, 1, 32, 32), np.float32))


# =============================================================================
# VGG16 (slow: 138 M parameters)
# =============================================================================
@pytest.fixture(scope='module')
def vgg16():
    np.random.seed(0)
    return VGG16()


@pytest.mark.slow
def test_vgg16_parameters(vgg16):
    expected = {}
    c_in = 3
    for block, (channels, n_convs) in enumerate(((64, 2), (128, 2), (256, 3), (512, 3), (512, 3)), 1):
        for k in range(1, n_convs + 1):
            expected[f'conv{block}_{k}/W'] = (channels, c_in, 3, 3)
            expected[f'conv{block}_{k}/b'] = (channels,)
            c_in = channels
    expected.update({'fc6/W': (25088, 4096), 'fc6/b': (4096,), 'fc7/W': (4096, 4096), 'fc7/b': (4096,),
                     'fc8/W': (4096, 1000), 'fc8/b': (1000,)})
    shapes = _shapes(vgg16)
    assert list(shapes) == list(expected) and shapes == expected
    assert sum(p.size for p in vgg16.params()) == 138_357_544


@pytest.mark.slow
def test_vgg16_forward_224_matches_torch(vgg16):
    x = np.random.default_rng(7).standard_normal((1, 3, 224, 224)).astype(np.float32)
    with dezero.test_mode(), dezero.no_grad():
        y = vgg16(x)
    assert y.shape == (1, 1000) and y.dtype == np.float32
    expected = _torch_vgg16(vgg16, _t(x)).numpy()
    np.testing.assert_allclose(y.data, expected, rtol=1e-3, atol=1e-4 * np.abs(expected).max())


@pytest.mark.slow
def test_vgg16_refuses_images_that_do_not_reach_7x7(vgg16):
    message = r'VGG16: an input of shape \(1, 3, 64, 64\) .*\(1, 512, 2, 2\).*224'
    with pytest.raises(ValueError, match=message):
        with dezero.no_grad():
            vgg16(np.zeros((1, 3, 64, 64), np.float32))


# =============================================================================
# VGG16.preprocess
# =============================================================================
Image = pytest.importorskip('PIL.Image')
MEAN_BGR = np.array([103.939, 116.779, 123.68])


def test_preprocess_resizes_reverses_channels_and_subtracts_the_mean():
    image = Image.new('RGB', (7, 5), (10, 200, 30))
    x = VGG16.preprocess(image)
    assert x.shape == (3, 224, 224) and x.dtype == np.float32
    np.testing.assert_allclose(x[:, 100, 50], np.array([30, 200, 10]) - MEAN_BGR, rtol=1e-6)
    np.testing.assert_allclose(x, np.broadcast_to((np.array([30, 200, 10]) - MEAN_BGR)[:, None, None],
                                                  (3, 224, 224)), rtol=1e-6)


def test_preprocess_pixel_layout_without_resizing():
    rgb = np.random.default_rng(8).integers(0, 256, (4, 6, 3), dtype=np.uint8)  # H=4, W=6
    x = VGG16.preprocess(Image.fromarray(rgb), size=None, dtype=np.float64)
    assert x.shape == (3, 4, 6) and x.dtype == np.float64 and x.flags.c_contiguous
    for channel, rgb_index in enumerate((2, 1, 0)):  # B, G, R
        np.testing.assert_array_equal(x[channel], rgb[:, :, rgb_index] - MEAN_BGR[channel])


def test_preprocess_size_is_width_height_and_grayscale_becomes_three_channels():
    x = VGG16.preprocess(Image.new('L', (9, 9), 50), size=(40, 20))
    assert x.shape == (3, 20, 40)
    np.testing.assert_allclose(x[:, 0, 0], 50 - MEAN_BGR, rtol=1e-6)


def test_preprocess_refuses_arrays():
    with pytest.raises(TypeError, match=r'VGG16.preprocess: expected a PIL.Image.Image, got ndarray'):
        VGG16.preprocess(np.zeros((224, 224, 3), np.uint8))


# =============================================================================
# Pretrained weights: cache directory, download, errors
# =============================================================================
def _closed_port_url(file_name):
    """A URL on 127.0.0.1 where nothing listens: any attempt to use it fails at once."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    return f'http://127.0.0.1:{port}/{file_name}'


@contextlib.contextmanager
def _http_server(directory):
    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={'poll_interval': 0.05}, daemon=True)
    thread.start()
    try:
        yield f'http://127.0.0.1:{server.server_address[1]}/'
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _assert_same_params(a, b):
    pa, pb = dict(a.named_params()), dict(b.named_params())
    assert list(pa) == list(pb)
    for name in pa:
        np.testing.assert_array_equal(pa[name].data, pb[name].data, err_msg=name)


def test_pretrained_loads_the_file_in_the_cache_directory_without_network(squeezenet, tmp_path,
                                                                           monkeypatch):
    monkeypatch.setenv('DEZERO_CACHE_DIR', str(tmp_path))
    monkeypatch.setattr(SqueezeNet, 'WEIGHTS_PATH', _closed_port_url('squeezenet.npz'))
    squeezenet.save_weights(tmp_path / 'squeezenet.npz')
    np.random.seed(123)  # a different random initialisation, which loading must overwrite
    model = SqueezeNet(pretrained=True)
    _assert_same_params(model, squeezenet)
    assert not np.array_equal(SqueezeNet().conv1.W.data, squeezenet.conv1.W.data)


def test_pretrained_downloads_from_the_weights_url_into_the_cache(squeezenet, tmp_path, monkeypatch):
    served, cache = tmp_path / 'served', tmp_path / 'cache'
    served.mkdir()
    squeezenet.save_weights(served / 'squeezenet.npz')
    monkeypatch.setenv('DEZERO_CACHE_DIR', str(cache))
    with _http_server(served) as base_url:
        monkeypatch.setattr(SqueezeNet, 'WEIGHTS_PATH', base_url + 'squeezenet.npz')
        model = SqueezeNet(pretrained=True)
    _assert_same_params(model, squeezenet)
    assert (cache / 'squeezenet.npz').read_bytes() == (served / 'squeezenet.npz').read_bytes()
    assert os.listdir(cache) == ['squeezenet.npz']  # no temporary file left behind


def test_pretrained_http_404_names_the_file_and_directory(tmp_path, monkeypatch):
    monkeypatch.setenv('DEZERO_CACHE_DIR', str(tmp_path / 'cache'))
    with _http_server(tmp_path) as base_url:
        monkeypatch.setattr(SqueezeNet, 'WEIGHTS_PATH', base_url + 'squeezenet.npz')
        with pytest.raises(DownloadError, match=r'SqueezeNet\(pretrained=True\).*404'):
            SqueezeNet(pretrained=True)
    assert os.listdir(tmp_path / 'cache') == []


@pytest.mark.parametrize('make,owner,model_name,file_name', [
    (VGG16, VGG16, 'VGG16', 'vgg16.npz'),
    (ResNet50, ResNet, 'ResNet50', 'resnet50.npz'),
    (ResNet101, ResNet, 'ResNet101', 'resnet101.npz'),
    (ResNet152, ResNet, 'ResNet152', 'resnet152.npz'),
    (functools.partial(ResNet, 50), ResNet, 'ResNet50', 'resnet50.npz'),
    (ResNet, ResNet, 'ResNet152', 'resnet152.npz'),  # the default depth
    (SqueezeNet, SqueezeNet, 'SqueezeNet', 'squeezenet.npz'),
], ids=['VGG16', 'ResNet50', 'ResNet101', 'ResNet152', 'ResNet(50)', 'ResNet()', 'SqueezeNet'])
def test_missing_weights_without_network_name_the_file_and_directory(make, owner, model_name, file_name,
                                                                      tmp_path, monkeypatch):
    """The weights file is resolved before any layer is built, so this is quick even for VGG16."""
    url_name = os.path.basename(owner.WEIGHTS_PATH)  # 'resnet{}.npz' for every ResNet
    book_url = 'https://github.com/koki0702/dezero-models/releases/download/v0.1/'
    assert owner.WEIGHTS_PATH == book_url + url_name
    monkeypatch.setenv('DEZERO_CACHE_DIR', str(tmp_path))
    monkeypatch.setattr(owner, 'WEIGHTS_PATH', _closed_port_url(url_name))
    with pytest.raises(DownloadError) as info:
        make(pretrained=True)
    message = str(info.value)
    assert message.startswith(f'{model_name}(pretrained=True): the weights file {file_name!r} ')
    assert f'cache directory {tmp_path} ' in message
    assert f'place it at {tmp_path / file_name} ' in message
    assert 'DEZERO_CACHE_DIR' in message
    assert os.listdir(tmp_path) == []


def test_pretrained_file_that_does_not_fit_is_refused(squeezenet, tmp_path, monkeypatch):
    monkeypatch.setenv('DEZERO_CACHE_DIR', str(tmp_path))
    monkeypatch.setattr(SqueezeNet, 'WEIGHTS_PATH', _closed_port_url('squeezenet.npz'))
    arrays = {name: p.data for name, p in squeezenet.named_params()}
    arrays['conv10/W'] = arrays['conv10/W'][:10]
    np.savez(tmp_path / 'squeezenet.npz', **arrays)
    with pytest.raises(ValueError, match=r'squeezenet.npz.*conv10/W: file \(10, 512, 1, 1\), '
                                         r'model \(1000, 512, 1, 1\)'):
        SqueezeNet(pretrained=True)


@pytest.mark.slow
def test_resnet50_pretrained_fills_batch_norm_from_the_file(resnet50, tmp_path, monkeypatch):
    monkeypatch.setenv('DEZERO_CACHE_DIR', str(tmp_path))
    monkeypatch.setattr(ResNet, 'WEIGHTS_PATH', _closed_port_url('resnet{}.npz'))
    trained = copy.deepcopy(resnet50)
    trained.res3.b1.bn2.avg_mean = np.full(128, 0.25, np.float32)
    trained.save_weights(tmp_path / 'resnet50.npz')
    model = ResNet50(pretrained=True)
    _assert_same_params(model, trained)
    np.testing.assert_array_equal(model.res3.b1.bn2.avg_mean, trained.res3.b1.bn2.avg_mean)
    x = np.random.default_rng(9).standard_normal((1, 3, 32, 32)).astype(np.float32)
    with dezero.test_mode():
        np.testing.assert_array_equal(model(x).data, trained(x).data)
