"""Smoke tests of examples/export_onnx.py: export the demo MLP, run it through ONNX Runtime, and get
dezero's test accuracy to the last digit."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import dezero
import dezero.functions as F
from dezero.models import MLP

onnx = pytest.importorskip('onnx')
pytest.importorskip('onnxruntime')
from tests.test_examples import assert_no_leftovers, load_example  # noqa: E402


def test_trains_briefly_when_the_weights_are_absent(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    example = load_example('export_onnx')
    metrics = example.main(['--weights', str(tmp_path / 'absent.npz'), '--train-size', '500',
                            '--test-size', '300', '--out-dir', str(tmp_path)])
    assert metrics['trained']
    assert metrics['dezero_accuracy'] == metrics['onnxruntime_accuracy'] == metrics['reloaded_accuracy']
    assert metrics['disagreements'] == 0 and metrics['max_score_difference'] < 1e-4
    assert metrics['dezero_accuracy'] > 0.5  # better than chance after a little training
    (path,) = metrics['files']
    onnx.checker.check_model(path, full_check=True)
    assert_no_leftovers(tmp_path)
    out = capsys.readouterr().out
    assert 'not found (make demo writes it): training' in out
    assert f'files written: {path}' in out


def test_uses_the_weights_make_demo_saved(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    example = load_example('export_onnx')
    name, _, test_set, sizes = example.load_data(0, 200)
    np.random.seed(1)
    model = MLP(sizes, activation=F.relu)
    images = np.stack([test_set[i][0] for i in range(200)]).astype(np.float32)
    with dezero.test_mode(), dezero.no_grad():
        expected = float(np.mean(model(images).data.argmax(axis=1) == test_set.label[:200]))
    weights = tmp_path / f'{name}_mlp.npz'
    model.save_weights(weights)
    metrics = example.main(['--weights', str(weights), '--test-size', '200', '--out-dir', str(tmp_path),
                            '--batch-size', '64'])
    assert not metrics['trained']
    assert metrics['dezero_accuracy'] == expected
    assert metrics['onnxruntime_accuracy'] == expected == metrics['reloaded_accuracy']
    out = capsys.readouterr().out
    assert f'weights: {weights}' in out
    assert f'ONNX Runtime       {expected:.4f}' in out
