"""The book's public names: every name its final package exposes exists here with the book's meaning,
the ``_simple`` functions equal the fused ones (values, gradients, second order), and short programs
written as the book's step scripts run unchanged."""
import importlib
import importlib.util

import numpy as np
import pytest

import dezero
import dezero.core
import dezero.functions as F
import dezero.layers as L
from dezero import Variable
from dezero.utils import gradient_check

rng = np.random.default_rng(0)

# Every public name of the book's final package, module by module (its step scripts, examples and
# tests reach these); names the SPEC section "Book compatibility names" added are among them.
BOOK_NAMES = {
    'dezero': 'is_simple_core Variable Parameter Function using_config no_grad test_mode as_array '
              'as_variable setup_variable Config Layer Model Dataset DataLoader SeqDataLoader datasets '
              'dataloaders optimizers functions functions_conv layers models utils cuda transforms '
              '__version__',
    'dezero.core': 'Config using_config no_grad test_mode Variable Parameter as_variable as_array '
                   'Function Add add Mul mul Neg neg Sub sub rsub Div div rdiv Pow pow setup_variable '
                   'array_types',
    'dezero.core_simple': 'Config using_config no_grad Variable Parameter as_variable as_array Function '
                          'Add add Mul mul Neg neg Sub sub rsub Div div rdiv Pow pow setup_variable',
    'dezero.functions': 'Function Variable as_variable as_array Sin sin Cos cos Tanh tanh Exp exp Log log '
                        'Reshape reshape Transpose transpose GetItem GetItemGrad get_item expand_dims '
                        'flatten Sum sum SumTo sum_to BroadcastTo broadcast_to average mean MatMul matmul '
                        'Linear linear linear_simple Sigmoid sigmoid sigmoid_simple ReLU relu Softmax '
                        'softmax softmax_simple LogSoftmax log_softmax LeakyReLU leaky_relu '
                        'MeanSquaredError mean_squared_error mean_squared_error_simple SoftmaxCrossEntropy '
                        'softmax_cross_entropy softmax_cross_entropy_simple sigmoid_cross_entropy '
                        'binary_cross_entropy accuracy dropout BatchNorm batch_nrom batch_norm embed_id '
                        'Max Min max min Clip clip conv2d deconv2d conv2d_simple im2col col2im '
                        'pooling_simple pooling average_pooling add sub rsub mul div neg pow',
    'dezero.functions_conv': 'Function as_variable pair get_conv_outsize get_deconv_outsize linear '
                             'broadcast_to conv2d_simple Conv2d conv2d Deconv2d deconv2d Conv2DGradW '
                             'pooling_simple Pooling Pooling2DGrad Pooling2DWithIndexes pooling '
                             'AveragePooling average_pooling Im2col im2col Col2im col2im im2col_array '
                             'col2im_array',
    'dezero.layers': 'Parameter pair Layer Linear Conv2d Deconv2d RNN LSTM EmbedID BatchNorm',
    'dezero.models': 'Layer Model Sequential MLP VGG16 ResNet ResNet152 ResNet101 ResNet50 BuildingBlock '
                     'BottleneckA BottleneckB SqueezeNet',
    'dezero.optimizers': 'Optimizer WeightDecay ClipGrad FreezeParam SGD MomentumSGD AdaGrad AdaDelta Adam',
    'dezero.datasets': 'get_file cache_dir Compose Flatten ToFloat Normalize Dataset get_spiral Spiral '
                       'MNIST CIFAR10 CIFAR100 ImageNet SinCurve Shakespear load_cache_npz save_cache_npz',
    'dezero.dataloaders': 'pil_available DataLoader SeqDataLoader',
    'dezero.transforms': 'pair Compose Convert Resize CenterCrop ToArray ToPIL RandomHorizontalFlip '
                         'Normalize Flatten AsType ToFloat ToInt',
    'dezero.utils': 'get_dot_graph plot_dot_graph sum_to reshape_sum_backward logsumexp max_backward_shape '
                    'gradient_check numerical_grad array_equal array_allclose show_progress cache_dir '
                    'get_file get_deconv_outsize get_conv_outsize pair',
    'dezero.cuda': 'gpu_enable Variable get_array_module as_numpy as_cupy',
}


