"""Smoke tests of the dezero.func examples: examples/rosenbrock.py (Newton with ``hessian``) and
examples/maml_sine.py (MAML through ``functional_call``), with tiny settings."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dezero.func import grad, hessian
from tests.test_examples import assert_png, load_example, needs_matplotlib


def test_rosenbrock_hessian_is_the_books() -> None:
    example = load_example('rosenbrock')
    start = np.array([0.0, 2.0])
    np.testing.assert_allclose(grad(example.rosenbrock)(start), [-2.0, 400.0])  # the book's step 28
    np.testing.assert_allclose(hessian(example.rosenbrock)(start), [[-798.0, 0.0], [0.0, 200.0]])


@needs_matplotlib
def test_rosenbrock_newton_converges_where_gradient_descent_crawls(tmp_path: Path) -> None:
    example = load_example('rosenbrock')
    result = example.main(['--iters', '300', '--out-dir', str(tmp_path)])
    assert result['newton_error'] < 1e-10
    assert result['newton_steps'] <= 7
    assert result['gd_error'] > 0.1  # 300 small steps are far from enough
    assert result['gd_path'].shape == (301, 2)
    assert_png(tmp_path / 'rosenbrock.png')


def test_rosenbrock_without_plot() -> None:
    example = load_example('rosenbrock')
    result = example.main(['--iters', '0', '--newton-iters', '2', '--no-plot'])
    assert result['figure'] is None and result['newton_steps'] == 2
    with pytest.raises(SystemExit):
        example.main(['--newton-iters', '0', '--no-plot'])


@needs_matplotlib
@pytest.mark.parametrize('order', ['second', 'first'])
def test_maml_lowers_the_post_adaptation_loss(tmp_path: Path, order: str) -> None:
    example = load_example('maml_sine')
    argv = ['--iters', '40', '--eval-every', '20', '--eval-tasks', '8', '--no-progress',
            '--out-dir', str(tmp_path)] + (['--first-order'] if order == 'first' else [])
    result = example.main(argv)
    assert result['iteration'] == [0, 20, 40]
    assert np.all(np.isfinite(result['after'])) and np.all(np.isfinite(result['before']))
    assert result['after'][-1] < 0.8 * result['after'][0]
    assert_png(tmp_path / 'maml_sine.png')


def test_maml_first_order_drops_only_the_second_derivative() -> None:
    """First order: the meta-gradient is the query-loss gradient at the adapted parameters; second
    order differs from it by the curvature term."""
    example = load_example('maml_sine')
    model = example.make_model(0)
    x_s, y_s, x_q, y_q, *_ = example.sample_tasks(np.random.default_rng(0), 1, 5)[0]
    theta = dict(model.named_params())

    def meta_gradient(first_order: bool) -> dict[str, np.ndarray]:
        model.cleargrads()
        adapted = example.adapt(model, theta, x_s, y_s, 0.05, first_order=first_order)
        example.task_loss(model, adapted, x_q, y_q).backward()
        return {k: p.grad.data.copy() for k, p in theta.items()}

    first, second = meta_gradient(True), meta_gradient(False)
    adapted_arrays = example.adapt(model, {k: p.data for k, p in theta.items()}, x_s, y_s, 0.05)
    at_adapted = grad(lambda p: example.task_loss(model, p, x_q, y_q))(adapted_arrays)
    for k in theta:
        np.testing.assert_allclose(first[k], at_adapted[k], rtol=1e-5, atol=1e-6)
    assert any(not np.allclose(first[k], second[k], rtol=1e-3, atol=1e-5) for k in theta)


def test_maml_rejects_bad_options(tmp_path: Path) -> None:
    example = load_example('maml_sine')
    with pytest.raises(SystemExit):
        example.main(['--iters', '0', '--out-dir', str(tmp_path)])
