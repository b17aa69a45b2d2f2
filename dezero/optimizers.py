"""Optimizers (SGD, MomentumSGD, AdaGrad, AdaDelta, RMSprop, Adam, AdamW) and gradient hooks
(WeightDecay, ClipGrad, FreezeParam).

Usage, as in the book::

    optimizer = optimizers.SGD(lr=0.2).setup(model)
    optimizer.add_hook(optimizers.WeightDecay(1e-4))
    for ...:
        model.cleargrads()
        loss = ...
        loss.backward()
        optimizer.update()

Updates are written in place into ``param.data`` and keep its dtype (hyper-parameters are Python
floats, which never promote a float32 array). Per-parameter state (momentum, squared-gradient averages)
lives in the optimizer, in ``optimizer.state[id(param)]``, created with the array module of the
parameter; when a parameter has moved between CPU and GPU its state follows it at the next update
(``optimizer.to_gpu()`` / ``to_cpu()`` move it at once).
"""
from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from dezero._parallel import apply_blocked
from dezero.core import Parameter, Variable
from dezero.cuda import as_cupy, as_numpy, get_array_module

__all__ = ['Optimizer', 'SGD', 'MomentumSGD', 'AdaGrad', 'AdaDelta', 'RMSprop', 'Adam', 'AdamW',
           'WeightDecay', 'ClipGrad', 'FreezeParam']


class Optimizer:
    """Base of the optimizers: ``setup(target)``, then ``update()`` after each ``backward``.

    ``update()`` collects the parameters of the target whose ``grad`` is not None, calls every hook
    ``f(params)`` with that list (hooks may replace or drop gradients), then ``update_one(param)`` for
    each parameter that still has a gradient. Subclasses define ``update_one`` and, when they keep
    per-parameter arrays, list their names in ``state_names``.
    """

    state_names: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.target: Any = None
        self.hooks: list[Callable[[list[Parameter]], None]] = []
        self.state: dict[int, dict[str, Any]] = {}

    def setup(self, target: Any) -> Optimizer:
        """Optimise the parameters of ``target`` (a Layer, or an iterable of Parameters); returns self."""
        if not hasattr(target, 'params'):
            params = list(target)
            bad = [type(p).__name__ for p in params if not isinstance(p, Parameter)]
            if bad:
                raise TypeError(f'{type(self).__name__}.setup: expected a Layer or Parameters, got {bad[0]}')
            target = _ParamList(params)
        self.target = target
        return self

    def update(self) -> None:
        """Apply one step to every parameter of the target that has a gradient."""
        if self.target is None:
            raise RuntimeError(f'{type(self).__name__}.update: call setup(model) first')
        params = [p for p in self.target.params() if p.grad is not None]
        for hook in self.hooks:
            hook(params)
        for param in params:
            if param.grad is not None:
                self.update_one(param)

    def update_one(self, param: Parameter) -> None:
        raise NotImplementedError(f'{type(self).__name__}.update_one is not implemented')

    def add_hook(self, f: Callable[[list[Parameter]], None]) -> None:
        """Call ``f(params)`` before every update, with the list of parameters that have a gradient."""
        self.hooks.append(f)

    def _state(self, param: Parameter) -> dict[str, Any]:
        """The state arrays of ``param`` (zeros like its data at first), on the parameter's device."""
        state = self.state.get(id(param))
        data = param.data
        if state is None:
            xp = get_array_module(data)
            state = {name: xp.zeros_like(data) for name in self.state_names}
            self.state[id(param)] = state
        elif state and next(iter(state.values())).__class__ is not data.__class__:
            convert = as_numpy if data.__class__ is np.ndarray else as_cupy
            for name in state:
                state[name] = convert(state[name])
        return state

    def to_cpu(self) -> Optimizer:
        """Move every state array to NumPy; returns self."""
        self._move(as_numpy)
        return self

    def to_gpu(self) -> Optimizer:
        """Move every state array to CuPy; returns self."""
        self._move(as_cupy)
        return self

    def _move(self, convert: Callable[[Any], Any]) -> None:
        for state in self.state.values():
            for name in state:
                state[name] = convert(state[name])


class _ParamList:
    """Adapter giving a plain list of Parameters the ``params()`` method of a Layer."""

    def __init__(self, params: list[Parameter]) -> None:
        self._param_list = params

    def params(self) -> Iterable[Parameter]:
        """The parameters given to ``setup``, in their order."""
        return iter(self._param_list)


