"""Lower a model's default-domain opset for an older TensorRT parser, exactly.

``onnx.version_converter`` first; it lacks many down-conversion adapters (e.g. Div 14 → 13), so
the fallback relabels the opset when every node's definition is unchanged between the two opsets,
or changed only by widening types / adding an attribute whose value in the node keeps the old
meaning (the table below). Anything else is a BuildError naming the op.
"""

from __future__ import annotations

from collections.abc import Callable

import onnx
from onnx import defs

from ..errors import BuildError

DEFAULT_DOMAINS = ("", "ai.onnx")


def _attr(node: onnx.NodeProto, name: str, default: int = 0) -> int:
    return next((a.i for a in node.attribute if a.name == name), default)


def _always(_node: onnx.NodeProto) -> bool:
    return True


# op -> (versions whose change is type widening / optional attributes, condition on the node)
TYPE_ONLY_CHANGES: dict[str, tuple[frozenset[int], Callable[[onnx.NodeProto], bool]]] = {
    **{op: (frozenset({14}), _always) for op in ("Add", "Sub", "Mul", "Div", "Relu")},
    "Pow": (frozenset({15}), _always),
    "Where": (frozenset({16}), _always),
    "LeakyRelu": (frozenset({16}), _always),
    "PRelu": (frozenset({16}), _always),
    "Equal": (frozenset({19}), _always),
    "Identity": (frozenset({14, 16, 19, 21}), _always),
    "Cast": (frozenset({19, 21}), lambda n: _attr(n, "saturate", 1) == 1),
    "Constant": (frozenset({19, 21}), _always),
    "ConstantOfShape": (frozenset({20, 21}), _always),
    **{op: (frozenset({21}), _always) for op in ("Flatten", "Transpose", "Squeeze", "Unsqueeze")},
    "Reshape": (frozenset({14, 19, 21}), lambda n: _attr(n, "allowzero") == 0),
    "Shape": (frozenset({15, 19, 21}), lambda n: not any(a.name in ("start", "end") for a in n.attribute)),
    "BatchNormalization": (frozenset({14, 15}), lambda n: _attr(n, "training_mode") == 0),
}


def lower_opset(model: onnx.ModelProto, target: int) -> onnx.ModelProto:
    """``model`` at default-domain opset ``target`` (BuildError when that cannot be done exactly)."""
    try:
        lowered = onnx.version_converter.convert_version(model, target)
        onnx.checker.check_model(lowered)
        return lowered
    except Exception:  # missing adapters raise plain RuntimeErrors: try the exact relabelling
        pass
    current = next(o.version for o in model.opset_import if o.domain in DEFAULT_DOMAINS)
    problems = []
    for node in model.graph.node:
        if node.domain not in DEFAULT_DOMAINS:
            continue
        problem = _relabel_problem(node, current, target)
        if problem:
            problems.append(problem)
    if problems:
        raise BuildError(f"cannot lower opset {current} to {target}: {'; '.join(sorted(set(problems)))}; "
                         f"re-export the model with opset {target}")
    lowered = onnx.ModelProto()
    lowered.CopyFrom(model)
    for imp in lowered.opset_import:
        if imp.domain in DEFAULT_DOMAINS:
            imp.version = target
    try:
        onnx.checker.check_model(lowered, full_check=True)
    except Exception as exc:
        raise BuildError(f"opset {current} -> {target} relabelling gives an invalid model ({exc})") from None
    return lowered


def _relabel_problem(node: onnx.NodeProto, current: int, target: int) -> str | None:
    try:
        old = defs.get_schema(node.op_type, target).since_version
    except Exception:  # SchemaError: the op does not exist at the target opset
        return f"{node.op_type} does not exist in opset {target}"
    new = defs.get_schema(node.op_type, current).since_version
    if new == old:
        return None
    changed = {s for s in range(old + 1, new + 1) if _has_version(node.op_type, s)}
    allowed, condition = TYPE_ONLY_CHANGES.get(node.op_type, (frozenset(), _always))
    if changed <= allowed and condition(node):
        return None
    return f"{node.op_type} changed meaning after opset {old}"


def _has_version(op: str, version: int) -> bool:
    try:
        return defs.get_schema(op, version).since_version == version
    except Exception:
        return False
