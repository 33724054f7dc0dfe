"""Light, batched augmentation on unit-range NCHW tensors (between ``to_unit`` and ``standardize``).

Zoom-in crop (side 90–100%), a small shift, optional horizontal flip and brightness/contrast
jitter; one random draw per image from the caller's generator, no per-sample Python loops.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugmentConfig:
    min_scale: float = 0.9      # crop side as a fraction of the image side
    max_shift: float = 0.04     # extra translation as a fraction of the image side
    hflip: bool = False
    brightness: float = 0.05    # added offset, unit range
    contrast: float = 0.1       # multiplicative factor 1 ± contrast around the image mean


def _uniform(n: int, lo: float, hi: float, gen: torch.Generator) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=gen)


def augment_batch(x: torch.Tensor, gen: torch.Generator, cfg: AugmentConfig = AugmentConfig()) -> torch.Tensor:
    """Augmented copy of ``x`` (N×C×H×W, values 0..1); the output stays in 0..1."""
    n = x.shape[0]
    scale = _uniform(n, cfg.min_scale, 1.0, gen)
    # the crop may move within the image (1 - scale) plus a small extra shift; grid units are 2/side
    reach = (1.0 - scale) + 2.0 * cfg.max_shift
    tx = (torch.rand(n, generator=gen) * 2 - 1) * reach
    ty = (torch.rand(n, generator=gen) * 2 - 1) * reach
    flip = torch.ones(n)
    if cfg.hflip:
        flip = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = scale * flip
    theta[:, 1, 1] = scale
    theta[:, 0, 2] = tx
    theta[:, 1, 2] = ty
    grid = F.affine_grid(theta.to(x), list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    contrast = _uniform(n, 1 - cfg.contrast, 1 + cfg.contrast, gen).view(n, 1, 1, 1).to(x)
    brightness = _uniform(n, -cfg.brightness, cfg.brightness, gen).view(n, 1, 1, 1).to(x)
    mean = out.mean(dim=(1, 2, 3), keepdim=True)
    return ((out - mean) * contrast + mean + brightness).clamp(0.0, 1.0)
