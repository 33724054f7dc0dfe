"""Tensor operations written out so every backend's ONNX reader converts their export.

``torch.logsumexp`` exports as ``ReduceLogSumExp(axes=[d], keepdims=0)``, which OpenVINO's ONNX
frontend (2026.4) reduces over every axis: the result comes back 0-d and the next node fails to
convert ("Axis 1 out of the tensor rank range"). The same value written as max, Sub, Exp, ReduceSum,
Log converts everywhere and is as stable (the largest term is factored out).
"""

from __future__ import annotations

import torch


def logsumexp(t: torch.Tensor, dim: int) -> torch.Tensor:
    """``log(sum(exp(t), dim))`` without keeping ``dim``; stable for large values."""
    peak = t.amax(dim=dim)
    return peak + torch.log(torch.exp(t - peak.unsqueeze(dim)).sum(dim=dim))
