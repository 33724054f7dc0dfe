"""One reason an ONNX model will not build on a TensorRT target, with how to fix it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Violation:
    node: str    # node, tensor or "(model)"/"(target)"
    op: str      # op type or what was checked ("opset", "graph input", ...)
    reason: str
    fix: str

    def __str__(self) -> str:
        return f"{self.node} ({self.op}): {self.reason}; fix: {self.fix}"


def summarize(violations: list[Violation], shown: int = 3) -> str:
    """One line for many violations: identical problems are grouped and their nodes listed briefly."""
    groups: dict[tuple[str, str, str], list[str]] = {}
    for v in violations:
        groups.setdefault((v.op, v.reason, v.fix), []).append(v.node)
    parts = []
    for (op, reason, fix), nodes in groups.items():
        where = ", ".join(nodes[:shown]) + (f" (+{len(nodes) - shown} more)" if len(nodes) > shown else "")
        parts.append(f"{where} ({op}): {reason}; fix: {fix}")
    return "; ".join(parts)