@pytest.mark.parametrize('module_name', sorted(BOOK_NAMES))
def test_every_book_name_exists(module_name):
    module = importlib.import_module(module_name)
    missing = [name for name in BOOK_NAMES[module_name].split() if not hasattr(module, name)]
    assert not missing, f'{module_name} lacks {missing}'


def test_core_simple_is_the_one_engine():
    import dezero.core_simple as simple
    assert dezero.is_simple_core is False
    for name in BOOK_NAMES['dezero.core_simple'].split():
        assert getattr(simple, name) is getattr(dezero.core, name), name


@pytest.mark.parametrize('module_name,name,target', [
    ('dezero.functions', 'Variable', 'dezero.core.Variable'),
    ('dezero.functions', 'Function', 'dezero.core.Function'),
    ('dezero.functions', 'as_variable', 'dezero.core.as_variable'),
    ('dezero.functions', 'as_array', 'dezero.core.as_array'),
    ('dezero.functions', 'SumTo', 'dezero.core.SumTo'),
    ('dezero.functions', 'BroadcastTo', 'dezero.core.BroadcastTo'),
    ('dezero.functions_conv', 'pair', 'dezero.utils.pair'),
    ('dezero.functions_conv', 'get_conv_outsize', 'dezero.utils.get_conv_outsize'),
    ('dezero.functions_conv', 'get_deconv_outsize', 'dezero.utils.get_deconv_outsize'),
    ('dezero.functions_conv', 'linear', 'dezero.functions.linear'),
    ('dezero.functions_conv', 'broadcast_to', 'dezero.functions.broadcast_to'),
    ('dezero.functions_conv', 'as_variable', 'dezero.core.as_variable'),
    ('dezero.functions_conv', 'Function', 'dezero.core.Function'),
    ('dezero.functions_conv', 'im2col_array', 'dezero.functions.im2col_array'),
    ('dezero.layers', 'Parameter', 'dezero.core.Parameter'),
    ('dezero.layers', 'pair', 'dezero.utils.pair'),
    ('dezero.models', 'Layer', 'dezero.layers.Layer'),
    ('dezero.datasets', 'cache_dir', 'dezero.download.cache_dir'),
    ('dezero.utils', 'cache_dir', 'dezero.download.cache_dir'),
    ('dezero.cuda', 'Variable', 'dezero.core.Variable'),
])
def test_reexported_names_are_the_same_objects(module_name, name, target):
    target_module, target_name = target.rsplit('.', 1)
    expected = getattr(importlib.import_module(target_module), target_name)
    assert getattr(importlib.import_module(module_name), name) is expected


def test_cuda_has_no_other_lazy_names():
    with pytest.raises(AttributeError, match="'dezero.cuda' has no attribute 'Tensor'"):
        dezero.cuda.Tensor  # noqa: B018


def test_pil_available_says_whether_pillow_is_installed():
    assert dezero.dataloaders.pil_available is (importlib.util.find_spec('PIL') is not None)


def test_cache_dir_is_the_books_location():
    import os
    assert dezero.datasets.cache_dir == os.path.join(os.path.expanduser('~'), '.dezero')


# =============================================================================
# The _simple functions equal the fused ones
# =============================================================================
def labels(n, c):
    return rng.integers(0, c, size=n)


