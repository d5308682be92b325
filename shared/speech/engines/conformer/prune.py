"""What a graph rewrite leaves behind: nodes whose outputs nothing reads, constants nothing uses.

Every rewrite here replaces nodes or constants; ONNX Runtime would warn about each leftover
initializer and keep it in memory, so each rewrite that orphans something prunes after itself.
"""

from __future__ import annotations

from typing import Any


def drop_unused(graph: Any) -> None:
    """Nodes whose outputs nothing reads any more, then initializers nothing reads.
    ``graph`` is an ``onnx.GraphProto``, changed in place."""
    outputs = {o.name for o in graph.output}
    while True:
        used = {name for node in graph.node for name in node.input} | outputs
        dead = [n for n in graph.node if not any(o in used for o in n.output)]
        if not dead:
            break
        for node in dead:
            graph.node.remove(node)
    used = {name for node in graph.node for name in node.input}
    for tensor in [t for t in graph.initializer if t.name not in used]:
        graph.initializer.remove(tensor)
