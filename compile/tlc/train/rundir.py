"""Run-directory bookkeeping: refusing to clobber runs, resume checks, building ``RunInfo``."""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any

import numpy as np
from tlc_runtime.manifest import Preprocessing

from ..data import Dataset
from ..errors import ConfigError
from ..models.deploy import IMAGENET_MEAN, IMAGENET_STD
from ..runs import RUN_INFO_NAME, RUN_SCHEMA_VERSION, DataInfo, RunInfo
from .config import TrainConfig

# options that may change when resuming; every other option must match the original run
RESUMABLE_CHANGES = frozenset({"epochs", "patience", "resume", "device", "num_workers"})


def prepare_out_dir(out_dir: Path, resume: bool, overwrite: bool) -> None:
    """Create ``out_dir``; refuse one that already holds a run unless resuming or overwriting."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"output path {out_dir} exists and is not a directory")
    if resume:
        return
    if (out_dir / RUN_INFO_NAME).exists() and not overwrite:
        raise ConfigError(f"{out_dir} already holds a run ({RUN_INFO_NAME}); choose another directory, "
                          "resume it, or overwrite it")
    out_dir.mkdir(parents=True, exist_ok=True)


def check_resume(stored: dict[str, Any], config: TrainConfig, content_hash: str, run_dir: Path) -> None:
    """The resumed run must use the original options (except RESUMABLE_CHANGES) and the same data."""
    current = config.to_dict()
    changed = sorted(k for k in current if k not in RESUMABLE_CHANGES and stored["config"].get(k) != current[k])
    if changed:
        details = ", ".join(f"{k}={stored['config'].get(k)!r}" for k in changed)
        raise ConfigError(f"cannot resume {run_dir}: options differ from the original run; use {details}")
    if stored.get("content_hash") != content_hash:
        raise ConfigError(f"cannot resume {run_dir}: the dataset differs from the one it was trained on")


def make_preprocessing(dataset: Dataset, parent: RunInfo | None) -> Preprocessing:
    """ImageNet mean/std (or the parent run's), the data's own value range and channel rule."""
    mean, std = (parent.preprocessing.mean, parent.preprocessing.std) if parent else (IMAGENET_MEAN, IMAGENET_STD)
    return dataset.preprocessing(mean, std)


def new_run_id(arch: str) -> str:
    return f"{arch}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


def versions() -> dict[str, str]:
    import torch
    import torchvision

    from .. import __version__

    return {"tlc": __version__, "torch": torch.__version__, "torchvision": torchvision.__version__,
            "numpy": np.__version__}


def build_run_info(*, run_id: str, arch: str, dataset: Dataset, split_sizes: dict[str, int],
                   config: TrainConfig, prep: Preprocessing, weights_init: str,
                   history: list[dict[str, Any]], best_epoch: int, val_metrics: dict[str, Any],
                   test_metrics: dict[str, Any] | None = None) -> RunInfo:
    return RunInfo(
        schema_version=RUN_SCHEMA_VERSION,
        run_id=run_id,
        arch=arch,
        class_names=tuple(dataset.class_names),
        img_size=config.img_size,
        input_channels=1 if dataset.channels == 1 else 3,
        input_dtype="uint8" if dataset.bit_depth <= 8 else "float32",
        preprocessing=prep,
        data=DataInfo(source=str(dataset.source), kind=dataset.kind, content_hash=dataset.content_hash,
                      split_sizes=dict(split_sizes)),
        weights_init=weights_init,
        seed=config.seed,
        versions=versions(),
        config=config.to_dict(),
        epochs=tuple(history),
        best_epoch=best_epoch,
        val_metrics=val_metrics,
        test_metrics=test_metrics or {},
    )