# id, simple, fused, inputs (float64 arrays are differentiated; integer arrays are labels)
SIMPLE_CASES = [
    ('sigmoid', F.sigmoid_simple, F.sigmoid, lambda: [rng.standard_normal((3, 4)) * 5]),
    ('sigmoid-tails', F.sigmoid_simple, F.sigmoid, lambda: [np.array([-800.0, -40.0, 0.0, 40.0, 800.0])]),
    ('softmax', F.softmax_simple, F.softmax, lambda: [rng.standard_normal((4, 5))]),
    ('softmax-axis0', lambda x: F.softmax_simple(x, axis=0), lambda x: F.softmax(x, axis=0),
     lambda: [rng.standard_normal((4, 5))]),
    ('softmax-large', F.softmax_simple, F.softmax, lambda: [rng.standard_normal((3, 4)) * 1000]),
    ('linear', F.linear_simple, F.linear,
     lambda: [rng.standard_normal((4, 3)), rng.standard_normal((3, 2)), rng.standard_normal(2)]),
    ('linear-nobias', F.linear_simple, F.linear,
     lambda: [rng.standard_normal((4, 3)), rng.standard_normal((3, 2))]),
    ('mean_squared_error', F.mean_squared_error_simple, F.mean_squared_error,
     lambda: [rng.standard_normal((5, 3)), rng.standard_normal((5, 3))]),
    ('mean_squared_error-broadcast', F.mean_squared_error_simple, F.mean_squared_error,
     lambda: [rng.standard_normal((1, 3)), rng.standard_normal((4, 3))]),
    ('softmax_cross_entropy', F.softmax_cross_entropy_simple, F.softmax_cross_entropy,
     lambda: [rng.standard_normal((6, 4)), labels(6, 4)]),
    ('softmax_cross_entropy-large', F.softmax_cross_entropy_simple, F.softmax_cross_entropy,
     lambda: [rng.standard_normal((5, 3)) * 1000, labels(5, 3)]),
]


def first_and_second_gradients(f, inputs):
    """Output, first gradients of ``sum(f * gy)`` and second-order gradients of ``sum(g * v)``."""
    local = np.random.default_rng(1)
    xs = [Variable(a.copy()) if a.dtype.kind == 'f' else a for a in inputs]
    y = f(*xs)
    gy = local.standard_normal(y.shape)
    (y * gy).sum().backward(create_graph=True)
    variables = [x for x in xs if isinstance(x, Variable)]
    first = [x.grad for x in variables]
    for x in variables:
        x.cleargrad()
    sum((g * local.standard_normal(g.shape)).sum() for g in first).backward()
    second = [np.zeros(x.shape) if x.grad is None else x.grad.data for x in variables]
    return y.data, [g.data for g in first], second


@pytest.mark.parametrize('simple,fused,make_inputs', [c[1:] for c in SIMPLE_CASES],
                         ids=[c[0] for c in SIMPLE_CASES])
def test_simple_function_equals_the_fused_one(simple, fused, make_inputs):
    inputs = make_inputs()
    ours = first_and_second_gradients(simple, inputs)
    theirs = first_and_second_gradients(fused, inputs)
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-12, atol=1e-15, err_msg='forward')
    assert np.isfinite(ours[0]).all()
    for a, b in zip(ours[1], theirs[1]):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-15, err_msg='gradient')
    for a, b in zip(ours[2], theirs[2]):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12, err_msg='second order')


@pytest.mark.parametrize('simple,fused,make_inputs', [c[1:] for c in SIMPLE_CASES if 'large' not in c[0]
                                                      and 'tails' not in c[0]],
                         ids=[c[0] for c in SIMPLE_CASES if 'large' not in c[0] and 'tails' not in c[0]])
def test_simple_function_passes_gradient_check(simple, fused, make_inputs):
    inputs = make_inputs()
    rest = inputs[1:]
    assert gradient_check(lambda x: simple(x, *rest), inputs[0])


@pytest.mark.parametrize('name,op,shapes', [
    ('sigmoid_simple', F.sigmoid_simple, [(3, 4)]),
    ('softmax_simple', F.softmax_simple, [(3, 4)]),
    ('linear_simple', F.linear_simple, [(4, 3), (3, 2), (2,)]),
    ('mean_squared_error_simple', F.mean_squared_error_simple, [(4, 3), (4, 3)]),
])
def test_simple_functions_keep_float32(name, op, shapes):
    xs = [Variable(rng.standard_normal(s).astype(np.float32)) for s in shapes]
    y = op(*xs)
    y.sum().backward() if y.ndim else y.backward()
    assert y.dtype == np.float32, name
    assert all(x.grad.dtype == np.float32 for x in xs), name


def test_float32_sigmoid_simple_gradient_stays_finite_far_in_the_tail():
    # The literal 1 / (1 + exp(-x)) overflows at x = -89 in float32 and its gradient becomes NaN.
    x = Variable(np.array([-200.0, -89.0, 89.0], dtype=np.float32))
    F.sigmoid_simple(x).backward()
    expected = Variable(x.data.copy())
    F.sigmoid(expected).backward()
    assert np.isfinite(x.grad.data).all()
    np.testing.assert_allclose(x.grad.data, expected.grad.data, rtol=0, atol=1e-37)


