"""dezero.optimizers: 10-step trajectories against torch.optim (or the stated formula where the book
differs), hooks against their torch equivalents, dtype and in-place behaviour."""
import math

import numpy as np
import pytest
import torch

import dezero
import dezero._parallel
import dezero.functions as F
from dezero import Layer, Parameter, Variable, optimizers
from dezero.layers import Linear

STEPS = 10
rng = np.random.default_rng(0)
X = rng.standard_normal((6, 3))
T = rng.standard_normal((6, 2))
W0 = rng.standard_normal((3, 2))
B0 = rng.standard_normal(2)


class Affine(Layer):
    """``x @ W + b`` with fixed float64 initial values, for comparing trajectories."""

    def __init__(self, dtype=np.float64):
        super().__init__()
        self.W = Parameter(W0.astype(dtype))
        self.b = Parameter(B0.astype(dtype))

    def forward(self, x):
        return F.linear(x, self.W, self.b)


def loss_ours(model, x=X, t=T):
    y = model(x.astype(model.W.dtype))
    return ((y - t.astype(model.W.dtype)) ** 2).sum()


def trajectory_ours(optimizer, hooks=(), model=None):
    model = Affine() if model is None else model
    optimizer.setup(model)
    for hook in hooks:
        optimizer.add_hook(hook)
    path = []
    for _ in range(STEPS):
        model.cleargrads()
        loss_ours(model).backward()
        optimizer.update()
        path.append((model.W.data.copy(), model.b.data.copy()))
    return path


def trajectory_torch(make_optimizer, clip=None):
    W = torch.tensor(W0, requires_grad=True)
    b = torch.tensor(B0, requires_grad=True)
    optimizer = make_optimizer([W, b])
    x, t = torch.tensor(X), torch.tensor(T)
    path = []
    for _ in range(STEPS):
        optimizer.zero_grad()
        ((x @ W + b - t) ** 2).sum().backward()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_([W, b], clip)
        optimizer.step()
        path.append((W.detach().numpy().copy(), b.detach().numpy().copy()))
    return path


def assert_same_path(ours, theirs, rtol=1e-6, atol=1e-9):
    for step, ((W, b), (Wt, bt)) in enumerate(zip(ours, theirs)):
        np.testing.assert_allclose(W, Wt, rtol=rtol, atol=atol, err_msg=f'W after step {step + 1}')
        np.testing.assert_allclose(b, bt, rtol=rtol, atol=atol, err_msg=f'b after step {step + 1}')


TORCH_CASES = [
    ('SGD', lambda: optimizers.SGD(lr=0.02), lambda p: torch.optim.SGD(p, lr=0.02)),
    ('MomentumSGD', lambda: optimizers.MomentumSGD(lr=0.02, momentum=0.9),
     lambda p: torch.optim.SGD(p, lr=0.02, momentum=0.9)),
    ('AdaGrad', lambda: optimizers.AdaGrad(lr=0.1, eps=1e-8),
     lambda p: torch.optim.Adagrad(p, lr=0.1, eps=1e-8)),
    ('AdaGrad-big-eps', lambda: optimizers.AdaGrad(lr=0.1, eps=0.5),
     lambda p: torch.optim.Adagrad(p, lr=0.1, eps=0.5)),
    ('AdaDelta', lambda: optimizers.AdaDelta(rho=0.95, eps=1e-6),
     lambda p: torch.optim.Adadelta(p, lr=1.0, rho=0.95, eps=1e-6)),
    ('AdaDelta-lr', lambda: optimizers.AdaDelta(rho=0.9, eps=1e-3, lr=0.5),
     lambda p: torch.optim.Adadelta(p, lr=0.5, rho=0.9, eps=1e-3)),
    ('RMSprop', lambda: optimizers.RMSprop(lr=0.01, alpha=0.99, eps=1e-8),
     lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.99, eps=1e-8)),
    ('RMSprop-big-eps', lambda: optimizers.RMSprop(lr=0.05, alpha=0.9, eps=0.3),
     lambda p: torch.optim.RMSprop(p, lr=0.05, alpha=0.9, eps=0.3)),
    # With eps = 0 the book's Adam and torch's are the same formula.
    ('Adam-eps0', lambda: optimizers.Adam(alpha=0.05, eps=0.0),
     lambda p: torch.optim.Adam(p, lr=0.05, eps=0.0)),
    ('AdamW', lambda: optimizers.AdamW(alpha=0.05), lambda p: torch.optim.AdamW(p, lr=0.05)),
    ('AdamW-big-eps', lambda: optimizers.AdamW(alpha=0.05, beta1=0.8, beta2=0.9, eps=0.3, weight_decay=0.2),
     lambda p: torch.optim.AdamW(p, lr=0.05, betas=(0.8, 0.9), eps=0.3, weight_decay=0.2)),
]


