"""Smoke tests of the scripts in ``examples/``: each ``main(argv)`` runs with tiny settings, writes its
PNG (checked by signature) under a temporary directory, and returns finite metrics.

The scripts are loaded from their files with importlib, as they are not part of the package.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

import dezero
import dezero.functions as F
from dezero import Variable

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / 'examples'
PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'

needs_dot = pytest.mark.skipif(shutil.which('dot') is None, reason='Graphviz dot is not installed')
needs_matplotlib = pytest.mark.skipif(importlib.util.find_spec('matplotlib') is None,
                                      reason="matplotlib (the 'plot' extra) is not installed")


def load_example(name: str) -> ModuleType:
    """Load ``examples/<name>.py`` as a fresh module, the way ``python examples/<name>.py`` would see it.

    Run as a script, an example finds its sibling helpers (``_plotting``) because Python puts
    ``examples/`` first on ``sys.path``; here that entry is added only while the module executes.
    """
    spec = importlib.util.spec_from_file_location(f'example_{name}', EXAMPLES_DIR / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(EXAMPLES_DIR))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(EXAMPLES_DIR))
    return module


def assert_no_leftovers(directory: Path) -> None:
    # atomic_file's temporaries are hidden files beside the target; older code used a '.tmp' suffix.
    leftovers = [p.name for p in directory.iterdir() if p.name.startswith('.') or p.name.endswith('.tmp')]
    assert not leftovers, f'temporary files left behind: {leftovers}'


def assert_png(path: Path) -> None:
    assert path.is_file(), f'{path} was not written'
    with open(path, 'rb') as f:
        assert f.read(8) == PNG_SIGNATURE, f'{path} is not a PNG file'
    assert_no_leftovers(path.parent)


def assert_finite(values: list[float], what: str) -> None:
    assert len(values) > 0, f'no {what} recorded'
    assert np.all(np.isfinite(values)), f'{what} not finite: {values}'


def fashion_mnist_available() -> bool:
    try:
        dezero.datasets.FashionMNIST(train=False)
    except (FileNotFoundError, OSError):
        return False
    return True


needs_fashion = pytest.mark.skipif(not fashion_mnist_available(), reason='Fashion-MNIST files not found')


# =============================================================================
# examples/_plotting.py
# =============================================================================
def curves_history(epochs: int) -> dict[str, list[float]]:
    """Made-up per-epoch values under the four keys ``plot_training_curves`` reads."""
    epoch = np.arange(epochs)
    return {'train_loss': list(1.0 / (epoch + 1)), 'test_loss': list(1.1 / (epoch + 1)),
            'train_acc': list(0.5 + 0.1 * epoch), 'test_acc': list(0.45 + 0.1 * epoch)}


@pytest.fixture
def plotting() -> ModuleType:
    return load_example('_plotting')


@needs_matplotlib
def test_pyplot_uses_agg_backend(plotting: ModuleType) -> None:
    plt = plotting.pyplot()
    assert plt.get_backend().lower() == 'agg'
    assert hasattr(plt, 'subplots')


def test_pyplot_without_matplotlib_names_the_plot_extra(plotting: ModuleType,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, 'matplotlib', None)  # makes ``import matplotlib`` fail
    with pytest.raises(ImportError, match=r"matplotlib.*'plot' extra.*dezero\[plot\]"):
        plotting.pyplot()


@needs_matplotlib
@pytest.mark.parametrize('fails', [False, True])
def test_save_figure_replaces_atomically_and_closes(plotting: ModuleType, tmp_path: Path,
                                                    fails: bool) -> None:
    """A PNG replaces the old file with the old file's permissions; a failed save leaves it untouched."""
    plt = plotting.pyplot()
    path = tmp_path / 'figure.png'
    path.write_bytes(b'old contents')
    os.chmod(path, 0o644)
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    if fails:
        def failing_savefig(*args: object, **kwargs: object) -> None:
            raise RuntimeError('disk full')

        fig.savefig = failing_savefig
        with pytest.raises(RuntimeError, match='disk full'):
            plotting.save_figure(fig, str(path))
        assert path.read_bytes() == b'old contents'
        assert_no_leftovers(tmp_path)
    else:
        plotting.save_figure(fig, str(path))
        assert_png(path)
        assert os.stat(path).st_mode & 0o777 == 0o644  # not mkstemp's 0600
    assert not plt.fignum_exists(fig.number)


