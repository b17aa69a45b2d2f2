"""Learning-rate schedules: small objects that set an optimizer's own rate attribute at each ``step()``.

Example::

    optimizer = optimizers.MomentumSGD(lr=0.1).setup(model)
    schedule = schedules.Warmup(schedules.CosineAnnealingLR(optimizer, t_max=95), steps=5)
    for epoch in range(100):
        train_one_epoch(model, optimizer)
        schedule.step()                 # optimizer.lr follows the schedule

The rate attribute is ``lr`` (SGD, MomentumSGD, AdaGrad, AdaDelta, RMSprop) or ``alpha`` (Adam and
AdamW, whose ``lr`` is the bias-corrected step computed from ``alpha``). The rate the optimizer has
when the schedule is created is its ``base_rate``. Creating a schedule attaches it to the optimizer
(``optimizer.schedule``), so ``optimizer.state_dict()``, and so ``dezero.save_checkpoint``, carry the
schedule's state; an optimizer is driven by one schedule, so compose with ``Warmup`` rather than
creating two. Step counts start at 0 at creation; ``step()`` advances by one, per iteration or per
epoch as you choose.

Each schedule gives the same rates as its namesake in ``torch.optim.lr_scheduler`` (closed forms,
to 1e-12 over 100 steps); ``Warmup(schedule, steps)`` equals torch's ``SequentialLR`` of a ``LinearLR``
warm-up and ``schedule`` with the milestone ``steps``. ``OneCycleLR`` schedules the rate only (torch's
``cycle_momentum=False``).
"""
from __future__ import annotations

import bisect
import math
import numbers
from collections.abc import Sequence
from typing import Any

from dezero._checks import in_range
from dezero.core import Variable
from dezero.optimizers import _scalars

__all__ = ['Schedule', 'StepLR', 'MultiStepLR', 'ExponentialLR', 'CosineAnnealingLR',
           'CosineAnnealingWarmRestarts', 'Warmup', 'OneCycleLR', 'ReduceLROnPlateau']


def _rate_attribute(where: str, optimizer: Any) -> str:
    """``'alpha'`` for optimizers whose ``lr`` is a computed property (Adam, AdamW), else ``'lr'``."""
    if isinstance(getattr(type(optimizer), 'lr', None), property):
        if hasattr(optimizer, 'alpha'):
            return 'alpha'
    elif hasattr(optimizer, 'lr'):
        return 'lr'
    raise TypeError(f'{where}: expected an optimizer with a settable rate attribute lr or alpha, '
                    f'got {type(optimizer).__name__}')


def _check_positive(where: str, name: str, value: Any, integer: bool = False) -> None:
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or value <= 0:
        expected = 'a positive int' if integer else 'a positive number'
        raise ValueError(f'{where}: {name} must be {expected}, got {value!r}')


class Schedule:
    """Base of the schedules: attaches to ``optimizer`` and sets its rate attribute.

    Subclasses give the rate as a function of the step count in ``rate_at(step)``; ``step()``
    advances ``last_step`` and applies it. ``rate`` is the optimizer's current rate.
    ``state_dict()`` holds the step count, the base rate and the other number-valued attributes.
    """

    def __init__(self, optimizer: Any) -> None:
        self.optimizer = optimizer
        self.attribute = _rate_attribute(type(self).__name__, optimizer)
        self.base_rate = float(getattr(optimizer, self.attribute))
        self.last_step = 0
        optimizer.schedule = self
        self._begin()

    @property
    def rate(self) -> float:
        """The optimizer's current rate (``optimizer.lr`` or ``optimizer.alpha``)."""
        return getattr(self.optimizer, self.attribute)

    def rate_at(self, step: int) -> float:
        """The rate after ``step`` calls of ``step()``."""
        raise NotImplementedError(f'{type(self).__name__}.rate_at is not implemented')

    def step(self) -> None:
        """Advance one step and set the optimizer's rate."""
        self.last_step += 1
        self._set(self.rate_at(self.last_step))

    def _set(self, rate: float) -> None:
        setattr(self.optimizer, self.attribute, rate)

    def _begin(self) -> None:
        """Set the rate of step ``last_step`` (0 at creation, or when a Warmup hands over)."""
        self._set(self.rate_at(self.last_step))

    # --- state -----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """``{'schedule': class name, 'last_step': ..., 'base_rate': ..., ...}``: the number-valued
        attributes (plain values, JSON-encodable)."""
        return {'schedule': type(self).__name__, **_scalars(self)}

    def _state_problems(self, state: dict[str, Any] | None) -> list[str]:
        """What keeps ``state`` from being loaded into this schedule (empty when it fits)."""
        if state is None:
            return [f'it holds no schedule state but the optimizer has a {type(self).__name__} schedule']
        if state.get('schedule') != type(self).__name__:
            return [f"it holds the state of a {state.get('schedule')} schedule, the optimizer has a "
                    f'{type(self).__name__}']
        expected = sorted(_scalars(self))
        saved = sorted(name for name, value in state.items() if name not in ('schedule', 'inner'))
        if saved != expected:
            return [f'{type(self).__name__} state has {saved}, expected {expected}']
        return []

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``state_dict()``'s values (the optimizer's rate itself is part of the optimizer's
        state). A state of another schedule class or with other names raises ``ValueError``."""
        problems = self._state_problems(state)
        if problems:
            raise ValueError(f'{type(self).__name__}.load_state_dict: ' + '; '.join(problems))
        for name, value in state.items():
            if name not in ('schedule', 'inner'):
                setattr(self, name, value)


