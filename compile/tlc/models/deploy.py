"""Preprocessing inside the graph: raw NHWC pixels in, logits out.

:class:`Preprocess` is the single implementation of the manifest's ``Preprocessing`` (after the
runtime's resize): the exported graph runs it, and training runs the very same module (in two
halves, with augmentation between them).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch
from tlc_runtime.manifest import Preprocessing
from torch import nn

from ..errors import ConfigError
from .classifier import Classifier

if TYPE_CHECKING:
    from ..runs import RunInfo

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Preprocess(nn.Module):
    """NHWC raw pixels (uint8 or float32) → normalised NCHW float32 with 3 channels.

    ``to_unit``: float, ``(x - lo) / (hi - lo)``, clamp to 0..1, NCHW (channels as given).
    ``standardize``: grey replicated to 3 channels (channel_rule "replicate"), ``(x - mean) / std``.
    """

    def __init__(self, prep: Preprocessing, input_channels: int) -> None:
        super().__init__()
        lo, hi = (float(v) for v in prep.value_range)
        if not hi > lo:
            raise ConfigError(f"preprocessing value_range {prep.value_range} is empty; it needs lo < hi")
        if len(prep.mean) != 3 or len(prep.std) != 3 or min(prep.std) <= 0:
            raise ConfigError(f"preprocessing needs 3 means and 3 positive stds, got {prep.mean} / {prep.std}")
        expected = {"replicate": 1, "rgb": 3}[prep.channel_rule]
        if input_channels != expected:
            raise ConfigError(f"channel_rule {prep.channel_rule!r} needs {expected}-channel input, "
                              f"got {input_channels} channels")
        self.input_channels = input_channels
        self.lo, self.span = lo, hi - lo
        self.register_buffer("mean", torch.tensor(prep.mean, dtype=torch.float32).view(1, 3, 1, 1),
                             persistent=False)
        self.register_buffer("std", torch.tensor(prep.std, dtype=torch.float32).view(1, 3, 1, 1),
                             persistent=False)

    def to_unit(self, x: torch.Tensor) -> torch.Tensor:
        x = (x.to(torch.float32) - self.lo) / self.span
        return x.clamp(0.0, 1.0).permute(0, 3, 1, 2)

    def standardize(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_channels == 1:
            x = x.repeat(1, 3, 1, 1)
        return (x - self.mean) / self.std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.standardize(self.to_unit(x))


class DeployModel(nn.Module):
    """What ``tlc build`` exports: :class:`Preprocess` followed by the :class:`Classifier` → logits."""

    def __init__(self, classifier: Classifier, prep: Preprocessing, input_channels: int) -> None:
        super().__init__()
        self.preprocess = Preprocess(prep, input_channels)
        self.classifier = classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.preprocess(x))

    @classmethod
    def from_run(cls, run_dir: str | Path) -> tuple[DeployModel, RunInfo]:
        """The run's best checkpoint with its preprocessing, eval mode on CPU (see load_deploy_model)."""
        from .checkpoint import load_deploy_model

        return load_deploy_model(run_dir)
