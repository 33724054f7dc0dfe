"""``TrainConfig``: every ``tlc train`` option as one frozen, validated dataclass."""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from typing import Any, Literal

from tlc_runtime.dicom import dicom_policy
from tlc_runtime.manifest import DicomPolicy

from ..errors import ConfigError
from ..models.classifier import CHANNEL_ADAPTERS, ChannelAdapter
from ..runs import MC_DROPOUT_WHERE, McDropout

FreezeMode = Literal["none", "head", "gradual"]
FREEZE_MODES = ("none", "head", "gradual")
DuplicatesPolicy = Literal["error", "drop"]


@dataclass(frozen=True)
class TrainConfig:
    """Options of one training run. None means default; the default is written next to the field.

    - arch: architecture name (``tlc.models.list_models()``); None → the parent run's arch when
      ``weights`` is a tlc run directory, else "resnet18".
    - weights: "none", a torchvision weights name ("ResNet18_Weights.IMAGENET1K_V1", "DEFAULT"),
      a local .safetensors/.pth file, or a tlc run directory.
    - backbone_lr_mult: the backbone's learning rate is ``lr * backbone_lr_mult`` when it starts
      from weights (discriminative LRs); a scratch backbone trains at ``lr``.
    - freeze: "none" trains everything, "head" trains the head only, "gradual" starts with the head
      and unfreezes one more backbone stage (from the top) every ``unfreeze_every`` epochs.
    - patience: early stopping after this many epochs without a better validation balanced accuracy
      (ties broken by lower validation loss); None → never stop early.
    - augment: light augmentation (zoom 0.9–1.0 crop, small shift, brightness/contrast jitter);
      ``hflip`` adds horizontal flips (off: chest X-rays are not mirror-symmetric).
    - limit_train: use at most this many training images (seeded subset); None → all.
    - val_fraction / test_fraction: automatic split sizes when the data has no given splits.
    - dicom_window / dicom_rescale: how ``.dcm`` files are read (``tlc_runtime.dicom``): window
      "none" (default: the stored values), "file", a preset ("lung", "bone", "soft-tissue",
      "brain") or "CENTER,WIDTH"; rescale None → on with a window, off without. The resulting
      ``dicom_policy`` is recorded in the run and the bundle manifest.
    - duplicates: "error" refuses data with an image in both train and test; "drop" removes the
      train copies of val/test images (recorded in run.json ``data.dropped_duplicates``).
    - channel_adapter: "replicate" (grey copied to the backbone's 3 channels) or "learned" (a trainable
      1×1 convolution in front of the backbone, initialised to replication; ``models.classifier``).
    - roi: crop before resizing: "auto" (``tlc_runtime.roi`` automatic rule) or a boxes CSV path
      (``tlc.data.roi``); None → the whole image (or the ROI of a Dataset passed in).
    - mc_dropout: dropout rate (0 < rate < 1) for MC-dropout uncertainty, before the head's linear
      layer and, with ``mc_dropout_where`` "head+stage", also on the input of the backbone's last
      stage; recorded in run.json (``RunInfo.mc_dropout``). None → off (the architecture's own head
      dropout); a child run (``weights`` a run) does not inherit its parent's.
    - tasks: multi-task training: the CSV manifest's label columns, primary first (``tlc.data``);
      one backbone with a head per task (``tlc.models.multitask``). None → one task (``label``).
    - task_attention: how each task's head reads the spatial feature map: "static" (a learned query
      per task), "dynamic" (a query generated from the pooled features) or "none" (pooled features);
      checked by ``tlc.models.multitask`` when the model is built (this module imports no torch).
    - spectral_reg: weight LAMBDA of the spectral regulariser (``tlc.train.spectral``: LAMBDA × the mean
      share of each image's feature-map energy in its top singular direction, added to the loss);
      0 → off (training exactly as without it). Training-only: the exported graph is unchanged.
    - threads: CPU threads torch may use while training (restored afterwards); None → every CPU this
      process may run on (its affinity, so ``taskset`` is respected). With ``--nproc`` each process gets
      its share. Set it to share the machine with other jobs.
    """

    arch: str | None = None
    weights: str = "none"
    img_size: int = 64
    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    backbone_lr_mult: float = 0.1
    weight_decay: float = 1e-4
    freeze: FreezeMode = "none"
    unfreeze_every: int = 1
    patience: int | None = 5
    class_weighted: bool = True
    augment: bool = True
    hflip: bool = False
    seed: int = 0
    num_workers: int = 0
    threads: int | None = None
    limit_train: int | None = None
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    device: str = "cpu"
    resume: bool = False
    dicom_window: str = "none"
    dicom_rescale: bool | None = None
    duplicates: DuplicatesPolicy = "error"
    roi: str | None = None
    channel_adapter: ChannelAdapter = "replicate"
    mc_dropout: float | None = None
    mc_dropout_where: Literal["head", "head+stage"] = "head"
    tasks: tuple[str, ...] | None = None
    task_attention: str = "static"
    spectral_reg: float = 0.0

    def __post_init__(self) -> None:
        if self.tasks is not None:
            object.__setattr__(self, "tasks", tuple(self.tasks))  # a stored config holds a JSON list
        _check(self.tasks is None or (len(self.tasks) >= 2 and all(
            isinstance(t, str) and t and t.replace("_", "").isalnum() for t in self.tasks)),
            f"tasks must be at least two label column names (letters, digits, underscores), got {self.tasks}")
        _check(self.img_size >= 16, f"img_size must be at least 16 pixels, got {self.img_size}")
        _check(self.epochs >= 1, f"epochs must be at least 1, got {self.epochs}")
        _check(self.batch_size >= 1, f"batch_size must be at least 1, got {self.batch_size}")
        _check(self.lr > 0, f"lr must be positive, got {self.lr}")
        _check(self.backbone_lr_mult >= 0, f"backbone_lr_mult must be >= 0, got {self.backbone_lr_mult}")
        _check(self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}")
        _check(self.freeze in FREEZE_MODES, f"freeze must be one of {', '.join(FREEZE_MODES)}, got {self.freeze!r}")
        _check(self.unfreeze_every >= 1, f"unfreeze_every must be at least 1, got {self.unfreeze_every}")
        _check(self.patience is None or self.patience >= 1, f"patience must be at least 1, got {self.patience}")
        _check(self.threads is None or self.threads >= 1, f"threads must be at least 1, got {self.threads}")
        _check(self.num_workers >= 0, f"num_workers must be >= 0, got {self.num_workers}")
        _check(self.limit_train is None or self.limit_train >= 2,
               f"limit_train must be at least 2 images, got {self.limit_train}")
        for name in ("val_fraction", "test_fraction"):
            value = getattr(self, name)
            _check(0 <= value < 1, f"{name} must be in [0, 1), got {value}")
        _check(self.val_fraction + self.test_fraction < 1,
               "val_fraction + test_fraction must leave some training images (sum < 1)")
        _check(self.duplicates in ("error", "drop"),
               f"duplicates must be one of error, drop, got {self.duplicates!r}")
        _check(self.roi is None or bool(self.roi), "roi must be 'auto' or a boxes CSV path")
        _check(self.channel_adapter in CHANNEL_ADAPTERS,
               f"channel_adapter must be one of {', '.join(CHANNEL_ADAPTERS)}, got {self.channel_adapter!r}")
        _check(self.mc_dropout is None or 0 < self.mc_dropout < 1,
               f"mc_dropout must be a rate in (0, 1), got {self.mc_dropout}")
        _check(self.mc_dropout_where in MC_DROPOUT_WHERE,
               f"mc_dropout_where must be one of {', '.join(MC_DROPOUT_WHERE)}, got {self.mc_dropout_where!r}")
        _check(self.mc_dropout is not None or self.mc_dropout_where == "head",
               "mc_dropout_where needs mc_dropout (a rate, e.g. --mc-dropout 0.3)")
        _check(math.isfinite(self.spectral_reg) and self.spectral_reg >= 0,
               f"spectral_reg must be a finite weight >= 0, got {self.spectral_reg}")
        _check(bool(self.weights), "weights must be 'none', a weights name, a file or a run directory")
        try:
            dicom_policy(self.dicom_window, self.dicom_rescale)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    def cpu_threads(self, processes: int = 1) -> int:
        """Torch threads for one of ``processes`` training processes on this machine (``threads`` above)."""
        if self.threads is not None:
            return self.threads
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        return max(1, cpus // processes)

    @property
    def dicom_policy(self) -> DicomPolicy:
        """The DicomPolicy of ``dicom_window`` and ``dicom_rescale``."""
        return dicom_policy(self.dicom_window, self.dicom_rescale)

    @property
    def mc_dropout_spec(self) -> McDropout | None:
        """The McDropout of ``mc_dropout`` and ``mc_dropout_where`` (None when off)."""
        return None if self.mc_dropout is None else McDropout(self.mc_dropout, self.mc_dropout_where)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Config from ``to_dict`` output (e.g. a run's stored config); unknown keys are errors."""
        valid = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - valid)
        if unknown:
            raise ConfigError(f"unknown training option(s) {', '.join(unknown)}; valid: {', '.join(sorted(valid))}")
        return cls(**data)


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)
