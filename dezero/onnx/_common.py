"""What export and import share: the opset range and the NumPy <-> ONNX element types."""
from __future__ import annotations

from typing import Any

import numpy as np
import onnx

# The newest ONNX opset whose definitions of every operator mapped here were checked (onnx 1.23):
# after opset 13 (18 for the reductions) these operators only gained element types.
MAX_OPSET = 28
# Opset 13 is where Softmax, Squeeze/Unsqueeze and ReduceSum take the forms the exporter writes.
MIN_EXPORT_OPSET = 13
DEFAULT_DOMAINS = ('', 'ai.onnx')


def onnx_elem_type(dtype: Any) -> int:
    """The ``TensorProto`` element type of a NumPy dtype (``float32`` → ``TensorProto.FLOAT``)."""
    return onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


def numpy_dtype(elem_type: int) -> np.dtype:
    """The NumPy dtype of a ``TensorProto`` element type."""
    return onnx.helper.tensor_dtype_to_np_dtype(elem_type)
