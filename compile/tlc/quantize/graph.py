"""ONNX graph facts the quantizers need: which nodes are preprocessing, which are compute layers.

tlc's exported graphs start with preprocessing (Cast, scaling, Clip, channel replication, Transpose,
mean/std) followed by the backbone. Preprocessing must stay in float: it is every node the first
compute layer's data input depends on.
"""

from __future__ import annotations

from collections.abc import Iterable

COMPUTE_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")


def name_unnamed_nodes(model) -> None:
    """Give every nameless node a stable name (quantizers address nodes by name)."""
    taken = {n.name for n in model.graph.node if n.name}
    for index, node in enumerate(model.graph.node):
        if not node.name:
            name = f"{node.op_type}_{index}"
            while name in taken:
                name += "_"
            node.name = name
            taken.add(name)


def producers(model) -> dict[str, object]:
    """Tensor name → the node that produces it."""
    return {out: node for node in model.graph.node for out in node.output}


def consumers(model) -> dict[str, list]:
    """Tensor name → nodes that read it."""
    table: dict[str, list] = {}
    for node in model.graph.node:
        for name in node.input:
            table.setdefault(name, []).append(node)
    return table


def compute_nodes(model, op_types: Iterable[str] = COMPUTE_OPS) -> list:
    """Compute-layer nodes in graph (topological) order."""
    wanted = set(op_types)
    return [n for n in model.graph.node if n.op_type in wanted]


def preprocessing_nodes(model, op_types: Iterable[str] = COMPUTE_OPS) -> list[str]:
    """Names of the nodes that the first compute layer's data input depends on."""
    layers = compute_nodes(model, op_types)
    if not layers:
        return []
    made_by = producers(model)
    seen: set[str] = set()
    stack = [layers[0].input[0]]
    while stack:
        node = made_by.get(stack.pop())
        if node is None or node.name in seen:
            continue
        seen.add(node.name)
        stack.extend(node.input)
    return [n.name for n in model.graph.node if n.name in seen]


def score_only_nodes(model, logits: str = "logits") -> list[str]:
    """Names of the nodes the ``logits`` output does not depend on: those that only compute the graph's
    extra outputs (e.g. an OOD head's Mahalanobis MatMul). None when the graph has no such output."""
    if logits not in {o.name for o in model.graph.output}:
        return []
    made_by = producers(model)
    needed: set[str] = set()
    stack = [logits]
    while stack:
        node = made_by.get(stack.pop())
        if node is None or node.name in needed:
            continue
        needed.add(node.name)
        stack.extend(node.input)
    return [n.name for n in model.graph.node if n.name not in needed]


def unquantize_outputs(model) -> list[str]:
    """Remove QuantizeLinear→DequantizeLinear pairs that sit directly on graph outputs.

    Quantized logits would cost probability resolution for no speed; the producing node then
    writes the graph output in float. Returns the names of the outputs changed.
    """
    made_by = producers(model)
    read_by = consumers(model)
    changed = []
    for output in model.graph.output:
        dq = made_by.get(output.name)
        if dq is None or dq.op_type != "DequantizeLinear":
            continue
        q = made_by.get(dq.input[0])
        if q is None or q.op_type != "QuantizeLinear" or len(read_by.get(q.output[0], [])) != 1:
            continue
        source = made_by.get(q.input[0])
        if source is None or len(read_by.get(q.input[0], [])) != 1:
            continue
        source.output[list(source.output).index(q.input[0])] = output.name
        model.graph.node.remove(q)
        model.graph.node.remove(dq)
        changed.append(output.name)
    if changed:
        _drop_unused_initializers(model)
    return changed


def _drop_unused_initializers(model) -> None:
    used = {name for node in model.graph.node for name in node.input}
    for init in [i for i in model.graph.initializer if i.name not in used]:
        model.graph.initializer.remove(init)


DEFAULT_DOMAIN = ""


def _domain(name: str) -> str:
    return DEFAULT_DOMAIN if name == "ai.onnx" else name


def used_domains(model) -> set[str]:
    """Opset domains the nodes of ``model`` use (subgraphs and local functions included)."""
    import onnx

    used: set[str] = set()
    graphs = [model.graph, *(f for f in model.functions)]
    while graphs:
        graph = graphs.pop()
        for node in graph.node:
            used.add(_domain(node.domain))
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.GRAPH:
                    graphs.append(attr.g)
                elif attr.type == onnx.AttributeProto.GRAPHS:
                    graphs.extend(attr.graphs)
    used.update(_domain(f.domain) for f in model.functions)
    return used


def drop_unused_opsets(model) -> list[str]:
    """Remove opset imports of domains no node uses (ONNX Runtime's optimizer declares a dozen);
    the default domain always stays. Returns the domains removed."""
    used = used_domains(model) | {DEFAULT_DOMAIN}
    unused = [imp for imp in model.opset_import if _domain(imp.domain) not in used]
    for imp in unused:
        model.opset_import.remove(imp)
    return [imp.domain for imp in unused]
