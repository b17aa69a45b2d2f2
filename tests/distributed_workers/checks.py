"""Run under ``mpiexec -n 2`` by tests/test_distributed.py: exercises dezero.distributed on real ranks
and writes what each rank saw to ``<out_dir>/rank<r>.json`` and ``rank<r>.npz``; the test asserts.

One launch covers many checks (MPI startup costs about a second): collectives, data sharding,
training against the single-process reference, lazy parameters, BatchNorm buffers, parameters without
gradient, bucketing, saving and loading, and replicas whose structure differs (the errors are caught
here, where every rank raises the same one, so the launch goes on).
"""
from __future__ import annotations

import json
import os
import sys
import warnings

import numpy as np
from cases import Branches, TinyMLP, branch_data, params_of, train

import dezero
import dezero.functions as F
import dezero.layers as L
from dezero import Model, Variable, optimizers
from dezero.distributed import DistributedDataLoader, DistributedOptimizer, create_communicator

comm = create_communicator()
rank = comm.rank
out_dir = sys.argv[1]
results: dict[str, object] = {'rank': rank, 'size': comm.size}
arrays: dict[str, np.ndarray] = {}


def caught(fn) -> str:
    """Run ``fn`` and return the type and text of the exception it raises ('' if none)."""
    try:
        fn()
    except Exception as error:
        return f'{type(error).__name__}: {error}'
    return ''


# --- collectives on arrays, Variables and scalars ------------------------------------------------
value = np.arange(6, dtype=np.float64).reshape(2, 3) * (rank + 1)
results['allreduce_sum'] = comm.allreduce(value).tolist()
results['allreduce_mean'] = comm.allreduce(value, 'mean').tolist()
results['allreduce_max_int'] = comm.allreduce(np.array([rank, -rank]), 'max').tolist()
results['allreduce_min'] = comm.allreduce(value, 'min').tolist()
results['allreduce_int_mean_dtype'] = str(comm.allreduce(np.array([1, 2]), 'mean').dtype)
results['allreduce_float32_dtype'] = str(comm.allreduce(value.astype(np.float32)).dtype)
results['allreduce_variable'] = comm.allreduce(Variable(np.array([1.5])), 'sum').tolist()
results['allreduce_scalar_float'] = comm.allreduce(0.25 * (rank + 1))
results['allreduce_scalar_int'] = comm.allreduce(rank + 1)
results['allreduce_scalar_mean'] = comm.allreduce(rank + 1, 'mean')
results['allreduce_list'] = comm.allreduce([1.0, rank, 2])
results['allreduce_tuple_type'] = type(comm.allreduce((1.0, 2.0))).__name__
results['broadcast_array'] = comm.broadcast(np.full(3, 7.0) if rank == 0 else None).tolist()
results['broadcast_object'] = comm.broadcast({'seed': 42} if rank == 0 else None)
results['broadcast_from_1'] = comm.broadcast(rank * 10, root=1)
results['allgather'] = comm.allgather(rank)
comm.barrier()
results['bad_op'] = caught(lambda: comm.allreduce(1.0, 'prod'))

# --- sharding: three shuffled epochs of 103 samples, batch 10 per rank; one unshuffled pass ---------


class Indices(dezero.Dataset):
    def __init__(self, n: int) -> None:
        self.n = n
        super().__init__()

    def prepare(self) -> None:
        self.data = np.arange(self.n)
        self.label = np.arange(self.n)


np.random.seed(3)
loader = DistributedDataLoader(Indices(103), batch_size=10, comm=comm)
results['loader_len'] = len(loader)
results['epochs'] = [[x.tolist() for x, _ in loader] for _ in range(3)]
results['loader_seed'] = loader.seed
eval_loader = DistributedDataLoader(Indices(103), batch_size=10, comm=comm, shuffle=False,
                                    drop_remainder=False)
results['eval_pass'] = [x.tolist() for x, _ in eval_loader]
results['unequal_lengths'] = caught(lambda: DistributedDataLoader(Indices(100 + rank), 10, comm))

