"""Optimizers (SGD, MomentumSGD, AdaGrad, AdaDelta, RMSprop, Adam, AdamW) and gradient hooks
(WeightDecay, ClipGrad, FreezeParam); learning-rate schedules are in ``dezero.optimizers.schedules``.

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
lives in the optimizer, in ``optimizer.state[param]`` (keyed by the Parameter itself, which hashes
by identity, so pickling a model and its optimizer together keeps the state attached to the unpickled
model's parameters), created with the array module of the parameter; when a parameter has moved between
CPU and GPU its state follows it at the next update (``optimizer.to_gpu()`` / ``to_cpu()`` move it at
once). ``state_dict()`` / ``load_state_dict()`` give that state keyed by parameter path instead.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from dezero._checks import check_callable, describe, in_range
from dezero._parallel import apply_blocked
from dezero.core import Parameter, Variable
from dezero.cuda import array_types, as_cupy, as_numpy, get_array_module

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
        self.state: dict[Parameter, dict[str, Any]] = {}
        self.schedule: Any = None  # the learning-rate schedule driving this optimizer, if any

    def setup(self, target: Any) -> Optimizer:
        """Optimise the parameters of ``target`` (a Layer, or an iterable of Parameters); returns self."""
        if not hasattr(target, 'params'):
            where = f'{type(self).__name__}.setup'
            try:
                params = None if isinstance(target, (Variable, *array_types)) else list(target)
            except TypeError:
                params = None
            if params is None:
                hint = '; pass the model itself: setup(model)' if callable(target) else ''
                raise TypeError(f'{where}: expected a Layer or an iterable of Parameters, got '
                                f'{describe(target)}{hint}')
            bad = [type(p).__name__ for p in params if not isinstance(p, Parameter)]
            if bad:
                raise TypeError(f'{where}: expected a Layer or Parameters, got {bad[0]}')
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
        check_callable(f'{type(self).__name__}.add_hook', 'f', f, 'a callable taking the list of parameters')
        self.hooks.append(f)

    def _state(self, param: Parameter) -> dict[str, Any]:
        """The state arrays of ``param`` (zeros like its data at first), on the parameter's device."""
        state = self.state.get(param)
        data = param.data
        if state is None:
            xp = get_array_module(data)
            state = {name: xp.zeros_like(data) for name in self.state_names}
            self.state[param] = state
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

    # --- state of a run: state_dict / load_state_dict ----------------------------------------
    def _named_params(self) -> list[tuple[str, Parameter]]:
        """``(path, Parameter)`` of the target: Layer paths (``'l0/W'``), or the position (``'0'``,
        ``'1'``...) for a plain list of Parameters given to ``setup``."""
        if self.target is None:
            return []
        if hasattr(self.target, 'named_params'):
            return list(self.target.named_params())
        return [(str(i), param) for i, param in enumerate(self.target.params())]

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs from this optimizer, as plain values, never keyed by ``id``.

        ``{'optimizer': class name, 'scalars': {...}, 'state': {path: {name: array}}, 'schedule': ...}``:
        ``scalars`` holds the number-valued attributes, i.e. the hyperparameters (``lr``, ``alpha``,
        ``momentum``...) and counters such as Adam's step ``t``; ``state`` the per-parameter arrays
        (copies, on their device) keyed by parameter path as in ``Layer.save_weights`` (the position
        ``'0'``, ``'1'``... for a list of Parameters); ``schedule`` the state of the schedule attached
        to the optimizer (``dezero.optimizers.schedules``), or None. Hooks (``add_hook``) are code,
        not state: a resumed run adds them again.
        """
        paths = {param: path for path, param in self._named_params()}
        return {
            'optimizer': type(self).__name__,
            'scalars': _scalars(self),
            'state': {paths[param]: {name: array.copy() for name, array in state.items()}
                      for param, state in self.state.items() if param in paths},
            'schedule': None if self.schedule is None else self.schedule.state_dict(),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what ``state_dict()`` returned (set up the optimizer, and create its schedule, first).

        The optimizer class, the scalar names, the parameter paths, the state array names and shapes
        and the schedule must fit: every difference is reported in one ``ValueError`` and nothing is
        changed then. Arrays are copied onto each parameter's device. Paths absent from
        ``state_dict`` start with fresh state, as parameters that never had a gradient.
        """
        where = f'{type(self).__name__}.load_state_dict'
        problems = []
        saved_class = state_dict.get('optimizer')
        if saved_class != type(self).__name__:
            problems.append(f'it holds the state of {saved_class}')
        scalars = state_dict.get('scalars', {})
        unknown = [name for name in scalars if name not in _scalars(self)]
        if unknown:
            problems.append(f'unknown scalars {unknown}')
        params = dict(self._named_params())
        unexpected, mismatched = [], []
        for path, arrays in state_dict.get('state', {}).items():
            param = params.get(path)
            if param is None:
                unexpected.append(path)
            elif sorted(arrays) != sorted(self.state_names):
                mismatched.append(f'{path}: state {sorted(arrays)}, expected {sorted(self.state_names)}')
            elif param.data is not None:
                mismatched.extend(f'{path}/{name}: saved {array.shape}, parameter {param.data.shape}'
                                  for name, array in arrays.items() if array.shape != param.data.shape)
        if unexpected:
            problems.append(f'parameters not in the target {unexpected}')
        if mismatched:
            problems.append('state mismatches [' + '; '.join(mismatched) + ']')
        schedule_state = state_dict.get('schedule')
        if self.schedule is None and schedule_state is not None:
            problems.append(f"it holds the state of a {schedule_state.get('schedule')} schedule but the "
                            'optimizer has none (create the schedule before loading)')
        elif self.schedule is not None:
            problems.extend(self.schedule._state_problems(schedule_state))
        if problems:
            raise ValueError(f'{where}: the state does not fit {type(self).__name__}: ' + ', '.join(problems))

        for name, value in scalars.items():
            setattr(self, name, value)
        self.state = {}
        for path, arrays in state_dict.get('state', {}).items():
            param = params[path]
            on_gpu = param.data is not None and not isinstance(param.data, np.ndarray)
            self.state[param] = {name: as_cupy(array).copy() if on_gpu else np.array(as_numpy(array))
                                 for name, array in arrays.items()}
        if self.schedule is not None:
            self.schedule.load_state_dict(schedule_state)


