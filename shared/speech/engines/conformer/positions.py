"""Each attention layer's positional projection read from a table instead of computed per step.

The graph's relative positional encoding gathers 50 rows of a fixed 5,040-row table at every
step (the row's ``offset`` onwards), dequantizes them and multiplies them by each of the 12
layers' ``linear_pos`` weight: per stream and step, 12 float products of 50 x 448 by 448 x 448
(240 MFLOP, a sixth of the step's arithmetic) whose inputs are all constants except which rows
are taken. A row of a product is the product of the row, so gathering from the table already
multiplied gives the same values up to float rounding: ``project_positions`` computes each
layer's 5,040 x 448 table once, when the graph is rewritten, and replaces gather, dequantize and
product by one gather. The cost is memory: 12 tables of 9 MB.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from shared.speech.engines.base import Float32Array
from shared.speech.engines.conformer.dequantize import dequantized
from shared.speech.engines.conformer.prune import drop_unused


def project_positions(model: Any) -> int:
    """Replace every constant-table projection ``Gather -> DequantizeLinear -> MatMul(W)``;
    returns how many. ``model`` is an ``onnx.ModelProto`` changed in place."""
    from onnx import helper, numpy_helper

    graph = model.graph
    constants = {t.name: t for t in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output}
    count = 0
    for node in list(graph.node):
        found = _match(node, producer, constants)
        if found is None:
            continue
        indices, table = found
        name = f"projected_positions_{count}"
        graph.initializer.append(numpy_helper.from_array(table, name))
        gather = helper.make_node("Gather", [name, indices], [node.output[0]], axis=0)
        graph.node.insert(list(graph.node).index(node), gather)
        graph.node.remove(node)
        count += 1
    drop_unused(graph)
    return count


def _match(
    node: Any, producer: dict[str, Any], constants: dict[str, Any]
) -> tuple[str, Float32Array] | None:
    """The gather's indices and the projected table, for a product of dequantized rows of a
    constant table and a dequantized constant weight; None for anything else."""
    from onnx import numpy_helper

    if node.op_type != "MatMul":
        return None
    rows, weight = (producer.get(name) for name in node.input)
    gather = producer.get(rows.input[0]) if rows is not None else None
    if rows is None or weight is None or gather is None:
        return None
    ops = (rows.op_type, weight.op_type, gather.op_type)
    if ops != ("DequantizeLinear", "DequantizeLinear", "Gather"):
        return None
    axis = next((a.i for a in gather.attribute if a.name == "axis"), 0)
    needed = [gather.input[0], *rows.input[1:], *weight.input]
    if axis != 0 or not all(name in constants for name in needed if name):
        return None
    table = dequantized(rows, numpy_helper.to_array(constants[gather.input[0]]), constants)
    w = dequantized(weight, numpy_helper.to_array(constants[weight.input[0]]), constants)
    if table.ndim != 2 or w.ndim != 2 or table.shape[1] != w.shape[0]:
        return None
    return gather.input[1], (table @ w).astype(np.float32)
