"""Data parallelism on MPI: the MLP of ``benchmarks/mlp.py`` (784-1000-1000-10, ReLU, float32, SGD) at
global batch 200, one process with 2 BLAS threads against 2 processes (``mpiexec -n 2``) with 1 thread
each and batch 100 per rank: the same 2 cores. The 2 processes run twice: summing the gradients
through an MPI shared window (``DistributedOptimizer``'s default) and with MPI ``Allreduce``
(``shared_memory=False``). Prints ms per step (median and min-max over rounds, each configuration in
fresh processes, rounds interleaved A B C A B C ...), the share of the distributed step spent in
communication, the bytes each rank sends, and what a ring allreduce of those bytes costs on paper on a
10 Gb/s network for 8 and 64 machines.

The communication share: ``DistributedOptimizer.allreduce_seconds`` (the time from the gradients
packed into their buckets to every rank holding the mean) over the step, measured with both ranks
entering ``update()`` together (a barrier after backward), so that the time one rank waits for the
other to finish its backward does not count; the median over steps, averaged over the two ranks. This
still counts the wait for the slower rank to finish *packing* (the same copy on both ranks, yet it
differs by a tenth of a millisecond or more when this machine's two cores run at unequal speeds). With
the shared window that wait is measured apart (``allreduce_wait_seconds``: the time in the barrier before
the sums), so the pure transfer is printed as well; with ``Allreduce`` it cannot be told apart. During
training the ranks spend more time there, waiting for each other's backward: printed too.

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
        optimizer = DistributedOptimizer(optimizer, comm, shared_memory='--allreduce' not in sys.argv)

    def backward() -> None:
        loss = F.softmax_cross_entropy(model(x), t)
        model.cleargrads()
        loss.backward()

    def timed_update() -> tuple[float, float]:
        """``update()``; returns the seconds it spent summing gradients, and waiting before that."""
        total, wait = optimizer.allreduce_seconds, optimizer.allreduce_wait_seconds
        optimizer.update()
        return optimizer.allreduce_seconds - total, optimizer.allreduce_wait_seconds - wait

    for _ in range(WARMUP_STEPS):
        backward()
        optimizer.update()
    if comm:
        comm.barrier()
    times, in_training = [], []
    for _ in range(TIMED_STEPS):
        start = time.perf_counter()
        backward()
        spent = timed_update() if comm else (0.0, 0.0)
        times.append(time.perf_counter() - start)
        in_training.append(spent)
    result = {'step_s': statistics.median(times),
              'gradient_bytes': sum(p.data.nbytes for p in model.params())}
    if comm:
        together = []
        for _ in range(TIMED_STEPS):
            backward()
            comm.barrier()
            together.append(timed_update())

        def rank_average(pairs: list[tuple[float, float]], which: int) -> float:
            return sum(comm.allgather(statistics.median(pair[which] for pair in pairs))) / comm.size

        result.update(in_training_s=rank_average(in_training, 0),
                      in_training_wait_s=rank_average(in_training, 1),
                      together_s=rank_average(together, 0), together_wait_s=rank_average(together, 1),
                      transfer_s=rank_average([(total - wait, 0.0) for total, wait in together], 0))
    if comm is None or comm.is_root:
        print(json.dumps(result))


def find_mpiexec() -> str | None:
    beside = Path(sys.executable).parent / 'mpiexec'
    return str(beside) if beside.is_file() else shutil.which('mpiexec')


def launch(mpiexec: str | None, threads: int, allreduce: bool = False) -> dict:
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
        command = launcher + command + ['--distributed'] + (['--allreduce'] if allreduce else [])
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f'benchmark worker failed ({" ".join(command)}):\n{done.stdout}{done.stderr}')
    return json.loads(done.stdout.strip().splitlines()[-1])


def median_ms(runs: list[dict], key: str) -> str:
    return f'{statistics.median(1e3 * r[key] for r in runs):.2f}'


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
    single, shared, allreduce = [], [], []
    for _ in range(ROUNDS):  # interleaved: machine noise falls on all alike
        single.append(launch(None, threads=2))
        shared.append(launch(mpiexec, threads=1))
        allreduce.append(launch(mpiexec, threads=1, allreduce=True))
    one = [r['step_s'] * 1e3 for r in single]
    print(f'Data parallelism on MPI: MLP {"-".join(map(str, SIZES))} ReLU, float32, SGD, global batch '
          f'{GLOBAL_BATCH}; ms per step, median [min-max] of {ROUNDS} rounds (fresh processes each, '
          f'median of {TIMED_STEPS} steps)')
    print(f'  1 process  x 2 threads, batch {GLOBAL_BATCH}                            : {summary(one)}')
    for label, runs in (('shared window (default)', shared), ('MPI Allreduce          ', allreduce)):
        two = [r['step_s'] * 1e3 for r in runs]
        print(f'  2 processes x 1 thread, batch {GLOBAL_BATCH // 2} per rank, {label}: {summary(two)}  '
              f'(1 process / 2 processes: {statistics.median(one) / statistics.median(two):.2f})')
    print('  communication, % of the step [min-max] (target <= 10%), both ranks entering update() together:')
    for label, runs in (('shared window', shared), ('MPI Allreduce', allreduce)):
        share = [100 * r['together_s'] / r['step_s'] for r in runs]
        in_step = [100 * r['in_training_s'] / r['step_s'] for r in runs]
        line = (f'    {label}: {statistics.median(share):4.1f}% [{min(share):.1f}-{max(share):.1f}], '
                f'{median_ms(runs, "together_s")} ms per step')
        if label == 'shared window':
            pure = [100 * r['transfer_s'] / r['step_s'] for r in runs]
            line += (f', of which {median_ms(runs, "together_wait_s")} ms waiting for the slower rank to '
                     f'finish packing; the transfer alone {statistics.median(pure):.1f}% '
                     f'[{min(pure):.1f}-{max(pure):.1f}], {median_ms(runs, "transfer_s")} ms')
        line += (f'\n      during training, waiting for the slower rank\'s backward too: '
                 f'{statistics.median(in_step):.1f}%, {median_ms(runs, "in_training_s")} ms')
        if label == 'shared window':
            line += f', of which {median_ms(runs, "in_training_wait_s")} ms waiting'
        print(line)

    # On paper: ring allreduce, each rank sends (and receives) 2 (p - 1) / p * N bytes in 2 (p - 1) steps.
    # Compute per sample on one core: the 1-process step spread over its 2 cores.
    n_bytes = shared[0]['gradient_bytes']
    compute_ms_per_sample = statistics.median(one) * 2 / GLOBAL_BATCH
    print(f'  each rank sends {n_bytes / 1e6:.2f} MB of float32 gradients per step: here it writes them '
          f'to the shared window; across p machines (one rank each, or several summing through shared '
          f'memory first), each machine sends 2 (p-1)/p x {n_bytes / 1e6:.2f} MB (ring allreduce). On '
          f'paper, on 10 Gb/s ({NETWORK_BYTES_PER_S / 1e9:.2f} GB/s) with {LATENCY_S * 1e6:.0f} us per '
          f'message, one core per machine at {compute_ms_per_sample:.3f} ms per sample (the 1-process '
          'run):')
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
