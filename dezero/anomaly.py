"""Anomaly detection: find the op that produced the first NaN or Inf, forward or backward.

Example::

    with dezero.detect_anomaly():
        loss = model(x)          # each op's outputs are checked as it runs
        loss.backward()          # each op's input gradients are checked as they are computed

At the first non-finite value an ``AnomalyError`` names the Function, the shapes and dtypes of its
inputs, whether forward or backward produced it, and the line of your code that created the op (the
first frame outside the dezero package, captured only in this mode). Outside the ``with`` block the
engine pays a single ``is None`` check per op; inside, every op also walks the stack once and scans
its outputs, so keep the mode for debugging runs.

Ops run inside a backward formula (nested calls) are not checked themselves: the gradient their
enclosing backward returns is, so the error names the Function whose backward went wrong. Only
floating-point (and complex) arrays are checked. A Function's backward is checked when its forward
also ran in the mode.
"""
from __future__ import annotations

import contextlib
import linecache
import os
import sys
from collections.abc import Iterator
from typing import Any

from dezero import _hooks
from dezero.core import Function, Variable
from dezero.cuda import get_array_module

__all__ = ['detect_anomaly', 'AnomalyError']

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


class AnomalyError(FloatingPointError):
    """A Function produced NaN or Inf while ``detect_anomaly()`` was active."""


_in_package: dict[str, bool] = {}  # file name -> inside dezero? (asked once per file)


def _user_frame() -> tuple[str, int, str] | None:
    """``(file, line, function)`` of the innermost frame outside the dezero package, if any."""
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        inside = _in_package.get(filename)
        if inside is None:
            inside = _in_package[filename] = os.path.abspath(filename).startswith(_PACKAGE_DIR)
        if not inside:
            return filename, frame.f_lineno, frame.f_code.co_name
        frame = frame.f_back
    return None


def _describe_site(site: tuple[str, int, str] | None) -> str:
    if site is None:
        return 'created at an unknown place (no frame outside dezero)'
    filename, lineno, name = site
    code = linecache.getline(filename, lineno).strip()
    return f'created at {filename}:{lineno} in {name}: {code}' if code else \
        f'created at {filename}:{lineno} in {name}'


def _non_finite(array: Any) -> str | None:
    """'nan', 'inf' or None for an array (non-float arrays are never reported)."""
    if array is None or getattr(array, 'dtype', None) is None or array.dtype.kind not in 'fc':
        return None
    xp = get_array_module(array)
    if bool(xp.isfinite(array).all()):
        return None
    return 'nan' if bool(xp.isnan(array).any()) else 'inf'


def _inputs_text(func: Function) -> str:
    inputs = getattr(func, 'inputs', None) or ()
    return ', '.join(f'{tuple(x.shape)} {x.dtype}' if x.data is not None else 'None' for x in inputs)


class _AnomalyHook(_hooks.FunctionHook):
    """Records each op's creation site and checks forward outputs and backward gradients."""

    def before_forward(self, func: Function, inputs: tuple[Variable, ...], nested: bool) -> None:
        func._anomaly_site = _user_frame()

    def after_forward(self, func: Function, inputs: tuple[Variable, ...], outputs: tuple[Any, ...],
                      seconds: float, nested: bool) -> None:
        if nested:
            return
        for i, y in enumerate(outputs):
            kind = _non_finite(y)
            if kind is not None:
                shapes = ', '.join(f'{tuple(x.shape)} {x.dtype}' for x in inputs)
                raise AnomalyError(
                    f'detect_anomaly: {type(func).__name__} forward produced {kind} in output {i} '
                    f'(shape {tuple(y.shape)}, {y.dtype}); inputs: {shapes}; '
                    f'{_describe_site(func._anomaly_site)}')

    def after_backward(self, func: Function, grad_outputs: tuple[Any, ...], grad_inputs: tuple[Any, ...],
                       seconds: float, nested: bool) -> None:
        if nested:
            return
        for i, gx in enumerate(grad_inputs):
            kind = None if gx is None else _non_finite(gx.data)
            if kind is not None:
                raise AnomalyError(
                    f'detect_anomaly: {type(func).__name__} backward produced {kind} in the gradient of '
                    f'input {i} (shape {tuple(gx.shape)}, {gx.dtype}); inputs: {_inputs_text(func)}; '
                    f'{_describe_site(getattr(func, "_anomaly_site", None))}')


@contextlib.contextmanager
def detect_anomaly() -> Iterator[None]:
    """Context in which every op's forward outputs and backward gradients are checked for NaN/Inf.

    The first non-finite value raises ``AnomalyError`` naming the Function, its inputs' shapes and
    dtypes, the pass (forward or backward) and the source line that created the op. Contexts nest and
    combine with ``dezero.profiler.profile()``.
    """
    with _hooks.installed(_AnomalyHook()):
        yield
