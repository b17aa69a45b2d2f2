"""``make bench``: every workload, each library in its own fresh processes, as one table.

Run: ``python benchmarks/run.py [--rounds 5] [workload ...]`` (default: all of ``WORKLOADS``).
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _harness import environment_line, measure, table  # noqa: E402

WORKLOADS = ('overhead', 'mlp', 'cnn', 'lstm')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('workloads', nargs='*', default=list(WORKLOADS))
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--keep-openblas-env', action='store_true')
    args = parser.parse_args()
    summaries = []
    for name in args.workloads:
        module = importlib.import_module(name)
        summaries.append(measure(module.WORKLOAD, module.__file__, args.rounds, args.keep_openblas_env))
        print(f'{name} done', file=sys.stderr, flush=True)
    print(table(summaries))
    print(environment_line(summaries[0], args.keep_openblas_env))


if __name__ == '__main__':
    main()
