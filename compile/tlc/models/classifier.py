"""The one classifier wrapper every architecture shares: ``.backbone`` → pooled vector → ``.head``."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Literal

import torch
from torch import nn

if TYPE_CHECKING:
    from ..runs import McDropout
    from .registry import ArchSpec


def make_head(num_features: int, num_classes: int, dropout: float = 0.0) -> nn.Sequential:
    """BatchNorm without affine parameters, dropout (when > 0), linear layer (``head.fc``).

    The normalisation standardises the pooled features before the fresh linear layer (as MAE's
    linear probing does): transferred features have very unequal scales, and a plain linear head
    trained for a few dozen steps learns mostly from the largest ones.
    """
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    layers["norm"] = nn.BatchNorm1d(num_features, affine=False)
    if dropout > 0:
        layers["drop"] = nn.Dropout(dropout)
    layers["fc"] = nn.Linear(num_features, num_classes)
    return nn.Sequential(layers)


ChannelAdapter = Literal["replicate", "learned"]
CHANNEL_ADAPTERS = ("replicate", "learned")


def make_adapter() -> nn.Conv2d:
    """The learned channel adapter: a 1×1 convolution 3→3 initialised to the identity.

    It runs on the standardised input (grey replicated to 3 channels, then ``(x - mean) / std``), so at
    initialisation the model is exactly the replicating one; since the 3 inputs are one grey value
    scaled and shifted per channel, it learns any per-channel affine map grey → 3 channels (and any
    colour mix for RGB input). Its weights train at the head's learning rate.
    """
    conv = nn.Conv2d(3, 3, kernel_size=1, bias=True)
    with torch.no_grad():
        conv.weight.copy_(torch.eye(3).view(3, 3, 1, 1))
        conv.bias.zero_()
    return conv


class Classifier(nn.Module):
    """Backbone (torchvision module layout, head removed) + a fresh classification head.

    ``forward`` takes normalised NCHW float input (3 channels) and returns logits. The state_dict
    keys are ``backbone.<torchvision key>``, ``head.norm.*`` (statistics only) and ``head.fc.*``, plus
    ``adapter.*`` with ``channel_adapter="learned"`` (see :func:`make_adapter`).

    ``mc_dropout`` (None: the architecture's own head dropout) sets the head's dropout rate and, with
    where "head+stage", adds ``stage_drop``: dropout on the input of the backbone's last stage, applied
    by a forward pre-hook so the backbone keeps torchvision's layout (dropout has no state_dict keys).
    """

    def __init__(self, spec: ArchSpec, backbone: nn.Module, num_features: int, num_classes: int,
                 channel_adapter: ChannelAdapter = "replicate", mc_dropout: McDropout | None = None) -> None:
        super().__init__()
        self.channel_adapter = channel_adapter
        self.adapter = make_adapter() if channel_adapter == "learned" else None
        self.arch = spec.name
        self.spec = spec
        self.num_features = num_features
        self.num_classes = num_classes
        self.backbone = backbone
        self.mc_dropout = mc_dropout
        self.head_dropout = mc_dropout.rate if mc_dropout else spec.dropout
        self.head = make_head(num_features, num_classes, self.head_dropout)
        if mc_dropout is not None and mc_dropout.where == "head+stage":
            self.stage_drop = nn.Dropout(mc_dropout.rate)
            self.last_stage_entry().register_forward_pre_hook(self._drop_stage_input)

    def _drop_stage_input(self, _module: nn.Module, args: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        return (self.stage_drop(args[0]), *args[1:])

    def last_stage_entry(self) -> nn.Module:
        """The first module the backbone calls in its last stage (its input is the stage's input)."""
        return next(iter(self.backbone_stages()[-1].children()))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled feature vectors (N×num_features)."""
        return self.backbone(x if self.adapter is None else self.adapter(x))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the head with a freshly initialised one for ``num_classes`` classes."""
        device = self.head.fc.weight.device
        self.head = make_head(self.num_features, num_classes, self.head_dropout).to(device)
        self.num_classes = num_classes

    def backbone_parameters(self) -> Iterator[nn.Parameter]:
        return self.backbone.parameters()

    def head_parameters(self) -> Iterator[nn.Parameter]:
        return self.head.parameters()

    def adapter_parameters(self) -> Iterator[nn.Parameter]:
        return iter(()) if self.adapter is None else self.adapter.parameters()

    def backbone_stages(self) -> list[nn.Module]:
        """The backbone's modules in order, input → output (for gradual unfreezing)."""
        return self.spec.stages(self.backbone)

    def load_backbone_state(self, state: Mapping[str, torch.Tensor]) -> tuple[list[str], list[str]]:
        """Load torchvision-layout backbone weights (no head keys); return (missing, unexpected) keys.

        Nothing is loaded when any key or shape mismatches, so the caller can report and refuse.
        """
        own = self.backbone.state_dict()
        missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
        unexpected = [k for k in state if k not in own]
        unexpected += [f"{k} (shape {tuple(v.shape)}, expected {tuple(own[k].shape)})"
                       for k, v in state.items() if k in own and tuple(v.shape) != tuple(own[k].shape)]
        if not missing and not unexpected:
            self.backbone.load_state_dict(dict(state), strict=False)
        return missing, unexpected
