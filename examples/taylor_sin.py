"""Sine from its Taylor series, differentiated by DeZero, and the graph that builds it.

``my_sin`` sums the Maclaurin series sin(x) = sum_i (-1)^i x^(2i+1) / (2i+1)! term by term with
ordinary Variable arithmetic, stopping once a term falls below ``--threshold``. Every term adds
nodes to the graph, so backward gives the derivative (cos x) without any special rule. The script
prints value and gradient next to ``F.sin``/its gradient and plots the graph with Graphviz.

Run: ``python examples/taylor_sin.py [--x 0.785] [--threshold 1e-4]`` (a smaller threshold such as
1e-150 gives the book's much deeper graph). Writes ``out/taylor_sin.png``; needs Graphviz's ``dot``.
"""
from __future__ import annotations

import math
import os
from collections.abc import Sequence

import numpy as np
from _common import example_parser

import dezero.functions as F
from dezero import Variable
from dezero.utils import plot_dot_graph


def my_sin(x: Variable, threshold: float = 1e-4, max_terms: int = 100_000) -> Variable:
    """sin(x) as a truncated Taylor series; scalar or any-shaped ``x``, same-shaped result.

    Terms are added until the largest absolute value in the latest term is below ``threshold``.
    """
    y = None
    for i in range(max_terms):
        coefficient = (-1) ** i / math.factorial(2 * i + 1)
        term = coefficient * x ** (2 * i + 1)
        y = term if y is None else y + term
        if np.max(np.abs(term.data)) < threshold:
            break
    return y


def count_nodes(output: Variable) -> tuple[int, int]:
    """Number of (functions, variables) in the graph behind ``output``."""
    functions, variables = set(), {id(output)}
    pending = [output.creator] if output.creator is not None else []
    while pending:
        func = pending.pop()
        if id(func) in functions:
            continue
        functions.add(id(func))
        for x in func.inputs:
            variables.add(id(x))
            if x.creator is not None:
                pending.append(x.creator)
    return len(functions), len(variables)


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    parser = example_parser(__doc__)
    parser.add_argument('--x', type=float, default=np.pi / 4,
                        help='where sin and its gradient are computed; the default is pi/4')
    parser.add_argument('--threshold', type=float, default=1e-4,
                        help='add Taylor terms until one is smaller than this')
    parser.add_argument('--out-dir', default='out', help='directory for the graph image')
    args = parser.parse_args(argv)

    x = Variable(np.array(args.x), name='x')
    y = my_sin(x, threshold=args.threshold)
    y.name = 'y'
    y.backward()
    series_value, series_grad = float(y.data), float(x.grad.data)

    x_ref = Variable(np.array(args.x))
    y_ref = F.sin(x_ref)
    y_ref.backward()
    exact_value, exact_grad = float(y_ref.data), float(x_ref.grad.data)

    n_functions, n_variables = count_nodes(y)
    print(f'x = {args.x:.6f}, threshold = {args.threshold:g}: graph of {n_functions} functions '
          f'and {n_variables} variables')
    print(f'my_sin(x) = {series_value:.12f}   F.sin(x) = {exact_value:.12f}   '
          f'|diff| = {abs(series_value - exact_value):.2e}')
    print(f'gradient  = {series_grad:.12f}   cos(x)   = {exact_grad:.12f}   '
          f'|diff| = {abs(series_grad - exact_grad):.2e}')

    os.makedirs(args.out_dir, exist_ok=True)
    path = os.path.join(args.out_dir, 'taylor_sin.png')
    plot_dot_graph(y, verbose=False, to_file=path)  # writes atomically
    print(f'graph written to {path}')
    return {'value': series_value, 'grad': series_grad, 'exact_value': exact_value,
            'exact_grad': exact_grad, 'functions': n_functions}


if __name__ == '__main__':
    main()
