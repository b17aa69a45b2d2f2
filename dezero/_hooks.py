"""Observing every Function call: the one mechanism behind ``detect_anomaly`` and the profiler.

A hook is a ``FunctionHook``; ``installed(hook)`` makes it active for a ``with`` block. While any hook
is active, ``Function.__call__`` hands each call to ``call`` below (the engine's only cost otherwise is
one ``is None`` check per call), which runs ``forward``, tells every hook, and gives the Function an
observed ``backward``, so ``Variable.backward`` reports to the hooks without knowing they exist.

A Function's backward is observed when both its forward and its backward run while a hook is active.
Calls made while another observed call runs (the ops a backward formula is built from, an op called
inside another op's forward) are *nested*: hooks see them flagged so, and their time is part of the
enclosing call's.
"""
from __future__ import annotations

import contextlib
import time
import weakref
from collections.abc import Iterator
from typing import Any

from dezero import core
from dezero.core import Config, Constant, Function, Variable, as_array


class FunctionHook:
    """Base of the objects told about Function calls; every method does nothing by default.

    ``func`` is the Function; ``inputs`` its input Variables; ``outputs`` the arrays its forward
    returned; ``grad_outputs`` / ``grad_inputs`` the Variables its backward received / returned (an
    entry may be None); ``seconds`` the time the call took; ``nested`` is True for a call made while
    another observed call ran.
    """

    def before_forward(self, func: Function, inputs: tuple[Variable, ...], nested: bool) -> None:
        """Called before ``func.forward`` runs."""

    def after_forward(self, func: Function, inputs: tuple[Variable, ...], outputs: tuple[Any, ...],
                      seconds: float, nested: bool) -> None:
        """Called after ``func.forward`` returned, before its outputs are wrapped into Variables."""

    def after_backward(self, func: Function, grad_outputs: tuple[Any, ...], grad_inputs: tuple[Any, ...],
                       seconds: float, nested: bool) -> None:
        """Called after ``func.backward`` returned."""


_active: list[FunctionHook] = []
_depth = 0  # observed calls now running; a call made while it is > 0 is nested


@contextlib.contextmanager
def installed(hook: FunctionHook) -> Iterator[FunctionHook]:
    """Make ``hook`` active for the ``with`` block (hooks nest; the engine is back to its plain path
    once the last one is removed)."""
    _active.append(hook)
    core._call_with_hooks = call
    try:
        yield hook
    finally:
        _active.remove(hook)
        if not _active:
            core._call_with_hooks = None


def call(func: Function, inputs: tuple[Any, ...]) -> Any:
    """``func(*inputs)`` with every active hook told about it: what ``Function.__call__`` does, observed."""
    global _depth
    inputs = tuple([x if isinstance(x, Variable) else Constant(as_array(x)) for x in inputs])
    hooks = tuple(_active)
    nested = _depth > 0
    for hook in hooks:
        hook.before_forward(func, inputs, nested)
    _depth += 1
    start = time.perf_counter()
    try:
        ys = func.forward(*[x.data for x in inputs])
    finally:
        _depth -= 1
    seconds = time.perf_counter() - start
    single = ys.__class__ is not tuple
    if single:
        ys = (ys,)
    for hook in hooks:
        hook.after_forward(func, inputs, ys, seconds, nested)
    outputs = func._wrap_outputs(inputs, ys)
    if Config.enable_backprop:
        # An instance attribute shadows the class's backward, so the backward loop calls this one.
        func.backward = _ObservedBackward(func)
    return outputs[0] if single else outputs


class _ObservedBackward:
    """Stands in for one Function's ``backward``: runs the class's method and tells the hooks.

    It holds the Function weakly, so no reference cycle keeps a recorded graph alive.
    """

    __slots__ = ('func_ref',)

    def __init__(self, func: Function) -> None:
        self.func_ref = weakref.ref(func)

    def __call__(self, *grad_outputs: Any) -> Any:
        global _depth
        func = self.func_ref()
        backward = type(func).backward
        if not _active:
            return backward(func, *grad_outputs)
        hooks = tuple(_active)
        nested = _depth > 0
        _depth += 1
        start = time.perf_counter()
        try:
            grad_inputs = backward(func, *grad_outputs)
        finally:
            _depth -= 1
        seconds = time.perf_counter() - start
        as_tuple = grad_inputs if grad_inputs.__class__ is tuple else (grad_inputs,)
        for hook in hooks:
            hook.after_backward(func, grad_outputs, as_tuple, seconds, nested)
        return grad_inputs
