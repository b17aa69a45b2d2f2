"""The state of a training run: Layer and Optimizer ``state_dict``/``load_state_dict``, pickling a model
with its optimizer, and ``save_checkpoint``/``load_checkpoint`` (an interrupted and resumed run ends
bit-identical to an uninterrupted one; the file holds no pickle; every mismatch is one clear error)."""
import os
import pickle
import zipfile

import numpy as np
import pytest

import dezero
import dezero.functions as F
import dezero.layers as L
from dezero import DataLoader, Parameter, Variable, optimizers
from dezero.models import MLP
from dezero.optimizers import schedules
from tests.test_examples import load_example, needs_fashion

ALL_OPTIMIZERS = [optimizers.SGD, optimizers.MomentumSGD, optimizers.AdaGrad, optimizers.AdaDelta,
                  optimizers.RMSprop, optimizers.Adam, optimizers.AdamW]


class Net(dezero.Model):
    """Linear → BatchNorm → ReLU → dropout → Linear: parameters, buffers and random draws."""

    def __init__(self, dropout=0.3):
        super().__init__()
        self.l0 = L.Linear(16)
        self.bn = L.BatchNorm()
        self.l1 = L.Linear(3)
        self.dropout = dropout

    def forward(self, x):
        return self.l1(F.dropout(F.relu(self.bn(self.l0(x))), self.dropout))


def trained_net(steps=3, seed=0):
    np.random.seed(seed)
    model = Net()
    optimizer = optimizers.Adam(alpha=0.01).setup(model)
    x, t = np.random.rand(10, 2).astype(np.float32), np.random.randint(0, 3, 10)
    for _ in range(steps):
        loss = F.softmax_cross_entropy(model(x), t)
        model.cleargrads()
        loss.backward()
        optimizer.update()
    return model, optimizer, x, t


def assert_same_arrays(a, b):
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
        assert a[key].dtype == b[key].dtype, key


# =============================================================================
# Layer.state_dict / load_state_dict
# =============================================================================
def test_layer_state_dict_has_the_save_weights_keys_and_buffers(tmp_path):
    model = trained_net()[0]
    state = model.state_dict()
    assert list(state) == ['l0/W', 'l0/b', 'bn/gamma', 'bn/beta', 'bn/avg_mean', 'bn/avg_var', 'l1/W', 'l1/b']
    model.save_weights(tmp_path / 'w.npz')
    with np.load(tmp_path / 'w.npz') as saved:
        assert_same_arrays(state, dict(saved))


def test_layer_state_dict_is_a_copy_and_loads_back():
    model = trained_net()[0]
    state = model.state_dict()
    state['l0/W'][...] = 0
    assert np.any(model.l0.W.data != 0)
    before = model.state_dict()
    model.l1.b.data += 1.0
    model.bn.avg_mean[...] = 7.0
    model.load_state_dict(before)
    assert_same_arrays(model.state_dict(), before)
    before['l1/b'][...] = 5.0  # the loaded arrays are copies too
    assert np.all(model.l1.b.data != 5.0)


def test_layer_load_state_dict_fills_lazy_layers_and_keeps_dtypes():
    source = MLP((4, 2))
    source(np.ones((1, 3), np.float32))
    target = MLP((4, 2))
    assert target.l0.W.data is None
    target.load_state_dict({key: a.astype(np.float64) for key, a in source.state_dict().items()})
    np.testing.assert_array_equal(target.l0.W.data, source.l0.W.data)
    assert target.l0.W.dtype == np.float64  # filled: the saved dtype
    assert target.l0.b.dtype == np.float32  # replaced: keeps its own


def test_layer_load_state_dict_reports_every_difference_and_changes_nothing():
    model = trained_net()[0]
    before = model.state_dict()
    state = model.state_dict()
    del state['bn/avg_var']
    state['l1/W'] = np.zeros((3, 3), np.float32)
    state['extra/W'] = np.zeros(2)
    with pytest.raises(ValueError, match=r"Net.load_state_dict: the state dict does not fit Net: missing "
                                         r"keys \['bn/avg_var'\], unexpected keys \['extra/W'\], shape "
                                         r"mismatches \[l1/W: file \(3, 3\), model \(16, 3\)\]"):
        model.load_state_dict(state)
    assert_same_arrays(model.state_dict(), before)