# =============================================================================
# Optimizers
# =============================================================================
class SGD(Optimizer):
    """Plain gradient descent: ``param -= lr * grad``."""

    def __init__(self, lr: float = 0.01) -> None:
        super().__init__()
        self.lr = lr

    def update_one(self, param: Parameter) -> None:
        apply_blocked(functools.partial(_sgd_step, float(self.lr)), param.data, param.grad.data)


def _sgd_step(lr: float, param: Any, grad: Any) -> None:
    """``param -= lr * grad`` in place (on a whole parameter or a slice of one)."""
    param -= lr * grad


class MomentumSGD(Optimizer):
    """Momentum: ``v = momentum * v - lr * grad; param += v`` (the same trajectory as
    ``torch.optim.SGD(momentum=...)`` for a constant ``lr``)."""

    state_names = ('v',)

    def __init__(self, lr: float = 0.01, momentum: float = 0.9) -> None:
        super().__init__()
        self.lr = lr
        self.momentum = momentum

    def update_one(self, param: Parameter) -> None:
        v = self._state(param)['v']
        v *= float(self.momentum)
        v -= float(self.lr) * param.grad.data
        param.data += v


class AdaGrad(Optimizer):
    """AdaGrad: ``h += grad**2; param -= lr * grad / (sqrt(h) + eps)`` (as ``torch.optim.Adagrad``)."""

    state_names = ('h',)

    def __init__(self, lr: float = 0.001, eps: float = 1e-8) -> None:
        super().__init__()
        self.lr = lr
        self.eps = eps

    def update_one(self, param: Parameter) -> None:
        xp = get_array_module(param.data)
        grad = param.grad.data
        h = self._state(param)['h']
        h += grad * grad
        step = xp.sqrt(h)
        step += float(self.eps)
        xp.divide(grad, step, out=step)
        step *= float(self.lr)
        param.data -= step


class AdaDelta(Optimizer):
    """AdaDelta (as ``torch.optim.Adadelta``; ``lr=1`` is the book's)::

        msg = rho * msg + (1 - rho) * grad**2
        dx = sqrt((msdx + eps) / (msg + eps)) * grad
        msdx = rho * msdx + (1 - rho) * dx**2
        param -= lr * dx
    """

    state_names = ('msg', 'msdx')

    def __init__(self, rho: float = 0.95, eps: float = 1e-6, lr: float = 1.0) -> None:
        super().__init__()
        self.rho = rho
        self.eps = eps
        self.lr = lr

    def update_one(self, param: Parameter) -> None:
        xp = get_array_module(param.data)
        grad = param.grad.data
        state = self._state(param)
        msg, msdx = state['msg'], state['msdx']
        rho, eps = float(self.rho), float(self.eps)
        msg *= rho
        square = grad * grad
        square *= 1.0 - rho
        msg += square
        dx = msdx + eps
        dx /= msg + eps
        xp.sqrt(dx, out=dx)
        dx *= grad
        msdx *= rho
        xp.multiply(dx, dx, out=square)
        square *= 1.0 - rho
        msdx += square
        dx *= float(self.lr)
        param.data -= dx


class RMSprop(Optimizer):
    """RMSprop (as ``torch.optim.RMSprop`` without momentum or centring)::

        ms = alpha * ms + (1 - alpha) * grad**2
        param -= lr * grad / (sqrt(ms) + eps)
    """

    state_names = ('ms',)

    def __init__(self, lr: float = 0.01, alpha: float = 0.99, eps: float = 1e-8) -> None:
        super().__init__()
        self.lr = lr
        self.alpha = alpha
        self.eps = eps

    def update_one(self, param: Parameter) -> None:
        xp = get_array_module(param.data)
        grad = param.grad.data
        ms = self._state(param)['ms']
        alpha = float(self.alpha)
        ms *= alpha
        square = grad * grad
        square *= 1.0 - alpha
        ms += square
        step = xp.sqrt(ms)
        step += float(self.eps)
        xp.divide(grad, step, out=step)
        step *= float(self.lr)
        param.data -= step