def test_softmax_cross_entropy_simple_takes_variable_labels_and_checks_them():
    x = rng.standard_normal((3, 4))
    t = np.array([0, 3, 1])
    np.testing.assert_allclose(F.softmax_cross_entropy_simple(x, Variable(t)).data,
                               F.softmax_cross_entropy(x, t).data, rtol=1e-12)
    with pytest.raises(ValueError, match=r'softmax_cross_entropy_simple: labels must be in \[0, 4\)'):
        F.softmax_cross_entropy_simple(x, np.array([0, 4, 1]))
    with pytest.raises(ValueError, match='mean_squared_error_simple: inputs need a batch axis'):
        F.mean_squared_error_simple(np.array(1.0), np.array(2.0))


# =============================================================================
# Other names with the book's meaning
# =============================================================================
@pytest.mark.parametrize('shape', [(5, 3), (4, 3, 2, 2)])
def test_batchnorm_function_object_is_batch_norm(shape):
    x = rng.standard_normal(shape)
    c = shape[1]
    gamma, beta = rng.standard_normal(c), rng.standard_normal(c)
    mean, var = rng.standard_normal(c), rng.uniform(0.5, 1.5, c)
    mean2, var2 = mean.copy(), var.copy()
    y = F.BatchNorm(mean, var, 0.8, 1e-3)(x, gamma, beta)
    expected = F.batch_norm(x, gamma, beta, mean2, var2, 0.8, 1e-3)
    np.testing.assert_allclose(y.data, expected.data, rtol=1e-12)
    np.testing.assert_allclose(mean, mean2, rtol=1e-12)  # running statistics updated in place
    np.testing.assert_allclose(var, var2, rtol=1e-12)
    with dezero.test_mode():
        frozen = F.BatchNorm(mean, var, 0.8, 1e-3)
        np.testing.assert_allclose(frozen(x, gamma, beta).data,
                                   F.batch_norm(x, gamma, beta, mean2, var2, 0.8, 1e-3).data, rtol=1e-12)
    np.testing.assert_array_equal(frozen.avg_mean, mean2)


@pytest.mark.parametrize('kernel,stride,pad,to_matrix', [(3, 1, 1, True), ((2, 3), (2, 1), (0, 1), False)])
def test_im2col_and_col2im_arrays_are_the_graph_free_ops(kernel, stride, pad, to_matrix):
    from dezero.functions_conv import col2im_array, im2col_array
    x = rng.standard_normal((2, 3, 5, 6))
    col = im2col_array(x, kernel, stride, pad, to_matrix)
    assert isinstance(col, np.ndarray)
    np.testing.assert_array_equal(col, F.im2col(x, kernel, stride, pad, to_matrix).data)
    image = col2im_array(col, x.shape, kernel, stride, pad, to_matrix)
    assert isinstance(image, np.ndarray) and image.shape == x.shape
    np.testing.assert_array_equal(image, F.col2im(col, x.shape, kernel, stride, pad, to_matrix).data)
    with pytest.raises(ValueError, match='col2im: col of shape'):
        col2im_array(col[:-1], x.shape, kernel, stride, pad, to_matrix)


def test_resnet_bottlenecks_a_and_b():
    from dezero.models import BottleneckA, BottleneckB, BuildingBlock
    x = rng.standard_normal((2, 8, 6, 6)).astype(np.float32)
    a = BottleneckA(8, 4, 16, stride=2)
    assert a(x).shape == (2, 16, 3, 3)
    assert a.has_projection and a.conv1.stride == 2 and a.conv2.stride == 1
    facebook = BottleneckA(8, 4, 16, stride=2, downsample_fb=True)
    assert facebook(x).shape == (2, 16, 3, 3)
    assert facebook.conv1.stride == 1 and facebook.conv2.stride == 2
    b = BottleneckB(8, 4)
    assert not b.has_projection and b(x).shape == x.shape
    with pytest.raises(ValueError, match='identity shortcut needs stride 1'):
        dezero.models.Bottleneck(8, 4, 16, stride=1, projection=False)
    stage = BuildingBlock(3, 8, 4, 16, 2)  # how ResNet builds each stage
    assert type(stage.a) is BottleneckA and type(stage.b1) is BottleneckB and type(stage.b2) is BottleneckB
    assert stage(x).shape == (2, 16, 3, 3)


