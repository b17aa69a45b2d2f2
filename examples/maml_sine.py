"""Meta-learning (MAML) on sine waves with ``dezero.func``: learn an initialisation that fits a new sine
curve after a single gradient step on ten points.

Each task is a sine wave ``y = a sin(x - phase)`` with a random amplitude ``a`` in [0.1, 5] and phase in
[0, pi], seen through ``--shots`` support points and as many query points drawn from x in [-5, 5].
The model is a small MLP (1 -> 40 -> 40 -> 1, ReLU). For each task the inner step adapts the
meta-parameters theta by one SGD step on the support loss, written as a function of the parameters
with ``functional_call`` (theta holds the model's Parameters)::

    grads = grad(task_loss)(theta, x_support, y_support)      # Variables in, Variables out
    adapted = {k: theta[k] - inner_lr * grads[k] for k in theta}
    meta_loss = task_loss(adapted, x_query, y_query)

and the meta-loss (the query loss after adaptation, averaged over ``--meta-batch`` tasks) is
backpropagated to theta through the inner gradient, i.e. with second derivatives, then Adam updates
theta. ``--first-order`` drops the second-order term (first-order MAML): the inner gradient is taken
at the parameters' arrays, so it comes back as a constant. The post-adaptation loss on fixed held-out
tasks falls as meta-training proceeds; the figure shows it and one held-out task before and after the
step.

Run: ``python examples/maml_sine.py [--iters 4000] [--first-order]`` (about 45 s on two busy cores).
Writes ``out/maml_sine.png``.
"""
from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from _common import example_parser, int_at_least, progress, write
from _plotting import pyplot, save_figure

import dezero.functions as F
from dezero import Variable, no_grad
from dezero.func import functional_call, grad
from dezero.models import MLP
from dezero.optimizers import Adam

X_RANGE = (-5.0, 5.0)


def sample_tasks(rng: np.random.Generator, n_tasks: int, shots: int) -> list[tuple[np.ndarray, ...]]:
    """``n_tasks`` sine tasks, each ``(x_support, y_support, x_query, y_query, amplitude, phase)``;
    the point arrays are float32 of shape (shots, 1)."""
    tasks = []
    for _ in range(n_tasks):
        amplitude, phase = rng.uniform(0.1, 5.0), rng.uniform(0.0, np.pi)
        x = rng.uniform(*X_RANGE, size=(2 * shots, 1)).astype(np.float32)
        y = (amplitude * np.sin(x - phase)).astype(np.float32)
        tasks.append((x[:shots], y[:shots], x[shots:], y[shots:], amplitude, phase))
    return tasks


def make_model(seed: int) -> MLP:
    """The 1 -> 40 -> 40 -> 1 ReLU network, its weights drawn from ``seed``."""
    np.random.seed(seed)  # Linear draws its weights from NumPy's global generator
    model = MLP((40, 40, 1), activation=F.relu)
    model(np.zeros((1, 1), np.float32))
    return model


def task_loss(model: MLP, params: dict[str, Any], x: np.ndarray, y: np.ndarray) -> Variable:
    """Mean squared error of ``model`` run with ``params`` (path -> array or Variable) on (x, y)."""
    return F.mean_squared_error(functional_call(model, params, x), y)


def adapt(model: MLP, params: dict[str, Any], x: np.ndarray, y: np.ndarray, inner_lr: float,
          steps: int = 1, first_order: bool = False) -> dict[str, Any]:
    """``steps`` SGD steps on the loss of (x, y) from ``params``. Given Variables, the result is a
    differentiable function of them, through the inner gradient too (second-order MAML); with
    ``first_order`` the gradient is taken at their arrays, so it comes back as a constant."""
    loss_grad = grad(lambda p: task_loss(model, p, x, y))
    for _ in range(steps):
        at = params
        if first_order:
            at = {k: v.data if isinstance(v, Variable) else v for k, v in params.items()}
        grads = loss_grad(at)
        params = {path: params[path] - inner_lr * grads[path] for path in params}
    return params


def evaluate(model: MLP, tasks: Sequence[tuple[np.ndarray, ...]], inner_lr: float) -> tuple[float, float]:
    """Mean query loss over ``tasks`` before and after one inner step from the model's parameters."""
    theta = {path: p.data for path, p in model.named_params()}
    before, after = [], []
    for x_s, y_s, x_q, y_q, *_ in tasks:
        adapted = adapt(model, theta, x_s, y_s, inner_lr)
        with no_grad():
            before.append(float(task_loss(model, theta, x_q, y_q).data))
            after.append(float(task_loss(model, adapted, x_q, y_q).data))
    return float(np.mean(before)), float(np.mean(after))


