"""dezero.optimizers.schedules: rates over 100 steps against torch.optim.lr_scheduler (to 1e-12), the
rate attribute each optimizer exposes, state round trips and argument errors."""
import math

import numpy as np
import pytest
import torch

from dezero import Parameter, optimizers
from dezero.optimizers import schedules as S

STEPS = 100
T = torch.optim.lr_scheduler


def rates_ours(make_schedule, optimizer=None, metrics=None):
    """The optimizer's rate at creation of the schedule and after each of ``STEPS`` steps."""
    optimizer = optimizers.SGD(lr=0.1) if optimizer is None else optimizer
    optimizer.setup([Parameter(np.zeros(1))])
    schedule = make_schedule(optimizer)
    rates = [schedule.rate]
    for i in range(STEPS):
        if metrics is None:
            schedule.step()
        else:
            schedule.step(metrics[i])
        rates.append(schedule.rate)
    return np.array(rates)


def rates_torch(make_scheduler, metrics=None):
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=0.1)
    scheduler = make_scheduler(optimizer)
    rates = [optimizer.param_groups[0]['lr']]
    for i in range(STEPS):
        optimizer.step()
        if metrics is None:
            scheduler.step()
        else:
            scheduler.step(metrics[i])
        rates.append(optimizer.param_groups[0]['lr'])
    return np.array(rates)


# (id, ours, torch's)
ROWS = [
    ('step', lambda o: S.StepLR(o, step_size=7, gamma=0.5), lambda o: T.StepLR(o, step_size=7, gamma=0.5)),
    ('multistep', lambda o: S.MultiStepLR(o, [30, 10, 60, 30], gamma=0.3),
     lambda o: T.MultiStepLR(o, [30, 10, 60, 30], gamma=0.3)),
    ('exponential', lambda o: S.ExponentialLR(o, gamma=0.95), lambda o: T.ExponentialLR(o, gamma=0.95)),
    ('cosine', lambda o: S.CosineAnnealingLR(o, t_max=30, eta_min=1e-3),
     lambda o: T.CosineAnnealingLR(o, T_max=30, eta_min=1e-3)),
    ('cosine-restarts', lambda o: S.CosineAnnealingWarmRestarts(o, t_0=10),
     lambda o: T.CosineAnnealingWarmRestarts(o, T_0=10)),
    ('cosine-restarts-mult', lambda o: S.CosineAnnealingWarmRestarts(o, t_0=7, t_mult=2, eta_min=1e-3),
     lambda o: T.CosineAnnealingWarmRestarts(o, T_0=7, T_mult=2, eta_min=1e-3)),
    ('warmup-cosine', lambda o: S.Warmup(S.CosineAnnealingLR(o, t_max=95), steps=5, start_factor=0.1),
     lambda o: T.SequentialLR(o, [T.LinearLR(o, start_factor=0.1, end_factor=1.0, total_iters=5),
                                  T.CosineAnnealingLR(o, T_max=95)], milestones=[5])),
    ('warmup-step', lambda o: S.Warmup(S.StepLR(o, step_size=10, gamma=0.5), steps=8),
     lambda o: T.SequentialLR(o, [T.LinearLR(o, start_factor=1 / 3, end_factor=1.0, total_iters=8),
                                  T.StepLR(o, step_size=10, gamma=0.5)], milestones=[8])),
    ('warmup-multistep', lambda o: S.Warmup(S.MultiStepLR(o, [20, 50]), steps=10, start_factor=0.01),
     lambda o: T.SequentialLR(o, [T.LinearLR(o, start_factor=0.01, end_factor=1.0, total_iters=10),
                                  T.MultiStepLR(o, [20, 50])], milestones=[10])),
    ('warmup-exponential', lambda o: S.Warmup(S.ExponentialLR(o, gamma=0.97), steps=3),
     lambda o: T.SequentialLR(o, [T.LinearLR(o, start_factor=1 / 3, end_factor=1.0, total_iters=3),
                                  T.ExponentialLR(o, gamma=0.97)], milestones=[3])),
    ('warmup-restarts', lambda o: S.Warmup(S.CosineAnnealingWarmRestarts(o, t_0=9, t_mult=2), steps=4),
     lambda o: T.SequentialLR(o, [T.LinearLR(o, start_factor=1 / 3, end_factor=1.0, total_iters=4),
                                  T.CosineAnnealingWarmRestarts(o, T_0=9, T_mult=2)], milestones=[4])),
    ('warmup-constant', lambda o: S.Warmup(o, steps=6, start_factor=0.2),
     lambda o: T.LinearLR(o, start_factor=0.2, end_factor=1.0, total_iters=6)),
    ('one-cycle', lambda o: S.OneCycleLR(o, max_lr=1.0, total_steps=100),
     lambda o: T.OneCycleLR(o, max_lr=1.0, total_steps=100, cycle_momentum=False)),
    ('one-cycle-linear-3', lambda o: S.OneCycleLR(o, max_lr=0.5, total_steps=100, pct_start=0.25,
                                                  anneal_strategy='linear', three_phase=True),
     lambda o: T.OneCycleLR(o, max_lr=0.5, total_steps=100, pct_start=0.25, anneal_strategy='linear',
                            three_phase=True, cycle_momentum=False)),
]


