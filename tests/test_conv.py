"""dezero.ops.conv: im2col/col2im, conv2d, deconv2d against PyTorch
(forward, gradient, gradient of the gradient, finite differences), plus properties and errors."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import dezero._parallel
import dezero._threads
import dezero.functions as F
import dezero.functions_conv as FC
import dezero.ops.conv as conv_module
from dezero import Variable
from dezero.utils import get_conv_outsize, get_deconv_outsize
from tests.oracle import assert_float32_kept, check_op

rng = np.random.default_rng(0)


def _pair(v):
    return (v, v) if isinstance(v, int) else v


# id, x shape, W shape (OC, C, KH, KW), stride, pad, bias
CONV_CASES = [
    ('k3', (2, 3, 5, 5), (4, 3, 3, 3), 1, 0, True),
    ('k2x3-s2-p1', (2, 2, 7, 5), (3, 2, 2, 3), 2, 1, True),
    ('k3-s3-p2-nobias', (1, 2, 7, 7), (2, 2, 3, 3), 3, 2, False),
    ('stride(2,1)-pad(1,2)', (2, 2, 6, 5), (3, 2, 3, 2), (2, 1), (1, 2), True),
    ('1x1', (2, 3, 4, 5), (2, 3, 1, 1), 1, 0, False),
    ('stride-leaves-rows', (1, 2, 6, 6), (2, 2, 3, 3), 2, 0, True),
    ('kernel-fills-padded', (1, 2, 3, 4), (2, 2, 5, 4), 1, (1, 0), True),
]


@pytest.mark.parametrize('x_shape,W_shape,stride,pad,bias', [c[1:] for c in CONV_CASES],
                         ids=[c[0] for c in CONV_CASES])
def test_conv2d_against_torch(x_shape, W_shape, stride, pad, bias):
    inputs = [rng.standard_normal(x_shape), rng.standard_normal(W_shape)]
    if bias:
        inputs.append(rng.standard_normal(W_shape[0]))
    check_op(lambda x, W, *b: F.conv2d(x, W, *b, stride=stride, pad=pad),
             lambda x, W, *b: TF.conv2d(x, W, *b, stride=stride, padding=pad), inputs)


def _check_conv_and_deconv(stride, pad):
    """conv2d and deconv2d with bias on a 3-image batch against torch, to second order."""
    x, W, b = rng.standard_normal((3, 2, 6, 7)), rng.standard_normal((3, 2, 3, 2)), rng.standard_normal(3)
    check_op(lambda x, W, b: F.conv2d(x, W, b, stride=stride, pad=pad),
             lambda x, W, b: TF.conv2d(x, W, b, stride=stride, padding=pad), [x, W, b])
    x, W = rng.standard_normal((3, 2, 4, 3)), rng.standard_normal((2, 3, 3, 2))
    check_op(lambda x, W, b: F.deconv2d(x, W, b, stride=stride, pad=pad),
             lambda x, W, b: TF.conv_transpose2d(x, W, b, stride=stride, padding=pad), [x, W, b])


# The CPU kernels' GEMM layouts: one wide GEMM per chunk, one per image (short patches), or for
# stride 1 one per image on flat runs of the padded image (conv2d's forward, _conv_flat).
GEMM_LAYOUTS = pytest.mark.parametrize('per_image_max_k,flat', [(0, False), (10 ** 6, False), (0, True)],
                                       ids=['wide', 'per-image', 'flat'])


def _use_layout(monkeypatch, per_image_max_k, flat):
    monkeypatch.setattr(conv_module, '_PER_IMAGE_MAX_K', per_image_max_k)
    monkeypatch.setattr(conv_module, '_FLAT_STRIDE1', flat)


@GEMM_LAYOUTS
@pytest.mark.parametrize('stride,pad', [(1, 1), ((2, 3), (0, 1))])
def test_conv_family_in_batch_chunks(monkeypatch, stride, pad, per_image_max_k, flat):
    # A tiny working-set budget makes the CPU kernels go one image at a time.
    monkeypatch.setattr(conv_module, '_CHUNK_BYTES', 1)
    _use_layout(monkeypatch, per_image_max_k, flat)
    _check_conv_and_deconv(stride, pad)


@GEMM_LAYOUTS
@pytest.mark.parametrize('stride,pad', [(1, 0), (1, (2, 1)), (2, 1)])
def test_conv_family_split_over_threads(monkeypatch, stride, pad, per_image_max_k, flat):
    # A size threshold of 1 sends even these small arrays through the multithreaded split path.
    monkeypatch.setattr(dezero._parallel, '_SPLIT_MIN_SIZE', 1)
    _use_layout(monkeypatch, per_image_max_k, flat)
    _check_conv_and_deconv(stride, pad)


@pytest.mark.parametrize('pad', [0, (2, 1)])
@pytest.mark.parametrize('dtypes', [(np.float32, np.float32), (np.float32, np.float64)],
                         ids=['f32', 'f32-f64'])
def test_flat_conv_forward_equals_the_chunked_kernel(monkeypatch, pad, dtypes):
    # At the default threshold a 20-channel 3x3 conv (180 patch rows) takes the flat layout.
    x = rng.standard_normal((5, 20, 9, 7)).astype(dtypes[0])
    W, b = rng.standard_normal((6, 20, 3, 3)).astype(dtypes[1]), rng.standard_normal(6).astype(dtypes[1])
    calls = []
    flat_kernel = conv_module._conv_flat
    monkeypatch.setattr(conv_module, '_conv_flat', lambda *args: calls.append(1) or flat_kernel(*args))
    flat = F.conv2d(x, W, b, pad=pad).data
    monkeypatch.setattr(conv_module, '_FLAT_STRIDE1', False)
    chunked = F.conv2d(x, W, b, pad=pad).data
    assert calls == [1]
    assert flat.dtype == chunked.dtype == np.result_type(*dtypes)
    np.testing.assert_allclose(flat, chunked, rtol=1e-5, atol=1e-4)


# id, x shape, W shape (C, OC, KH, KW), stride, pad, outsize (None: the default size)
DECONV_CASES = [
    ('k3', (2, 3, 4, 4), (3, 2, 3, 3), 1, 0, None),
    ('k2x4-s1-p(1,2)', (2, 2, 3, 4), (2, 3, 2, 4), 1, (1, 2), None),
    ('k3x2-s2-p1', (2, 2, 3, 4), (2, 3, 3, 2), 2, 1, None),
    ('stride(3,2)-pad(2,1)', (1, 2, 3, 3), (2, 2, 4, 3), (3, 2), (2, 1), None),
    ('outsize-larger', (2, 2, 3, 4), (2, 2, 3, 3), 2, 1, (6, 8)),
]


@pytest.mark.parametrize('x_shape,W_shape,stride,pad,outsize', [c[1:] for c in DECONV_CASES],
                         ids=[c[0] for c in DECONV_CASES])
@pytest.mark.parametrize('bias', [True, False])
def test_deconv2d_against_torch(x_shape, W_shape, stride, pad, outsize, bias):
    s, p, k = _pair(stride), _pair(pad), W_shape[2:]
    default = tuple(get_deconv_outsize(x_shape[2 + a], k[a], s[a], p[a]) for a in range(2))
    output_padding = (0, 0) if outsize is None else tuple(o - d for o, d in zip(outsize, default))
    inputs = [rng.standard_normal(x_shape), rng.standard_normal(W_shape)]
    if bias:
        inputs.append(rng.standard_normal(W_shape[1]))
    check_op(lambda x, W, *b: F.deconv2d(x, W, *b, stride=stride, pad=pad, outsize=outsize),
             lambda x, W, *b: TF.conv_transpose2d(x, W, *b, stride=stride, padding=pad,
                                                  output_padding=output_padding), inputs)


# id, x shape, kernel, stride, pad
WINDOW_CASES = [
    ('k3', (2, 2, 5, 5), 3, 1, 0),
    ('k2x3-s2-p1', (1, 3, 5, 6), (2, 3), 2, 1),
    ('s(1,3)-p(2,1)', (2, 1, 4, 7), (3, 2), (1, 3), (2, 1)),
]


def _torch_im2col(x, kernel, stride, pad):
    """torch's unfold gives (N, C*KH*KW, L); the book's matrix is (N*L, C*KH*KW)."""
    cols = TF.unfold(x, kernel, padding=pad, stride=stride)
    return cols.transpose(1, 2).reshape(-1, cols.shape[1])


@pytest.mark.parametrize('x_shape,kernel,stride,pad', [c[1:] for c in WINDOW_CASES],
                         ids=[c[0] for c in WINDOW_CASES])
def test_im2col_against_torch_unfold(x_shape, kernel, stride, pad):
    check_op(lambda x: F.im2col(x, kernel, stride, pad),
             lambda x: _torch_im2col(x, kernel, stride, pad), [rng.standard_normal(x_shape)])


@pytest.mark.parametrize('x_shape,kernel,stride,pad', [c[1:] for c in WINDOW_CASES],
                         ids=[c[0] for c in WINDOW_CASES])
def test_col2im_against_torch_fold(x_shape, kernel, stride, pad):
    n, c, h, w = x_shape
    (kh, kw), (sh, sw), (ph, pw) = _pair(kernel), _pair(stride), _pair(pad)
    length = get_conv_outsize(h, kh, sh, ph) * get_conv_outsize(w, kw, sw, pw)

    def theirs(col):
        cols = col.reshape(n, length, c * kh * kw).transpose(1, 2)
        return TF.fold(cols, (h, w), kernel, padding=pad, stride=stride)

    check_op(lambda col: F.col2im(col, x_shape, kernel, stride, pad), theirs,
             [rng.standard_normal((n * length, c * kh * kw))])


def _coverage(shape, kernel, stride, pad):
    """How many windows cover each pixel, counted one window at a time (the slow, obvious way)."""
    n, c, h, w = shape
    (kh, kw), (sh, sw), (ph, pw) = _pair(kernel), _pair(stride), _pair(pad)
    count = np.zeros((h + 2 * ph, w + 2 * pw))
    for oy in range(get_conv_outsize(h, kh, sh, ph)):
        for ox in range(get_conv_outsize(w, kw, sw, pw)):
            count[oy * sh:oy * sh + kh, ox * sw:ox * sw + kw] += 1
    return count[ph:ph + h, pw:pw + w]


@pytest.mark.parametrize('x_shape,kernel,stride,pad', [c[1:] for c in WINDOW_CASES],
                         ids=[c[0] for c in WINDOW_CASES])
@pytest.mark.parametrize('to_matrix', [True, False])
def test_col2im_of_im2col_is_x_times_coverage(x_shape, kernel, stride, pad, to_matrix):
    x = rng.standard_normal(x_shape)
    col = F.im2col(x, kernel, stride, pad, to_matrix=to_matrix)
    back = F.col2im(col, x_shape, kernel, stride, pad, to_matrix=to_matrix)
    np.testing.assert_allclose(back.data, x * _coverage(x_shape, kernel, stride, pad), rtol=1e-12)


@pytest.mark.parametrize('x_shape,kernel,stride,pad', [c[1:] for c in WINDOW_CASES],
                         ids=[c[0] for c in WINDOW_CASES])
def test_im2col_tensor_layout_matches_matrix(x_shape, kernel, stride, pad):
    x = rng.standard_normal(x_shape)
    n, c, h, w = x_shape
    (kh, kw), (sh, sw), (ph, pw) = _pair(kernel), _pair(stride), _pair(pad)
    oh, ow = get_conv_outsize(h, kh, sh, ph), get_conv_outsize(w, kw, sw, pw)
    tensor = F.im2col(x, kernel, stride, pad, to_matrix=False).data
    matrix = F.im2col(x, kernel, stride, pad, to_matrix=True).data
    assert tensor.shape == (n, c, kh, kw, oh, ow)
    np.testing.assert_array_equal(tensor.transpose(0, 4, 5, 1, 2, 3).reshape(n * oh * ow, -1), matrix)
    # One element checked by hand: patch (n=1, oy=oh-1, ox=0) at (c=0, i=kh-1, j=kw-1).
    padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    assert tensor[-1, 0, -1, -1, -1, 0] == padded[-1, 0, (oh - 1) * sh + kh - 1, kw - 1]


@pytest.mark.parametrize('to_matrix', [True, False])
def test_im2col_tensor_form_gradients(to_matrix):
    # The (N, C, KH, KW, OH, OW) form against unfold reshaped the same way.
    x_shape, kernel, stride, pad = (1, 2, 5, 4), (2, 3), (2, 1), (1, 1)
    n, c, h, w = x_shape
    oh, ow = get_conv_outsize(h, 2, 2, 1), get_conv_outsize(w, 3, 1, 1)

    def theirs(x):
        cols = TF.unfold(x, kernel, padding=pad, stride=stride)
        return cols.reshape(n, c, 2, 3, oh, ow) if not to_matrix else cols.transpose(1, 2).reshape(-1, 6 * c)

    check_op(lambda x: F.im2col(x, kernel, stride, pad, to_matrix=to_matrix), theirs,
             [rng.standard_normal(x_shape)])


@pytest.mark.parametrize('x_shape,W_shape,stride,pad,bias', [c[1:] for c in CONV_CASES[:4]],
                         ids=[c[0] for c in CONV_CASES[:4]])
def test_conv2d_simple_equals_conv2d(x_shape, W_shape, stride, pad, bias):
    x, W = rng.standard_normal(x_shape), rng.standard_normal(W_shape)
    b = rng.standard_normal(W_shape[0]) if bias else None
    gy = rng.standard_normal(F.conv2d(x, W, b, stride, pad).shape)
    results = []
    for op in (F.conv2d, F.conv2d_simple):
        xv, Wv = Variable(x.copy()), Variable(W.copy())
        y = op(xv, Wv, b, stride, pad)
        (y * gy).sum().backward()
        results.append((y.data, xv.grad.data, Wv.grad.data))
    for ours, simple in zip(*results):
        np.testing.assert_allclose(simple, ours, rtol=1e-10, atol=1e-12)


def test_conv2d_third_order_against_torch():
    x, W = rng.standard_normal((1, 2, 4, 4)), rng.standard_normal((2, 2, 3, 3))
    xv, Wv = Variable(x.copy()), Variable(W.copy())
    xt, Wt = torch.tensor(x, requires_grad=True), torch.tensor(W, requires_grad=True)
    y = F.conv2d(xv, Wv, None, 1, 1)
    (y * y * y).sum().backward(create_graph=True)
    gW = Wv.grad
    xv.cleargrad()
    Wv.cleargrad()
    (gW * gW).sum().backward(create_graph=True)
    gx2 = xv.grad
    xv.cleargrad()
    Wv.cleargrad()
    gx2.sum().backward()

    yt = TF.conv2d(xt, Wt, None, 1, 1)
    (gWt,) = torch.autograd.grad((yt ** 3).sum(), Wt, create_graph=True)
    (gx2t,) = torch.autograd.grad((gWt * gWt).sum(), xt, create_graph=True)
    g3x, g3W = torch.autograd.grad(gx2t.sum(), [xt, Wt])
    np.testing.assert_allclose(gx2.data, gx2t.detach().numpy(), rtol=1e-9)
    np.testing.assert_allclose(xv.grad.data, g3x.numpy(), rtol=1e-9)
    np.testing.assert_allclose(Wv.grad.data, g3W.numpy(), rtol=1e-9)


def test_conv2d_bias_gradient_alone_is_differentiable():
    # Conv2DGradW returns the weight and bias gradients together; here only the bias gradient is
    # differentiated again, so its backward runs with no gradient for the weight output.
    x, W, b, v = (rng.standard_normal(s) for s in [(2, 2, 5, 4), (3, 2, 3, 2), (3,), (3,)])
    xv, Wv, bv = Variable(x), Variable(W), Variable(b)
    y = F.conv2d(xv, Wv, bv, 1, 1)
    (y * y).sum().backward(create_graph=True)
    gb = bv.grad
    xv.cleargrad()
    Wv.cleargrad()
    (gb * v).sum().backward()

    xt, Wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, W, b))
    yt = TF.conv2d(xt, Wt, bt, 1, 1)
    (gbt,) = torch.autograd.grad((yt * yt).sum(), bt, create_graph=True)
    gxt, gWt = torch.autograd.grad((gbt * torch.from_numpy(v)).sum(), [xt, Wt])
    np.testing.assert_allclose(gb.data, gbt.detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(xv.grad.data, gxt.numpy(), rtol=1e-10)
    np.testing.assert_allclose(Wv.grad.data, gWt.numpy(), rtol=1e-10)


def test_conv2d_weight_gradient_with_bias_matches_separate_sums():
    x, gy = rng.standard_normal((3, 2, 6, 5)).astype(np.float32), rng.standard_normal((3, 4, 4, 3))
    gy = gy.astype(np.float32)
    gW, gb = conv_module.Conv2DGradW((3, 3), 1, 0, with_bias=True).forward(x, gy)
    alone = conv_module.Conv2DGradW((3, 3), 1, 0).forward(x, gy)
    assert gW.flags.c_contiguous and gW.dtype == gb.dtype == np.float32
    np.testing.assert_allclose(gW, alone, rtol=1e-6)
    np.testing.assert_allclose(gb, gy.sum(axis=(0, 2, 3)), rtol=1e-5)


def test_conv2d_on_raw_input_gives_weight_gradient():
    # A raw array input becomes a Constant: its gradient is skipped, the weight's is exact.
    x, W = rng.standard_normal((2, 1, 6, 6)), rng.standard_normal((3, 1, 3, 3))
    Wv = Variable(W.copy())
    F.conv2d(x, Wv, None, 2, 1).sum().backward()
    Wt = torch.tensor(W, requires_grad=True)
    TF.conv2d(torch.from_numpy(x), Wt, None, 2, 1).sum().backward()
    np.testing.assert_allclose(Wv.grad.data, Wt.grad.numpy(), rtol=1e-10)


def test_empty_batch():
    x, W = Variable(np.zeros((0, 2, 5, 5), np.float32)), Variable(np.ones((3, 2, 3, 3), np.float32))
    y = F.conv2d(x, W, None, 1, 1)
    y.backward()
    assert y.shape == (0, 3, 5, 5) and x.grad.shape == x.shape and not W.grad.data.any()
    assert F.deconv2d(np.zeros((0, 3, 4, 4)), W.data, None, 2).shape == (0, 2, 9, 9)
    assert F.pooling(x, 2, 2).shape == (0, 2, 2, 2)


@pytest.mark.parametrize('stride', [1, 2])
def test_gradients_are_bitwise_the_same_on_one_or_two_threads(monkeypatch, stride):
    # Chunks go to whichever thread is free, but their partial sums are added in chunk order.
    monkeypatch.setattr(conv_module, '_CHUNK_BYTES', 1)
    x = rng.standard_normal((7, 20, 9, 8)).astype(np.float32)
    W, b = rng.standard_normal((6, 20, 3, 3)).astype(np.float32), rng.standard_normal(6).astype(np.float32)
    results = []
    for threads in (1, 2):
        monkeypatch.setattr(dezero._threads, '_num_threads', threads)
        xv, Wv, bv = Variable(x), Variable(W), Variable(b)
        y = F.conv2d(xv, Wv, bv, stride=stride, pad=1)
        F.sum(y * y).backward()
        results.append([y.data, xv.grad.data, Wv.grad.data, bv.grad.data])
    for one, two in zip(*results):
        np.testing.assert_array_equal(one, two)


def test_backward_twice_gives_the_same_gradient():
    x, W = rng.standard_normal((2, 2, 5, 5)), rng.standard_normal((3, 2, 3, 3))
    xv, Wv = Variable(x), Variable(W)
    y = F.conv2d(xv, Wv, None, 1, 1).sum()
    y.backward()
    first = Wv.grad.data.copy()
    Wv.cleargrad()
    y.backward()
    np.testing.assert_allclose(Wv.grad.data, first, rtol=1e-12)


@pytest.mark.parametrize('name,op', [
    ('conv2d', lambda x: F.conv2d(x, np.ones((2, 3, 3, 2), np.float32), np.ones(2, np.float32), 2, 1)),
    ('conv2d_simple', lambda x: F.conv2d_simple(x, np.ones((2, 3, 3, 2), np.float32), None, 2, 1)),
    ('deconv2d', lambda x: F.deconv2d(x, np.ones((3, 2, 3, 2), np.float32), np.ones(2, np.float32), 2, 1)),
    ('im2col', lambda x: F.im2col(x, 3, 1, 1)),
])
def test_float32_stays_float32(name, op):
    assert_float32_kept(op, (2, 3, 5, 6), name)


def test_float32_weights_and_bias_gradients_stay_float32():
    x = Variable(rng.standard_normal((2, 3, 5, 6)).astype(np.float32))
    W = Variable(rng.standard_normal((4, 3, 3, 3)).astype(np.float32))
    b = Variable(np.zeros(4, np.float32))
    c = Variable(np.zeros(3, np.float32))
    y = F.deconv2d(F.conv2d(x, W, b, 1, 1), W, c)
    y.backward(create_graph=True)
    assert y.dtype == np.float32
    assert {x.grad.dtype, W.grad.dtype, b.grad.dtype, c.grad.dtype} == {np.dtype(np.float32)}


def test_col2im_float32():
    col = Variable(np.ones((2 * 3 * 4, 2 * 4), np.float32))
    y = F.col2im(col, (2, 2, 4, 5), 2, 1, 0)
    y.backward()
    assert y.dtype == np.float32 and col.grad.dtype == np.float32


def test_functions_conv_module_exports_the_family():
    for name in ('conv2d', 'deconv2d', 'pooling', 'average_pooling', 'im2col', 'col2im',
                 'conv2d_simple', 'pooling_simple'):
        assert getattr(FC, name) is getattr(F, name)


@pytest.mark.parametrize('call,message', [
    (lambda: F.conv2d(np.ones((3, 5, 5)), np.ones((2, 3, 3, 3))), r'conv2d: expected x .*\(3, 5, 5\)'),
    (lambda: F.conv2d(np.ones((1, 3, 5, 5)), np.ones((2, 4, 3, 3))), r'conv2d: W of shape \(2, 4, 3, 3\).*'
                                                                     r'\(1, 3, 5, 5\)'),
    (lambda: F.conv2d(np.ones((1, 3, 5, 5)), np.ones((2, 3, 3))), r'conv2d: W of shape \(2, 3, 3\)'),
    (lambda: F.conv2d(np.ones((1, 3, 2, 5)), np.ones((2, 3, 5, 3)), pad=1),
     r'conv2d: kernel 5x3 is larger than the padded input 4x7'),
    (lambda: F.conv2d(np.ones((1, 3, 5, 5)), np.ones((2, 3, 3, 3)), np.ones(3)),
     r'conv2d: b of shape \(3,\)'),
    (lambda: F.conv2d(np.ones((1, 3, 5, 5)), np.ones((2, 3, 3, 3)), stride=0), 'conv2d: stride'),
    (lambda: F.conv2d(np.ones((1, 3, 5, 5)), np.ones((2, 3, 3, 3)), pad=(1, 2, 3)), 'conv2d: pad'),
    (lambda: F.conv2d_simple(np.ones((1, 3, 5, 5)), np.ones((2, 2, 3, 3))), r'conv2d: W of shape'),
    (lambda: F.deconv2d(np.ones((1, 3, 5, 5)), np.ones((2, 3, 3, 3))),
     r'deconv2d: W of shape \(2, 3, 3, 3\)'),
    (lambda: F.deconv2d(np.ones((1, 2, 3, 3)), np.ones((2, 3, 3, 3)), stride=2, outsize=(9, 7)),
     'deconv2d: output size'),
    (lambda: F.im2col(np.ones((1, 1, 3, 3)), 5), 'im2col: kernel 5x5'),
    (lambda: F.col2im(np.ones((4, 5)), (1, 1, 3, 3), 2), r'col2im: col of shape \(4, 5\)'),
])
def test_bad_input_raises_clear_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()
