"""Where the time goes: calls and time per Function class, in forward and in backward.

Example::

    with dezero.profiler.profile() as prof:
        for x, t in loader:
            loss = F.softmax_cross_entropy(model(x), t)
            model.cleargrads()
            loss.backward()
            optimizer.update()
    prof.table(sort_by='total', limit=10)   # prints, and returns, the table

What is counted: each Function called by your code (or by a Layer) is one forward call of its class;
each visit of ``Variable.backward`` to a Function is one backward call of that class (recorded when the
Function's forward also ran inside the profile). A backward formula is itself built from ops; those
ops are *not* counted on their own: their time is part of the backward that ran them, so the rows add
up to the time spent in Functions without counting anything twice. (A Function whose forward ran
before the profile began is not observed: its backward is not recorded, and the ops that backward
runs count as calls of their own.) Time outside Functions (Python glue, the optimizer, data loading)
is the difference between the wall time and that total, shown on the last line. Timing adds a little
overhead per op; compare rows with each other rather than with an unprofiled run.
"""
from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterator
from typing import Any

from dezero import _hooks
from dezero._tables import format_table
from dezero.core import Function, Variable

__all__ = ['profile', 'Profile', 'FunctionStats']


@dataclasses.dataclass
class FunctionStats:
    """Counts and seconds of one Function class: ``forward_calls``, ``forward_seconds``,
    ``backward_calls``, ``backward_seconds``; ``total_seconds`` is their sum."""

    forward_calls: int = 0
    forward_seconds: float = 0.0
    backward_calls: int = 0
    backward_seconds: float = 0.0

    @property
    def total_seconds(self) -> float:
        """Forward plus backward seconds."""
        return self.forward_seconds + self.backward_seconds


_SORT_KEYS: dict[str, Callable[[FunctionStats], float]] = {
    'total': lambda s: s.total_seconds,
    'forward': lambda s: s.forward_seconds,
    'backward': lambda s: s.backward_seconds,
    'calls': lambda s: s.forward_calls + s.backward_calls,
}


class Profile(_hooks.FunctionHook):
    """What ``profile()`` records: ``stats`` maps a Function class name to its ``FunctionStats``;
    ``wall_seconds`` is the duration of the ``with`` block (set when it ends)."""

    def __init__(self) -> None:
        self.stats: dict[str, FunctionStats] = {}
        self.wall_seconds = 0.0

    def _entry(self, func: Function) -> FunctionStats:
        name = type(func).__name__
        entry = self.stats.get(name)
        if entry is None:
            entry = self.stats[name] = FunctionStats()
        return entry

    def after_forward(self, func: Function, inputs: tuple[Variable, ...], outputs: tuple[Any, ...],
                      seconds: float, nested: bool) -> None:
        if not nested:
            entry = self._entry(func)
            entry.forward_calls += 1
            entry.forward_seconds += seconds

    def after_backward(self, func: Function, grad_outputs: tuple[Any, ...], grad_inputs: tuple[Any, ...],
                       seconds: float, nested: bool) -> None:
        if not nested:
            entry = self._entry(func)
            entry.backward_calls += 1
            entry.backward_seconds += seconds

    @property
    def function_seconds(self) -> float:
        """Seconds spent in Functions, forward and backward, over every class."""
        return sum(s.total_seconds for s in self.stats.values())

    def table(self, sort_by: str = 'total', limit: int | None = None,
              print_fn: Callable[[str], Any] | None = print) -> str:
        """The statistics as a text table, one row per Function class, largest first by ``sort_by``
        (``'total'``, ``'forward'``, ``'backward'`` or ``'calls'``), at most ``limit`` rows.

        Columns: forward calls and milliseconds, backward calls and milliseconds, total milliseconds
        and its share of the time spent in all Functions. A last line compares that time with the
        wall time of the profile. The text is passed to ``print_fn`` (``None``: not printed) and
        returned.
        """
        if sort_by not in _SORT_KEYS:
            raise ValueError(f'Profile.table: sort_by must be one of {sorted(_SORT_KEYS)}, got {sort_by!r}')
        key = _SORT_KEYS[sort_by]
        rows = sorted(self.stats.items(), key=lambda item: (-key(item[1]), item[0]))
        if limit is not None:
            rows = rows[:limit]
        total = self.function_seconds
        body = [[name, f'{s.forward_calls:,}', f'{s.forward_seconds * 1e3:.3f}', f'{s.backward_calls:,}',
                 f'{s.backward_seconds * 1e3:.3f}', f'{s.total_seconds * 1e3:.3f}',
                 f'{100 * s.total_seconds / total:.1f}%' if total > 0 else '-']
                for name, s in rows]
        text = format_table(['Function', 'fwd calls', 'fwd ms', 'bwd calls', 'bwd ms', 'total ms', 'share'],
                            body, align='<>>>>>>')
        wall = self.wall_seconds
        share = f' ({100 * total / wall:.1f}% of {wall * 1e3:.3f} ms wall)' if wall > 0 else ''
        text += f'\n{len(self.stats)} Function classes; {total * 1e3:.3f} ms in Functions{share}'
        if print_fn is not None:
            print_fn(text)
        return text


@contextlib.contextmanager
def profile() -> Iterator[Profile]:
    """Record calls and time per Function class for the ``with`` block; yields the ``Profile``.

    Example: ``with profile() as prof: model(x).backward()``, then ``prof.table()``. Profiles nest
    (each records what ran inside it) and combine with ``dezero.detect_anomaly()``.
    """
    prof = Profile()
    start = time.perf_counter()
    try:
        with _hooks.installed(prof):
            yield prof
    finally:
        prof.wall_seconds = time.perf_counter() - start