def test_num_params_counts_parameters_and_buffers():
    model = trained_net()[0]
    assert model.num_params() == 2 * 16 + 16 + 16 + 16 + 16 * 3 + 3
    assert model.num_params(buffers=True) == 16 + 16
    assert MLP((3, 2)).num_params() == 3 + 2  # lazy weights are not counted until they exist


# =============================================================================
# Optimizer.state_dict / load_state_dict
# =============================================================================
def run_steps(model, optimizer, x, t, steps):
    for _ in range(steps):
        loss = F.softmax_cross_entropy(model(x), t)
        model.cleargrads()
        loss.backward()
        optimizer.update()


@pytest.mark.parametrize('cls', ALL_OPTIMIZERS, ids=[c.__name__ for c in ALL_OPTIMIZERS])
def test_optimizer_state_dict_resumes_bit_identically(cls):
    np.random.seed(0)
    model = MLP((6, 3))
    x, t = np.random.rand(8, 4), np.random.randint(0, 3, 8)
    optimizer = cls().setup(model)
    run_steps(model, optimizer, x, t, 3)
    weights, state = model.state_dict(), optimizer.state_dict()

    assert state['optimizer'] == cls.__name__ and state['schedule'] is None
    assert sorted(state['state']) == ([] if cls is optimizers.SGD else ['l0/W', 'l0/b', 'l1/W', 'l1/b'])
    for arrays in state['state'].values():
        assert sorted(arrays) == sorted(cls.state_names)
    hyperparameters = {'lr'} if cls is optimizers.SGD else set()
    assert hyperparameters <= set(state['scalars'])
    if issubclass(cls, optimizers.Adam):
        assert state['scalars']['t'] == 3 and 'alpha' in state['scalars']

    run_steps(model, optimizer, x, t, 4)
    expected = model.state_dict()

    resumed_model = MLP((6, 3))
    resumed_model.load_state_dict(weights)
    resumed = cls().setup(resumed_model)
    resumed.load_state_dict(state)
    run_steps(resumed_model, resumed, x, t, 4)
    assert_same_arrays(resumed_model.state_dict(), expected)


def test_optimizer_state_dict_holds_copies_keyed_by_path_not_id():
    model, optimizer, _, _ = trained_net()
    state = optimizer.state_dict()
    assert set(state['state']) == {'l0/W', 'l0/b', 'bn/gamma', 'bn/beta', 'l1/W', 'l1/b'}
    m = state['state']['l0/W']['m']
    assert m is not optimizer.state[model.l0.W]['m'] and np.array_equal(m, optimizer.state[model.l0.W]['m'])
    assert state['scalars'] == {'t': 3, 'alpha': 0.01, 'beta1': 0.9, 'beta2': 0.999, 'eps': 1e-8}


def test_optimizer_over_a_parameter_list_uses_positions_as_paths():
    params = [Parameter(np.ones(2)), Parameter(np.ones(3))]
    optimizer = optimizers.MomentumSGD(lr=0.5).setup(params)
    for p in params:
        p.grad = Variable(np.ones_like(p.data))
    optimizer.update()
    state = optimizer.state_dict()
    assert list(state['state']) == ['0', '1']
    np.testing.assert_array_equal(state['state']['1']['v'], [-0.5, -0.5, -0.5])


def test_optimizer_load_state_dict_reports_every_difference_and_changes_nothing():
    model, optimizer, _, _ = trained_net()
    state = optimizer.state_dict()
    state['scalars']['momentum'] = 0.9
    state['state']['l0/W']['m'] = np.zeros((5, 16))
    state['state']['ghost/W'] = {'m': np.zeros(1), 'v': np.zeros(1)}
    state['state']['l1/b'] = {'h': np.zeros(3)}
    before = {k: v['m'].copy() for k, v in optimizer.state_dict()['state'].items()}
    with pytest.raises(ValueError) as info:
        optimizer.load_state_dict(state)
    message = str(info.value)
    assert message.startswith('Adam.load_state_dict: the state does not fit Adam: ')
    assert "unknown scalars ['momentum']" in message
    assert "parameters not in the target ['ghost/W']" in message
    assert 'l0/W/m: saved (5, 16), parameter (2, 16)' in message
    assert "l1/b: state ['h'], expected ['m', 'v']" in message
    after = {k: v['m'] for k, v in optimizer.state_dict()['state'].items()}
    assert_same_arrays(after, before)
    with pytest.raises(ValueError, match='SGD.load_state_dict: .*it holds the state of Adam'):
        optimizers.SGD().setup(model).load_state_dict(optimizer.state_dict())