class Adam(Optimizer):
    """Adam as in the book: at step ``t`` (counted by ``update()``)::

        m += (1 - beta1) * (grad - m)
        v += (1 - beta2) * (grad**2 - v)
        param -= lr * m / (sqrt(v) + eps),   lr = alpha * sqrt(1 - beta2**t) / (1 - beta1**t)

    ``lr`` (a property) is the bias-corrected step size. This equals ``torch.optim.Adam`` except
    for where ``eps`` enters: torch divides by ``sqrt(v) / sqrt(1 - beta2**t) + eps``.
    """

    state_names = ('m', 'v')

    def __init__(self, alpha: float = 0.001, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8) -> None:
        super().__init__()
        self.t = 0
        self.alpha = alpha
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps

    def update(self) -> None:
        """Count the step (for the bias correction in ``lr``), then update every parameter."""
        self.t += 1
        super().update()

    @property
    def lr(self) -> float:
        """The bias-corrected step size ``alpha * sqrt(1 - beta2**t) / (1 - beta1**t)``."""
        correction1 = 1.0 - math.pow(self.beta1, self.t)
        correction2 = 1.0 - math.pow(self.beta2, self.t)
        return float(self.alpha) * math.sqrt(correction2) / correction1

    def update_one(self, param: Parameter) -> None:
        state = self._state(param)
        # Each parameter's update runs over all cores, block by block (its passes stay in cache).
        apply_blocked(functools.partial(_adam_step, self.lr, float(self.beta1), float(self.beta2),
                                      float(self.eps), 1.0),
                    param.data, param.grad.data, state['m'], state['v'])


def _adam_step(lr: float, beta1: float, beta2: float, eps: float, v_divisor: float,
               param: Any, grad: Any, m: Any, v: Any) -> None:
    """One Adam step on arrays, in place (each may be a slice of the parameter):
    ``m``, ``v`` advance; ``param -= lr * m / (sqrt(v) / v_divisor + eps)``."""
    xp = get_array_module(param)
    delta = grad - m
    delta *= 1.0 - beta1
    m += delta
    xp.multiply(grad, grad, out=delta)
    delta -= v
    delta *= 1.0 - beta2
    v += delta
    step = xp.sqrt(v, out=delta)
    if v_divisor != 1.0:
        step /= v_divisor
    step += eps
    xp.divide(m, step, out=step)
    step *= lr
    param -= step


class AdamW(Adam):
    """Adam with decoupled weight decay, exactly as ``torch.optim.AdamW`` (its defaults too)::

        param *= 1 - alpha * weight_decay
        m, v as in Adam
        param -= alpha / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

    Note ``eps`` is added after the bias correction, as torch does (unlike the book's ``Adam``).
    """

    def __init__(self, alpha: float = 0.001, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8, weight_decay: float = 0.01) -> None:
        super().__init__(alpha, beta1, beta2, eps)
        self.weight_decay = weight_decay

    def update_one(self, param: Parameter) -> None:
        alpha = float(self.alpha)
        param.data *= 1.0 - alpha * float(self.weight_decay)
        state = self._state(param)
        apply_blocked(functools.partial(_adam_step, alpha / (1.0 - math.pow(self.beta1, self.t)),
                                      float(self.beta1), float(self.beta2), float(self.eps),
                                      math.sqrt(1.0 - math.pow(self.beta2, self.t))),
                    param.data, param.grad.data, state['m'], state['v'])


# =============================================================================
# Hooks: called with the list of parameters that have a gradient, before the update
# =============================================================================
# Hooks never write into a gradient array: backward may give several parameters the same gradient
# Variable (the two inputs of an addition), so each parameter gets a new one instead.
class WeightDecay:
    """L2 regularisation: ``grad += rate * param`` (``torch.optim.SGD(weight_decay=rate)``)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate

    def __call__(self, params: list[Parameter]) -> None:
        rate = float(self.rate)
        for param in params:
            param.grad = Variable(param.grad.data + rate * param.data)


class ClipGrad:
    """Scale all gradients by ``max_norm / (total_norm + 1e-6)`` when that is below 1, where
    ``total_norm`` is the L2 norm of all gradients together (``torch.nn.utils.clip_grad_norm_``)."""

    def __init__(self, max_norm: float) -> None:
        self.max_norm = max_norm

    def __call__(self, params: list[Parameter]) -> None:
        total = 0.0
        for param in params:
            grad = param.grad.data
            total = total + get_array_module(grad).vdot(grad, grad)
        rate = float(self.max_norm) / (math.sqrt(float(total)) + 1e-6)
        if rate < 1.0:
            for param in params:
                param.grad = Variable(param.grad.data * rate)


class FreezeParam:
    """Keep the parameters of the given Layers (or the given Parameters) fixed by dropping their
    gradients before the update."""

    def __init__(self, *layers: Any) -> None:
        self.freeze_params: list[Parameter] = []
        for layer in layers:
            if isinstance(layer, Parameter):
                self.freeze_params.append(layer)
            elif hasattr(layer, 'params'):
                self.freeze_params.extend(layer.params())
            else:
                raise TypeError(f'FreezeParam: expected Layers or Parameters, got {type(layer).__name__}')

    def __call__(self, params: list[Parameter]) -> None:
        for param in self.freeze_params:
            param.grad = None
