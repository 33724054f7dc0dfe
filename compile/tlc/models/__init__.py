"""Architectures (registry + one head API) and the deployable model with preprocessing inside.

Imports torch and torchvision: only the commands that need models import this package.
"""

from .classifier import Classifier, make_head
from .deploy import IMAGENET_MEAN, IMAGENET_STD, DeployModel, Preprocess
from .registry import ArchSpec, create_model, get_arch, list_models, register_model

__all__ = [
    "IMAGENET_MEAN", "IMAGENET_STD", "ArchSpec", "Classifier", "DeployModel", "Preprocess",
    "create_model", "get_arch", "list_models", "make_head", "register_model",
]