@needs_matplotlib
@pytest.mark.parametrize('epochs', [1, 3])
def test_plot_training_curves(plotting: ModuleType, tmp_path: Path, epochs: int) -> None:
    plt = plotting.pyplot()
    open_before = plt.get_fignums()
    path = tmp_path / 'curves.png'
    plotting.plot_training_curves(curves_history(epochs), str(path), 'title', loss_label='NLL loss')
    assert_png(path)
    assert plt.get_fignums() == open_before


@needs_matplotlib
@pytest.mark.parametrize('epochs', [1, 3])
def test_plot_training_curves_ticks_are_whole_epochs(plotting: ModuleType, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch, epochs: int) -> None:
    saved = []
    monkeypatch.setattr(plotting, 'save_figure', lambda fig, path: saved.append(fig))
    history = curves_history(epochs)
    plotting.plot_training_curves(history, str(tmp_path / 'curves.png'), 'MLP', loss_label='NLL')
    (fig,) = saved
    ax_loss, ax_acc = fig.axes
    assert ax_loss.get_ylabel() == 'NLL' and ax_acc.get_ylabel() == 'accuracy'
    assert fig._suptitle.get_text() == 'MLP'  # Figure.get_suptitle needs matplotlib 3.8; the extra allows 3.6
    for ax in (ax_loss, ax_acc):
        low, high = ax.get_xlim()
        ticks = [float(t) for t in ax.get_xticks() if low <= t <= high]
        assert ticks and all(t.is_integer() for t in ticks), ticks
        np.testing.assert_allclose(ax.lines[0].get_xdata(), np.arange(1, epochs + 1))
    np.testing.assert_allclose(ax_acc.lines[1].get_ydata(), history['test_acc'])
    plotting.pyplot().close(fig)


@pytest.mark.parametrize('history, message', [
    ({'train_loss': [1.0], 'train_acc': [0.5], 'test_loss': [1.0]}, r"lacks \['test_acc'\]"),
    ({**curves_history(2), 'test_acc': [0.5]}, 'one value per epoch'),
    (curves_history(0), 'at least one'),
])
def test_plot_training_curves_rejects_bad_history(plotting: ModuleType, tmp_path: Path, history: dict,
                                                  message: str) -> None:
    with pytest.raises(ValueError, match=f'plot_training_curves: .*{message}'):
        plotting.plot_training_curves(history, str(tmp_path / 'curves.png'), 'title')
    assert not (tmp_path / 'curves.png').exists()


# =============================================================================
# examples/_common.py
# =============================================================================
@pytest.fixture
def common() -> ModuleType:
    return load_example('_common')


@pytest.mark.parametrize('minimum, text, expected', [(0, '0', 0), (0, '7', 7), (1, '1', 1)])
def test_int_at_least_accepts(common: ModuleType, minimum: int, text: str, expected: int) -> None:
    assert common.int_at_least(minimum)(text) == expected


@pytest.mark.parametrize('minimum, text, message', [
    (1, '0', r'expected a whole number >= 1, got 0'),
    (0, '-3', r'expected a whole number >= 0, got -3'),
    (0, '2.5', r"expected a whole number >= 0, got '2.5'"),
])
def test_int_at_least_rejects(common: ModuleType, minimum: int, text: str, message: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=message):
        common.int_at_least(minimum)(text)


def test_keep_first_cuts_data_and_labels(common: ModuleType) -> None:
    dataset = dezero.datasets.Spiral()
    data, label = dataset.data.copy(), dataset.label.copy()
    assert common.keep_first(dataset, 0) is dataset and len(dataset) == 300
    assert common.keep_first(dataset, 20) is dataset
    np.testing.assert_array_equal(dataset.data, data[:20])
    np.testing.assert_array_equal(dataset.label, label[:20])


def test_keep_first_without_labels(common: ModuleType) -> None:
    dataset = dezero.Dataset()
    dataset.data, dataset.label = np.arange(10), None
    common.keep_first(dataset, 4)
    np.testing.assert_array_equal(dataset.data, np.arange(4))
    assert dataset.label is None


