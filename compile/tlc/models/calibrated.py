"""A deploy model whose logits are divided by a temperature (temperature scaling folded into the graph)."""

from __future__ import annotations

import torch
from torch import nn


class TemperatureScaled(nn.Module):
    """``model(x) / temperature``: exported, the graph ends in one Div by a constant."""

    def __init__(self, model: nn.Module, temperature: float) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("temperature", torch.tensor(float(temperature), dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x) / self.temperature
