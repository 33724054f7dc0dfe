"""Run-directory bookkeeping: refusing to clobber runs, writing a run atomically, resume checks,
building ``RunInfo``."""

from __future__ import annotations

import secrets
import shutil
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
from tlc_runtime.manifest import LOGITS, TASK_OUTPUT_PREFIX, Preprocessing, TaskSpec

from ..data import Dataset
from ..errors import ConfigError
from ..models.deploy import IMAGENET_MEAN, IMAGENET_STD
from ..outdir import OutputLock, move_into_place, sibling
from ..runs import RUN_INFO_NAME, RUN_SCHEMA_VERSION, DataInfo, RunInfo
from .checkpoint import LAST_STATE
from .config import TrainConfig

# options that may change when resuming; every other option must match the original run
RESUMABLE_CHANGES = frozenset({"epochs", "patience", "resume", "device", "num_workers", "threads"})


def check_out_dir(out_dir: Path, resume: bool, overwrite: bool) -> None:
    """Refuse an ``out_dir`` that already holds a run unless resuming or overwriting, and one that
    holds anything else (a finished run replaces ``out_dir`` as a whole)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"output path {out_dir} exists and is not a directory")
    if resume or not out_dir.exists():
        return
    if (out_dir / RUN_INFO_NAME).exists():
        if not overwrite:
            raise ConfigError(f"{out_dir} already holds a run ({RUN_INFO_NAME}); choose another directory, "
                              "resume it, or overwrite it")
    elif any(out_dir.iterdir()):
        raise ConfigError(f"{out_dir} is not empty and holds no tlc run; choose a new or empty directory")


class RunDirectory:
    """``with RunDirectory(out_dir, resume, overwrite) as work: train into work``.

    Resuming trains in ``out_dir`` itself. Otherwise training writes a staging directory beside it
    that becomes ``out_dir`` only when training finishes, so a failed run leaves nothing and a failed
    ``--overwrite`` leaves the previous run untouched. Ctrl-C keeps the epochs saved so far in a
    new ``out_dir`` for ``--resume``. The whole run holds ``out_dir``'s lock (``tlc.outdir``).
    """

    def __init__(self, out_dir: Path, resume: bool, overwrite: bool) -> None:
        self.out, self.resume, self.overwrite = out_dir, resume, overwrite
        self.lock = OutputLock(out_dir, "training run")
        self.path = out_dir if resume else sibling(out_dir, "staging")

    def __enter__(self) -> Path:
        self.lock.__enter__()
        try:
            check_out_dir(self.out, self.resume, self.overwrite)
            if not self.resume:
                self.path.mkdir()
        except BaseException:
            self.lock.__exit__(None, None, None)
            raise
        return self.path

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        interrupted = exc_type is KeyboardInterrupt and (self.path / LAST_STATE).is_file() \
            and _is_empty_or_missing(self.out)  # keep the saved epochs where --resume looks
        try:
            if not self.resume and (exc_type is None or interrupted):
                self._commit()
        finally:
            if not self.resume:
                shutil.rmtree(self.path, ignore_errors=True)  # a failed run (gone after a commit)
            self.lock.__exit__(None, None, None)

    def _commit(self) -> None:
        if self.out.is_dir() and not self.out.is_symlink() and _is_empty_or_missing(self.out):
            self.out.rmdir()  # an empty directory made for the run
        move_into_place(self.path, self.out, overwrite=self.overwrite, marker=RUN_INFO_NAME, what="run")


def _is_empty_or_missing(path: Path) -> bool:
    return not path.exists() or (path.is_dir() and not any(path.iterdir()))


def check_resume(stored: dict[str, Any], config: TrainConfig, content_hash: str, run_dir: Path) -> None:
    """The resumed run must use the original options (except RESUMABLE_CHANGES) and the same data."""
    current = config.to_dict()
    original = {**TrainConfig().to_dict(), **stored["config"]}  # options added since then: their default
    changed = sorted(k for k in current if k not in RESUMABLE_CHANGES and original.get(k) != current[k])
    if changed:
        details = ", ".join(f"{k}={original.get(k)!r}" for k in changed)
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
    tasks = None
    if dataset.tasks:
        first, *others = dataset.tasks
        tasks = (TaskSpec(first.name, first.class_names, LOGITS),
                 *(TaskSpec(t.name, t.class_names, TASK_OUTPUT_PREFIX + t.name) for t in others))
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
                      split_sizes=dict(split_sizes), dropped_duplicates=dataset.dropped_duplicates),
        weights_init=weights_init,
        seed=config.seed,
        versions=versions(),
        config=config.to_dict(),
        epochs=tuple(history),
        best_epoch=best_epoch,
        val_metrics=val_metrics,
        test_metrics=test_metrics or {},
        channel_adapter=config.channel_adapter,
        mc_dropout=config.mc_dropout_spec,
        tasks=tasks,
    )
