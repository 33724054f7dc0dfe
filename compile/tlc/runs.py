"""The run directory written by ``tlc train``: the contract between training and building.

RUN_DIR/
  run.json             RunInfo below (typed, validated on read)
  model.safetensors    best checkpoint by validation metric (never pickle)
  last.safetensors     latest epoch, with last_state.json, for --resume

An ensemble run (``tlc ensemble``, ``tlc train --members N``) holds no checkpoint of its own: its
run.json lists ``members``, complete run directories copied under ``members/``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tlc_runtime.errors import SchemaError
from tlc_runtime.manifest import Preprocessing, TaskSpec
from tlc_runtime.schema import parse, to_dict

from .errors import ConfigError

RUN_INFO_NAME = "run.json"
BEST_CHECKPOINT = "model.safetensors"
RUN_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class DataInfo:
    source: str
    kind: Literal["folder", "csv", "npz", "digits", "arrays"]
    content_hash: str
    split_sizes: dict[str, int]
    dropped_duplicates: tuple[dict[str, str], ...] = ()  # train images removed by --duplicates drop


MC_DROPOUT_WHERE = ("head", "head+stage")


@dataclass(frozen=True)
class McDropout:
    """Dropout a run trained with for MC-dropout uncertainty (``tlc train --mc-dropout``): ``rate``
    before the head's linear layer and, with ``where`` "head+stage", also on the input of the
    backbone's last stage. The modules hold no weights, so the state_dict keys stay the plain ones."""

    rate: float
    where: Literal["head", "head+stage"] = "head"

    def __post_init__(self) -> None:
        if not 0 < self.rate < 1:
            raise ValueError(f"MC dropout rate must be in (0, 1), got {self.rate:g}")
        if self.where not in MC_DROPOUT_WHERE:
            raise ValueError(f"MC dropout where must be one of {', '.join(MC_DROPOUT_WHERE)}, got {self.where!r}")

    def describe(self) -> str:
        return f"MC dropout {self.rate:g} ({self.where})"


@dataclass(frozen=True)
class MemberInfo:
    """One member of an ensemble run: a complete run directory copied to ``path`` (relative to the
    ensemble run), its run id and architecture, and the sha256 of each of its files."""

    path: str
    run_id: str
    arch: str
    sha256: dict[str, str]


@dataclass(frozen=True)
class RunInfo:
    schema_version: int
    run_id: str
    arch: str
    class_names: tuple[str, ...]
    img_size: int
    input_channels: Literal[1, 3]
    input_dtype: Literal["uint8", "float32"]
    preprocessing: Preprocessing
    data: DataInfo
    weights_init: str
    seed: int
    versions: dict[str, str] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    epochs: tuple[dict[str, Any], ...] = ()
    best_epoch: int = -1
    val_metrics: dict[str, Any] = field(default_factory=dict)
    test_metrics: dict[str, Any] = field(default_factory=dict)
    checkpoint: str = BEST_CHECKPOINT
    channel_adapter: Literal["replicate", "learned"] = "replicate"  # tlc.models.classifier.make_adapter
    mc_dropout: McDropout | None = field(default=None, metadata={"omit_default": True})
    tasks: tuple[TaskSpec, ...] | None = field(default=None, metadata={"omit_default": True})  # multi-task runs
    members: tuple[MemberInfo, ...] = ()  # an ensemble run (arch "ensemble"): its members, see tlc.models.ensemble
    # a run started from another run (--weights RUN): tlc.train.source_distance.SourceDistance as a dict
    source_distance: dict[str, Any] | None = field(default=None, metadata={"omit_default": True})

    @property
    def is_ensemble(self) -> bool:
        return bool(self.members)

    def data_options(self, splits: bool = True) -> dict[str, Any]:
        """``load_dataset`` keyword arguments that read data as this run was trained on: its DICOM policy
        and ROI (the recorded automatic rule, or its boxes file), and with ``splits`` its split
        fractions, duplicates policy and a multi-task run's task columns too (build and verify reload the
        run's own data with them)."""
        from .data.roi import run_roi

        keys = ("val_fraction", "test_fraction", "duplicates") if splits else ()
        options = {k: self.config[k] for k in keys if k in self.config}
        tasks = {"tasks": tuple(t.name for t in self.tasks)} if self.tasks and splits else {}
        return {**options, "dicom": self.preprocessing.dicom, "roi": run_roi(self), **tasks}

    def to_json(self) -> str:
        return json.dumps(to_dict(self), indent=2) + "\n"


def read_run_info(run_dir: str | Path) -> RunInfo:
    """Read and validate RUN_DIR/run.json."""
    run_dir = Path(run_dir)
    path = run_dir / RUN_INFO_NAME
    if not run_dir.is_dir():
        raise ConfigError(f"run directory not found: {run_dir}")
    if not path.is_file():
        raise ConfigError(f"{run_dir} is not a tlc run directory (no {RUN_INFO_NAME})")
    try:
        info = parse(RunInfo, json.loads(path.read_text(encoding="utf-8")), str(path))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc})") from None
    except SchemaError as exc:
        raise ConfigError(str(exc)) from None
    _check_preprocessing(info.preprocessing, path)
    return info


def _check_preprocessing(prep: Preprocessing, path: Path) -> None:
    """Values that would make a model output NaN for every image (non-finite ones the schema refuses)."""
    if any(v <= 0 for v in prep.std) or prep.value_range[1] <= prep.value_range[0]:
        raise ConfigError(f"{path}: preprocessing needs std > 0 and value_range high > low "
                          f"(std {list(prep.std)}, value_range {list(prep.value_range)})")


def write_run_info(run_dir: str | Path, info: RunInfo) -> None:
    """Write run.json atomically (temp file, then rename)."""
    path = Path(run_dir) / RUN_INFO_NAME
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(info.to_json(), encoding="utf-8")
    tmp.replace(path)