def _scalars(obj: Any) -> dict[str, bool | int | float]:
    """The public attributes of ``obj`` holding a number (hyperparameters and counters), as Python
    numbers: what ``state_dict`` saves of optimizers and schedules."""
    return {name: value.item() if isinstance(value, np.generic) else value
            for name, value in vars(obj).items()
            if not name.startswith('_') and isinstance(value, (bool, int, float, np.integer, np.floating))}


def _non_negative(owner: Any, **values: float) -> None:
    """Check hyper-parameters that must be numbers >= 0 (PyTorch's optimizers check the same)."""
    for name, value in values.items():
        in_range(type(owner).__name__, name, value, 0)


def _fraction(owner: Any, name: str, value: float, high_inclusive: bool) -> None:
    """Check a decay rate in [0, 1] (or [0, 1) when ``high_inclusive`` is False)."""
    in_range(type(owner).__name__, name, value, 0, 1, high_inclusive=high_inclusive)


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
        _non_negative(self, lr=lr)
        self.lr = lr

    def update_one(self, param: Parameter) -> None:
        apply_blocked(functools.partial(_sgd_step, float(self.lr)), param.data, param.grad.data, passes=2)


def _sgd_step(lr: float, param: Any, grad: Any) -> None:
    """``param -= lr * grad`` in place (on a whole parameter or a slice of one)."""
    param -= lr * grad


class MomentumSGD(Optimizer):
    """Momentum: ``v = momentum * v - lr * grad; param += v`` (the same trajectory as
    ``torch.optim.SGD(momentum=...)`` for a constant ``lr``)."""

    state_names = ('v',)

    def __init__(self, lr: float = 0.01, momentum: float = 0.9) -> None:
        super().__init__()
        _non_negative(self, lr=lr, momentum=momentum)
        self.lr = lr
        self.momentum = momentum

    def update_one(self, param: Parameter) -> None:
        apply_blocked(functools.partial(_momentum_step, float(self.lr), float(self.momentum)),
                      param.data, param.grad.data, self._state(param)['v'], passes=4)


def _momentum_step(lr: float, momentum: float, param: Any, grad: Any, v: Any) -> None:
    """One momentum step on arrays, in place: ``v = momentum * v - lr * grad; param += v``."""
    v *= momentum
    v -= lr * grad
    param += v


class AdaGrad(Optimizer):
    """AdaGrad: ``h += grad**2; param -= lr * grad / (sqrt(h) + eps)`` (as ``torch.optim.Adagrad``)."""

    state_names = ('h',)

    def __init__(self, lr: float = 0.001, eps: float = 1e-8) -> None:
        super().__init__()
        _non_negative(self, lr=lr, eps=eps)
        self.lr = lr
        self.eps = eps

    def update_one(self, param: Parameter) -> None:
        apply_blocked(functools.partial(_adagrad_step, float(self.lr), float(self.eps)),
                      param.data, param.grad.data, self._state(param)['h'], passes=7)


def _adagrad_step(lr: float, eps: float, param: Any, grad: Any, h: Any) -> None:
    """One AdaGrad step on arrays, in place: ``h += grad**2; param -= lr * grad / (sqrt(h) + eps)``."""
    xp = get_array_module(param)
    h += grad * grad
    step = xp.sqrt(h)
    step += eps
    xp.divide(grad, step, out=step)
    step *= lr
    param -= step


