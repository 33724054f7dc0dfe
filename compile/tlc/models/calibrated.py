"""A deploy model whose logits are divided by a temperature (temperature scaling folded into the graph)."""

from __future__ import annotations

import torch
from torch import nn

from .outputs import ModelOutput, with_logits


class TemperatureScaled(nn.Module):
    """``model(x) / temperature``: exported, the logits end in one Div by a constant; the model's
    other outputs (see ``tlc.models.outputs``) pass through unchanged."""

    def __init__(self, model: nn.Module, temperature: float) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("temperature", torch.tensor(float(temperature), dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> ModelOutput:
        return with_logits(self.model(x), lambda logits: logits / self.temperature)