@pytest.mark.filterwarnings('ignore::UserWarning')  # torch's notes on SequentialLR internals
@pytest.mark.parametrize('ours, theirs', [row[1:] for row in ROWS], ids=[row[0] for row in ROWS])
def test_rates_equal_torch_over_100_steps(ours, theirs):
    expected = rates_torch(theirs)
    np.testing.assert_allclose(rates_ours(ours), expected, rtol=0, atol=1e-12)
    assert len(set(np.round(expected, 12))) > 2  # the schedule really varies


def plateau_metrics():
    """A noisy loss that improves, stalls, improves a little, stalls again."""
    rng = np.random.default_rng(0)
    base = np.concatenate([np.linspace(1.0, 0.5, 20), np.full(30, 0.5), np.linspace(0.5, 0.45, 10),
                           np.full(40, 0.45)])
    return list(base + rng.uniform(0, 1e-3, STEPS))


@pytest.mark.parametrize('kwargs', [
    {},
    {'patience': 3, 'factor': 0.5, 'cooldown': 2},
    {'patience': 2, 'threshold': 0.01, 'threshold_mode': 'abs', 'min_lr': 0.003},
    {'mode': 'max', 'patience': 4, 'factor': 0.3},
    {'mode': 'max', 'threshold_mode': 'abs', 'threshold': 0.02, 'patience': 1, 'eps': 0.05},
], ids=['default', 'cooldown', 'abs-min-lr', 'max', 'max-abs-eps'])
def test_reduce_on_plateau_equals_torch(kwargs):
    metrics = plateau_metrics()
    if kwargs.get('mode') == 'max':
        metrics = [-m for m in metrics]
    ours = rates_ours(lambda o: S.ReduceLROnPlateau(o, **kwargs), metrics=metrics)
    theirs = rates_torch(lambda o: T.ReduceLROnPlateau(o, **kwargs), metrics=metrics)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)
    assert ours[-1] < ours[0]


def test_warmup_hands_the_metric_to_reduce_on_plateau():
    optimizer = optimizers.SGD(lr=1.0)
    schedule = S.Warmup(S.ReduceLROnPlateau(optimizer, patience=1, factor=0.5), steps=4, start_factor=0.2)
    rates = [optimizer.lr]
    for _ in range(8):
        schedule.step(1.0)  # never improves after the first value the plateau sees
        rates.append(optimizer.lr)
    np.testing.assert_allclose(rates, [0.2, 0.4, 0.6, 0.8, 1.0, 1.0, 1.0, 0.5, 0.5])


@pytest.mark.parametrize('cls', [optimizers.Adam, optimizers.AdamW])
def test_adam_family_rate_is_alpha(cls):
    optimizer = cls(alpha=0.1)
    ours = rates_ours(lambda o: S.CosineAnnealingLR(o, t_max=40), optimizer=optimizer)
    np.testing.assert_allclose(ours, rates_torch(lambda o: T.CosineAnnealingLR(o, T_max=40)), atol=1e-12)
    assert optimizer.schedule.attribute == 'alpha'
    assert optimizer.alpha == ours[-1]


@pytest.mark.parametrize('cls', [optimizers.SGD, optimizers.MomentumSGD, optimizers.AdaGrad,
                                 optimizers.AdaDelta, optimizers.RMSprop])
def test_sgd_family_rate_is_lr(cls):
    optimizer = cls()
    base = optimizer.lr
    schedule = S.ExponentialLR(optimizer, gamma=0.5)
    schedule.step()
    schedule.step()
    assert schedule.attribute == 'lr' and optimizer.lr == base * 0.25


def test_the_schedule_drives_the_update():
    param = Parameter(np.array([1.0]))
    optimizer = optimizers.SGD(lr=1.0).setup([param])
    schedule = S.StepLR(optimizer, step_size=1, gamma=0.5)
    for _ in range(3):
        param.grad = Parameter(np.array([1.0]))
        optimizer.update()
        schedule.step()
    np.testing.assert_allclose(param.data, [1.0 - 1.0 - 0.5 - 0.25])


def test_creating_a_schedule_attaches_it_and_warmup_takes_its_place():
    optimizer = optimizers.MomentumSGD(lr=0.1)
    assert optimizer.schedule is None
    cosine = S.CosineAnnealingLR(optimizer, t_max=10)
    assert optimizer.schedule is cosine
    warmup = S.Warmup(cosine, steps=3)
    assert optimizer.schedule is warmup and warmup.inner is cosine
    assert optimizer.lr == pytest.approx(0.1 / 3)


SCHEDULE_MAKERS = [row[1] for row in ROWS] + [lambda o: S.ReduceLROnPlateau(o, patience=2)]
SCHEDULE_IDS = [row[0] for row in ROWS] + ['plateau']


