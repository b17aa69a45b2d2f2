"""Benchmark harness: each library timed in its own fresh ``python`` process, as a user runs it.

A workload (``benchmarks/<name>.py``) defines a ``Workload``: two builders, each importing only its own
library and returning a zero-argument ``step`` to time. ``python benchmarks/<name>.py`` is the driver:
it spawns ``python benchmarks/<name>.py --side dezero`` and ``--side pytorch`` alternately (A B A B,
``--rounds`` rounds, at least 5); each child runs its warm-up steps, times its steps one by one and
prints the median as one JSON line. The driver prints each side's median over the rounds, the ratio
dezero/PyTorch and the min–max of the per-round ratios. ``benchmarks/run.py`` prints one table for all.

Default environment. The children get the driver's environment unchanged: nothing is set that changes
either library's threads, allocator or spinning, so each library runs with its own defaults (all cores,
its own thread pools). The one exception is ``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE``: some of this
project's machines set them (older OpenBLAS builds crash on those processors), and they force a slower
kernel on a current NumPy. A user's process on a normal machine has neither, so the children run
without them unless ``--keep-openblas-env`` is given; the table's environment line states what the
children ran with, including the BLAS kernel (``threadpoolctl``) and thread counts.

Diagnostic modes (labelled as such in their output, never what ``make bench`` reports):
``--in-process`` alternates both libraries step by step in one child process with
``OMP_WAIT_POLICY=PASSIVE`` and ``OPENBLAS_THREAD_TIMEOUT=4`` (idle threads sleep at once), which
removes the libraries' interference but is not what a user gets. ``--profile`` shows where dezero's
time goes (``profile_steps``).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

SIDES = ('dezero', 'pytorch')
# Set by some machines for old OpenBLAS builds; a user's process on a normal machine has neither.
_MACHINE_OPENBLAS_VARIABLES = ('OPENBLAS_CORETYPE', 'OPENBLAS_L2_SIZE')
_DIAGNOSTIC_QUIET_THREADS = {'OMP_WAIT_POLICY': 'PASSIVE', 'OPENBLAS_THREAD_TIMEOUT': '4'}
# Variables that change a library's threads or allocator, reported when present (never set here).
_REPORTED_PREFIXES = ('OPENBLAS_', 'OMP_', 'MKL_', 'GOMP_', 'KMP_', 'DEZERO_NUM_THREADS', 'MALLOC_')


@dataclass
class Workload:
    """One benchmark: ``build[side]()`` imports that side's library and returns its ``step``.

    ``unit`` and ``scale`` convert seconds per step for printing (``scale`` also divides by the
    number of ops in a step, as the overhead chain does). ``steps`` are timed after ``warmup`` in each
    child process. A builder may return ``(step, check)`` where ``check`` is a small JSON value the
    driver compares between the sides (the same gradient, say).
    """

    name: str
    title: str
    unit: str
    scale: float
    steps: int
    warmup: int
    build: dict[str, Callable[[], object]]


def _child_environment(keep_openblas_env: bool, diagnostic: bool = False) -> dict[str, str]:
    env = dict(os.environ)
    if not keep_openblas_env:
        for name in _MACHINE_OPENBLAS_VARIABLES:
            env.pop(name, None)
    if diagnostic:
        env.update(_DIAGNOSTIC_QUIET_THREADS)
    return env


def _built(workload: Workload, side: str) -> tuple[Callable[[], None], object]:
    built = workload.build[side]()
    return built if isinstance(built, tuple) else (built, None)


def _time_steps(step: Callable[[], None], steps: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return times


def _runtime_description(side: str) -> dict[str, object]:
    """What the child ran with: library version, thread counts, BLAS kernel (when threadpoolctl is
    installed; queried after timing, so it changes nothing that was measured)."""
    import numpy
    info: dict[str, object] = {'numpy': numpy.__version__}
    if side == 'pytorch':
        import torch
        info['torch'] = torch.__version__
        info['torch_threads'] = torch.get_num_threads()
    else:
        import dezero
        info['dezero_threads'] = dezero.get_num_threads()
    try:
        import threadpoolctl
    except ImportError:
        return info
    info['pools'] = sorted(f"{p['internal_api']}:{p.get('architecture') or '-'}:{p['num_threads']}"
                           for p in threadpoolctl.threadpool_info())
    return info


def _child(workload: Workload, side: str) -> None:
    step, check = _built(workload, side)
    times = _time_steps(step, workload.steps, workload.warmup)
    print(json.dumps({'side': side, 'median': statistics.median(times), 'check': check,
                      'runtime': _runtime_description(side)}))


def profile_steps(step: Callable[[], None], steps: int = 10) -> None:
    """Print where dezero's time goes over ``steps`` calls of ``step``: dezero's own profiler, time
    per Function class in forward and backward with its share of the total."""
    import dezero.profiler

    with dezero.profiler.profile() as prof:
        for _ in range(steps):
            step()
    prof.table(sort_by='total', limit=15)


def _in_process_child(workload: Workload, rounds: int) -> None:
    """Diagnostic: both libraries in this one process, their steps alternated."""
    ours, theirs = _built(workload, 'dezero')[0], _built(workload, 'pytorch')[0]
    for _ in range(workload.warmup):
        ours()
        theirs()
    times: dict[str, list[float]] = {side: [] for side in SIDES}
    for _ in range(rounds * workload.steps):
        for side, step in (('dezero', ours), ('pytorch', theirs)):
            start = time.perf_counter()
            step()
            times[side].append(time.perf_counter() - start)
    print(json.dumps({side: statistics.median(values) for side, values in times.items()}))


def _run_child(script: str, args: list[str], env: dict[str, str]) -> dict:
    done = subprocess.run([sys.executable, script, *args], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f'benchmark child {script} {" ".join(args)} failed:\n{done.stderr}')
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(workload: Workload, script: str, rounds: int, keep_openblas_env: bool = False) -> dict:
    """Run ``rounds`` rounds of fresh dezero and PyTorch processes, alternately; return a summary:
    per-side medians (seconds per step), the ratio of the medians, per-round ratios and the runtime."""
    if rounds < 1:
        raise ValueError(f'benchmarks: rounds must be at least 1, got {rounds}')
    env = _child_environment(keep_openblas_env)
    per_round: dict[str, list[float]] = {side: [] for side in SIDES}
    results: dict[str, dict] = {}
    for _ in range(rounds):
        for side in SIDES:
            results[side] = _run_child(script, ['--side', side], env)
            per_round[side].append(results[side]['median'])
    checks = {side: results[side]['check'] for side in SIDES}
    if None not in checks.values() and checks['dezero'] != checks['pytorch']:
        raise AssertionError(f'{workload.name}: the two sides disagree: {checks}')
    medians = {side: statistics.median(values) for side, values in per_round.items()}
    ratios = [a / b for a, b in zip(per_round['dezero'], per_round['pytorch'])]
    return {'workload': workload, 'medians': medians, 'ratio': medians['dezero'] / medians['pytorch'],
            'ratios': ratios, 'rounds': rounds,
            'runtime': {side: results[side]['runtime'] for side in SIDES}}


def environment_line(summary: dict, keep_openblas_env: bool) -> str:
    """One line stating the machine and what the children ran with."""
    reported = sorted(f'{k}={v}' for k, v in _child_environment(keep_openblas_env).items()
                      if k.startswith(_REPORTED_PREFIXES))
    runtime = summary['runtime']
    return (f'{os.cpu_count()} cores; python {sys.version.split()[0]}; numpy {runtime["dezero"]["numpy"]}; '
            f'torch {runtime["pytorch"].get("torch")}; '
            f'dezero threads {runtime["dezero"].get("dezero_threads")}; '
            f'pools dezero {runtime["dezero"].get("pools", "?")}, '
            f'pytorch {runtime["pytorch"].get("pools", "?")}; '
            f'environment: {", ".join(reported) or "nothing set that changes threads or allocators"}')


def table(summaries: list[dict]) -> str:
    """The results as one Markdown table."""
    lines = ['| workload | unit | dezero | PyTorch (threads) | ratio | per-round ratio min–max | rounds |',
             '|---|---|---|---|---|---|---|']
    for s in summaries:
        w = s['workload']
        lines.append(f"| {w.name}: {w.title} | {w.unit} | {s['medians']['dezero'] * w.scale:.3f} | "
                     f"{s['medians']['pytorch'] * w.scale:.3f} "
                     f"({s['runtime']['pytorch']['torch_threads']}) | "
                     f"{s['ratio']:.2f} | {min(s['ratios']):.2f}–{max(s['ratios']):.2f} | {s['rounds']} |")
    return '\n'.join(lines)


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Benchmark dezero against PyTorch, each in fresh processes.')
    parser.add_argument('--rounds', type=int, default=5, help='rounds of A B (default 5)')
    parser.add_argument('--side', choices=SIDES, help='(child) time one side and print JSON')
    parser.add_argument('--keep-openblas-env', action='store_true',
                        help='keep OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE in the children')
    parser.add_argument('--in-process', action='store_true',
                        help='diagnostic: both libraries in one process with idle threads made to sleep')
    parser.add_argument('--in-process-child', action='store_true', help=argparse.SUPPRESS)
    parser.add_argument('--profile', action='store_true', help="print where dezero's time goes")
    return parser.parse_args(argv)


def main(workload: Workload, script: str) -> None:
    """Command line of a workload script (see the module docstring)."""
    args = arguments()
    if args.side:
        _child(workload, args.side)
    elif args.profile:
        profile_steps(_built(workload, 'dezero')[0])
    elif args.in_process_child:
        _in_process_child(workload, args.rounds)
    elif args.in_process:
        env = _child_environment(args.keep_openblas_env, diagnostic=True)
        medians = _run_child(script, ['--in-process-child', '--rounds', str(args.rounds)], env)
        settings = ', '.join(f'{k}={v}' for k, v in _DIAGNOSTIC_QUIET_THREADS.items())
        print(f'DIAGNOSTIC (one process, {settings};'
              f' not what a user gets): {workload.name}: dezero {medians["dezero"] * workload.scale:.3f} '
              f'{workload.unit}, PyTorch {medians["pytorch"] * workload.scale:.3f} {workload.unit}, '
              f'ratio {medians["dezero"] / medians["pytorch"]:.2f}')
    else:
        summary = measure(workload, script, args.rounds, args.keep_openblas_env)
        print(table([summary]))
        print(environment_line(summary, args.keep_openblas_env))
