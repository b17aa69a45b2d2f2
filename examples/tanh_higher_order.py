"""Higher-order derivatives of tanh by repeated backward, and the graph of the last one.

``y.backward(create_graph=True)`` records the backward pass itself, so ``x.grad`` is a Variable with
a graph behind it that can be differentiated again. Repeating that ``--iters`` times gives the
(iters + 1)-th derivative of tanh at ``--x``. Each value is checked against the exact one: every
derivative of tanh is a polynomial in t = tanh(x), with P_0 = t and P_{n+1}(t) = P_n'(t) (1 - t^2).

Run: ``python examples/tanh_higher_order.py [--iters 1] [--x 1.0]`` (``--iters 0`` plots the first
derivative's graph, the book's default 1 the second's; the graph grows quickly with more iterations).
Writes ``out/tanh.png``; needs Graphviz's ``dot``.
"""
from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from _common import example_parser, int_at_least
from numpy.polynomial import Polynomial

import dezero.functions as F
from dezero import Variable
from dezero.utils import plot_dot_graph


def exact_tanh_derivatives(x: float, max_order: int) -> list[float]:
    """The 1st to ``max_order``-th derivatives of tanh at scalar ``x``, from the polynomial recurrence."""
    t = np.tanh(x)
    one_minus_t2 = Polynomial([1.0, 0.0, -1.0])
    poly = Polynomial([0.0, 1.0])  # P_0(t) = t
    values = []
    for _ in range(max_order):
        poly = poly.deriv() * one_minus_t2
        values.append(float(poly(t)))
    return values


def main(argv: Sequence[str] | None = None) -> dict[str, list[float]]:
    parser = example_parser(__doc__)
    parser.add_argument('--iters', type=int_at_least(0), default=1,
                        help='extra backward passes: the plot shows derivative number iters + 1')
    parser.add_argument('--x', type=float, default=1.0, help='the point at which tanh is differentiated')
    parser.add_argument('--out-dir', default='out', help='directory for the graph image')
    args = parser.parse_args(argv)

    x = Variable(np.array(args.x), name='x')
    y = F.tanh(x)
    y.name = 'y'
    y.backward(create_graph=True)
    derivatives = [float(x.grad.data)]
    for _ in range(args.iters):
        gx = x.grad
        x.cleargrad()  # otherwise the next backward would add to the previous derivative
        gx.backward(create_graph=True)
        derivatives.append(float(x.grad.data))

    exact = exact_tanh_derivatives(args.x, args.iters + 1)
    for order, (ours, expected) in enumerate(zip(derivatives, exact), start=1):
        print(f'd^{order} tanh / dx^{order} at x={args.x:g}: {ours: .10f}   exact {expected: .10f}')

    gx = x.grad
    gx.name = f'gx{args.iters + 1}'
    os.makedirs(args.out_dir, exist_ok=True)
    path = os.path.join(args.out_dir, 'tanh.png')
    plot_dot_graph(gx, verbose=False, to_file=path)  # writes atomically
    print(f'graph of derivative {args.iters + 1} written to {path}')
    return {'derivatives': derivatives, 'exact': exact}


if __name__ == '__main__':
    main()