@pytest.mark.parametrize('make', SCHEDULE_MAKERS, ids=SCHEDULE_IDS)
def test_state_dict_round_trip_continues_the_same_rates(make):
    metrics = plateau_metrics()

    def step(schedule, i):
        if isinstance(schedule, S.ReduceLROnPlateau):
            schedule.step(metrics[i])
        else:
            schedule.step()

    original = optimizers.SGD(lr=0.1)
    schedule = make(original)
    for i in range(37):
        step(schedule, i)
    state = original.state_dict()
    resumed = optimizers.SGD(lr=0.1)
    copy = make(resumed)
    resumed.load_state_dict(state)
    assert resumed.lr == original.lr and copy.last_step == 37
    for i in range(37, 90):
        step(schedule, i)
        step(copy, i)
        assert resumed.lr == original.lr


def test_plateau_state_keeps_best_and_counters():
    optimizer = optimizers.SGD(lr=0.1)
    schedule = S.ReduceLROnPlateau(optimizer, patience=5, cooldown=3)
    for value in (3.0, 2.0, 2.5, 2.5):
        schedule.step(value)
    state = schedule.state_dict()
    assert state['schedule'] == 'ReduceLROnPlateau'
    assert state['best'] == 2.0 and state['num_bad_steps'] == 2 and state['last_step'] == 4


def test_loading_the_state_of_another_schedule_is_a_clear_error():
    state = S.StepLR(optimizers.SGD(), step_size=3).state_dict()
    target = S.ExponentialLR(optimizers.SGD(), gamma=0.9)
    with pytest.raises(ValueError, match='ExponentialLR.load_state_dict: .*StepLR schedule'):
        target.load_state_dict(state)
    optimizer = optimizers.SGD()
    S.Warmup(S.StepLR(optimizer, step_size=3), steps=2)
    plain = optimizers.SGD()
    S.Warmup(plain, steps=2)
    with pytest.raises(ValueError, match='this Warmup wraps none'):
        plain.load_state_dict(optimizer.state_dict())


@pytest.mark.parametrize('make, match', [
    (lambda o: S.StepLR(o, step_size=0), 'StepLR: step_size must be a positive int, got 0'),
    (lambda o: S.CosineAnnealingLR(o, t_max=2.5), 'CosineAnnealingLR: t_max must be a positive int'),
    (lambda o: S.CosineAnnealingWarmRestarts(o, t_0=5, t_mult=0), 't_mult must be a positive int'),
    (lambda o: S.Warmup(o, steps=5, start_factor=0), r'Warmup: start_factor must be in \(0, 1\]'),
    (lambda o: S.OneCycleLR(o, 1.0, 10, anneal_strategy='exp'), "anneal_strategy must be 'cos' or 'linear'"),
    (lambda o: S.ReduceLROnPlateau(o, mode='lowest'), "mode must be 'min' or 'max', got 'lowest'"),
    (lambda o: S.ReduceLROnPlateau(o, factor=1.5), r'factor must be in \(0, 1\)'),
    (lambda o: S.StepLR(o, step_size=2, gamma=-0.5), 'StepLR: gamma must be > 0, got -0.5'),
    (lambda o: S.MultiStepLR(o, ['x']), r"MultiStepLR: milestones must be a list of step numbers .*\['x'\]"),
    (lambda o: S.MultiStepLR(o, 10), 'MultiStepLR: milestones must be a list of step numbers'),
    (lambda o: S.ExponentialLR(o, gamma=0), 'ExponentialLR: gamma must be > 0, got 0'),
])
def test_bad_arguments_are_clear_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make(optimizers.SGD())


@pytest.mark.parametrize('make', [lambda o: S.StepLR(o, step_size=2, gamma='a'),
                                  lambda o: S.ExponentialLR(o, gamma=None)])
def test_a_decay_factor_that_is_not_a_number_is_named(make):
    with pytest.raises(TypeError, match=r'(StepLR|ExponentialLR): gamma must be a number'):
        make(optimizers.SGD())


def test_a_schedule_needs_an_optimizer_with_a_rate():
    with pytest.raises(TypeError, match='StepLR: expected an optimizer with a settable rate attribute lr or '
                                        'alpha, got list'):
        S.StepLR([], step_size=2)


def test_one_cycle_refuses_steps_beyond_its_total():
    optimizer = optimizers.SGD()
    schedule = S.OneCycleLR(optimizer, max_lr=1.0, total_steps=5)
    for _ in range(4):
        schedule.step()
    assert optimizer.lr == pytest.approx(1.0 / 25 / 1e4)
    schedule.step()  # step total_steps is allowed, as in torch
    with pytest.raises(ValueError, match='OneCycleLR: step 6 is beyond total_steps=5'):
        schedule.step()


def test_cosine_restarts_land_exactly_on_the_base_rate():
    optimizer = optimizers.SGD(lr=0.1)
    schedule = S.CosineAnnealingWarmRestarts(optimizer, t_0=2, t_mult=2)
    restarts = [schedule.rate_at(step) for step in (0, 2, 6, 14, 30, 62)]
    assert restarts == [0.1] * 6
    assert math.isclose(schedule.rate_at(1), 0.05)