def test_optimizer_and_schedule_must_match_when_loading():
    model = MLP((2,))
    scheduled = optimizers.SGD(lr=0.1).setup(model)
    schedules.StepLR(scheduled, step_size=2)
    plain = optimizers.SGD(lr=0.1).setup(model)
    with pytest.raises(ValueError, match='StepLR schedule but the optimizer has none'):
        plain.load_state_dict(scheduled.state_dict())
    with pytest.raises(ValueError, match='no schedule state but the optimizer has a StepLR schedule'):
        scheduled.load_state_dict(plain.state_dict())


def test_pickling_a_model_with_its_optimizer_keeps_them_attached():
    model, optimizer, x, t = trained_net()
    model2, optimizer2 = pickle.loads(pickle.dumps((model, optimizer)))
    assert optimizer2.target is model2 and optimizer2.t == 3
    params2 = list(model2.params())
    assert len(optimizer2.state) == len(params2)
    assert all(any(p is q for q in params2) for p in optimizer2.state)
    state = np.random.get_state()
    run_steps(model, optimizer, x, t, 2)
    np.random.set_state(state)
    run_steps(model2, optimizer2, x, t, 2)
    assert_same_arrays(model.state_dict(), model2.state_dict())


# =============================================================================
# save_checkpoint / load_checkpoint
# =============================================================================
def make_run(seed, make_optimizer, make_schedule=None):
    """What a training script builds before its loop: loader, model, optimizer, schedule."""
    np.random.seed(seed)
    loader = DataLoader(dezero.datasets.Spiral(), batch_size=30)
    model = Net()
    optimizer = make_optimizer().setup(model)
    schedule = None if make_schedule is None else make_schedule(optimizer)
    return loader, model, optimizer, schedule


def train_epochs(run, epochs):
    loader, model, optimizer, schedule = run
    for _ in epochs:
        for x, t in loader:
            loss = F.softmax_cross_entropy(model(x), t)
            model.cleargrads()
            loss.backward()
            optimizer.update()
        if isinstance(schedule, schedules.ReduceLROnPlateau):
            schedule.step(float(loss.data))
        elif schedule is not None:
            schedule.step()


RUNS = [
    ('SGD', lambda: optimizers.SGD(lr=0.5), None),
    ('Adam-dropout', lambda: optimizers.Adam(alpha=0.01), None),
    ('MomentumSGD-warmup-cosine', lambda: optimizers.MomentumSGD(lr=0.2),
     lambda o: schedules.Warmup(schedules.CosineAnnealingLR(o, t_max=4), steps=2)),
    ('AdamW-plateau', lambda: optimizers.AdamW(alpha=0.02),
     lambda o: schedules.ReduceLROnPlateau(o, patience=0, factor=0.5)),
]


@pytest.mark.parametrize('make_optimizer, make_schedule', [r[1:] for r in RUNS], ids=[r[0] for r in RUNS])
def test_interrupted_and_resumed_run_ends_bit_identical(tmp_path, make_optimizer, make_schedule):
    epochs, interrupt_after = 6, 2
    uninterrupted = make_run(0, make_optimizer, make_schedule)
    train_epochs(uninterrupted, range(epochs))

    first = make_run(0, make_optimizer, make_schedule)
    train_epochs(first, range(interrupt_after))
    loader, model, optimizer, _ = first
    dezero.save_checkpoint(tmp_path / 'run.npz', model, optimizer, loader, epoch=interrupt_after)

    resumed = make_run(123, make_optimizer, make_schedule)  # another seed: everything must come from the file
    loader, model, optimizer, _ = resumed
    start = dezero.load_checkpoint(tmp_path / 'run.npz', model, optimizer, loader)['epoch']
    assert start == interrupt_after
    train_epochs(resumed, range(start, epochs))

    assert_same_arrays(resumed[1].state_dict(), uninterrupted[1].state_dict())
    resumed_state, expected_state = resumed[2].state_dict(), uninterrupted[2].state_dict()
    assert resumed_state['state'].keys() == expected_state['state'].keys()
    for path, arrays in expected_state['state'].items():
        assert_same_arrays(resumed_state['state'][path], arrays)
    assert resumed_state['scalars'] == expected_state['scalars']
    assert resumed_state['schedule'] == expected_state['schedule']


