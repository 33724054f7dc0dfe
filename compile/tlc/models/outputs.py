"""What a deploy module returns: a logits tensor, or a dict whose first entry is ``"logits"``.

Extra entries are the graph's other outputs (per-image scores such as an OOD score, N or N×M
float32); ``tlc.export.onnx_export`` names the ONNX outputs after the keys, in order, and the
manifest lists them (``tlc_runtime.manifest.OutputSpec``). Wrappers use these helpers so that they
compose: a wrapper that changes the logits keeps every other output as it is.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from tlc_runtime.manifest import LOGITS

ModelOutput = torch.Tensor | dict[str, torch.Tensor]


def as_outputs(out: ModelOutput) -> dict[str, torch.Tensor]:
    """Every output by name, logits first (a bare tensor is the logits)."""
    if isinstance(out, torch.Tensor):
        return {LOGITS: out}
    if not isinstance(out, dict) or next(iter(out), None) != LOGITS:
        raise TypeError(f"a deploy module returns a logits tensor or a dict starting with {LOGITS!r}, "
                        f"got {type(out).__name__} {list(out) if isinstance(out, dict) else ''}")
    return out


def logits_of(out: ModelOutput) -> torch.Tensor:
    """The logits of a deploy module's output."""
    return as_outputs(out)[LOGITS]


def with_logits(out: ModelOutput, change: Callable[[torch.Tensor], torch.Tensor]) -> ModelOutput:
    """``out`` with ``change`` applied to the logits only (same type as ``out``)."""
    if isinstance(out, torch.Tensor):
        return change(out)
    outputs = dict(as_outputs(out))
    outputs[LOGITS] = change(outputs[LOGITS])
    return outputs
