"""The Conformer's front-end convolution in int8, the way its other layers already run.

The graph's linear layers are int8 matrix products with dynamically quantized activations;
its convolutions are float, over weights stored as int8. One of them, the second 3x3 stride-2
convolution of the subsampling front end (448 to 448 channels), is a quarter to a third of a
step's time on 2 threads, a float GEMM of 0.7 GFLOP per stream already near the cores' float
peak. ``int8_front_conv`` computes it the way the rest of the graph runs: its input quantized
per tensor (``DynamicQuantizeLinear``, exactly what the graph's ``DynamicQuantizeMatMul`` nodes
do), the 3x3 windows gathered as uint8 rows (a quarter of the float im2col's bytes), and one
``MatMulIntegerToFloat`` with the stored int8 weights and their per-channel scales. Measured
against the float convolution on an AVX512-VNNI CPU: about 20 % less time per step at 8
streams, 27 of the 28 shared clips still decode to the SDK's text, and one word in about 150 of
the labelled clips turns wrong. That is why it runs only when ``STT_PRECISION=int8`` asks.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from shared.speech.engines.base import Float32Array

PREFIX = "int8_front_conv/"


def int8_front_conv(model: Any) -> bool:
    """Rewrite the first float 3x3 stride-2 channel-mixing convolution over int8 weights;
    returns whether one was found. ``model`` is an ``onnx.ModelProto``, changed in place."""
    from onnx import helper, numpy_helper, shape_inference

    graph = model.graph
    producer = {out: node for node in graph.node for out in node.output}
    constants = {t.name: t for t in graph.initializer}
    sizes = _spatial_sizes(shape_inference.infer_shapes(model).graph)
    for conv in graph.node:
        found = _quantized_weights(conv, producer, constants, sizes)
        if found is None:
            continue
        dequantize, weights, scales, bias, (height, width) = found
        nodes, tensors = _nodes(conv, weights, scales, bias, height, width)
        at = list(graph.node).index(conv)
        order = list(graph.node[:at]) + nodes + list(graph.node[at + 1 :])
        del graph.node[:]
        graph.node.extend(node for node in order if node is not dequantize)
        graph.initializer.extend(numpy_helper.from_array(v, PREFIX + k) for k, v in tensors.items())
        if not any(o.domain == "com.microsoft" for o in model.opset_import):
            model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
        return True
    return False


def _spatial_sizes(graph: Any) -> dict[str, tuple[int, int]]:
    """Fixed height and width of every 4-d tensor whose shape inference knows them."""
    sizes = {}
    for info in graph.value_info:
        dims = info.type.tensor_type.shape.dim
        if len(dims) == 4 and dims[2].dim_value and dims[3].dim_value:
            sizes[info.name] = (dims[2].dim_value, dims[3].dim_value)
    return sizes


def _quantized_weights(
    conv: Any,
    producer: dict[str, Any],
    constants: dict[str, Any],
    sizes: dict[str, tuple[int, int]],
) -> tuple[Any, npt.NDArray[np.int8], Float32Array, Float32Array, tuple[int, int]] | None:
    """The pieces of a convolution this rewrite handles, or None for any other."""
    from onnx import helper, numpy_helper

    attrs = {a.name: helper.get_attribute_value(a) for a in conv.attribute}
    plain = attrs.get("group", 1) == 1 and not any(attrs.get("pads", [0]))
    plain = plain and attrs.get("auto_pad", b"NOTSET") in (b"NOTSET", b"VALID")
    shape = attrs.get("strides") == [2, 2] and attrs.get("kernel_shape", [3, 3]) == [3, 3]
    if conv.op_type != "Conv" or not (plain and shape) or len(conv.input) != 3:
        return None
    if attrs.get("dilations", [1, 1]) != [1, 1] or conv.input[0] not in sizes:
        return None
    dequantize = producer.get(conv.input[1])
    if dequantize is None or dequantize.op_type != "DequantizeLinear":
        return None
    if not all(name in constants for name in [*dequantize.input, conv.input[2]]):
        return None
    weights, scales, *zero = (numpy_helper.to_array(constants[n]) for n in dequantize.input)
    dense = weights.ndim == 4 and weights.shape[2:] == (3, 3) and weights.shape[1] > 1
    if weights.dtype != np.int8 or not dense or (zero and zero[0].any()):
        return None
    bias = numpy_helper.to_array(constants[conv.input[2]]).astype(np.float32)
    return dequantize, weights, scales.astype(np.float32), bias, sizes[conv.input[0]]


def _nodes(
    conv: Any,
    weights: npt.NDArray[np.int8],
    scales: Float32Array,
    bias: Float32Array,
    height: int,
    width: int,
) -> tuple[list[Any], dict[str, npt.NDArray[Any]]]:
    """The replacement: quantize, gather 3x3 windows as rows, one int8 product, back to NCHW."""
    from onnx import helper

    out_ch, in_ch, kh, kw = weights.shape
    rows, cols = (height - kh) // 2 + 1, (width - kw) // 2 + 1
    tensors = {
        # window rows/columns of each output position: 2*i + k
        "rows": (2 * np.arange(rows)[:, None] + np.arange(kh)[None]).astype(np.int64),
        "cols": (2 * np.arange(cols)[:, None] + np.arange(kw)[None]).astype(np.int64),
        "shape": np.array([0, rows, cols, kh * kw * in_ch], np.int64),
        # the gathered row is ordered (kh, kw, channel)
        "weights": np.ascontiguousarray(weights.transpose(2, 3, 1, 0).reshape(-1, out_ch)),
        "scales": scales.reshape(-1) * np.ones(out_ch, np.float32),
        "bias": bias.reshape(-1),
    }
    p = PREFIX
    nodes = [
        helper.make_node("DynamicQuantizeLinear", [conv.input[0]], [p + "x", p + "xs", p + "xz"]),
        helper.make_node("Transpose", [p + "x"], [p + "nhwc"], perm=[0, 2, 3, 1]),
        helper.make_node("Gather", [p + "nhwc", p + "rows"], [p + "r"], axis=1),
        helper.make_node("Gather", [p + "r", p + "cols"], [p + "rc"], axis=3),
        helper.make_node("Transpose", [p + "rc"], [p + "win"], perm=[0, 1, 3, 2, 4, 5]),
        helper.make_node("Reshape", [p + "win", p + "shape"], [p + "im2col"]),
        helper.make_node(
            "MatMulIntegerToFloat",
            [p + "im2col", p + "weights", p + "xs", p + "scales", p + "xz", "", p + "bias"],
            [p + "y"],
            domain="com.microsoft",
        ),
        helper.make_node("Transpose", [p + "y"], [conv.output[0]], perm=[0, 3, 1, 2]),
    ]
    return nodes, tensors
