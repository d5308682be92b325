"""Layer normalisations of a converted graph put back into one ``LayerNormalization`` node each.

The Conformer was exported from TensorFlow, and each of its 73 layer norms arrives as ten
operators: a mean (``GlobalAveragePool`` over the last axis of a ``[B, T, D]`` tensor), the
difference, its square, a second mean, ``+ eps``, ``Sqrt``, ``Reciprocal`` and three
multiply-adds for the scale and shift. ONNX Runtime's own fusion does not recognise that form
(it looks for ``ReduceMean`` and ``Div``), so every step ran about 730 small operators, each a
pass over memory and, with several threads, a join. One fused node computes the same function in
one pass; on the real graph the log-probabilities agree to float rounding.
"""

from __future__ import annotations

from typing import Any

import numpy as np

CHAIN = ("Sub", "Mul", "GlobalAveragePool", "Add", "Sqrt", "Reciprocal", "Mul", "Mul", "Add")


def fuse_layer_norms(model: Any) -> int:
    """Replace every decomposed layer norm over the last axis of a 3-d tensor; returns how
    many. ``model`` is an ``onnx.ModelProto`` (opset 17 or later), changed in place."""
    from onnx import helper, numpy_helper, shape_inference

    if _opset(model) < 17:
        return 0
    graph = model.graph
    ranks = _ranks(shape_inference.infer_shapes(model).graph)
    constants = {t.name: t for t in graph.initializer}  # read only where a pattern needs one
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in dict.fromkeys(node.input):  # a square reads its operand twice: one use
            consumers.setdefault(name, []).append(node)
    fused, drop = 0, set[int]()
    for node in list(graph.node):
        found = _match(node, consumers, constants, ranks)
        if found is None:
            continue
        nodes, eps, scale, shift = found
        prefix = f"fused_layer_norm_{fused}"
        graph.initializer.extend(
            [
                numpy_helper.from_array(scale, f"{prefix}_scale"),
                numpy_helper.from_array(shift, f"{prefix}_shift"),
            ]
        )
        fused_node = helper.make_node(
            "LayerNormalization",
            [node.input[0], f"{prefix}_scale", f"{prefix}_shift"],
            [nodes[-1].output[0]],
            axis=-1,
            epsilon=eps,
            name=prefix,
        )
        graph.node.insert(list(graph.node).index(nodes[-1]), fused_node)
        drop.update(id(n) for n in nodes)
        fused += 1
    kept = [n for n in graph.node if id(n) not in drop]
    del graph.node[:]
    graph.node.extend(kept)
    return fused


def _match(
    mean: Any,
    consumers: dict[str, list[Any]],
    constants: dict[str, Any],
    ranks: dict[str, int],
) -> tuple[list[Any], float, Any, Any] | None:
    """The ten nodes of one decomposed layer norm starting at its first mean, its epsilon, scale
    and shift; None for anything else."""
    if mean.op_type != "GlobalAveragePool" or ranks.get(mean.input[0]) != 3:
        return None
    x = mean.input[0]
    nodes = [mean]
    for op in CHAIN:
        value = nodes[-1].output[0]
        users = consumers.get(value, [])
        following = [n for n in users if n.op_type == op and n not in nodes]
        if nodes[-1].op_type == "Sub":  # the difference feeds its square and the normalised value
            following = [n for n in following if list(n.input) == [value, value]]
        if len(following) != 1:
            return None
        nodes.append(following[0])
    sub, square, _mean2, add_eps, _sqrt, _recip, norm, times, plus = nodes[1:]
    diff = sub.output[0]
    ok = list(sub.input) == [x, mean.output[0]] and list(square.input) == [diff, diff]
    ok = ok and diff in norm.input and len(consumers[diff]) == 2
    ok = ok and all(len(consumers.get(n.output[0], [])) == 1 for n in (mean, *nodes[2:-1]))
    eps, scale, shift = (_other_constant(n, constants) for n in (add_eps, times, plus))
    if not ok or eps is None or scale is None or shift is None or eps.size != 1:
        return None
    width = max(scale.size, shift.size)  # the normalised axis's length; LayerNormalization
    if width < 2 or scale.size not in (1, width) or shift.size not in (1, width):  # needs it
        return None
    scale = np.broadcast_to(scale.reshape(-1), (width,)).astype(np.float32)
    shift = np.broadcast_to(shift.reshape(-1), (width,)).astype(np.float32)
    return nodes, float(eps.reshape(-1)[0]), scale, shift


def _other_constant(node: Any, constants: dict[str, Any]) -> Any:
    """The constant operand of a two-input node whose other operand is the chain's value."""
    from onnx import numpy_helper

    names = [name for name in node.input if name in constants]
    if len(names) != 1 or len(node.input) != 2:
        return None
    return numpy_helper.to_array(constants[names[0]])


def _ranks(graph: Any) -> dict[str, int]:
    ranks = {}
    for info in [*graph.value_info, *graph.input, *graph.output]:
        if info.type.tensor_type.HasField("shape"):
            ranks[info.name] = len(info.type.tensor_type.shape.dim)
    return ranks


def _opset(model: Any) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
