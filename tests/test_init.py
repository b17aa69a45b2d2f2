"""The top-level package: what ``import dezero`` loads, and the names it offers on first use."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

import dezero

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ON_USE_MODULES = ('dezero.func', 'dezero.profiler', 'dezero.anomaly', 'dezero.checkpoint', 'dezero._hooks')


def _run_python(code: str) -> str:
    env = dict(os.environ, PYTHONPATH=REPO)
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env=env,
                            cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_import_dezero_leaves_the_capabilities_on_top_of_the_core_unloaded():
    loaded = _run_python(f'import sys, dezero; print([m for m in {ON_USE_MODULES!r} if m in sys.modules])')
    assert loaded == '[]'


def test_each_name_loads_its_module_on_first_use():
    loaded = _run_python('import sys, dezero\n'
                         'names = [dezero.func.grad, dezero.profiler.profile, dezero.detect_anomaly,\n'
                         '         dezero.save_checkpoint, dezero.load_checkpoint]\n'
                         'from dezero import detect_anomaly\n'
                         f'print([m for m in {ON_USE_MODULES!r} if m in sys.modules])')
    assert loaded == repr(list(ON_USE_MODULES))


@pytest.mark.parametrize('name, module, attribute', [
    ('func', 'dezero.func', None), ('profiler', 'dezero.profiler', None),
    ('detect_anomaly', 'dezero.anomaly', 'detect_anomaly'),
    ('save_checkpoint', 'dezero.checkpoint', 'save_checkpoint'),
    ('load_checkpoint', 'dezero.checkpoint', 'load_checkpoint'),
])
def test_on_use_names_are_the_modules_objects(name, module, attribute):
    target = sys.modules[module] if module in sys.modules else __import__(module, fromlist=['_'])
    assert getattr(dezero, name) is (target if attribute is None else getattr(target, attribute))
    assert name in dir(dezero)


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="module 'dezero' has no attribute 'not_a_name'"):
        dezero.not_a_name  # noqa: B018