@pytest.mark.parametrize('name,ours,theirs', TORCH_CASES, ids=[c[0] for c in TORCH_CASES])
def test_trajectory_matches_torch(name, ours, theirs):
    assert_same_path(trajectory_ours(ours()), trajectory_torch(theirs))


def adam_book_reference(alpha, beta1, beta2, eps):
    """The book's Adam, from its formula, in NumPy:
    m += (1-b1)(g-m); v += (1-b2)(g²-v); p -= alpha*sqrt(1-b2^t)/(1-b1^t) * m/(sqrt(v)+eps)."""
    W, b = W0.copy(), B0.copy()
    state = [(np.zeros_like(W), np.zeros_like(W)), (np.zeros_like(b), np.zeros_like(b))]
    path = []
    for t in range(1, STEPS + 1):
        residual = 2 * (X @ W + b - T)
        grads = [X.T @ residual, residual.sum(axis=0)]
        lr = alpha * math.sqrt(1 - beta2 ** t) / (1 - beta1 ** t)
        for p, g, (m, v) in zip((W, b), grads, state):
            m += (1 - beta1) * (g - m)
            v += (1 - beta2) * (g * g - v)
            p -= lr * m / (np.sqrt(v) + eps)
        path.append((W.copy(), b.copy()))
    return path


@pytest.mark.parametrize('eps', [1e-8, 0.3])
def test_adam_follows_the_books_formula(eps):
    ours = trajectory_ours(optimizers.Adam(alpha=0.05, beta1=0.8, beta2=0.9, eps=eps))
    assert_same_path(ours, adam_book_reference(0.05, 0.8, 0.9, eps))


def test_adam_eps_placement_differs_from_torch():
    # torch adds eps after the bias correction; with a large eps the trajectories visibly differ.
    ours = trajectory_ours(optimizers.Adam(alpha=0.05, eps=0.3))
    theirs = trajectory_torch(lambda p: torch.optim.Adam(p, lr=0.05, eps=0.3))
    assert not np.allclose(ours[-1][0], theirs[-1][0], rtol=1e-3)


def test_adam_lr_property_is_bias_corrected_step():
    optimizer = optimizers.Adam(alpha=0.1, beta1=0.9, beta2=0.999)
    trajectory_ours(optimizer)
    assert optimizer.t == STEPS
    assert optimizer.lr == pytest.approx(0.1 * math.sqrt(1 - 0.999 ** 10) / (1 - 0.9 ** 10), rel=1e-12)


def test_default_hyper_parameters():
    assert optimizers.SGD().lr == 0.01
    momentum = optimizers.MomentumSGD()
    assert (momentum.lr, momentum.momentum) == (0.01, 0.9)
    adagrad = optimizers.AdaGrad()
    assert (adagrad.lr, adagrad.eps) == (0.001, 1e-8)
    adadelta = optimizers.AdaDelta()
    assert (adadelta.rho, adadelta.eps, adadelta.lr) == (0.95, 1e-6, 1.0)
    rmsprop = optimizers.RMSprop()
    assert (rmsprop.lr, rmsprop.alpha, rmsprop.eps) == (0.01, 0.99, 1e-8)
    adam = optimizers.Adam()
    assert (adam.alpha, adam.beta1, adam.beta2, adam.eps) == (0.001, 0.9, 0.999, 1e-8)
    adamw = optimizers.AdamW()
    assert (adamw.alpha, adamw.eps, adamw.weight_decay) == (0.001, 1e-8, 0.01)


# --- hooks -------------------------------------------------------------------------------------
def test_weight_decay_matches_torch_sgd_weight_decay():
    ours = trajectory_ours(optimizers.SGD(lr=0.02), hooks=[optimizers.WeightDecay(0.5)])
    theirs = trajectory_torch(lambda p: torch.optim.SGD(p, lr=0.02, weight_decay=0.5))
    assert_same_path(ours, theirs)


