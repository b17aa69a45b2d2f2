"""Minimise the Rosenbrock function with DeZero: gradient descent, then Newton's method with ``hessian``.

f(x) = 100 (x1 - x0^2)^2 + (1 - x0)^2 has its minimum 0 at (1, 1), at the end of a long curved valley
where plain gradient descent crawls. Gradient descent (the book's step 28) needs thousands of small
steps of ``grad(f)``; Newton's method, ``x <- x - H^-1 g`` with the 2x2 Hessian from
``dezero.func.hessian`` (the Jacobian of the gradient, by double backprop), gets there in a handful.
The figure shows both paths over the function's contours.

Run: ``python examples/rosenbrock.py [--iters 10000] [--lr 0.001] [--newton-iters 10]``.
Writes ``out/rosenbrock.png`` (needs matplotlib; ``--no-plot`` skips it).
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from _common import example_parser
from _plotting import pyplot, save_figure

from dezero import Variable
from dezero.func import grad, hessian

START = (0.0, 2.0)


def rosenbrock(x: Variable) -> Variable:
    """The Rosenbrock function of a point ``x`` of shape (2,): a scalar, minimum 0 at (1, 1)."""
    x0, x1 = x[0], x[1]
    return 100 * (x1 - x0 ** 2) ** 2 + (1 - x0) ** 2


def gradient_descent(start: Sequence[float] = START, lr: float = 0.001, iters: int = 10_000,
                     log_every: int = 1000) -> np.ndarray:
    """Plain gradient descent ``x <- x - lr * grad f(x)`` from ``start``; prints the point every
    ``log_every`` steps (0: never). Returns the path, shape (iters + 1, 2)."""
    gradient = grad(rosenbrock)
    path = [np.array(start, dtype=np.float64)]
    for i in range(iters):
        x = path[-1]
        if log_every and i % log_every == 0:
            print(f'  gd   {i:6d}: x = ({x[0]:.6f}, {x[1]:.6f})  f = {value_at(x):.6g}')
        path.append(x - lr * gradient(x))
    return np.array(path)


def newton(start: Sequence[float] = START, iters: int = 10, tol: float = 1e-12,
           verbose: bool = True) -> np.ndarray:
    """Newton's method ``x <- x - H(x)^-1 grad f(x)`` from ``start``, stopping once the step is below
    ``tol``. Returns the path, shape (steps + 1, 2)."""
    gradient, curvature = grad(rosenbrock), hessian(rosenbrock)
    path = [np.array(start, dtype=np.float64)]
    for steps in range(1, iters + 1):
        x = path[-1]
        step = np.linalg.solve(curvature(x), gradient(x))
        path.append(x - step)
        if verbose:
            print(f'  newton {steps:4d}: x = ({path[-1][0]:.12f}, {path[-1][1]:.12f})  '
                  f'f = {value_at(path[-1]):.3g}')
        if np.max(np.abs(step)) < tol:
            break
    return np.array(path)


def value_at(x: np.ndarray) -> float:
    return float(rosenbrock(Variable(np.asarray(x, dtype=np.float64))).data)


def plot_paths(gd_path: np.ndarray, newton_path: np.ndarray, path: str) -> Any:
    """Both optimisation paths over the contours of log(1 + f); saved as a PNG to ``path``."""
    plt = pyplot()
    grid0, grid1 = np.meshgrid(np.linspace(-1.5, 2.0, 300), np.linspace(-0.5, 3.0, 300))
    values = 100 * (grid1 - grid0 ** 2) ** 2 + (1 - grid0) ** 2
    fig, ax = plt.subplots(figsize=(6, 5))
    ax.contour(grid0, grid1, np.log1p(values), levels=25, cmap='viridis', linewidths=0.7)
    every = max(len(gd_path) // 200, 1)
    ax.plot(gd_path[::every, 0], gd_path[::every, 1], '.-', ms=2, lw=0.8,
            label=f'gradient descent ({len(gd_path) - 1} steps)')
    ax.plot(newton_path[:, 0], newton_path[:, 1], 'o-', ms=4, label=f"Newton ({len(newton_path) - 1} steps)")
    ax.plot([1.0], [1.0], 'k*', ms=12, label='minimum (1, 1)')
    ax.set(xlabel='x0', ylabel='x1', title='Rosenbrock: gradient descent vs Newton with hessian(f)')
    ax.legend(loc='upper left', fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
    return fig


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run both methods from (0, 2); returns the distances to (1, 1), Newton's step count, the paths
    and the figure (None with ``--no-plot``)."""
    parser = example_parser(__doc__)
    parser.add_argument('--iters', type=int, default=10_000, help='gradient-descent steps')
    parser.add_argument('--lr', type=float, default=0.001, help='gradient-descent learning rate')
    parser.add_argument('--newton-iters', type=int, default=10, help="at most this many Newton steps")
    parser.add_argument('--out-dir', default='out', help='directory of the figure')
    parser.add_argument('--no-plot', action='store_true', help='skip the figure (no matplotlib needed)')
    args = parser.parse_args(argv)
    if args.iters < 0 or args.newton_iters < 1:
        parser.error(f'--iters must be >= 0 and --newton-iters >= 1, '
                     f'got {args.iters} and {args.newton_iters}')

    print(f'Rosenbrock f(x) = 100 (x1 - x0^2)^2 + (1 - x0)^2 from {START}; minimum 0 at (1, 1)')
    print(f'Gradient descent with grad(f), lr {args.lr}, {args.iters} steps:')
    gd_path = gradient_descent(START, args.lr, args.iters, log_every=max(args.iters // 10, 1))
    print(f'  result: x = ({gd_path[-1][0]:.6f}, {gd_path[-1][1]:.6f}), f = {value_at(gd_path[-1]):.3g}')
    print("Newton's method with hessian(f) and grad(f):")
    newton_path = newton(START, args.newton_iters)
    print(f'  result: x = ({newton_path[-1][0]:.12f}, {newton_path[-1][1]:.12f}), '
          f'f = {value_at(newton_path[-1]):.3g}')
    gd_error = float(np.abs(gd_path[-1] - 1).max())
    newton_error = float(np.abs(newton_path[-1] - 1).max())
    newton_steps = len(newton_path) - 1
    print(f'Summary: gradient descent {args.iters} steps -> distance to (1, 1) {gd_error:.2e}; '
          f'Newton {newton_steps} steps -> {newton_error:.2e}')
    figure = None
    if not args.no_plot:
        os.makedirs(args.out_dir, exist_ok=True)
        figure_path = os.path.join(args.out_dir, 'rosenbrock.png')
        figure = plot_paths(gd_path, newton_path, figure_path)
        print(f'paths written to {figure_path}')
    return {'gd_error': gd_error, 'newton_error': newton_error, 'newton_steps': newton_steps,
            'gd_path': gd_path, 'newton_path': newton_path, 'figure': figure}


if __name__ == '__main__':
    main()
