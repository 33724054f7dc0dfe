"""Model registry: ``@register_model`` + one ``create_model()`` entry point (timm style).

A registered architecture is a function building a torchvision backbone *without* its classifier
(``fc``/``classifier`` replaced by ``nn.Identity``), so the module structure — and the state_dict
keys — stay torchvision's. ``create_model`` wraps it in a :class:`~tlc.models.classifier.Classifier`
with a fresh head.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError

if TYPE_CHECKING:
    from torch import nn

    from ..runs import McDropout
    from .classifier import Classifier

# builder() -> (backbone module giving pooled features, feature width)
BackboneBuilder = Callable[[], "tuple[nn.Module, int]"]
# stages(backbone) -> ordered modules, input → output (for gradual unfreezing)
StageSplitter = Callable[["nn.Module"], "list[nn.Module]"]


@dataclass(frozen=True)
class ArchSpec:
    """How to build one architecture and how its torchvision checkpoints are laid out."""

    name: str
    build_backbone: BackboneBuilder
    stages: StageSplitter
    head_prefix: str          # torchvision's classifier key prefix ("fc" or "classifier"), dropped on transfer
    torchvision_name: str     # name for torchvision.models.get_model_weights
    dropout: float = 0.0      # dropout before the head's linear layer


_REGISTRY: dict[str, ArchSpec] = {}


def register_model(name: str, *, stages: StageSplitter, head_prefix: str,
                   torchvision_name: str | None = None,
                   dropout: float = 0.0) -> Callable[[BackboneBuilder], BackboneBuilder]:
    """Decorator registering a backbone builder under ``name`` (torchvision_name defaults to name)."""

    def decorate(builder: BackboneBuilder) -> BackboneBuilder:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        _REGISTRY[name] = ArchSpec(name, builder, stages, head_prefix, torchvision_name or name, dropout)
        return builder

    return decorate


def _ensure_zoo() -> None:
    from . import zoo  # noqa: F401  (registers the torchvision architectures)


def list_models() -> list[str]:
    """Names of every registered architecture, sorted."""
    _ensure_zoo()
    return sorted(_REGISTRY)


def get_arch(name: str) -> ArchSpec:
    """The spec of ``name``; ConfigError listing the valid names when unknown."""
    _ensure_zoo()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown architecture {name!r}; valid: {', '.join(sorted(_REGISTRY))}") from None


def create_model(arch: str, num_classes: int, weights: str | Path | None = None,
                 channel_adapter: str = "replicate", mc_dropout: McDropout | None = None) -> Classifier:
    """A :class:`Classifier` for ``arch`` with a ``num_classes`` head (``channel_adapter``, ``mc_dropout``:
    see Classifier).

    ``channel_adapter``: "replicate" (grey input replicated to 3 channels, nothing learned) or
    "learned" (a trainable 1×1 convolution in front of the backbone, see ``classifier.make_adapter``).

    ``weights`` None means random initialisation; otherwise any ``--weights`` value of ``tlc train``
    (torchvision weights name, local file, tlc run directory), loaded by :mod:`tlc.models.weights`.
    """
    from .classifier import CHANNEL_ADAPTERS, Classifier

    if channel_adapter not in CHANNEL_ADAPTERS:
        raise ConfigError(f"unknown channel_adapter {channel_adapter!r}; valid: {', '.join(CHANNEL_ADAPTERS)}")
    spec = get_arch(arch)
    if num_classes < 1:
        raise ConfigError(f"num_classes must be at least 1, got {num_classes}")
    backbone, num_features = spec.build_backbone()
    model = Classifier(spec, backbone, num_features, num_classes, channel_adapter, mc_dropout)  # type: ignore[arg-type]
    if weights is not None:
        from .weights import resolve_weights

        resolve_weights(str(weights), arch).apply(model)
    return model
