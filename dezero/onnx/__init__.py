"""ONNX export and import: the way trained networks leave dezero and pretrained ones arrive.

``export(model, *example_inputs, path=...)`` runs one forward pass of ``model`` in test mode and writes
the recorded graph as an ONNX file (one mapping per Function class, parameters as initializers named
by their paths such as ``'l0/W'``). ``load(path)`` reads an ONNX file back as a dezero ``Model`` whose
forward runs the graph with dezero Functions and whose initializers are Parameters, so it can be
fine-tuned and differentiated to any order.

Example::

    import numpy as np
    import dezero.functions as F
    import dezero.onnx
    from dezero.models import MLP

    model = MLP((64, 10), activation=F.relu)
    x = np.random.rand(8, 784).astype(np.float32)
    dezero.onnx.export(model, x, path='mlp.onnx')   # ONNX Runtime, TensorRT, OpenVINO... read it
    loaded = dezero.onnx.load('mlp.onnx')           # a dezero Model again
    y = loaded(x)                                   # (8, 10)

Needs the ``onnx`` package: ``pip install 'dezero[onnx]'`` (which also brings ONNX Runtime, the
reference to check exported files against). ``import dezero`` alone never imports it.
"""
try:
    import onnx  # noqa: F401
except ImportError as error:
    raise ImportError("dezero.onnx needs the 'onnx' package, part of the optional 'onnx' extra: "
                      "pip install 'dezero[onnx]'") from error

from dezero.onnx._common import MAX_OPSET, MIN_EXPORT_OPSET
from dezero.onnx._exporter import DEFAULT_OPSET, export
from dezero.onnx._importer import SUPPORTED_OPS, OnnxModel, load

__all__ = ['export', 'load', 'OnnxModel', 'DEFAULT_OPSET', 'MIN_EXPORT_OPSET', 'MAX_OPSET', 'SUPPORTED_OPS']