def meta_train(model: MLP, iters: int, meta_batch: int, shots: int, inner_lr: float, meta_lr: float,
               first_order: bool, eval_tasks: Sequence[tuple[np.ndarray, ...]], eval_every: int,
               seed: int, show_progress: bool = True) -> dict[str, list[float]]:
    """Meta-train ``model`` in place with Adam; returns the held-out losses every ``eval_every``
    iterations (and at the start and end) under ``iteration``, ``before`` and ``after``."""
    rng = np.random.default_rng(seed)
    optimizer = Adam(alpha=meta_lr).setup(model)
    history = {'iteration': [], 'before': [], 'after': []}

    def record(iteration: int) -> None:
        before, after = evaluate(model, eval_tasks, inner_lr)
        history['iteration'].append(iteration)
        history['before'].append(before)
        history['after'].append(after)
        message = (f'iteration {iteration:5d}: held-out query loss before adaptation {before:.3f}, '
                   f'after one step {after:.3f}')
        write(message)

    record(0)
    iterations = range(1, iters + 1)
    for iteration in progress(iterations, 'meta-training') if show_progress else iterations:
        model.cleargrads()
        theta = dict(model.named_params())
        meta_loss = 0
        for x_s, y_s, x_q, y_q, *_ in sample_tasks(rng, meta_batch, shots):
            adapted = adapt(model, theta, x_s, y_s, inner_lr, first_order=first_order)
            meta_loss = meta_loss + task_loss(model, adapted, x_q, y_q)
        (meta_loss / meta_batch).backward()
        optimizer.update()
        if iteration % eval_every == 0 or iteration == iters:
            record(iteration)
    return history


def plot(history: dict[str, list[float]], model: MLP, task: tuple[np.ndarray, ...], inner_lr: float,
         title: str, path: str) -> Any:
    """Left: held-out losses over meta-training. Right: one held-out task, the meta-learned model
    before and after adaptation on its support points. Saved as a PNG to ``path``."""
    plt = pyplot()
    x_s, y_s, _, _, amplitude, phase = task
    grid = np.linspace(*X_RANGE, 200, dtype=np.float32).reshape(-1, 1)
    theta = {k: p.data for k, p in model.named_params()}
    with no_grad():
        before = functional_call(model, theta, grid).data
    after_1 = functional_call(model, adapt(model, theta, x_s, y_s, inner_lr, steps=1), grid).data
    after_10 = functional_call(model, adapt(model, theta, x_s, y_s, inner_lr, steps=10), grid).data

    fig, (ax_loss, ax_task) = plt.subplots(1, 2, figsize=(11, 4))
    ax_loss.plot(history['iteration'], history['before'], 's-', ms=3, label='before adaptation')
    ax_loss.plot(history['iteration'], history['after'], 'o-', ms=3, label='after one inner step')
    ax_loss.set(xlabel='meta-iteration', ylabel='query MSE (held-out tasks)', title='meta-training')
    ax_loss.grid(alpha=0.3)
    ax_loss.legend()
    ax_task.plot(grid, amplitude * np.sin(grid - phase), 'k-', lw=2, label='true curve')
    ax_task.plot(x_s, y_s, 'k^', ms=7, label=f'{len(x_s)} support points')
    ax_task.plot(grid, before, ':', label='meta-learned init')
    ax_task.plot(grid, after_1, '-', label='after 1 step')
    ax_task.plot(grid, after_10, '--', label='after 10 steps')
    ax_task.set(xlabel='x', ylabel='y', title=f'a held-out task: a = {amplitude:.2f}, phase = {phase:.2f}')
    ax_task.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path)
    return fig


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Meta-train, print and plot; returns the held-out loss history and the figure."""
    parser = example_parser(__doc__)
    parser.add_argument('--iters', type=int_at_least(1), default=4000, help='meta-iterations (Adam steps)')
    parser.add_argument('--meta-batch', type=int_at_least(1), default=4, help='tasks per meta-iteration')
    parser.add_argument('--shots', type=int_at_least(1), default=10,
                        help='support (and query) points per task')
    parser.add_argument('--inner-lr', type=float, default=0.01, help='learning rate of the inner SGD step')
    parser.add_argument('--meta-lr', type=float, default=0.001, help='Adam learning rate of the meta-update')
    parser.add_argument('--first-order', action='store_true',
                        help='first-order MAML: no second derivatives through the inner step')
    parser.add_argument('--eval-tasks', type=int_at_least(1), default=50,
                        help='held-out tasks for the loss curve')
    parser.add_argument('--eval-every', type=int_at_least(1), default=500,
                        help='meta-iterations between evaluations')
    parser.add_argument('--seed', type=int, default=0, help='seed of the weights and the tasks')
    parser.add_argument('--out-dir', default='out', help='directory of the figure')
    parser.add_argument('--no-progress', action='store_true', help='no tqdm progress bar')
    args = parser.parse_args(argv)

    model = make_model(args.seed)
    eval_tasks = sample_tasks(np.random.default_rng(args.seed + 1), args.eval_tasks, args.shots)
    kind = 'first-order' if args.first_order else 'second-order'
    print(f'MAML ({kind}) on sine tasks: {args.shots}-shot, one inner SGD step of lr {args.inner_lr}, '
          f'{args.iters} meta-iterations of {args.meta_batch} tasks, Adam lr {args.meta_lr}')
    start = time.perf_counter()
    history = meta_train(model, args.iters, args.meta_batch, args.shots, args.inner_lr, args.meta_lr,
                         args.first_order, eval_tasks, args.eval_every, args.seed,
                         show_progress=not args.no_progress)
    seconds = time.perf_counter() - start
    print(f'post-adaptation query loss on {args.eval_tasks} held-out tasks: {history["after"][0]:.3f} -> '
          f'{history["after"][-1]:.3f} ({seconds:.0f} s)')
    os.makedirs(args.out_dir, exist_ok=True)
    path = os.path.join(args.out_dir, 'maml_sine.png')
    figure = plot(history, model, eval_tasks[0], args.inner_lr,
                  f'MAML ({kind}), {args.shots}-shot sine regression', path)
    print(f'figure written to {path}')
    return {**history, 'seconds': seconds, 'figure': figure}


if __name__ == '__main__':
    main()
