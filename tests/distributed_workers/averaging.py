"""Run under ``mpiexec -n 3`` and ``-n 4`` by tests/test_distributed.py: how DistributedOptimizer sums
gradients on more than two ranks, through shared memory and with MPI ``Allreduce``, and which of the
two it picks. Writes ``<out_dir>/rank<r>.json``; the test asserts.

Every case averages known per-rank gradients (float32 and float64 parameters in several buckets, one
parameter without gradient on rank 1, one without gradient anywhere) and records the error against the
exact mean (computed in float64 from every rank's gradients) and whether all ranks got identical bits.
With 4 ranks, two machines of two are simulated (the ranks are split by ``rank // 2`` instead of by
machine) for the hierarchical sum, machines of 3 and 1 for the fallback to ``Allreduce``; a
``/dev/shm`` without room for the window is simulated too. Last, the release of a window when the
parameters change, with a gradient viewing it kept and without.
"""
from __future__ import annotations

import json
import os
import sys
import warnings

import numpy as np

import dezero.distributed._shared as shared
from dezero import Model, Parameter, Variable, optimizers
from dezero.distributed import DistributedOptimizer, create_communicator

comm = create_communicator()
rank, size = comm.rank, comm.size
out_dir = sys.argv[1]
results: dict[str, object] = {'rank': rank, 'size': size}
# With 64-byte buckets: float64 [b] (with the counts), [rank1_lacks], [d], [tiny] (fewer elements than
# ranks: some sum an empty slice); float32 [a], [c, nowhere].
SHAPES = {'a': ((5, 3), np.float32), 'b': ((7,), np.float64), 'rank1_lacks': ((3,), np.float64),
          'c': ((2, 2), np.float32), 'd': ((11,), np.float64), 'tiny': ((1,), np.float64),
          'nowhere': ((2,), np.float32)}


class Mixed(Model):
    def __init__(self) -> None:
        super().__init__()
        for name, (shape, dtype) in SHAPES.items():
            setattr(self, name, Parameter(np.zeros(shape, dtype)))


def gradients_of(r: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(r)
    grads = {name: rng.standard_normal(shape).astype(dtype) for name, (shape, dtype) in SHAPES.items()}
    del grads['nowhere']
    if r == 1:
        del grads['rank1_lacks']
    return grads


def users_hook(params) -> None:
    """Changes nothing, but is not one of dezero's hooks: the ranks then get private copies."""


def average(label: str, **options: object) -> None:
    """``average_once`` as it is and with a hook of the user's (``<label>_private``)."""
    average_once(label, False, **options)
    average_once(f'{label}_private', True, **options)


def average_once(label: str, with_hook: bool, **options: object) -> None:
    """Average the gradients with ``DistributedOptimizer(**options)`` (lr 0: weights stay), twice, and
    record the path taken, the error against the exact mean and whether the ranks agree bit for bit."""
    model = Mixed()
    optimizer = DistributedOptimizer(optimizers.SGD(lr=0.0), comm, bucket_bytes=64, **options)
    optimizer.setup(model)
    if with_hook:
        optimizer.add_hook(users_hook)
    for _ in range(2):  # the second step reuses the buffers
        model.cleargrads()
        for name, grad in gradients_of(rank).items():
            getattr(model, name).grad = Variable(grad.copy())
        optimizer.update()
    every = [gradients_of(r) for r in range(size)]
    errors, mine = {}, {}
    for name, param in model.named_params():
        if name == 'nowhere':
            errors[name] = None if param.grad is None else 'has a gradient'
            continue
        exact = sum(g[name].astype(np.float64) for g in every if name in g) / size
        errors[name] = float(np.abs(param.grad.data - exact).max() / np.abs(exact).max())
        mine[name] = param.grad.data.tobytes().hex()
        assert param.grad.data.dtype == SHAPES[name][1]
    results[label] = {'shared': optimizer._shared is not None, 'buckets': len(optimizer._buckets),
                      'errors': errors, 'identical': all(g == mine for g in comm.allgather(mine)),
                      'read_only': not model.a.grad.data.flags.writeable}


average('one_machine')
average_once('allreduce', False, shared_memory=False)


def relayout(keep: bool) -> dict[str, object]:
    """One step through the shared result, keeping a gradient (``keep``) or not, then a parameter
    appears, so the buckets are planned again and the first window released: freed, unless a
    gradient still views it (freeing would unmap the memory under it). Whether it was freed, and
    whether the kept gradient still reads what it read."""
    model = Mixed()
    optimizer = DistributedOptimizer(optimizers.SGD(lr=0.0), comm, bucket_bytes=64).setup(model)
    for name, grad in gradients_of(rank).items():
        getattr(model, name).grad = Variable(grad.copy())
    optimizer.update()
    first = optimizer._shared
    kept = model.b.grad if keep else None
    before = None if kept is None else kept.data.copy()
    model.cleargrads()
    model.extra = Parameter(np.zeros(3))
    model.extra.grad = Variable(np.ones(3))
    optimizer.update()  # the new parameter: buckets planned again, the first window released
    return {'read_only': before is not None and not kept.data.flags.writeable,
            'window_freed': not first._window, 'new_window': optimizer._shared is not first,
            'kept_intact': kept is None or bool(np.array_equal(kept.data, before)),
            'extra_grad': model.extra.grad.data.tolist()}


results['relayout_kept'] = relayout(keep=True)
results['relayout_cleared'] = relayout(keep=False)

if size == 4:
    def split_in(machine_of):
        return lambda mpi_comm: mpi_comm.Split(machine_of(mpi_comm.Get_rank()), key=mpi_comm.Get_rank())

    shared.split_by_machine = split_in(lambda r: r // 2)
    average('two_machines')
    shared.split_by_machine = split_in(lambda r: int(r == 3))
    average_once('uneven_machines', False)
    shared.split_by_machine = split_in(lambda r: 0)

shared._free_bytes = lambda directory: 2 ** 20  # 1 MiB free: not enough (simulated)
with warnings.catch_warnings(record=True) as warned:
    warnings.simplefilter('always')
    average_once('no_room', False)
results['no_room_warnings'] = [str(w.message) for w in warned]
results['osc_environment'] = os.environ.get('OMPI_MCA_osc')

with open(os.path.join(out_dir, f'rank{rank}.json'), 'w') as file:
    json.dump(results, file)
comm.print('averaging done')
