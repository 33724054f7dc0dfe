"""The bundle manifest: the one contract between tlc (compile) and tlc_runtime.

A bundle is a directory holding ``manifest.json`` plus the files it lists. Every file is
recorded with its sha256; paths are relative to the bundle and never leave it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from .errors import BundleError, SchemaError, UnsafePathError
from .schema import parse, to_dict

SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"

Precision = Literal["fp32", "fp16", "int8", "mixed"]
BackendName = Literal["onnxruntime", "openvino", "tensorrt"]
ArtifactFormat = Literal["onnx", "openvino-ir", "tensorrt-engine"]


@dataclass(frozen=True)
class FileEntry:
    """One file of the bundle: path relative to the bundle root, content hash and size."""

    path: str
    sha256: str
    bytes: int

    def __post_init__(self) -> None:
        check_relative_path(self.path)
        if len(self.sha256) != 64 or any(c not in "0123456789abcdef" for c in self.sha256):
            raise ValueError(f"sha256 of {self.path!r} is not 64 lowercase hex digits")


@dataclass(frozen=True)
class InputSpec:
    """What the model's graph input takes: raw pixels at the model size, preprocessing inside.

    ``channels`` is what the graph takes (1 grey, 3 RGB); ``dtype`` is uint8 for 8-bit sources and
    float32 for 16-bit sources (uint16 values cast exactly to float32, since TensorRT has no uint16).
    """

    name: str
    height: int
    width: int
    channels: Literal[1, 3]
    dtype: Literal["uint8", "float32"]
    layout: Literal["NHWC"] = "NHWC"


@dataclass(frozen=True)
class Preprocessing:
    """How raw pixels become model input. Only ``resize`` runs in the runtime; the rest is in the graph.

    - resize: antialiased bilinear (triangle filter scaled by the zoom), implemented once in
      ``tlc_runtime.preprocess`` and used identically by training.
    - value_range: raw pixel values ``lo..hi`` map to 0..1 (8-bit: 0..255; 16-bit: the data's real
      range, rounded up to its bit depth, e.g. 0..4095 for 12-bit).
    - mean/std: per-channel normalisation after scaling, one value per model channel (3).
    - channel_rule: "replicate" copies a grey input to the 3 backbone channels; "rgb" takes 3.
    """

    resize: Literal["antialias-bilinear"]
    value_range: tuple[float, float]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    channel_rule: Literal["replicate", "rgb"]
    source_bit_depth: int = 8
    rgb_to_grey: Literal["luminance-bt601"] = "luminance-bt601"


@dataclass(frozen=True)
class OutputSpec:
    name: str = "logits"
    activation: Literal["softmax"] = "softmax"


@dataclass(frozen=True)
class Artifact:
    """A runnable model file (or file set) for one backend and precision.

    ``files`` maps role to file: onnx -> {"model"}, openvino-ir -> {"xml", "bin"},
    tensorrt-engine -> {"engine"} (plus optional "timing_cache").
    ``options`` carries backend settings recorded at build time (e.g. OpenVINO
    ``INFERENCE_PRECISION_HINT``, TensorRT version and compute capability).
    """

    name: str
    format: ArtifactFormat
    backend: BackendName
    precision: Precision
    files: dict[str, FileEntry]
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GoldenSet:
    """Small set of inputs (already resized, graph dtype) and the reference PyTorch logits."""

    file: FileEntry
    count: int
    atol_prob: float
    min_agreement: float = 1.0


@dataclass(frozen=True)
class TargetInfo:
    name: str
    backend: BackendName
    device: str
    precision: Precision


@dataclass(frozen=True)
class Manifest:
    schema_version: int
    model_name: str
    arch: str
    class_names: tuple[str, ...]
    input: InputSpec
    preprocessing: Preprocessing
    output: OutputSpec
    artifacts: tuple[Artifact, ...]
    default_artifact: str
    target: TargetInfo
    golden: GoldenSet
    provenance: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    verification: dict[str, Any] = field(default_factory=dict)
    files: dict[str, FileEntry] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.schema_version != SCHEMA_VERSION:
            raise ValueError(f"schema_version {self.schema_version} is not supported by this runtime "
                             f"(supports {SCHEMA_VERSION}); rebuild the bundle or upgrade tlc-runtime")
        if len(self.class_names) < 2:
            raise ValueError("class_names needs at least two classes")
        if not self.artifacts:
            raise ValueError("the bundle lists no artifacts")
        names = [a.name for a in self.artifacts]
        if len(set(names)) != len(names):
            raise ValueError(f"artifact names are not unique: {names}")
        if self.default_artifact not in names:
            raise ValueError(f"default_artifact {self.default_artifact!r} is not one of {names}")

    def artifact(self, name: str | None = None) -> Artifact:
        """The named artifact, or the default one."""
        wanted = name or self.default_artifact
        for art in self.artifacts:
            if art.name == wanted:
                return art
        raise BundleError(f"bundle has no artifact {wanted!r}; it has {[a.name for a in self.artifacts]}")

    def all_files(self) -> list[FileEntry]:
        """Every file the manifest records, artifacts first."""
        entries = [f for a in self.artifacts for f in a.files.values()]
        return entries + [self.golden.file] + list(self.files.values())

    def to_json(self) -> str:
        return json.dumps(to_dict(self), indent=2, sort_keys=False) + "\n"


def check_relative_path(path: str) -> None:
    """Refuse absolute paths, '..' components and backslashes: a bundle's paths stay inside it."""
    pure = PurePosixPath(path)
    if not path or "\\" in path or pure.is_absolute() or ".." in pure.parts or ":" in pure.parts[0]:
        raise UnsafePathError(f"path {path!r} in the manifest leaves the bundle directory")


def parse_manifest(data: Any, where: str = MANIFEST_NAME) -> Manifest:
    """Typed, validated manifest from its JSON structure."""
    if isinstance(data, dict) and data.get("schema_version") not in (None, SCHEMA_VERSION):
        raise SchemaError(f"{where}: schema_version {data.get('schema_version')!r} is not supported "
                          f"(this runtime reads version {SCHEMA_VERSION})")
    return parse(Manifest, data, where)


def read_manifest(bundle_dir: str | Path) -> Manifest:
    """Read and validate ``bundle_dir/manifest.json``."""
    path = Path(bundle_dir) / MANIFEST_NAME
    if not Path(bundle_dir).is_dir():
        raise BundleError(f"bundle directory not found: {bundle_dir}")
    if not path.is_file():
        raise BundleError(f"{bundle_dir} is not a tlc bundle: it has no {MANIFEST_NAME}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{path}: not valid JSON ({exc})") from None
    return parse_manifest(data, str(path))