class AdaDelta(Optimizer):
    """AdaDelta (as ``torch.optim.Adadelta``; ``lr=1`` is the book's)::

        msg = rho * msg + (1 - rho) * grad**2
        dx = sqrt((msdx + eps) / (msg + eps)) * grad
        msdx = rho * msdx + (1 - rho) * dx**2
        param -= lr * dx

    ``msg`` and ``msdx`` are running averages of the squared gradients and squared steps.
    """

    state_names = ('msg', 'msdx')

    def __init__(self, rho: float = 0.95, eps: float = 1e-6, lr: float = 1.0) -> None:
        super().__init__()
        _fraction(self, 'rho', rho, high_inclusive=True)
        _non_negative(self, eps=eps, lr=lr)
        self.rho = rho
        self.eps = eps
        self.lr = lr

    def update_one(self, param: Parameter) -> None:
        state = self._state(param)
        apply_blocked(functools.partial(_adadelta_step, float(self.lr), float(self.rho), float(self.eps)),
                      param.data, param.grad.data, state['msg'], state['msdx'], passes=15)


def _adadelta_step(lr: float, rho: float, eps: float, param: Any, grad: Any, msg: Any, msdx: Any) -> None:
    """One AdaDelta step on arrays, in place (see ``AdaDelta``)."""
    xp = get_array_module(param)
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
    dx *= lr
    param -= dx


class RMSprop(Optimizer):
    """RMSprop (as ``torch.optim.RMSprop`` without momentum or centring)::

        ms = alpha * ms + (1 - alpha) * grad**2
        param -= lr * grad / (sqrt(ms) + eps)

    ``alpha`` is the decay rate of ``ms``, the running average of the squared gradients.
    """

    state_names = ('ms',)

    def __init__(self, lr: float = 0.01, alpha: float = 0.99, eps: float = 1e-8) -> None:
        super().__init__()
        _non_negative(self, lr=lr, alpha=alpha, eps=eps)
        self.lr = lr
        self.alpha = alpha
        self.eps = eps

    def update_one(self, param: Parameter) -> None:
        apply_blocked(functools.partial(_rmsprop_step, float(self.lr), float(self.alpha), float(self.eps)),
                      param.data, param.grad.data, self._state(param)['ms'], passes=9)


def _rmsprop_step(lr: float, alpha: float, eps: float, param: Any, grad: Any, ms: Any) -> None:
    """One RMSprop step on arrays, in place: ``ms = alpha * ms + (1 - alpha) * grad**2``,
    ``param -= lr * grad / (sqrt(ms) + eps)``."""
    xp = get_array_module(param)
    ms *= alpha
    square = grad * grad
    square *= 1.0 - alpha
    ms += square
    step = xp.sqrt(ms)
    step += eps
    xp.divide(grad, step, out=step)
    step *= lr
    param -= step


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
        _non_negative(self, alpha=alpha, eps=eps)
        _fraction(self, 'beta1', beta1, high_inclusive=False)
        _fraction(self, 'beta2', beta2, high_inclusive=False)
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
                                        float(self.eps), 1.0, 1.0),
                      param.data, param.grad.data, state['m'], state['v'], passes=12)


def _adam_step(lr: float, beta1: float, beta2: float, eps: float, v_divisor: float, decay: float,
               param: Any, grad: Any, m: Any, v: Any) -> None:
    """One Adam step on arrays, in place (each may be a slice of the parameter): ``param *= decay``
    (AdamW's weight decay), ``m``, ``v`` advance; ``param -= lr * m / (sqrt(v) / v_divisor + eps)``."""
    xp = get_array_module(param)
    if decay != 1.0:
        param *= decay
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
        _non_negative(self, weight_decay=weight_decay)
        self.weight_decay = weight_decay

    def update_one(self, param: Parameter) -> None:
        alpha = float(self.alpha)
        state = self._state(param)
        apply_blocked(functools.partial(_adam_step, alpha / (1.0 - math.pow(self.beta1, self.t)),
                                        float(self.beta1), float(self.beta2), float(self.eps),
                                        math.sqrt(1.0 - math.pow(self.beta2, self.t)),
                                        1.0 - alpha * float(self.weight_decay)),
                      param.data, param.grad.data, state['m'], state['v'], passes=13)


# =============================================================================
# Hooks: called with the list of parameters that have a gradient, before the update
# =============================================================================
# Hooks never write into a gradient array: backward may give several parameters the same gradient
# Variable (the two inputs of an addition), so each parameter gets a new one instead.
class WeightDecay:
    """L2 regularisation: ``grad += rate * param`` (``torch.optim.SGD(weight_decay=rate)``)."""

    def __init__(self, rate: float) -> None:
        _non_negative(self, rate=rate)
        self.rate = rate

    def __call__(self, params: list[Parameter]) -> None:
        rate = float(self.rate)
        for param in params:
            param.grad = Variable(param.grad.data + rate * param.data)


class ClipGrad:
    """Scale all gradients by ``max_norm / (total_norm + 1e-6)`` when that is below 1, where
    ``total_norm`` is the L2 norm of all gradients together (``torch.nn.utils.clip_grad_norm_``)."""

    def __init__(self, max_norm: float) -> None:
        in_range('ClipGrad', 'max_norm', max_norm, 0, low_inclusive=False)
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


from dezero.optimizers import schedules  # noqa: E402,F401  (needs the classes above)