# --- training: two ranks on half batches (the test compares with one process on the whole batch) -----
# Three ways of summing: the ranks share one read-only result (dezero's optimizers and hooks); each
# gets a private copy (a hook of the user's, which might write into gradients); MPI Allreduce.
def users_hook(params) -> None:
    """Changes nothing, but is not one of dezero's hooks."""


for case in ('mlp_sgd', 'cnn_adam_wd_clip'):
    for way in ('shared', 'private', 'allreduce'):
        made: list[DistributedOptimizer] = []

        def wrap(optimizer, case=case, way=way, made=made):
            # The CNN uses tiny buckets, so that several buckets carry its gradients.
            options = {'bucket_bytes': 1000} if case == 'cnn_adam_wd_clip' else {}
            made.append(DistributedOptimizer(optimizer, comm, shared_memory=way != 'allreduce', **options))
            if way == 'private':
                made[-1].add_hook(users_hook)
            return made[-1]

        model = train(case, rank, wrap)
        for path, data in params_of(model).items():
            arrays[f'{case}/{way}/{path}'] = data
        key = f'{case}/{way}'
        results[f'{key}/allreduce_calls'] = made[0].allreduce_calls
        results[f'{key}/buckets'] = len(made[0]._buckets)
        results[f'{key}/skipped'] = made[0].skipped_updates
        results[f'{key}/through_shared_memory'] = made[0]._shared is not None
        results[f'{key}/read_only'] = [not p.grad.data.flags.writeable for p in model.params()]

# --- lazy parameters created with different values: synchronised, that one update skipped -----------
np.random.seed(100 + rank)
model = TinyMLP()
optimizer = DistributedOptimizer(optimizers.SGD(lr=0.1), comm).setup(model)
x = np.random.default_rng(5).standard_normal((4, 5))
t = np.array([0, 1, 2, 0])
with warnings.catch_warnings(record=True) as warned:
    warnings.simplefilter('always')
    for _ in range(3):
        loss = F.softmax_cross_entropy(model(x), t)
        model.cleargrads()
        loss.backward()
        optimizer.update()
results['lazy_skipped'] = optimizer.skipped_updates
results['lazy_warnings'] = [str(w.message) for w in warned]
for path, data in params_of(model).items():
    arrays[f'lazy/{path}'] = data

# --- BatchNorm: per-rank batch statistics, rank 0's running averages on every replica --------------


class BNNet(Model):
    def __init__(self) -> None:
        super().__init__()
        self.l0 = L.Linear(4, in_size=3, dtype=np.float64)
        self.bn = L.BatchNorm()

    def forward(self, x):
        return self.bn(self.l0(x))


np.random.seed(rank)  # different initial weights: setup must make them rank 0's
model = BNNet()
optimizer = DistributedOptimizer(optimizers.MomentumSGD(lr=0.1), comm).setup(model)
rng = np.random.default_rng(10 + rank)  # every rank its own data
weights = np.random.default_rng(11).standard_normal(4)
for _ in range(3):
    x = rng.standard_normal((8, 3))
    loss = F.sum(model(x) * weights) / len(x)
    model.cleargrads()
    loss.backward()
    optimizer.update()
for path, data in params_of(model).items():
    arrays[f'bn/{path}'] = data
arrays['bn/bn/avg_mean'] = model.bn.avg_mean.copy()
arrays['bn/bn/avg_var'] = model.bn.avg_var.copy()

# --- parameters without gradient: on rank 1 only (zeros there), on no rank (left alone) ------------


np.random.seed(0)
model = Branches()
optimizer = DistributedOptimizer(optimizers.SGD(lr=0.5), comm).setup(model)
x = branch_data()[rank]
model.cleargrads()
F.sum(model(x, use_b=(rank == 0)) ** 2).backward()
optimizer.update()
results['branch_grads'] = {path: None if p.grad is None else p.grad.data.tolist()
                           for path, p in model.named_params()}
for path, data in params_of(model).items():
    arrays[f'branch/{path}'] = data