def test_weight_decay_matches_torch_with_momentum():
    ours = trajectory_ours(optimizers.MomentumSGD(lr=0.02), hooks=[optimizers.WeightDecay(0.5)])
    theirs = trajectory_torch(lambda p: torch.optim.SGD(p, lr=0.02, momentum=0.9, weight_decay=0.5))
    assert_same_path(ours, theirs)


@pytest.mark.parametrize('max_norm', [0.5, 1e6])
def test_clip_grad_matches_torch_clip_grad_norm(max_norm):
    ours = trajectory_ours(optimizers.SGD(lr=0.02), hooks=[optimizers.ClipGrad(max_norm)])
    theirs = trajectory_torch(lambda p: torch.optim.SGD(p, lr=0.02), clip=max_norm)
    assert_same_path(ours, theirs)


def test_hooks_never_write_into_shared_gradients():
    # The two inputs of an addition receive the same gradient Variable from backward.
    a = Parameter(np.array([1.0, 2.0]))
    b = Parameter(np.array([3.0, 5.0]))
    (a + b).sum().backward()
    shared = a.grad.data.copy()
    optimizers.WeightDecay(0.1)([a, b])
    np.testing.assert_allclose(a.grad.data, shared + 0.1 * a.data)
    np.testing.assert_allclose(b.grad.data, shared + 0.1 * b.data)
    a.grad = b.grad = Variable(np.array([3.0, 4.0]))
    optimizers.ClipGrad(1.0)([a, b])  # total norm sqrt(50)
    expected = np.array([3.0, 4.0]) / (math.sqrt(50) + 1e-6)
    np.testing.assert_allclose(a.grad.data, expected)
    np.testing.assert_allclose(b.grad.data, expected)


class TwoLinear(Layer):
    def __init__(self):
        super().__init__()
        self.l0 = Linear(4, dtype=np.float64)
        self.l1 = Linear(2, dtype=np.float64)

    def forward(self, x):
        return self.l1(F.sigmoid(self.l0(x)))


def test_freeze_param_keeps_frozen_layer_fixed():
    np.random.seed(0)
    model = TwoLinear()
    optimizer = optimizers.SGD(lr=0.1).setup(model)
    loss_fn = lambda: ((model(X) - T) ** 2).sum()  # noqa: E731
    loss_fn().backward()  # creates the lazy weights
    optimizer.add_hook(optimizers.FreezeParam(model.l0, model.l1.b))
    before = [p.data.copy() for p in model.params()]
    for _ in range(3):
        model.cleargrads()
        loss_fn().backward()
        optimizer.update()
    after = [p.data for p in model.params()]
    np.testing.assert_array_equal(after[0], before[0])  # l0/W
    np.testing.assert_array_equal(after[1], before[1])  # l0/b
    np.testing.assert_array_equal(after[3], before[3])  # l1/b
    assert not np.allclose(after[2], before[2])  # l1/W trained


def test_freeze_param_rejects_other_types():
    with pytest.raises(TypeError, match='FreezeParam.*int'):
        optimizers.FreezeParam(3)


def test_hooks_receive_the_parameters_that_have_gradients():
    model = Affine()
    model.extra = Parameter(np.ones(2))  # never used: no gradient
    seen = []
    optimizer = optimizers.SGD().setup(model)
    optimizer.add_hook(lambda params: seen.append(list(params)))
    loss_ours(model).backward()
    optimizer.update()
    assert len(seen) == 1 and seen[0][0] is model.W and seen[0][1] is model.b and len(seen[0]) == 2
    np.testing.assert_array_equal(model.extra.data, np.ones(2))


# --- mechanics ---------------------------------------------------------------------------------
ALL = [optimizers.SGD, optimizers.MomentumSGD, optimizers.AdaGrad, optimizers.AdaDelta,
       optimizers.RMSprop, optimizers.Adam, optimizers.AdamW]


@pytest.mark.parametrize('cls', ALL, ids=[c.__name__ for c in ALL])
def test_float32_updates_in_place_and_stay_float32(cls):
    model = Affine(np.float32)
    W_array = model.W.data
    optimizer = cls().setup(model)
    for _ in range(2):
        model.cleargrads()
        loss_ours(model).backward()
        optimizer.update()
    assert model.W.data is W_array  # updated in place
    assert model.W.dtype == np.float32 and model.b.dtype == np.float32
    assert not np.array_equal(model.W.data, W0.astype(np.float32))
    for state in optimizer.state.values():
        assert all(array.dtype == np.float32 for array in state.values())


