"""dezero.detect_anomaly: the first NaN/Inf forward or backward names the op, its inputs and the source
line that created it; results are unchanged in the mode, and nothing is left installed after it."""
import inspect

import numpy as np
import pytest

import dezero
import dezero.core
import dezero.functions as F
from dezero import Variable
from dezero.anomaly import AnomalyError
from dezero.models import MLP

# NumPy's own warnings for log(-1) and 0 ** -0.5 would be errors under the project's warning filter.
pytestmark = pytest.mark.filterwarnings('ignore::RuntimeWarning')


def next_line() -> int:
    """The number of the line after the caller's."""
    return inspect.currentframe().f_back.f_lineno + 1


def test_nan_in_forward_names_the_op_its_inputs_and_the_line():
    x = Variable(np.array([1.0, -1.0]))
    with pytest.raises(AnomalyError) as info, dezero.detect_anomaly():
        line = next_line()
        F.log(x)
    message = str(info.value)
    assert message.startswith('detect_anomaly: Log forward produced nan in output 0 (shape (2,), float64)')
    assert 'inputs: (2,) float64' in message
    assert f'created at {__file__}:{line} in test_nan_in_forward_names_the_op_its_inputs_and_the_line: ' \
           'F.log(x)' in message


def test_inf_in_backward_names_the_op_whose_backward_failed():
    x = Variable(np.array([0.0, 4.0], dtype=np.float32))
    with dezero.detect_anomaly():
        line = next_line()
        y = x ** 0.5  # finite forward; the gradient 0.5 / sqrt(0) is inf
        z = F.sum(y)
        with pytest.raises(AnomalyError) as info:
            z.backward()
    message = str(info.value)
    assert message.startswith('detect_anomaly: PowConstant backward produced inf in the gradient of input 0 '
                              '(shape (2,), float32)')
    assert 'inputs: (2,) float32' in message
    assert f'{__file__}:{line} ' in message and 'y = x ** 0.5' in message


def test_nan_from_an_op_inside_a_dezero_model_points_at_the_users_call():
    model = MLP((3, 2))
    x = np.ones((4, 5))
    model(x)
    model.l0.W.data[0, 0] = np.nan
    with pytest.raises(AnomalyError, match='Linear forward produced nan') as info, dezero.detect_anomaly():
        line = next_line()
        model(x)
    assert f'{__file__}:{line} in ' in str(info.value) and 'model(x)' in str(info.value)


def test_the_line_inside_a_users_layer_is_reported():
    class Risky(dezero.Model):
        def forward(self, x):
            return F.log(x - 2.0)  # the line expected below

    expected = inspect.getsourcelines(Risky.forward)[1] + 1
    with pytest.raises(AnomalyError, match=f':{expected} in forward: return F.log') as info, \
            dezero.detect_anomaly():
        Risky()(np.array([1.0]))
    assert 'Log forward produced nan' in str(info.value)


def test_finite_runs_give_the_same_values_and_gradients_as_outside_the_mode():
    def run():
        np.random.seed(0)
        model = MLP((7, 3), activation=F.tanh)
        x = np.random.rand(5, 4)
        loss = F.softmax_cross_entropy(model(x), np.array([0, 1, 2, 1, 0]))
        model.cleargrads()
        loss.backward()
        return [loss.data] + [p.grad.data for p in model.params()]

    plain = run()
    with dezero.detect_anomaly():
        checked = run()
    for a, b in zip(plain, checked):
        np.testing.assert_array_equal(a, b)


def test_second_order_gradients_work_in_the_mode():
    def second_derivative():
        x = Variable(np.array(0.7))
        y = F.sin(x) * x
        y.backward(create_graph=True)
        gx = x.grad
        x.cleargrad()
        gx.backward()
        return x.grad.data

    plain = second_derivative()
    with dezero.detect_anomaly():
        checked = second_derivative()
    assert checked == plain == pytest.approx(2 * np.cos(0.7) - 0.7 * np.sin(0.7))


def test_nan_in_a_second_order_backward_is_found():
    x = Variable(np.array(0.0))
    with dezero.detect_anomaly():
        y = x ** 1.5  # first derivative 1.5 * x ** 0.5 is finite at 0, the second is not
        y.backward(create_graph=True)
        gx = x.grad
        x.cleargrad()
        with pytest.raises(AnomalyError, match='PowConstant backward produced inf'):
            gx.backward()


def test_integer_outputs_are_not_checked_and_nan_inputs_alone_do_not_raise():
    with dezero.detect_anomaly():
        F.reshape(Variable(np.arange(6)), (2, 3))
        F.accuracy(Variable(np.eye(3)), np.array([0, 1, 2]))
        with pytest.raises(AnomalyError, match='Add forward produced nan'):
            Variable(np.array([np.nan])) + Variable(np.array([1.0]))


def test_nothing_stays_installed_after_the_mode_even_on_error():
    assert dezero.core._call_with_hooks is None
    with pytest.raises(AnomalyError), dezero.detect_anomaly():
        F.log(Variable(np.array(-1.0)))
    assert dezero.core._call_with_hooks is None
    y = F.sin(Variable(np.array(1.0)))
    assert 'backward' not in y.creator.__dict__  # created outside: the class's own backward


def test_outside_the_mode_nan_goes_unnoticed():
    y = F.log(Variable(np.array(-1.0)))
    assert np.isnan(y.data)
