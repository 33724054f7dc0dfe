"""Transfer learning: ``train()`` writes a run directory; ``load_run_model()`` reads it back.

Imports torch: only the commands that train or build import this package.
"""

from ..models.checkpoint import load_deploy_model, load_run_model
from ..models.weights import WeightsSource, resolve_weights
from .config import TrainConfig
from .metrics import classification_metrics
from .trainer import train

__all__ = ["TrainConfig", "WeightsSource", "classification_metrics", "load_deploy_model", "load_run_model",
           "resolve_weights", "train"]
