"""Hardware targets: typed, validated data loaded from TOML files (``targets/`` or a user's path)."""

from __future__ import annotations

import difflib
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Literal

from tlc_runtime.errors import SchemaError
from tlc_runtime.schema import parse

from .errors import ConfigError

Precision = Literal["fp32", "fp16", "int8"]
CalibrationMethod = Literal["minmax", "entropy", "percentile"]


@dataclass(frozen=True)
class Tolerance:
    """Accuracy budget of one precision against the reference PyTorch model.

    Drops are fractions (0.01 = 1 point of balanced accuracy); agreement is top-1 agreement.
    ``confidence``: the margins must hold at this one-sided confidence (a non-inferiority rule, see
    ``tlc.verify.budget``); 0 judges the observed values instead.
    """

    min_agreement: float = 0.99
    max_balanced_accuracy_drop: float = 0.01
    max_abs_prob_delta: float | None = None
    confidence: float = 0.95

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_agreement <= 1.0:
            raise ValueError(f"min_agreement must be within 0..1, got {self.min_agreement}")
        if not 0.0 <= self.max_balanced_accuracy_drop <= 1.0:
            raise ValueError(f"max_balanced_accuracy_drop must be within 0..1, got {self.max_balanced_accuracy_drop}")
        if not (self.confidence == 0.0 or 0.5 <= self.confidence < 1.0):
            raise ValueError(f"confidence must be 0 (judge observed values) or within 0.5..1 (exclusive), "
                             f"got {self.confidence}")


@dataclass(frozen=True)
class Calibration:
    method: CalibrationMethod = "minmax"
    samples: int = 300
    min_samples: int = 16
    percentile: float = 99.999


@dataclass(frozen=True)
class OnnxRuntimeOptions:
    providers: tuple[str, ...] = ("CPUExecutionProvider",)
    intra_op_threads: int = 0
    graph_optimization: Literal["disable", "basic", "extended", "all"] = "all"


@dataclass(frozen=True)
class OpenVinoOptions:
    device: str = "CPU"
    inference_precision: Literal["f32", "bf16", "f16", "auto"] = "f32"
    performance_hint: Literal["LATENCY", "THROUGHPUT"] = "LATENCY"
    compress_to_fp16: bool = False
    accuracy_control: bool = True


@dataclass(frozen=True)
class TensorRtOptions:
    """What a TensorRT engine for this target needs (recorded in the bundle for builds on device)."""

    version_min: str = "8.6"
    version_max: str | None = None
    compute_capability: str | None = None
    dla_cores: int = 0
    use_dla: bool = False
    dla_core: int = 0                # which DLA core an engine uses when use_dla is set
    gpu_fallback: bool = True
    workspace_mib: int = 1024
    min_batch: int = 1
    opt_batch: int = 1
    max_batch: int = 8
    builder_optimization_level: int = 3
    builder_precision_flags: bool = False
    max_opset: int = 17
    jetpack: str | None = None       # the JetPack release that ships version_min (Jetson targets)

    def __post_init__(self) -> None:
        if not 1 <= self.min_batch <= self.opt_batch <= self.max_batch:
            raise ValueError(f"tensorrt batch profile needs 1 <= min_batch <= opt_batch <= max_batch, got "
                             f"{self.min_batch}/{self.opt_batch}/{self.max_batch}")
        if self.use_dla and not 0 <= self.dla_core < self.dla_cores:
            raise ValueError(f"use_dla needs dla_core in 0..{self.dla_cores - 1} (this module has "
                             f"{self.dla_cores} DLA cores); set use_dla = false or fix dla_core")
        if not 0 <= self.builder_optimization_level <= 5:
            raise ValueError("builder_optimization_level must be 0..5")


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    backend: Literal["onnxruntime", "openvino", "tensorrt"]
    device: str
    precision: Precision
    precisions: tuple[Precision, ...]
    fallback: tuple[Precision, ...] = ()
    aliases: tuple[str, ...] = ()
    arch: str = "x86_64"
    alias_of: str | None = None
    calibration: Calibration = field(default_factory=Calibration)
    tolerances: dict[str, Tolerance] = field(default_factory=dict)
    onnxruntime: OnnxRuntimeOptions = field(default_factory=OnnxRuntimeOptions)
    openvino: OpenVinoOptions | None = None
    tensorrt: TensorRtOptions | None = None

    def __post_init__(self) -> None:
        if self.precision not in self.precisions:
            raise ValueError(f"default precision {self.precision!r} is not in precisions {self.precisions}")
        for p in self.fallback:
            if p not in self.precisions:
                raise ValueError(f"fallback precision {p!r} is not in precisions {self.precisions}")
        unknown = set(self.tolerances) - {"fp32", "fp16", "int8"}
        if unknown:
            raise ValueError(f"tolerances for unknown precision(s) {sorted(unknown)}; valid: fp32, fp16, int8")

    def tolerance(self, precision: str) -> Tolerance:
        """The budget for ``precision`` (tlc's defaults where the file gives none)."""
        return self.tolerances.get(precision, DEFAULT_TOLERANCES[precision])


DEFAULT_TOLERANCES: dict[str, Tolerance] = {
    "fp32": Tolerance(min_agreement=1.0, max_balanced_accuracy_drop=0.0, max_abs_prob_delta=1e-4),
    "fp16": Tolerance(min_agreement=0.99, max_balanced_accuracy_drop=0.01, max_abs_prob_delta=1e-2),
    "int8": Tolerance(min_agreement=0.99, max_balanced_accuracy_drop=0.01),
}


def _builtin_files() -> dict[str, resources.abc.Traversable]:
    root = resources.files("tlc.target_files")
    return {p.name[:-5]: p for p in root.iterdir() if p.name.endswith(".toml")}


def _parse_text(text: str, where: str) -> Target:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not valid TOML ({exc})") from None
    try:
        return parse(Target, data, where)
    except SchemaError as exc:
        raise ConfigError(str(exc)) from None


def builtin_targets() -> dict[str, Target]:
    """All targets shipped with tlc, by name (aliases not included)."""
    return {name: _parse_text(path.read_text(encoding="utf-8"), f"targets/{name}.toml")
            for name, path in sorted(_builtin_files().items())}


def load_target(name_or_path: str) -> Target:
    """A built-in target by name or alias, or a user's TOML file by path."""
    if name_or_path.endswith(".toml") or "/" in name_or_path:
        path = Path(name_or_path)
        if not path.is_file():
            raise ConfigError(f"target file not found: {name_or_path}")
        return _parse_text(path.read_text(encoding="utf-8"), str(path))
    targets = builtin_targets()
    if name_or_path in targets:
        return targets[name_or_path]
    for target in targets.values():
        if name_or_path in target.aliases:
            return target
    known = sorted(list(targets) + [a for t in targets.values() for a in t.aliases])
    close = difflib.get_close_matches(name_or_path, known, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise ConfigError(f"unknown target {name_or_path!r}; {hint}known targets: {', '.join(known)}")
