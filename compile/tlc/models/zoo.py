"""The torchvision architectures, built with ``weights=None`` (tlc loads weights itself).

Each builder removes torchvision's classifier (``fc`` or ``classifier`` → ``nn.Identity``) so the
backbone returns the pooled feature vector and keeps torchvision's state_dict keys. VGG's 7×7
pooling + 4096-wide MLP is replaced by global average pooling (512 features): the MLP weights are
classifier weights, dropped on transfer anyway, and the small head suits small datasets.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from itertools import pairwise

import torchvision
from torch import nn

from .registry import register_model


def _resnet(factory: Callable[[], nn.Module]) -> tuple[nn.Module, int]:
    model = factory()
    num_features = model.fc.in_features
    model.fc = nn.Identity()
    return model, num_features


def _resnet_stages(backbone: nn.Module) -> list[nn.Module]:
    stem = nn.Sequential(backbone.conv1, backbone.bn1, backbone.relu, backbone.maxpool)
    return [stem, backbone.layer1, backbone.layer2, backbone.layer3, backbone.layer4]


def _with_classifier(factory: Callable[[], nn.Module]) -> tuple[nn.Module, int]:
    """Models whose head is ``classifier`` (a Sequential ending in a Linear)."""
    model = factory()
    linears = [m for m in model.classifier.modules() if isinstance(m, nn.Linear)]
    num_features = linears[0].in_features
    model.classifier = nn.Identity()
    return model, num_features


def _vgg(factory: Callable[[], nn.Module]) -> tuple[nn.Module, int]:
    model = factory()
    model.avgpool = nn.AdaptiveAvgPool2d(1)
    model.classifier = nn.Identity()
    return model, 512


def _feature_stages(starts: Sequence[int]) -> Callable[[nn.Module], list[nn.Module]]:
    """Split ``backbone.features`` into stages beginning at the given child indices."""

    def split(backbone: nn.Module) -> list[nn.Module]:
        children = list(backbone.features.children())
        bounds = [*starts, len(children)]
        return [nn.Sequential(*children[a:b]) for a, b in pairwise(bounds)]

    return split


def _register_resnet(name: str) -> None:
    factory = getattr(torchvision.models, name)
    register_model(name, stages=_resnet_stages, head_prefix="fc")(lambda: _resnet(factory))


for _name in ("resnet18", "resnet34", "resnet50"):
    _register_resnet(_name)

# Stage boundaries at each resolution change of the torchvision ``features`` Sequential.
_FEATURE_MODELS = {
    "mobilenet_v2": (_with_classifier, (0, 2, 4, 7, 14), 0.2),
    "mobilenet_v3_small": (_with_classifier, (0, 1, 2, 4, 9), 0.2),
    "mobilenet_v3_large": (_with_classifier, (0, 2, 4, 7, 13), 0.2),
    "efficientnet_b0": (_with_classifier, (0, 2, 3, 4, 6), 0.2),
    "vgg16": (_vgg, (0, 5, 10, 17, 24), 0.0),
    "vgg19": (_vgg, (0, 5, 10, 19, 28), 0.0),
}


def _register_features_model(name: str, wrap: Callable, starts: tuple[int, ...], dropout: float) -> None:
    factory = getattr(torchvision.models, name)
    register_model(name, stages=_feature_stages(starts), head_prefix="classifier",
                   dropout=dropout)(lambda: wrap(factory))


for _name, (_wrap, _starts, _dropout) in _FEATURE_MODELS.items():
    _register_features_model(_name, _wrap, _starts, _dropout)


SMALL_CNN_WIDTHS = (32, 64, 128, 256)


def _small_cnn() -> tuple[nn.Module, int]:
    """A few conv blocks trained from scratch (the "is a small custom CNN enough?" baseline): four
    blocks of two 3×3 conv-BN-ReLU, the first three followed by a 2×2 max-pool, then a global average
    pool; about 1.2 M parameters, ``features`` laid out like the torchvision models so stages split
    alike and end on the spatial map (multi-task attention and ``--spectral-reg`` read it)."""
    blocks: list[nn.Module] = []
    previous = 3
    for i, width in enumerate(SMALL_CNN_WIDTHS):
        last = i == len(SMALL_CNN_WIDTHS) - 1
        blocks.append(nn.Sequential(
            nn.Conv2d(previous, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            *([] if last else [nn.MaxPool2d(2)])))
        previous = width
    return nn.Sequential(OrderedDict(features=nn.Sequential(*blocks), avgpool=nn.AdaptiveAvgPool2d(1),
                                     flatten=nn.Flatten())), previous


register_model("small_cnn", stages=lambda backbone: list(backbone.features.children()), head_prefix="classifier",
               torchvision_weights=False)(_small_cnn)
