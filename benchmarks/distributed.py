"""Data parallelism on MPI: the MLP of ``benchmarks/mlp.py`` (784-1000-1000-10, ReLU, float32, SGD) at
global batch 200, one process with 2 BLAS threads against 2 processes (``mpiexec -n 2``) with 1 thread
each and batch 100 per rank: the same 2 cores. Prints ms per step (median and min-max over rounds,
each configuration in fresh processes, rounds interleaved A B A B ...), the share of the distributed
step spent in the gradient ``Allreduce``, the bytes each rank sends, and what a ring allreduce of
those bytes costs on paper on a 10 Gb/s network for 8 and 64 machines.

Run: ``python benchmarks/distributed.py`` (needs the ``dist`` extra: mpi4py and mpiexec). The workers
are this file run with ``--worker``.
"""
from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

SIZES = (784, 1000, 1000, 10)
GLOBAL_BATCH = 200
ROUNDS = 7
WARMUP_STEPS = 5
TIMED_STEPS = 40
NETWORK_BYTES_PER_S = 10e9 / 8   # 10 Gb/s
LATENCY_S = 20e-6                # per message on a TCP network, a typical figure (assumed, not measured)
REPO_ROOT = Path(__file__).resolve().parent.parent


def worker() -> None:
    """One timed run: in one process (batch 200) or as one rank of ``mpiexec -n 2`` (batch 100 each)."""
    import numpy as np

    import dezero._parallel
    import dezero.functions as F
    from dezero import optimizers
    from dezero.models import MLP

    threads = int(os.environ['OPENBLAS_NUM_THREADS'])
    dezero._parallel._WORKERS = threads - 1  # dezero's own elementwise thread pool: the same budget
    distributed = '--distributed' in sys.argv
    comm = None
    if distributed:
        from dezero.distributed import DistributedOptimizer, create_communicator

        comm = create_communicator()
    ranks = comm.size if comm else 1
    batch = GLOBAL_BATCH // ranks
    rng = np.random.default_rng(comm.rank if comm else 0)
    x = rng.standard_normal((batch, SIZES[0])).astype(np.float32)
    t = rng.integers(0, SIZES[-1], batch).astype(np.int32)
    np.random.seed(0)
    model = MLP(SIZES[1:], activation=F.relu)
    optimizer = optimizers.SGD(lr=0.01).setup(model)
    if comm:
        optimizer = DistributedOptimizer(optimizer, comm)

    def step() -> None:
        loss = F.softmax_cross_entropy(model(x), t)
        model.cleargrads()
        loss.backward()
        optimizer.update()

    for _ in range(WARMUP_STEPS):
        step()
    if comm:
        comm.barrier()
    times, allreduce_times = [], []
    for _ in range(TIMED_STEPS):
        before = optimizer.allreduce_seconds if comm else 0.0
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
        allreduce_times.append(optimizer.allreduce_seconds - before if comm else 0.0)
    result = {'step_s': statistics.median(times), 'allreduce_s': 0.0, 'transfer_s': 0.0,
              'gradient_bytes': sum(p.data.nbytes for p in model.params()),
              'calls_per_step': optimizer.allreduce_calls / (WARMUP_STEPS + TIMED_STEPS) if comm else 0}
    if comm:
        # Time in Allreduce during training includes waiting for the rank that finishes its backward
        # last. The transfer alone: the same updates entered together, right after a barrier.
        per_step = zip(*comm.allgather(allreduce_times))
        result['allreduce_s'] = statistics.median(sum(ranks) / len(ranks) for ranks in per_step)
        transfers = []
        for _ in range(TIMED_STEPS // 2):
            loss = F.softmax_cross_entropy(model(x), t)
            model.cleargrads()
            loss.backward()
            comm.barrier()
            before = optimizer.allreduce_seconds
            optimizer.update()
            transfers.append(optimizer.allreduce_seconds - before)
        result['transfer_s'] = sum(comm.allgather(statistics.median(transfers))) / comm.size
        if comm.is_root:
            print(json.dumps(result))
    else:
        print(json.dumps(result))


def find_mpiexec() -> str | None:
    beside = Path(sys.executable).parent / 'mpiexec'
    return str(beside) if beside.is_file() else shutil.which('mpiexec')


def launch(mpiexec: str | None, threads: int) -> dict:
    """Run one worker configuration in fresh processes and return its JSON result."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads),
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get('PYTHONPATH')])))
    command = [sys.executable, __file__, '--worker']
    if mpiexec:
        # Shared memory only: the TCP transport's interface probing only slows the start.
        launcher = [mpiexec, '-n', '2', '--bind-to', 'core', '--mca', 'btl', 'self,sm']
        if hasattr(os, 'geteuid') and os.geteuid() == 0:
            launcher.append('--allow-run-as-root')
        command = launcher + command + ['--distributed']
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f'benchmark worker failed ({" ".join(command)}):\n{done.stdout}{done.stderr}')
    return json.loads(done.stdout.strip().splitlines()[-1])


def summary(values: list[float]) -> str:
    return f'{statistics.median(values):7.2f} ms  [{min(values):.2f}-{max(values):.2f}]'


def main() -> None:
    mpiexec = find_mpiexec()
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        mpiexec = None
    if mpiexec is None:
        print("benchmarks/distributed.py: skipped, needs mpi4py and mpiexec (pip install 'dezero[dist]')")
        return
    single, parallel = [], []
    for _ in range(ROUNDS):  # interleaved: machine noise falls on both alike
        single.append(launch(None, threads=2))
        parallel.append(launch(mpiexec, threads=1))
    one = [r['step_s'] * 1e3 for r in single]
    two = [r['step_s'] * 1e3 for r in parallel]
    share = [100 * r['transfer_s'] / r['step_s'] for r in parallel]
    in_step = [100 * r['allreduce_s'] / r['step_s'] for r in parallel]
    transfer_ms = statistics.median(1e3 * r['transfer_s'] for r in parallel)
    allreduce_ms = statistics.median(1e3 * r['allreduce_s'] for r in parallel)
    n_bytes = parallel[0]['gradient_bytes']
    print(f'Data parallelism on MPI: MLP {"-".join(map(str, SIZES))} ReLU, float32, SGD, global batch '
          f'{GLOBAL_BATCH}; ms per step, median [min-max] of {ROUNDS} rounds (fresh processes each, '
          f'median of {TIMED_STEPS} steps)')
    print(f'  1 process  x 2 threads, batch {GLOBAL_BATCH}         : {summary(one)}')
    print(f'  2 processes x 1 thread, batch {GLOBAL_BATCH // 2} per rank: {summary(two)}')
    print(f'  ratio 1 process / 2 processes: {statistics.median(one) / statistics.median(two):.2f}')
    print(f'  communication: {statistics.median(share):.1f}% of the step [{min(share):.1f}-{max(share):.1f}] '
          f'(target <= 10%): the gradient Allreduce ({parallel[0]["calls_per_step"]:.0f} call per step) '
          f'takes {transfer_ms:.2f} ms when both ranks enter it together; during training the ranks '
          f'spend {allreduce_ms:.2f} ms in it ({statistics.median(in_step):.1f}% of the step), the rest '
          'being one rank waiting for the other to finish its backward')

    # On paper: ring allreduce, each rank sends (and receives) 2 (p - 1) / p * N bytes in 2 (p - 1) steps.
    # Compute per sample on one core: the 1-process step spread over its 2 cores.
    compute_ms_per_sample = statistics.median(one) * 2 / GLOBAL_BATCH
    print(f'  each rank sends {n_bytes / 1e6:.2f} MB of float32 gradients per step at p = 2 '
          f'(ring allreduce: 2 (p-1)/p x {n_bytes / 1e6:.2f} MB); on paper, on 10 Gb/s '
          f'({NETWORK_BYTES_PER_S / 1e9:.2f} GB/s) with {LATENCY_S * 1e6:.0f} us per message, one core '
          f'per rank at {compute_ms_per_sample:.3f} ms per sample (the 1-process run):')
    for p in (8, 64):
        sent = 2 * (p - 1) / p * n_bytes
        comm_ms = 1e3 * (sent / NETWORK_BYTES_PER_S + 2 * (p - 1) * LATENCY_S)
        scalings = ((f'global batch {GLOBAL_BATCH}', GLOBAL_BATCH / p), ('batch 100 per rank', 100))
        for label, per_rank in scalings:
            compute = compute_ms_per_sample * per_rank
            print(f'    p = {p:2d}, {label:18s}: sends {sent / 1e6:5.2f} MB -> {comm_ms:5.1f} ms of '
                  f'communication against ~{compute:5.1f} ms of compute per rank: '
                  f'{100 * comm_ms / (comm_ms + compute):3.0f}% of the step')


if __name__ == '__main__':
    if '--worker' in sys.argv:
        worker()
    else:
        main()
