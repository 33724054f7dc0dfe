"""Small ONNX graph queries the FP16 conversion needs: preprocessing nodes, the head, topological order."""

from __future__ import annotations

import onnx

from ..errors import BuildError

COMPUTE_OPS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul", "ConvInteger", "MatMulInteger",
                         "QLinearConv", "QLinearMatMul"})


def preprocessing_nodes(graph: onnx.GraphProto) -> list[str]:
    """Names of the nodes between the graph input and the first compute op (the fused preprocessing).

    A node counts when it reads a graph input (directly or through other such nodes) and nothing
    downstream of a Conv/Gemm/MatMul; constants feeding those nodes follow their consumers.
    """
    from_input = {i.name for i in graph.input} - {t.name for t in graph.initializer}
    after_compute: set[str] = set()
    names = []
    for node in graph.node:
        ins = [i for i in node.input if i]
        if node.op_type in COMPUTE_OPS or any(i in after_compute for i in ins):
            after_compute.update(node.output)
        elif any(i in from_input for i in ins):
            from_input.update(node.output)
            names.append(node.name)
    return names


def compute_nodes_after_last(graph: onnx.GraphProto) -> list[str]:
    """The last compute node (the classifier head) and every node downstream of it."""
    last = max((i for i, n in enumerate(graph.node) if n.op_type in COMPUTE_OPS), default=None)
    if last is None:
        return []
    downstream = set(graph.node[last].output)
    names = [graph.node[last].name]
    for node in graph.node[last + 1:]:
        if any(i in downstream for i in node.input):
            downstream.update(node.output)
            names.append(node.name)
    return names


def topological_sort(graph: onnx.GraphProto) -> None:
    """Reorder ``graph.node`` in place so every node comes after the producers of its inputs."""
    available = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending = list(graph.node)
    ordered: list[onnx.NodeProto] = []
    while pending:
        ready = [n for n in pending if all(i in available for i in n.input)]
        if not ready:
            missing = sorted({i for n in pending for i in n.input if i not in available})[:5]
            raise BuildError(f"ONNX graph has a cycle or undefined inputs ({', '.join(missing)})")
        for node in ready:
            available.update(node.output)
        ready_ids = {id(n) for n in ready}
        ordered.extend(ready)
        pending = [n for n in pending if id(n) not in ready_ids]
    copies = []
    for src in ordered:  # copy out before clearing: the originals live inside graph.node
        copies.append(onnx.NodeProto())
        copies[-1].CopyFrom(src)
    del graph.node[:]
    graph.node.extend(copies)
