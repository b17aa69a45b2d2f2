"""What ``dezero.func``'s transforms cost against the plain forward and backward they are built on.

The loss of an MLP 100-256-256-10 (ReLU, softmax cross-entropy, batch 64, float32) as a function of
its parameters through ``functional_call``: one forward, one forward + backward by hand
(``loss.backward()``), ``grad`` and ``value_and_grad`` of it; and the Jacobian of the 10 class
scores of one sample with respect to its input, by ``jacobian`` against one forward and 10 backward
passes by hand. Medians of ``--repeats`` calls after a warm-up, in this process. Not a comparison
with PyTorch (``run.py`` does those). Run: ``python benchmarks/func_cost.py [--repeats 200]``.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
from collections.abc import Callable

import numpy as np

import dezero.functions as F
from dezero import Variable
from dezero.func import functional_call, grad, jacobian, value_and_grad
from dezero.models import MLP

sys.path.insert(0, os.path.dirname(__file__))
from _harness import _time_steps  # noqa: E402

BATCH = 64
SIZES = (100, 256, 256, 10)


def median_ms(call: Callable[[], object], repeats: int) -> float:
    return statistics.median(_time_steps(call, repeats, warmup=max(3, repeats // 10))) * 1e3


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--repeats', type=int, default=200, help='timed calls per line')
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    np.random.seed(0)
    model = MLP(SIZES[1:], activation=F.relu)
    x = rng.standard_normal((BATCH, SIZES[0])).astype(np.float32)
    t = rng.integers(0, SIZES[-1], BATCH)
    model(x)  # create the lazily built weights
    params = {name: p.data for name, p in model.named_params()}

    def loss(params: dict) -> Variable:
        return F.softmax_cross_entropy(functional_call(model, params, x), t)

    def forward_backward() -> None:
        model.cleargrads()
        F.softmax_cross_entropy(model(x), t).backward()

    sample = x[:1]

    def scores(inputs: np.ndarray) -> Variable:
        return model(inputs)[0]

    def jacobian_by_hand() -> None:
        inputs = Variable(sample)
        outputs = model(inputs)
        for row in range(SIZES[-1]):
            inputs.cleargrad()
            outputs[0, row].backward()

    lines = {
        'forward (loss)': lambda: loss(params),
        'forward + backward by hand': forward_backward,
        'grad(loss)': lambda: grad(loss)(params),
        'value_and_grad(loss)': lambda: value_and_grad(loss)(params),
        f'jacobian of {SIZES[-1]} scores, one sample': lambda: jacobian(scores)(sample),
        f'one forward, {SIZES[-1]} backward passes by hand': jacobian_by_hand,
    }
    print(f'MLP {"-".join(map(str, SIZES))}, batch {BATCH}, float32; medians of {args.repeats} calls')
    for name, call in lines.items():
        print(f'{name:42s} {median_ms(call, args.repeats):8.3f} ms')


if __name__ == '__main__':
    main()