def test_without_the_loader_the_resumed_order_differs(tmp_path):
    """Why the loader is part of the checkpoint: it draws the next epoch's order as an epoch ends."""
    uninterrupted = make_run(0, lambda: optimizers.SGD(lr=0.5))
    train_epochs(uninterrupted, range(3))
    first = make_run(0, lambda: optimizers.SGD(lr=0.5))
    train_epochs(first, range(1))
    dezero.save_checkpoint(tmp_path / 'run', first[1], first[2])
    resumed = make_run(0, lambda: optimizers.SGD(lr=0.5))
    dezero.load_checkpoint(tmp_path / 'run', resumed[1], resumed[2])
    train_epochs(resumed, range(1, 3))
    assert not np.array_equal(resumed[1].l1.W.data, uninterrupted[1].l1.W.data)


def test_checkpoint_holds_no_pickle_and_round_trips_extra_values(tmp_path):
    model, optimizer, _, _ = trained_net()
    schedules.ExponentialLR(optimizer, gamma=0.9).step()
    history = {'loss': [1.5, 0.75], 'name': 'run-1', 'done': False, 'best': None}
    path = tmp_path / 'ckpt'
    dezero.save_checkpoint(path, model, optimizer, epoch=np.int64(4), history=history,
                           confusion=np.eye(3, dtype=np.int32))
    assert os.path.exists(str(path) + '.npz')
    with np.load(str(path) + '.npz', allow_pickle=False) as archive:
        entries = {key: archive[key] for key in archive.files}
    assert all(a.dtype != object for a in entries.values())
    assert {'model/l0/W', 'model/bn/avg_mean', 'optimizer/l0/W/m', 'optimizer/bn/gamma/v', 'rng/keys',
            'extra/confusion', 'metadata'} <= set(entries)
    assert not any(name.startswith('loader/') for name in entries)

    np.random.seed(5)
    expected_draw = np.random.rand(3)
    np.random.seed(5)
    dezero.save_checkpoint(path, model, optimizer)
    np.random.seed(99)
    fresh_model, fresh_optimizer = Net(), optimizers.Adam(alpha=0.01).setup(Net())
    fresh_optimizer.setup(fresh_model)
    schedules.ExponentialLR(fresh_optimizer, gamma=0.9)
    assert dezero.load_checkpoint(path, fresh_model, fresh_optimizer) == {}
    np.testing.assert_array_equal(np.random.rand(3), expected_draw)  # the global RNG is restored
    assert fresh_optimizer.alpha == optimizer.alpha == pytest.approx(0.009)
    assert fresh_optimizer.schedule.last_step == 1

    dezero.save_checkpoint(path, model, optimizer, epoch=np.int64(4), history=history,
                           confusion=np.eye(3, dtype=np.int32))
    extra = dezero.load_checkpoint(path, Net())
    confusion = extra.pop('confusion')
    assert extra == {'epoch': 4, 'history': history}
    np.testing.assert_array_equal(confusion, np.eye(3))
    assert confusion.dtype == np.int32


def test_save_checkpoint_rejects_values_it_cannot_store_and_leaves_the_old_file(tmp_path):
    model = trained_net()[0]
    path = tmp_path / 'run.npz'
    dezero.save_checkpoint(path, model, epoch=1)
    with pytest.raises(TypeError, match="save_checkpoint: extra value 'callback' of type function cannot"):
        dezero.save_checkpoint(path, model, epoch=2, callback=lambda: None)
    assert dezero.load_checkpoint(path, model) == {'epoch': 1}
    with pytest.raises(FileNotFoundError, match="save_checkpoint: cannot write .*directory .* does not"):
        dezero.save_checkpoint(tmp_path / 'missing' / 'run.npz', model)


def test_an_interrupted_write_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    model = trained_net()[0]
    path = tmp_path / 'run.npz'
    dezero.save_checkpoint(path, model, epoch=1)

    def failing_savez(file, **arrays):
        file.write(b'PK\x03\x04 partial')
        raise OSError('disk full')

    monkeypatch.setattr(np, 'savez', failing_savez)
    with pytest.raises(OSError, match='disk full'):
        dezero.save_checkpoint(path, model, epoch=2)
    monkeypatch.undo()
    assert dezero.load_checkpoint(path, model) == {'epoch': 1}
    assert sorted(os.listdir(tmp_path)) == ['run.npz']


