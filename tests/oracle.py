"""One checker for every op: forward, gradient and gradient-of-gradient against PyTorch, plus
finite differences. Test modules describe ops as table rows and call ``check_op`` on each row.

``check_op(ours, theirs, inputs)``:
- ``ours(*variables)`` returns a dezero Variable; ``theirs(*tensors)`` the same computation in torch;
- forward values must agree;
- first order: for a random upstream gradient ``gy``, the gradients of ``sum(y * gy)`` with respect to
  every input in ``wrt`` agree with torch's and with central differences (float64);
- second order: with ``create_graph=True``, the gradient of ``sum(g_i * v_i)`` (``g`` the first
  gradients, ``v`` random) agrees with torch's double backward.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from dezero import Variable
from dezero.utils import numerical_grad

torch.set_num_threads(1)


def to_torch(a: np.ndarray, requires_grad: bool = False) -> torch.Tensor:
    t = torch.from_numpy(np.array(a))
    if requires_grad:
        t.requires_grad_(True)
    return t


def _assert_close(ours: np.ndarray, theirs: np.ndarray, what: str, rtol: float, atol: float) -> None:
    assert ours.shape == tuple(theirs.shape), f'{what}: shape {ours.shape} != {tuple(theirs.shape)}'
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=atol, err_msg=what)


def check_op(ours: Callable[..., Variable], theirs: Callable[..., torch.Tensor],
             inputs: Sequence[np.ndarray], wrt: Sequence[int] | None = None, *,
             rtol: float = 1e-6, atol: float = 1e-8, numerical: bool = True,
             second_order: bool = True, seed: int = 0) -> None:
    """Check an op against torch (forward, first and second order) and finite differences.

    ``inputs`` are float64 arrays (non-float inputs such as labels are passed through untouched and
    never differentiated); ``wrt`` lists the indices to differentiate (default: every float input).
    """
    rng = np.random.default_rng(seed)
    inputs = [np.asarray(a) for a in inputs]
    if wrt is None:
        wrt = [i for i, a in enumerate(inputs) if a.dtype.kind == 'f']

    xs = [Variable(a.copy()) if i in wrt else a for i, a in enumerate(inputs)]
    ts = [to_torch(a, requires_grad=i in wrt) for i, a in enumerate(inputs)]
    y = ours(*xs)
    yt = theirs(*ts)
    _assert_close(y.data, yt.detach().numpy(), 'forward', rtol, atol)
    assert y.data.dtype == yt.detach().numpy().dtype, f'dtype {y.data.dtype} != {yt.dtype}'
    if not wrt:
        return

    gy = rng.standard_normal(y.shape)
    # The upstream gradient is a Variable too, so the second-order check also covers backward's
    # dependence on gy (a backward that treats gy as a constant fails there).
    gy_var = Variable(gy.copy())
    gy_t = to_torch(gy, requires_grad=second_order)
    (y * gy_var).sum().backward(create_graph=second_order)
    gts = torch.autograd.grad((yt * gy_t).sum(), [ts[i] for i in wrt], create_graph=second_order)
    for i, gt in zip(wrt, gts):
        assert xs[i].grad is not None, f'no gradient for input {i}'
        _assert_close(xs[i].grad.data, gt.detach().numpy(), f'gradient of input {i}', rtol, atol)

    if numerical:
        for i in wrt:
            def f_i(a, i=i):
                args = [Variable(a) if j == i else (Variable(x.data.copy()) if isinstance(x, Variable) else x)
                        for j, x in enumerate(xs)]
                return ours(*args) * gy
            numeric = numerical_grad(f_i, inputs[i].astype(np.float64).copy())
            _assert_close(xs[i].grad.data, numeric, f'gradient of input {i} vs finite differences',
                          1e-4, 1e-5)

    if second_order:
        vs = [rng.standard_normal(inputs[i].shape) for i in wrt]
        first = [xs[i].grad for i in wrt]
        for i in wrt:
            xs[i].cleargrad()
        gy_var.cleargrad()
        total = sum((g * v).sum() for g, v in zip(first, vs))
        total.backward()
        total_t = sum((g * to_torch(v)).sum() for g, v in zip(gts, vs))
        if not total_t.requires_grad:  # torch says the gradient is constant: ours must be zero or absent
            for i in wrt:
                if xs[i].grad is not None:
                    _assert_close(xs[i].grad.data, np.zeros(inputs[i].shape), f'second order of {i}',
                                  rtol, atol)
            return
        seconds = torch.autograd.grad(total_t, [ts[i] for i in wrt] + [gy_t], allow_unused=True)
        for i, st in zip(list(wrt) + ['gy'], seconds):
            target = gy_var if i == 'gy' else xs[i]
            expected = np.zeros(target.shape) if st is None else st.detach().numpy()
            got = np.zeros(target.shape) if target.grad is None else target.grad.data
            _assert_close(got, expected, f'second-order gradient of input {i}', rtol, atol)


def assert_float32_kept(op: Callable[[Variable], Variable], x_shape: tuple[int, ...], name: str = '') -> None:
    """``op`` applied to a float32 Variable of ``x_shape`` gives float32 values and, after backward,
    a float32 gradient: no float64 constant or intermediate crept in."""
    x = Variable(np.random.default_rng(0).standard_normal(x_shape).astype(np.float32))
    y = op(x)
    y.backward()
    assert y.dtype == np.float32, name
    assert x.grad.dtype == np.float32, name
