"""dezero.profiler: exact call counts per Function class, forward and backward, on small models; the
table's order, shares and errors; values unchanged while profiling."""
import re

import numpy as np
import pytest

import dezero
import dezero.core
import dezero.functions as F
from dezero import Variable, optimizers, profiler
from dezero.models import MLP


def counts(prof):
    return {name: (s.forward_calls, s.backward_calls) for name, s in prof.stats.items()}


def train_steps(n_steps, model, optimizer, x, t):
    for _ in range(n_steps):
        loss = F.mean_squared_error(model(x), t)
        model.cleargrads()
        loss.backward()
        optimizer.update()


def test_counts_of_a_two_layer_mlp_are_exact():
    np.random.seed(0)
    model = MLP((5, 2))
    optimizer = optimizers.SGD(lr=0.1).setup(model)
    x, t = np.random.rand(8, 3), np.random.rand(8, 2)
    with profiler.profile() as prof:
        train_steps(3, model, optimizer, x, t)
    # Per step: two Linear, one Sigmoid, one MeanSquaredError, forward and backward. The ops that the
    # backward formulas run (MatMul, Transpose, SumTo, Mul...) are part of those backward times.
    assert counts(prof) == {'Linear': (6, 6), 'Sigmoid': (3, 3), 'MeanSquaredError': (3, 3)}
    assert all(s.forward_seconds > 0 and s.backward_seconds > 0 for s in prof.stats.values())


def test_forward_only_under_no_grad_counts_no_backward():
    model = MLP((4, 1), activation=F.relu)
    x = np.ones((2, 3))
    with profiler.profile() as prof, dezero.no_grad():
        model(x)
        model(x)
    assert counts(prof) == {'Linear': (4, 0), 'ReLU': (2, 0)}


def test_ops_of_a_second_order_backward_are_counted_as_backward_calls():
    with profiler.profile() as prof:
        x = Variable(np.array(0.7))
        y = F.sin(x)
        y.backward(create_graph=True)  # runs cos and mul inside Sin's backward: part of it
        gx = x.grad
        x.cleargrad()
        gx.backward()  # visits those two ops
    assert counts(prof) == {'Sin': (1, 1), 'Mul': (0, 1), 'Cos': (0, 1)}


def test_a_backward_whose_forward_ran_before_the_profile_is_not_recorded():
    y = F.relu(Variable(np.array([1.0])))
    with profiler.profile() as prof:
        z = F.tanh(y)
        z.backward()
    # ReLU's backward is not observed, so the op it runs (ReLUGrad) counts as a call of its own.
    assert counts(prof) == {'Tanh': (1, 1), 'ReLUGrad': (1, 0)}


def test_values_and_gradients_are_unchanged_while_profiling():
    def run():
        np.random.seed(1)
        model = MLP((6, 3))
        optimizer = optimizers.Adam().setup(model)
        x, t = np.random.rand(4, 2), np.random.rand(4, 3)
        train_steps(2, model, optimizer, x, t)
        return [p.data.copy() for p in model.params()]

    plain = run()
    with profiler.profile():
        profiled = run()
    for a, b in zip(plain, profiled):
        np.testing.assert_array_equal(a, b)


def make_profile():
    prof = profiler.Profile()
    prof.stats = {'A': profiler.FunctionStats(10, 0.001, 10, 0.003),
                  'B': profiler.FunctionStats(1, 0.005, 0, 0.0),
                  'C': profiler.FunctionStats(40, 0.0005, 40, 0.0005)}
    prof.wall_seconds = 0.02
    return prof


def row_names(table):
    return [line.split()[0] for line in table.splitlines()[2:-1]]


@pytest.mark.parametrize('sort_by, order', [('total', ['B', 'A', 'C']), ('forward', ['B', 'A', 'C']),
                                            ('backward', ['A', 'C', 'B']), ('calls', ['C', 'A', 'B'])])
def test_table_sorts_and_shows_shares_of_the_total(sort_by, order):
    table = make_profile().table(sort_by=sort_by, print_fn=None)
    assert row_names(table) == order
    lines = {line.split()[0]: line for line in table.splitlines()[2:-1]}
    assert lines['A'].split() == ['A', '10', '1.000', '10', '3.000', '4.000', '40.0%']
    assert lines['B'].split()[-1] == '50.0%' and lines['C'].split()[-1] == '10.0%'
    assert table.splitlines()[-1] == '3 Function classes; 10.000 ms in Functions (50.0% of 20.000 ms wall)'


def test_table_prints_limits_and_rejects_unknown_keys(capsys):
    text = make_profile().table(limit=2)
    assert capsys.readouterr().out == text + '\n'
    assert row_names(text) == ['B', 'A']
    with pytest.raises(ValueError, match=r"Profile.table: sort_by must be one of .*'calls'.*got 'time'"):
        make_profile().table(sort_by='time')


def test_a_real_table_adds_up():
    model = MLP((5, 2))
    with profiler.profile() as prof:
        F.sum(model(np.ones((3, 4)))).backward()
    table = prof.table(print_fn=None)
    shares = [float(m) for m in re.findall(r'([\d.]+)%\n', table)]
    assert len(shares) == 3
    assert sum(shares) == pytest.approx(100, abs=0.2)
    assert 0 < prof.function_seconds <= prof.wall_seconds


def test_profiles_nest_and_combine_with_anomaly_detection():
    with profiler.profile() as outer:
        F.sin(Variable(np.array(1.0)))
        with profiler.profile() as inner, dezero.detect_anomaly():
            F.cos(Variable(np.array(1.0)))
    assert counts(outer) == {'Sin': (1, 0), 'Cos': (1, 0)}
    assert counts(inner) == {'Cos': (1, 0)}
    assert dezero.core._call_with_hooks is None