class StepLR(Schedule):
    """``base_rate * gamma ** (step // step_size)``: decay by ``gamma`` every ``step_size`` steps."""

    def __init__(self, optimizer: Any, step_size: int, gamma: float = 0.1) -> None:
        _check_positive('StepLR', 'step_size', step_size, integer=True)
        in_range('StepLR', 'gamma', gamma, 0, low_inclusive=False)
        self.step_size = step_size
        self.gamma = gamma
        super().__init__(optimizer)

    def rate_at(self, step: int) -> float:
        return self.base_rate * self.gamma ** (step // self.step_size)


class MultiStepLR(Schedule):
    """``base_rate * gamma ** k`` where ``k`` counts the ``milestones`` (step numbers) reached; a
    milestone listed twice decays twice."""

    def __init__(self, optimizer: Any, milestones: Sequence[int], gamma: float = 0.1) -> None:
        in_range('MultiStepLR', 'gamma', gamma, 0, low_inclusive=False)
        steps = list(milestones) if isinstance(milestones, (list, tuple, range)) else None
        if steps is None or not all(isinstance(m, numbers.Integral) and not isinstance(m, bool) and m >= 0
                                    for m in steps):
            raise ValueError(f'MultiStepLR: milestones must be a list of step numbers (ints >= 0), '
                             f'got {milestones!r}')
        self.milestones = sorted(int(m) for m in steps)
        self.gamma = gamma
        super().__init__(optimizer)

    def rate_at(self, step: int) -> float:
        return self.base_rate * self.gamma ** bisect.bisect_right(self.milestones, step)


class ExponentialLR(Schedule):
    """``base_rate * gamma ** step``."""

    def __init__(self, optimizer: Any, gamma: float) -> None:
        in_range('ExponentialLR', 'gamma', gamma, 0, low_inclusive=False)
        self.gamma = gamma
        super().__init__(optimizer)

    def rate_at(self, step: int) -> float:
        return self.base_rate * self.gamma ** step


def _cosine(low: float, high: float, position: float, period: float) -> float:
    """``low + (high - low) * (1 + cos(pi * position / period)) / 2``: ``high`` at 0, ``low`` at
    ``period``."""
    return low + (high - low) * (1 + math.cos(math.pi * position / period)) / 2


class CosineAnnealingLR(Schedule):
    """``eta_min + (base_rate - eta_min) * (1 + cos(pi * step / t_max)) / 2``: half a cosine from the
    base rate down to ``eta_min`` over ``t_max`` steps (rising again after, as torch's does)."""

    def __init__(self, optimizer: Any, t_max: int, eta_min: float = 0.0) -> None:
        _check_positive('CosineAnnealingLR', 't_max', t_max, integer=True)
        self.t_max = t_max
        self.eta_min = eta_min
        super().__init__(optimizer)

    def rate_at(self, step: int) -> float:
        return _cosine(self.eta_min, self.base_rate, step, self.t_max)


class CosineAnnealingWarmRestarts(Schedule):
    """SGDR: cosine annealing from the base rate to ``eta_min`` over a period of ``t_0`` steps, then
    a restart at the base rate; each period is ``t_mult`` times longer than the previous."""

    def __init__(self, optimizer: Any, t_0: int, t_mult: int = 1, eta_min: float = 0.0) -> None:
        _check_positive('CosineAnnealingWarmRestarts', 't_0', t_0, integer=True)
        _check_positive('CosineAnnealingWarmRestarts', 't_mult', t_mult, integer=True)
        self.t_0 = t_0
        self.t_mult = t_mult
        self.eta_min = eta_min
        super().__init__(optimizer)

    def rate_at(self, step: int) -> float:
        position, period = step, self.t_0
        while position >= period:  # integer arithmetic: a restart lands exactly on its step
            position -= period
            period *= self.t_mult
        return _cosine(self.eta_min, self.base_rate, position, period)


class Warmup(Schedule):
    """Linear warm-up: the rate rises from ``start_factor * base_rate`` to the base rate over
    ``steps`` steps, then ``schedule`` runs from its own step 0 (torch's ``SequentialLR`` of
    ``LinearLR(start_factor, 1.0, steps)`` and ``schedule`` with the milestone ``steps``).

    ``schedule`` is any schedule of this module created on the optimizer just before, or an optimizer
    itself (the rate then stays at its base after the warm-up). Arguments given to ``step()`` (the
    metric of a ``ReduceLROnPlateau``) reach ``schedule`` once the warm-up is over.

    Example: ``Warmup(CosineAnnealingLR(optimizer, t_max=95), steps=5)``.
    """

    def __init__(self, schedule: Any, steps: int, start_factor: float = 1 / 3) -> None:
        _check_positive('Warmup', 'steps', steps, integer=True)
        if not 0 < start_factor <= 1:
            raise ValueError(f'Warmup: start_factor must be in (0, 1], got {start_factor!r}')
        self.inner = schedule if isinstance(schedule, Schedule) else None
        self.steps = steps
        self.start_factor = start_factor
        super().__init__(schedule.optimizer if self.inner is not None else schedule)
        if self.inner is not None:
            self.base_rate = self.inner.base_rate
            self._begin()

    def rate_at(self, step: int) -> float:
        if step >= self.steps:
            return self.base_rate
        return self.base_rate * (self.start_factor + (1 - self.start_factor) * step / self.steps)

    def step(self, *args: Any) -> None:
        """Advance one step: warm-up, then the wrapped schedule's ``step(*args)``."""
        self.last_step += 1
        if self.inner is None or self.last_step < self.steps:
            self._set(self.rate_at(self.last_step))
        elif self.last_step == self.steps:
            self.inner._begin()
        else:
            self.inner.step(*args)

    def state_dict(self) -> dict[str, Any]:
        """The warm-up's state, with the wrapped schedule's under ``'inner'``."""
        state = super().state_dict()
        if self.inner is not None:
            state['inner'] = self.inner.state_dict()
        return state

    def _state_problems(self, state: dict[str, Any] | None) -> list[str]:
        problems = super()._state_problems(state)
        if problems:
            return problems
        if self.inner is None:
            return ['it warms up a schedule, this Warmup wraps none'] if 'inner' in state else []
        if 'inner' not in state:
            return [f'it warms up no schedule, this Warmup wraps a {type(self.inner).__name__}']
        return self.inner._state_problems(state['inner'])

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        if self.inner is not None:
            self.inner.load_state_dict(state['inner'])


class OneCycleLR(Schedule):
    """The 1cycle policy: from ``max_lr / div_factor`` up to ``max_lr`` over the first ``pct_start``
    of ``total_steps``, then down to ``max_lr / div_factor / final_div_factor`` at the last step;
    ``anneal_strategy`` is ``'cos'`` or ``'linear'``. With ``three_phase``, the rate comes back to the
    initial rate symmetrically before the final decay. The final rate is reached at step
    ``total_steps - 1``; stepping beyond ``total_steps`` raises ``ValueError`` (both as torch). The
    optimizer's own rate is ignored (``max_lr`` sets the scale).
    """

    def __init__(self, optimizer: Any, max_lr: float, total_steps: int, pct_start: float = 0.3,
                 anneal_strategy: str = 'cos', div_factor: float = 25.0, final_div_factor: float = 1e4,
                 three_phase: bool = False) -> None:
        _check_positive('OneCycleLR', 'total_steps', total_steps, integer=True)
        if not 0 <= pct_start <= 1:
            raise ValueError(f'OneCycleLR: pct_start must be in [0, 1], got {pct_start!r}')
        if anneal_strategy not in ('cos', 'linear'):
            raise ValueError(f"OneCycleLR: anneal_strategy must be 'cos' or 'linear', "
                             f'got {anneal_strategy!r}')
        self.max_lr = max_lr
        self.total_steps = total_steps
        self.pct_start = pct_start
        self.anneal_strategy = anneal_strategy
        self.div_factor = div_factor
        self.final_div_factor = final_div_factor
        self.three_phase = three_phase
        super().__init__(optimizer)

    def _phases(self) -> list[tuple[float, float, float]]:
        """``(end step, start rate, end rate)`` of each phase."""
        initial = self.max_lr / self.div_factor
        final = initial / self.final_div_factor
        rise_end = float(self.pct_start * self.total_steps) - 1
        if self.three_phase:
            return [(rise_end, initial, self.max_lr), (2 * rise_end, self.max_lr, initial),
                    (self.total_steps - 1, initial, final)]
        return [(rise_end, initial, self.max_lr), (self.total_steps - 1, self.max_lr, final)]

    def rate_at(self, step: int) -> float:
        if step > self.total_steps:
            raise ValueError(f'OneCycleLR: step {step} is beyond total_steps={self.total_steps}')
        phases = self._phases()
        phase_start = 0.0
        for i, (end, low_or_high, target) in enumerate(phases):
            if step <= end or i == len(phases) - 1:
                fraction = (step - phase_start) / (end - phase_start)
                if self.anneal_strategy == 'cos':
                    return target + (low_or_high - target) / 2 * (math.cos(math.pi * fraction) + 1)
                return (target - low_or_high) * fraction + low_or_high
            phase_start = end
        raise AssertionError('unreachable')


class ReduceLROnPlateau(Schedule):
    """Multiply the rate by ``factor`` when the metric passed to ``step(metric)`` has not improved for
    more than ``patience`` steps, then wait ``cooldown`` steps; never below ``min_lr`` (changes
    smaller than ``eps`` are skipped).

    ``mode='min'`` (a loss) or ``'max'`` (an accuracy); an improvement beats the best so far by
    ``threshold``, relative (``threshold_mode='rel'``) or absolute (``'abs'``).
    """

    def __init__(self, optimizer: Any, mode: str = 'min', factor: float = 0.1, patience: int = 10,
                 threshold: float = 1e-4, threshold_mode: str = 'rel', cooldown: int = 0,
                 min_lr: float = 0.0, eps: float = 1e-8) -> None:
        if mode not in ('min', 'max'):
            raise ValueError(f"ReduceLROnPlateau: mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ('rel', 'abs'):
            raise ValueError(f"ReduceLROnPlateau: threshold_mode must be 'rel' or 'abs', "
                             f'got {threshold_mode!r}')
        if not 0 < factor < 1:
            raise ValueError(f'ReduceLROnPlateau: factor must be in (0, 1), got {factor!r}')
        self.mode = mode
        self.factor = factor
        self.patience = patience
        self.threshold = threshold
        self.threshold_mode = threshold_mode
        self.cooldown = cooldown
        self.min_lr = min_lr
        self.eps = eps
        self.best = math.inf if mode == 'min' else -math.inf
        self.num_bad_steps = 0
        self.cooldown_counter = 0
        super().__init__(optimizer)

    def _begin(self) -> None:
        self._set(self.base_rate)

    def _improves(self, value: float) -> bool:
        sign = 1.0 if self.mode == 'max' else -1.0  # the direction of an improvement
        if self.threshold_mode == 'rel':
            bound = self.best * (1 + sign * self.threshold)
        else:
            bound = self.best + sign * self.threshold
        return value > bound if self.mode == 'max' else value < bound

    def step(self, metric: Any) -> None:  # type: ignore[override]
        """Record ``metric`` (a number, or a 0-d array or Variable) and reduce the rate if it has
        stagnated."""
        value = float(metric.data if isinstance(metric, Variable) else metric)
        self.last_step += 1
        if self._improves(value):
            self.best = value
            self.num_bad_steps = 0
        else:
            self.num_bad_steps += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_steps = 0
        if self.num_bad_steps > self.patience:
            old = float(self.rate)
            new = max(old * self.factor, self.min_lr)
            if old - new > self.eps:
                self._set(new)
            self.cooldown_counter = self.cooldown
            self.num_bad_steps = 0