def test_progress_bar_counts_loader_batches(common: ModuleType, capsys: pytest.CaptureFixture) -> None:
    pytest.importorskip('tqdm')
    loader = dezero.DataLoader(dezero.datasets.Spiral(), batch_size=32, shuffle=False)
    bar = common.progress(loader, 'epoch 1/1')
    assert bar.total == 10  # ceil(300 / 32), from len(loader)
    assert sum(len(x) for x, _ in bar) == 300
    capped = common.progress(range(100), 'capped', total=5)
    assert capped.total == 5
    capped.close()
    assert 'epoch 1/1' in capsys.readouterr().err  # the bar goes to stderr, the results to stdout


def test_progress_and_write_without_tqdm(common: ModuleType, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setitem(sys.modules, 'tqdm', None)  # makes ``from tqdm import tqdm`` fail
    items = [1, 2, 3]
    assert common.progress(items, 'epoch 1/1') is items
    common.write('epoch 1: loss 0.5')
    assert capsys.readouterr() == ('epoch 1: loss 0.5\n', '')


def test_write_goes_to_stdout_with_tqdm(common: ModuleType, capsys: pytest.CaptureFixture) -> None:
    pytest.importorskip('tqdm')
    common.write('epoch 10: loss 0.25')
    assert capsys.readouterr().out == 'epoch 10: loss 0.25\n'


# Every script's --help states each option's purpose and default. rosenbrock.py is rewritten on
# another branch; add it here once it uses example_parser.
SCRIPTS_WITH_PARSER = ['train_fashion_mnist', 'cnn_fashion_mnist', 'gan_fashion_mnist', 'vae_fashion_mnist',
                       'rnn_sin_curve', 'taylor_sin', 'tanh_higher_order', 'vgg16_classify', 'rosenbrock',
                       'maml_sine', 'export_onnx']


@pytest.mark.parametrize('name', SCRIPTS_WITH_PARSER)
def test_example_help_shows_every_default(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    example = load_example(name)
    parsers = []

    def capture(parser: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
        parsers.append(parser)
        raise SystemExit(0)  # stop main before it does any work

    monkeypatch.setattr(argparse.ArgumentParser, 'parse_args', capture)
    with pytest.raises(SystemExit):
        example.main([])
    (parser,) = parsers
    assert parser.formatter_class is argparse.ArgumentDefaultsHelpFormatter
    options = [action for action in parser._actions if not isinstance(action, argparse._HelpAction)]
    assert options
    undocumented = [action.dest for action in options if not action.help]
    assert not undocumented, f'{name}: options without help: {undocumented}'
    help_text = ' '.join(parser.format_help().split())
    for action in options:
        assert f'{action.help} (default: {action.default})' in help_text, (name, action.dest)


# =============================================================================
# Graph examples
# =============================================================================
@needs_dot
def test_taylor_sin_matches_sin_and_cos(tmp_path: Path) -> None:
    example = load_example('taylor_sin')
    result = example.main(['--out-dir', str(tmp_path)])
    x = np.pi / 4
    # With threshold 1e-4 the first omitted term is x^9/9! ~ 3e-7.
    assert result['value'] == pytest.approx(np.sin(x), abs=1e-6)
    assert result['grad'] == pytest.approx(np.cos(x), abs=1e-5)
    assert result['exact_value'] == pytest.approx(np.sin(x), abs=1e-15)
    assert_png(tmp_path / 'taylor_sin.png')


def test_my_sin_with_tiny_threshold_is_exact() -> None:
    example = load_example('taylor_sin')
    x = Variable(np.array([0.3, -1.2, 2.5]))
    y = example.my_sin(x, threshold=1e-150)
    F.sum(y).backward()
    np.testing.assert_allclose(y.data, np.sin(x.data), rtol=0, atol=1e-14)
    np.testing.assert_allclose(x.grad.data, np.cos(x.data), rtol=0, atol=1e-14)


@needs_dot
def test_tanh_higher_order_matches_polynomial_derivatives(tmp_path: Path) -> None:
    example = load_example('tanh_higher_order')
    result = example.main(['--iters', '3', '--x', '0.7', '--out-dir', str(tmp_path)])
    t = np.tanh(0.7)
    hand_written = [1 - t ** 2, -2 * t * (1 - t ** 2), (1 - t ** 2) * (6 * t ** 2 - 2)]
    np.testing.assert_allclose(result['exact'][:3], hand_written, rtol=1e-12)
    assert len(result['derivatives']) == 4
    np.testing.assert_allclose(result['derivatives'], result['exact'], rtol=1e-10)
    assert_png(tmp_path / 'tanh.png')


def test_tanh_higher_order_rejects_negative_iters(tmp_path: Path) -> None:
    example = load_example('tanh_higher_order')
    with pytest.raises(SystemExit):
        example.main(['--iters', '-1', '--out-dir', str(tmp_path)])


# =============================================================================
# The demo (make demo)
# =============================================================================
def run_demo(tmp_path: Path, *extra: str) -> tuple[ModuleType, dict[str, list[float]]]:
    example = load_example('train_fashion_mnist')
    history = example.main(['--epochs', '2', '--train-size', '300', '--test-size', '200',
                            '--batch-size', '50', '--out-dir', str(tmp_path), *extra])
    return example, history


def check_demo_outputs(example: ModuleType, history: dict[str, list[float]], tmp_path: Path, name: str,
                       sizes: tuple[int, ...], n_test: int) -> None:
    for key in ('train_loss', 'train_acc', 'test_loss', 'test_acc'):
        assert len(history[key]) == 2
        assert_finite(history[key], key)
    assert all(0.0 <= acc <= 1.0 for acc in history['train_acc'] + history['test_acc'])
    assert_png(tmp_path / f'{name}_curves.png')
    # The saved weights reproduce the last reported test accuracy.
    model = dezero.models.MLP(sizes, activation=F.relu)
    _, _, test_set, _ = example.load_data(0, n_test)
    model(test_set[0][0][np.newaxis])  # creates the lazily shaped weights before loading
    model.load_weights(str(tmp_path / f'{name}_mlp.npz'))
    _, test_acc = example.evaluate(model, dezero.DataLoader(test_set, 50, shuffle=False))
    assert test_acc == pytest.approx(history['test_acc'][-1], abs=1e-12)


@needs_matplotlib
@needs_fashion
def test_demo_on_fashion_mnist_prefix(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    example, history = run_demo(tmp_path)
    out = capsys.readouterr().out
    assert out.startswith('fashion_mnist: 300 training and 200 test samples; MLP (512, 256, 10)')
    assert 'epoch 2: train loss' in out and 'final test accuracy' in out
    check_demo_outputs(example, history, tmp_path, 'fashion_mnist', (512, 256, 10), 200)


def hide_fashion_mnist(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the demo's Fashion-MNIST loading fail as it does when the files are not installed."""
    def missing(train: bool = True) -> None:
        raise FileNotFoundError('FashionMNIST: train-images-idx3-ubyte.gz not found')

    monkeypatch.setattr(dezero.datasets, 'FashionMNIST', missing)


@needs_matplotlib
def test_demo_falls_back_to_spiral(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture) -> None:
    hide_fashion_mnist(monkeypatch)
    example, history = run_demo(tmp_path)
    captured = capsys.readouterr()
    assert 'Fashion-MNIST not available' in captured.err and 'dataset-fashion-mnist' in captured.err
    assert captured.out.startswith('spiral: 300 training and 200 test samples')
    check_demo_outputs(example, history, tmp_path, 'spiral', (100, 3), 200)


@needs_matplotlib
def test_demo_seed_decides_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hide_fashion_mnist(monkeypatch)
    runs = [run_demo(tmp_path / f'run{i}', '--seed', str(seed))[1] for i, seed in enumerate((3, 3, 4))]
    assert runs[0] == runs[1]
    assert runs[0]['train_loss'] != runs[2]['train_loss']


def test_demo_rejects_bad_sizes(capsys: pytest.CaptureFixture) -> None:
    example = load_example('train_fashion_mnist')
    for argv, message in ((['--epochs', '0'], 'argument --epochs: expected a whole number >= 1, got 0'),
                          (['--train-size', '-5'], 'argument --train-size: expected a whole number >= 0')):
        with pytest.raises(SystemExit):
            example.main(argv)
        assert message in capsys.readouterr().err

# =============================================================================
# Training examples (tiny settings)
# =============================================================================
@pytest.mark.slow
@pytest.mark.parametrize('cell', ['rnn', 'lstm'])
def test_rnn_sin_curve(tmp_path: Path, cell: str) -> None:
    example = load_example('rnn_sin_curve')
    result = example.main(['--cell', cell, '--epochs', '2', '--max-iters', '30', '--hidden-size', '20',
                           '--out-dir', str(tmp_path)])
    assert len(result['losses']) == 2
    assert_finite(result['losses'], 'losses')
    assert np.isfinite(result['test_mse'])
    assert_png(tmp_path / f'{cell}_sin_curve.png')


@pytest.mark.slow
@needs_fashion
def test_cnn_fashion_mnist(tmp_path: Path) -> None:
    example = load_example('cnn_fashion_mnist')
    history = example.main(['--epochs', '1', '--train-size', '128', '--test-size', '64',
                            '--out-dir', str(tmp_path)])
    for key in ('train_loss', 'test_loss', 'train_acc', 'test_acc'):
        assert len(history[key]) == 1
        assert_finite(history[key], key)
    assert 0.0 <= history['test_acc'][0] <= 1.0
    assert_png(tmp_path / 'cnn_fashion_mnist.png')
    with np.load(tmp_path / 'cnn_fashion_mnist.npz') as weights:
        assert weights['conv1/W'].shape == (32, 1, 3, 3)
        assert weights['fc2/W'].shape == (128, 10)


def test_cnn_nll_loss_is_mean_negative_log_probability() -> None:
    example = load_example('cnn_fashion_mnist')
    log_probs = Variable(np.log(np.array([[0.2, 0.8], [0.6, 0.4], [0.5, 0.5]])))
    t = np.array([1, 0, 1])
    loss = example.nll_loss(log_probs, t)
    assert float(loss.data) == pytest.approx(-(np.log(0.8) + np.log(0.6) + np.log(0.5)) / 3)
    loss.backward()
    expected = np.zeros((3, 2))
    expected[np.arange(3), t] = -1 / 3
    np.testing.assert_allclose(log_probs.grad.data, expected)


@pytest.mark.slow
@needs_fashion
def test_gan_fashion_mnist(tmp_path: Path) -> None:
    example = load_example('gan_fashion_mnist')
    history = example.main(['--epochs', '2', '--train-size', '256', '--batch-size', '64', '--max-iters', '2',
                            '--sample-every', '1', '--out-dir', str(tmp_path)])
    for key in ('loss_d', 'loss_g'):
        assert len(history[key]) == 2
        assert_finite(history[key], key)
    assert_png(tmp_path / 'gan_fashion_mnist_epoch1.png')
    assert_png(tmp_path / 'gan_fashion_mnist_epoch2.png')
    assert_png(tmp_path / 'gan_fashion_mnist.png')


def test_gan_networks_shapes() -> None:
    example = load_example('gan_fashion_mnist')
    generator, discriminator = example.Generator(), example.Discriminator()
    images = generator(example.sample_noise(5, 8))
    assert images.shape == (5, 1, 28, 28)
    assert images.dtype == np.float32
    assert np.all((images.data > -1) & (images.data < 1))
    assert discriminator(images).shape == (5, 1)


@pytest.mark.slow
@needs_fashion
def test_vae_fashion_mnist(tmp_path: Path) -> None:
    example = load_example('vae_fashion_mnist')
    history = example.main(['--epochs', '1', '--train-size', '256', '--test-size', '100',
                            '--latent-size', '4', '--out-dir', str(tmp_path)])
    for key in ('loss', 'reconstruction', 'kl', 'test_loss'):
        assert_finite(history[key], key)
    assert history['kl'][0] >= 0
    assert history['loss'][0] == pytest.approx(history['reconstruction'][0] + history['kl'][0], rel=1e-5)
    assert_png(tmp_path / 'vae_fashion_mnist.png')


def test_vae_loss_matches_formula() -> None:
    example = load_example('vae_fashion_mnist')
    rng = np.random.default_rng(0)
    logits = Variable(rng.standard_normal((3, 4)))
    x = rng.uniform(size=(3, 4))
    mu, log_var = Variable(rng.standard_normal((3, 2))), Variable(rng.standard_normal((3, 2)))
    total, reconstruction, kl = example.vae_loss(logits, x, mu, log_var)
    p = 1 / (1 + np.exp(-logits.data))
    expected_bce = -np.sum(x * np.log(p) + (1 - x) * np.log(1 - p)) / 3
    expected_kl = -0.5 * np.sum(1 + log_var.data - mu.data ** 2 - np.exp(log_var.data)) / 3
    assert float(reconstruction.data) == pytest.approx(expected_bce, rel=1e-10)
    assert float(kl.data) == pytest.approx(expected_kl, rel=1e-10)
    assert float(total.data) == pytest.approx(expected_bce + expected_kl, rel=1e-10)


# =============================================================================
# VGG16
# =============================================================================
def test_vgg16_missing_weights_exits_with_instructions(tmp_path: Path) -> None:
    env = dict(os.environ, DEZERO_CACHE_DIR=str(tmp_path))
    result = subprocess.run([sys.executable, str(EXAMPLES_DIR / 'vgg16_classify.py'),
                             '--out-dir', str(tmp_path / 'out')],
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert 'vgg16.npz' in result.stderr
    assert str(tmp_path) in result.stderr
    assert 'Traceback' not in result.stderr
    assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize('with_labels', [True, False])
def test_vgg16_classify_flow_with_stand_in_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture, with_labels: bool) -> None:
    """The script's path after the weights are found, with a tiny stand-in for the real network."""
    pytest.importorskip('PIL')
    pytest.importorskip('matplotlib')
    example = load_example('vgg16_classify')
    real_vgg16 = example.VGG16
    seen_shapes = []

    class StandInVGG16:
        WEIGHTS_PATH = real_vgg16.WEIGHTS_PATH
        preprocess = staticmethod(real_vgg16.preprocess)

        def __init__(self, pretrained: bool = False) -> None:
            assert pretrained

        def __call__(self, x: np.ndarray) -> Variable:
            seen_shapes.append(x.shape)
            logits = np.zeros((1, 1000), dtype=np.float32)
            logits[0, 340] = 5.0  # the ImageNet id of "zebra"
            logits[0, 7] = 3.0
            return Variable(logits)

    monkeypatch.setenv('DEZERO_CACHE_DIR', str(tmp_path))
    monkeypatch.setattr(example, 'VGG16', StandInVGG16)
    (tmp_path / 'vgg16.npz').write_bytes(b'')  # only its presence is checked before loading
    if with_labels:
        labels = {i: f'class number {i}' for i in range(1000)}
        labels[340] = 'zebra'
        (tmp_path / 'imagenet1000_clsidx_to_labels.txt').write_text(repr(labels))

    status = example.main(['--top', '3', '--out-dir', str(tmp_path / 'out')])
    assert status == 0
    assert seen_shapes == [(1, 3, 224, 224)]
    out = capsys.readouterr().out
    ranked = [line for line in out.splitlines() if line[:2] in ('1.', '2.', '3.')]
    assert len(ranked) == 3
    if with_labels:
        assert ranked[0].startswith('1. zebra (id 340): ')
        assert ranked[1].startswith('2. class number 7 (id 7): ')
    else:
        assert ranked[0].startswith('1. id 340: ')
        assert ranked[1].startswith('2. id 7: ')
        assert 'imagenet1000_clsidx_to_labels.txt' in out
    p_top = float(ranked[0].rsplit(':', 1)[1])
    assert p_top == pytest.approx(np.exp(5) / (np.exp(5) + np.exp(3) + 998), abs=1e-4)
    assert_png(tmp_path / 'out' / 'vgg16_classify.png')


def test_vgg16_unreadable_image_exits_with_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture) -> None:
    pytest.importorskip('PIL')
    example = load_example('vgg16_classify')
    monkeypatch.setenv('DEZERO_CACHE_DIR', str(tmp_path))
    (tmp_path / 'vgg16.npz').write_bytes(b'')
    missing = tmp_path / 'no_such_image.jpg'
    assert example.main([str(missing), '--out-dir', str(tmp_path / 'out')]) == 1
    assert str(missing) in capsys.readouterr().err