# =============================================================================
# Programs written as the book's step scripts
# =============================================================================
def test_steps_28_29_simple_core_import_form_runs(capsys):
    # step 29: Newton's method with the hand-written second derivative, importing as the book does.
    from dezero import Variable  # noqa: F401  (the book imports it first, then replaces it)
    if not dezero.is_simple_core:
        from dezero.core_simple import Variable, setup_variable
        setup_variable()

    def f(x):
        return x ** 4 - 2 * x ** 2

    def gx2(x):
        return 12 * x ** 2 - 4

    x = Variable(np.array(2.0))
    expected = 2.0
    for i in range(10):
        print(i, x)
        y = f(x)
        x.cleargrad()
        y.backward()
        x.data -= x.grad / gx2(x.data)
        expected -= (4 * expected ** 3 - 4 * expected) / (12 * expected ** 2 - 4)
        assert type(x.data) is np.ndarray and x.data == expected
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == '0 variable(2.0)'
    assert lines[1] == '1 variable(1.4545454545454546)'
    assert lines[-1] == '9 variable(1.0)'


def test_step_28_rosenbrock_gradient_descent():
    if not dezero.is_simple_core:
        from dezero.core_simple import Variable, setup_variable
        setup_variable()

    def rosenbrock(x0, x1):
        return 100 * (x1 - x0 ** 2) ** 2 + (1 - x0) ** 2

    x0, x1 = Variable(np.array(0.0)), Variable(np.array(2.0))
    a, b = 0.0, 2.0
    lr = 0.001
    for _ in range(200):
        y = rosenbrock(x0, x1)
        x0.cleargrad()
        x1.cleargrad()
        y.backward()
        x0.data -= lr * x0.grad
        x1.data -= lr * x1.grad
        a, b = a - lr * (-400 * a * (b - a * a) - 2 * (1 - a)), b - lr * 200 * (b - a * a)
    assert type(x0.data) is np.ndarray and x0.creator is None
    np.testing.assert_allclose([x0.data, x1.data], [a, b], rtol=1e-12)


def test_step_24_goldstein_gradient():
    def goldstein(x, y):
        return (1 + (x + y + 1) ** 2 * (19 - 14 * x + 3 * x ** 2 - 14 * y + 6 * x * y + 3 * y ** 2)) * \
            (30 + (2 * x - 3 * y) ** 2 * (18 - 32 * x + 12 * x ** 2 + 48 * y - 36 * x * y + 27 * y ** 2))

    x, y = Variable(np.array(1.0)), Variable(np.array(1.0))
    goldstein(x, y).backward()
    assert (x.grad.data, y.grad.data) == (-5376.0, 8064.0)  # the values the book prints


def test_step_33_newton_with_double_backprop(capsys):
    def f(x):
        return x ** 4 - 2 * x ** 2

    x = Variable(np.array(2.0))
    for i in range(10):
        print(i, x)
        y = f(x)
        x.cleargrad()
        y.backward(create_graph=True)
        gx = x.grad
        x.cleargrad()
        gx.backward()
        gx2 = x.grad
        x.data -= gx.data / gx2.data
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == '1 variable(1.4545454545454546)' and lines[-1] == '9 variable(1.0)'


def test_step_44_style_layer_training_uses_book_names():
    # A two-layer network trained with the book's module names only (steps 43-45).
    np.random.seed(0)
    x = np.random.rand(100, 1)
    y = np.sin(2 * np.pi * x) + np.random.rand(100, 1)
    l1, l2 = L.Linear(10), L.Linear(1)

    def predict(x):
        return l2(F.sigmoid_simple(l1(x)))

    losses = []
    for _ in range(200):
        loss = F.mean_squared_error_simple(y, predict(x))
        l1.cleargrads()
        l2.cleargrads()
        loss.backward()
        for layer in (l1, l2):
            for p in layer.params():
                p.data -= 0.2 * p.grad.data
        losses.append(float(loss.data))
    assert losses[-1] < 0.5 * losses[0]