def test_loading_a_checkpoint_that_does_not_fit_names_the_file_and_changes_nothing(tmp_path):
    model, optimizer, _, _ = trained_net()
    path = tmp_path / 'run.npz'
    dezero.save_checkpoint(path, model, optimizer)

    other = MLP((8, 3))
    other(np.ones((1, 2), np.float32))
    before = other.state_dict()
    with pytest.raises(ValueError, match=r"load_checkpoint: '.*run.npz' does not fit MLP: unexpected keys "
                                         r"\['bn/gamma', 'bn/beta', 'bn/avg_mean', 'bn/avg_var'\], shape "
                                         r"mismatches \[l0/W: file \(2, 16\), model \(2, 8\); l0/b"):
        dezero.load_checkpoint(path, other)
    assert_same_arrays(other.state_dict(), before)

    fresh = Net()
    fresh(np.ones((1, 2), np.float32))
    before = fresh.state_dict()
    with pytest.raises(ValueError, match=r"load_checkpoint: '.*run.npz': SGD.load_state_dict: .*of Adam"):
        dezero.load_checkpoint(path, fresh, optimizers.SGD().setup(fresh))
    assert_same_arrays(fresh.state_dict(), before)  # the weights were put back

    dezero.save_checkpoint(path, model)
    with pytest.raises(ValueError, match='holds no optimizer state'):
        dezero.load_checkpoint(path, model, optimizer)
    with pytest.raises(ValueError, match='holds no loader state'):
        dezero.load_checkpoint(path, model, loader=DataLoader(dezero.datasets.Spiral(), 10))


def test_loading_a_foreign_file_is_a_clear_error(tmp_path):
    model = trained_net()[0]
    with pytest.raises(FileNotFoundError, match="load_checkpoint: no such file '.*nothing.npz'"):
        dezero.load_checkpoint(tmp_path / 'nothing.npz', model)
    model.save_weights(tmp_path / 'weights.npz')
    with pytest.raises(ValueError, match='is not a dezero checkpoint .*Layer.load_weights'):
        dezero.load_checkpoint(tmp_path / 'weights.npz', model)
    (tmp_path / 'text.npz').write_text('hello')
    with pytest.raises(ValueError, match='load_checkpoint: .*text.npz.* is not an .npz'):
        dezero.load_checkpoint(tmp_path / 'text.npz', model)
    with zipfile.ZipFile(tmp_path / 'odd.npz', 'w') as archive:
        archive.writestr('metadata.npy', b'')
    with pytest.raises(ValueError, match='load_checkpoint: .*odd.npz'):
        dezero.load_checkpoint(tmp_path / 'odd.npz', model)


# =============================================================================
# The examples' --checkpoint and --resume
# =============================================================================
def checkpoint_weights(path):
    with np.load(path, allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files if key.startswith('model/')}


def test_demo_resumes_to_the_same_weights(tmp_path, monkeypatch, capsys):
    demo = load_example('train_fashion_mnist')
    spiral = ('spiral', dezero.datasets.Spiral(train=True), dezero.datasets.Spiral(train=False), (30, 3))
    monkeypatch.setattr(demo, 'load_data', lambda train_size, test_size: spiral)
    whole, part = tmp_path / 'whole.npz', tmp_path / 'part.npz'
    out = ['--out-dir', str(tmp_path)]
    demo.main(out + ['--epochs', '3', '--checkpoint', str(whole)])
    demo.main(out + ['--epochs', '1', '--checkpoint', str(part)])
    demo.main(out + ['--epochs', '3', '--resume', str(part), '--checkpoint', str(part)])
    assert 'resumed from' in capsys.readouterr().out
    assert_same_arrays(checkpoint_weights(part), checkpoint_weights(whole))
    assert dezero.load_checkpoint(part, MLP((30, 3)))['history'] == \
        dezero.load_checkpoint(whole, MLP((30, 3)))['history']


@pytest.mark.slow
@needs_fashion
def test_cnn_example_resumes_to_the_same_weights(tmp_path):
    cnn = load_example('cnn_fashion_mnist')
    common = ['--train-size', '64', '--test-size', '32', '--batch-size', '32', '--out-dir', str(tmp_path)]
    whole, part = tmp_path / 'whole.npz', tmp_path / 'part.npz'
    cnn.main(common + ['--epochs', '2', '--checkpoint', str(whole)])
    cnn.main(common + ['--epochs', '1', '--checkpoint', str(part)])
    history = cnn.main(common + ['--epochs', '2', '--resume', str(part), '--checkpoint', str(part)])
    assert len(history['test_acc']) == 2
    assert_same_arrays(checkpoint_weights(part), checkpoint_weights(whole))