@pytest.mark.parametrize('cls', ALL, ids=[c.__name__ for c in ALL])
def test_float32_trajectory_close_to_float64(cls):
    path32 = trajectory_ours(cls(), model=Affine(np.float32))
    path64 = trajectory_ours(cls(), model=Affine(np.float64))
    np.testing.assert_allclose(path32[-1][0], path64[-1][0], rtol=1e-4, atol=1e-5)


def test_parameters_without_gradient_are_skipped():
    model = Affine()
    optimizer = optimizers.Adam().setup(model)
    model.W.grad = Variable(np.ones_like(W0))
    optimizer.update()
    np.testing.assert_array_equal(model.b.data, B0)
    assert [p is model.W for p in optimizer.state] == [True]


def test_setup_returns_self_and_accepts_a_parameter_list():
    p = Parameter(np.array([1.0, -2.0]))
    optimizer = optimizers.SGD(lr=0.5)
    assert optimizer.setup([p]) is optimizer
    p.grad = Variable(np.array([2.0, 2.0]))
    optimizer.update()
    np.testing.assert_allclose(p.data, [0.0, -3.0])
    with pytest.raises(TypeError, match='SGD.setup.*ndarray'):
        optimizers.SGD().setup([np.ones(2)])


def test_update_before_setup_is_a_clear_error():
    with pytest.raises(RuntimeError, match='Adam.update: call setup'):
        optimizers.Adam().update()


def test_state_follows_its_parameter_between_devices(monkeypatch):
    # Without a GPU, stand in for one with a distinct array class: the state must be converted when
    # the parameter's array class changes.
    class FakeGPUArray(np.ndarray):
        pass

    model = Affine()
    optimizer = optimizers.MomentumSGD().setup(model)
    loss_ours(model).backward()
    optimizer.update()
    monkeypatch.setattr(optimizers, 'as_cupy', lambda a: np.asarray(a).view(FakeGPUArray))
    model.W.data = model.W.data.view(FakeGPUArray)
    state = optimizer._state(model.W)
    assert isinstance(state['v'], FakeGPUArray)
    monkeypatch.setattr(optimizers, 'as_numpy', np.asarray)
    optimizer.to_cpu()
    assert all(type(a) is np.ndarray for s in optimizer.state.values() for a in s.values())


@pytest.mark.parametrize('make', [lambda: optimizers.SGD(lr=0.1), lambda: optimizers.MomentumSGD(lr=0.1),
                                  lambda: optimizers.AdaGrad(lr=0.1), lambda: optimizers.AdaDelta(),
                                  lambda: optimizers.RMSprop(), lambda: optimizers.Adam(alpha=0.01),
                                  lambda: optimizers.AdamW(alpha=0.01)],
                         ids=['SGD', 'MomentumSGD', 'AdaGrad', 'AdaDelta', 'RMSprop', 'Adam', 'AdamW'])
def test_updates_split_over_threads_give_the_same_trajectory(monkeypatch, make):
    """Large parameters are updated in slices on several threads; the result must not change."""
    def trajectory():
        rng = np.random.default_rng(3)
        param = dezero.Parameter(rng.standard_normal((16, 5)).astype(np.float32))
        optimizer = make().setup([param])
        for _ in range(5):
            param.grad = dezero.Variable(rng.standard_normal((16, 5)).astype(np.float32))
            optimizer.update()
        return param.data

    serial = trajectory()
    monkeypatch.setattr(dezero._parallel, '_BLOCKED_MIN_WORK', 1)
    monkeypatch.setattr(dezero._parallel, '_BLOCK', 7)  # blocks of 7 of the 80 elements
    monkeypatch.setattr(dezero._threads, '_num_threads', 4)
    regions = []
    run_parts = dezero._parallel.run_parts
    monkeypatch.setattr(dezero._parallel, 'run_parts',
                        lambda body, parts: regions.append(parts) or run_parts(body, parts))
    split = trajectory()
    assert regions == [4] * 5  # every update ran on four threads
    np.testing.assert_array_equal(split, serial)
    assert split.dtype == np.float32
