"""Minimise the Rosenbrock function with DeZero: gradient descent, then Newton's method.

f(x0, x1) = 100 (x1 - x0^2)^2 + (1 - x0)^2 has its minimum 0 at (1, 1), at the end of a long curved
valley where plain gradient descent crawls. Gradient descent (the book's step 28) needs thousands of
small steps; Newton's method, with the 2x2 Hessian obtained by differentiating each gradient component
again (double backprop through ``backward(create_graph=True)``), gets there in a handful.

Run: ``python examples/rosenbrock.py [--iters 10000] [--lr 0.001] [--newton-iters 10]``.
"""
from __future__ import annotations

import argparse
from collections.abc import Sequence

import numpy as np

from dezero import Variable

START = (0.0, 2.0)


def rosenbrock(x0: Variable, x1: Variable) -> Variable:
    """The Rosenbrock function of two Variables of the same shape (elementwise): minimum 0 at (1, 1)."""
    return 100 * (x1 - x0 ** 2) ** 2 + (1 - x0) ** 2


def gradient_descent(start: tuple[float, float] = START, lr: float = 0.001, iters: int = 10_000,
                     log_every: int = 1000) -> tuple[np.ndarray, float]:
    """Plain gradient descent from ``start``; prints the point every ``log_every`` steps (0: never).

    Returns the final point (shape (2,)) and the function value there.
    """
    x0, x1 = Variable(np.array(start[0])), Variable(np.array(start[1]))
    for i in range(iters):
        y = rosenbrock(x0, x1)
        if log_every and i % log_every == 0:
            print(f'  gd   {i:6d}: x = ({float(x0.data):.6f}, {float(x1.data):.6f})  f = {float(y.data):.6g}')
        x0.cleargrad()
        x1.cleargrad()
        y.backward()
        x0.data = x0.data - lr * x0.grad.data
        x1.data = x1.data - lr * x1.grad.data
    point = np.array([float(x0.data), float(x1.data)])
    return point, float(rosenbrock(x0, x1).data)


def gradient_and_hessian(f, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gradient (n,) and Hessian (n, n) of a scalar function of n scalar Variables at point ``x``.

    The gradient is computed with ``create_graph=True``, so each of its components is itself a graph;
    backpropagating component i gives row i of the Hessian.
    """
    xs = [Variable(np.array(v)) for v in x]
    y = f(*xs)
    y.backward(create_graph=True)
    grads = [v.grad for v in xs]
    hessian = np.empty((len(xs), len(xs)))
    for i, g in enumerate(grads):
        for v in xs:
            v.cleargrad()
        g.backward()
        hessian[i] = [0.0 if v.grad is None else float(v.grad.data) for v in xs]
    return np.array([float(g.data) for g in grads]), hessian


def newton(start: tuple[float, float] = START, iters: int = 10, tol: float = 1e-12,
           verbose: bool = True) -> tuple[np.ndarray, float, int]:
    """Newton's method ``x <- x - H^-1 g`` from ``start``, stopping once the step is below ``tol``.

    Returns the final point (shape (2,)), the function value there and the number of steps taken.
    """
    x = np.array(start, dtype=np.float64)
    steps = 0
    for steps in range(1, iters + 1):
        grad, hessian = gradient_and_hessian(rosenbrock, x)
        step = np.linalg.solve(hessian, grad)
        x = x - step
        if verbose:
            value = float(rosenbrock(Variable(np.array(x[0])), Variable(np.array(x[1]))).data)
            print(f'  newton {steps:4d}: x = ({x[0]:.12f}, {x[1]:.12f})  f = {value:.3g}')
        if np.max(np.abs(step)) < tol:
            break
    value = float(rosenbrock(Variable(np.array(x[0])), Variable(np.array(x[1]))).data)
    return x, value, steps


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--iters', type=int, default=10_000, help='gradient-descent steps (default 10000)')
    parser.add_argument('--lr', type=float, default=0.001, help='gradient-descent learning rate')
    parser.add_argument('--newton-iters', type=int, default=10, help="at most this many Newton steps")
    args = parser.parse_args(argv)

    print(f'Rosenbrock f(x0, x1) = 100 (x1 - x0^2)^2 + (1 - x0)^2 from {START}; minimum 0 at (1, 1)')
    print(f'Gradient descent, lr {args.lr}, {args.iters} steps:')
    gd_point, gd_value = gradient_descent(START, args.lr, args.iters, log_every=max(args.iters // 10, 1))
    print(f'  result: x = ({gd_point[0]:.6f}, {gd_point[1]:.6f}), f = {gd_value:.3g}')
    print("Newton's method, Hessian by double backprop:")
    nt_point, nt_value, nt_steps = newton(START, args.newton_iters)
    print(f'  result: x = ({nt_point[0]:.12f}, {nt_point[1]:.12f}), f = {nt_value:.3g}')
    gd_error = float(np.abs(gd_point - 1).max())
    nt_error = float(np.abs(nt_point - 1).max())
    print(f'Summary: gradient descent {args.iters} steps -> distance to (1, 1) {gd_error:.2e}; '
          f'Newton {nt_steps} steps -> {nt_error:.2e}')
    return {'gd_error': gd_error, 'newton_error': nt_error, 'newton_steps': float(nt_steps)}


if __name__ == '__main__':
    main()
