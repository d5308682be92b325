"""The float value of an int8 constant behind ``DequantizeLinear``, as ONNX defines it.

The graph stores every weight (and its positional table) as int8 behind a ``DequantizeLinear``;
the rewrites that fold or precompute with those weights need their float values, which are
exact in float32: ``(x - zero_point) * scale``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from shared.speech.engines.base import Float32Array


def dequantize(
    quantized: npt.NDArray[Any],
    scale: npt.NDArray[Any],
    zero: npt.NDArray[Any] | None = None,
    *,
    axis: int = 1,
) -> Float32Array:
    """ONNX DequantizeLinear: ``(x - zero_point) * scale``, per axis when scale is a vector."""
    shape = [1] * quantized.ndim
    if scale.ndim == 1 and quantized.ndim > 1:
        shape[axis] = -1
    zero_f = np.float32(0) if zero is None else zero.astype(np.float32).reshape(shape)
    scale_f = scale.astype(np.float32).reshape(shape)
    dequantized: Float32Array = (quantized.astype(np.float32) - zero_f) * scale_f
    return dequantized


def dequantized(node: Any, first: npt.NDArray[Any], constants: dict[str, Any]) -> Float32Array:
    """A ``DequantizeLinear`` node applied to ``first``, its scale and zero point constants
    (``onnx`` tensors in ``constants``)."""
    from onnx import numpy_helper

    rest = [numpy_helper.to_array(constants[name]) for name in node.input[1:] if name]
    axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
    return dequantize(first, *rest, axis=axis)