# --- results are reused, but never under a gradient someone still holds --------------------------
def reuse(**options) -> dict[str, object]:
    """Five steps, keeping the gradient of steps 1 and 2; the address of the memory each step's
    gradient lies in, whether it was read-only, whether the kept ones stayed intact."""
    np.random.seed(0)
    model = TinyMLP()
    x = np.random.default_rng(8).standard_normal((4, 5))
    model(x)
    optimizer = DistributedOptimizer(optimizers.SGD(lr=0.1), comm, **options).setup(model)
    addresses, read_only, kept = [], [], []
    for step in range(5):
        model.cleargrads()
        F.sum(model(x) ** 2).backward()
        optimizer.update()
        addresses.append(model.l0.W.grad.data.__array_interface__['data'][0])
        read_only.append(not model.l0.W.grad.data.flags.writeable)
        if step in (1, 2):
            kept.append((model.l0.W.grad, model.l0.W.grad.data.copy()))
    write = caught(lambda: model.l0.W.grad.data.__iadd__(1.0))
    return {'addresses': addresses, 'read_only': read_only, 'write': write,
            'kept_intact': all(np.array_equal(g.data, copy) for g, copy in kept)}


results['reuse_shared'] = reuse()
results['reuse_allreduce'] = reuse(shared_memory=False)


def write_into_shared_result() -> None:
    np.random.seed(0)
    model = TinyMLP()
    optimizer = DistributedOptimizer(optimizers.SGD(lr=0.1), comm).setup(model)
    F.sum(model(np.ones((2, 5)))).backward()
    optimizer.update()
    model.l0.W.grad.data[...] = 0.0


results['write_into_shared_result'] = caught(write_into_shared_result)

# --- the wrapped optimizer's attributes, read and set through the wrapper ---------------------------
wrapped = DistributedOptimizer(optimizers.SGD(lr=0.1), comm)
wrapped.lr = 0.5
wrapped.add_hook(optimizers.WeightDecay(1e-4))
results['forwarded_lr'] = [wrapped.lr, wrapped.actual_optimizer.lr]
results['forwarded_hooks'] = len(wrapped.actual_optimizer.hooks)
results['update_before_setup'] = caught(wrapped.update)

# --- saving on rank 0, loading on every rank (the file read by rank 0 only) -------------------------
np.random.seed(7)
trained = TinyMLP()
trained(np.zeros((1, 5)))
path = os.path.join(out_dir, 'tiny.npz')
comm.save_weights(trained, path)
results['saved_exists_everywhere'] = os.path.exists(path)
fresh = TinyMLP()  # lazy: its W are None until the load fills them
comm.load_weights(fresh, path)
results['loaded_equal'] = all(np.array_equal(a, b) for a, b in
                              zip(params_of(trained).values(), params_of(fresh).values()))
results['load_missing'] = caught(lambda: comm.load_weights(fresh, os.path.join(out_dir, 'absent.npz')))
results['on_root_failure'] = caught(lambda: comm.on_root(lambda: 1 / 0))
results['on_root_value'] = comm.on_root(lambda: 'from rank 0')

# --- replicas whose structure differs: the same clear error on every rank --------------------------


class Widths(Model):
    def __init__(self, in_size, extra=False):
        super().__init__()
        self.l0 = L.Linear(4, in_size=in_size, dtype=np.float64)
        if extra:
            self.l1 = L.Linear(2, in_size=4, dtype=np.float64)

    def forward(self, x):
        return self.l0(x)


results['mismatch_setup'] = caught(
    lambda: DistributedOptimizer(optimizers.SGD(), comm).setup(Widths(5 + rank)))
results['mismatch_count'] = caught(
    lambda: DistributedOptimizer(optimizers.SGD(), comm).setup(Widths(5, extra=rank == 1)))


def lazy_mismatch():
    model = TinyMLP()
    optimizer = DistributedOptimizer(optimizers.SGD(), comm).setup(model)
    loss = F.sum(model(np.ones((2, 5 + rank))))  # input widths differ: so do the lazy W
    loss.backward()
    optimizer.update()


results['mismatch_lazy'] = caught(lazy_mismatch)
comm.barrier()  # still in step after the caught errors

with open(os.path.join(out_dir, f'rank{rank}.json'), 'w') as file:
    json.dump(results, file)
np.savez(os.path.join(out_dir, f'rank{rank}.npz'), **arrays)
comm.print('checks done')
