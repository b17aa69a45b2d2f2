"""dezero.ops.math: sin, cos, tanh, exp, log against PyTorch to third order."""
import numpy as np
import pytest
import torch

import dezero.functions as F
from dezero import Variable
from tests.oracle import check_op

rng = np.random.default_rng(0)

CASES = [
    ('sin', F.sin, torch.sin, rng.standard_normal((3, 4))),
    ('cos', F.cos, torch.cos, rng.standard_normal((3, 4))),
    ('tanh', F.tanh, torch.tanh, rng.standard_normal((2, 3))),
    ('exp', F.exp, torch.exp, rng.standard_normal((5,))),
    ('log', F.log, torch.log, rng.uniform(0.5, 2.0, (2, 2))),
]


@pytest.mark.parametrize('name,ours,theirs,x', CASES, ids=[c[0] for c in CASES])
def test_against_torch(name, ours, theirs, x):
    check_op(ours, theirs, [x])


def test_sin_third_derivative_is_minus_cos():
    x = Variable(np.array(0.7))
    y = F.sin(x)
    y.backward(create_graph=True)
    for _ in range(2):
        gx = x.grad
        x.cleargrad()
        gx.backward(create_graph=True)
    assert np.isclose(x.grad.data, -np.cos(0.7))


@pytest.mark.parametrize('ours', [F.sin, F.exp, F.tanh])
def test_float32_stays_float32(ours):
    x = Variable(np.ones((2, 2), np.float32))
    y = ours(x)
    y.backward()
    assert y.dtype == np.float32 and x.grad.dtype == np.float32
