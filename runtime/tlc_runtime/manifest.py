"""The bundle manifest: the one contract between tlc (compile) and tlc_runtime.

A bundle is a directory holding ``manifest.json`` plus the files it lists. Every file is
recorded with its sha256; paths are relative to the bundle and never leave it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from .errors import BundleError, SchemaError, UnsafePathError
from .roi import RoiRule
from .schema import parse, show, to_dict

SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)  # version 1 had one ``output``; it is read as ``outputs=(output,)``
MANIFEST_NAME = "manifest.json"
MAX_DEPTH = 32  # a real manifest nests 5 deep; deeper documents are refused before any recursion
MAX_INT_DIGITS = 30

Precision = Literal["fp32", "fp16", "int8", "mixed"]
BackendName = Literal["onnxruntime", "openvino", "tensorrt"]
ArtifactFormat = Literal["onnx", "openvino-ir", "tensorrt-engine"]
ResizeMethod = Literal["antialias-bilinear", "area-antialias-bilinear"]


@dataclass(frozen=True)
class FileEntry:
    """One file of the bundle: path relative to the bundle root, content hash and size."""

    path: str
    sha256: str
    bytes: int

    def __post_init__(self) -> None:
        check_relative_path(self.path)
        if len(self.sha256) != 64 or any(c not in "0123456789abcdef" for c in self.sha256):
            raise ValueError(f"sha256 of {show(self.path)} is not 64 lowercase hex digits")
        if self.bytes < 0:
            raise ValueError(f"bytes of {show(self.path)} is negative")


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

    def __post_init__(self) -> None:
        if self.height < 1 or self.width < 1:
            raise ValueError(f"input size {self.height}×{self.width} is not positive")


@dataclass(frozen=True)
class DicomPolicy:
    """How a DICOM file's stored pixels become the native image (applied by ``tlc_runtime.dicom``).

    - rescale: apply the modality LUT (RescaleSlope/RescaleIntercept, e.g. to Hounsfield units).
    - window: "none" (the stored or rescaled values themselves), "file" (the file's first VOI
      WindowCenter/WindowWidth) or a fixed (center, width); windowed values map to 0..65535.
    MONOCHROME1 is always inverted so that bright means dense.
    """

    rescale: bool = False
    window: Literal["none", "file"] | tuple[float, float] = "none"

    def __post_init__(self) -> None:
        if isinstance(self.window, tuple):
            center, width = self.window
            if not (math.isfinite(center) and math.isfinite(width) and width >= 1):
                raise ValueError(f"dicom window (center {center:g}, width {width:g}) needs finite numbers "
                                 "and a width of at least 1")


@dataclass(frozen=True)
class Preprocessing:
    """How raw pixels become model input. Only ``roi`` and ``resize`` run in the runtime; the rest is in the graph.

    - resize: the filter, implemented once in ``tlc_runtime.preprocess`` and used identically by
      training; the runtime applies the one named here. "area-antialias-bilinear" (new bundles):
      exact area sums over integer bins for large reductions, then the antialiased triangle filter;
      "antialias-bilinear" (older bundles): the triangle filter (scaled by the zoom) on every pixel.
    - value_range: raw pixel values ``lo..hi`` map to 0..1 (8-bit: 0..255; 16-bit: the data's real
      range, rounded up to its bit depth, e.g. 0..4095 for 12-bit).
    - mean/std: per-channel normalisation after scaling, one value per model channel (3).
    - channel_rule: "replicate" copies a grey input to the 3 backbone channels; "rgb" takes 3.
    - dicom: how ``.dcm`` files are read (None: the default ``DicomPolicy()``, stored values).
    - roi: the crop applied before resizing (``tlc_runtime.roi``): None (whole image), an automatic
      rule, or "given" (the caller passes each image's box).
    """

    resize: ResizeMethod
    value_range: tuple[float, float]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    channel_rule: Literal["replicate", "rgb"]
    source_bit_depth: int = 8
    rgb_to_grey: Literal["luminance-bt601"] = "luminance-bt601"
    dicom: DicomPolicy | None = None
    roi: RoiRule | None = field(default=None, metadata={"omit_default": True})

    def __post_init__(self) -> None:
        if not 1 <= self.source_bit_depth <= 16:
            raise ValueError(f"source_bit_depth {self.source_bit_depth} is not 1..16")


LOGITS = "logits"


@dataclass(frozen=True)
class OutputSpec:
    """One graph output. The first of ``Manifest.outputs`` is the N×K logits (kind "logits", softmax);
    the others are per-image scores (N,) or per-image vectors (N×M) that a manifest section gives a
    meaning to (e.g. ``ood``), kind "score", no activation."""

    name: str = LOGITS
    activation: Literal["softmax"] | None = "softmax"
    kind: Literal["logits", "score"] = field(default="logits", metadata={"omit_default": True})

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("_", "").isalnum():
            raise ValueError(f"output name {show(self.name)} must be letters, digits and underscores")
        if (self.kind == "logits") != (self.activation == "softmax"):
            raise ValueError(f"output {show(self.name)}: logits take softmax, scores no activation")


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
    """Small set of inputs (already resized, graph dtype) and the reference PyTorch outputs.

    ``atol_outputs``: the largest |difference| allowed per extra output (name → tolerance), one entry
    for every output after the logits."""

    file: FileEntry
    count: int
    atol_prob: float
    min_agreement: float = 1.0
    atol_outputs: dict[str, float] = field(default_factory=dict, metadata={"omit_default": True})

    def __post_init__(self) -> None:
        if self.count < 1 or self.atol_prob < 0 or not 0 <= self.min_agreement <= 1:
            raise ValueError(f"golden count {self.count} must be ≥ 1, atol_prob {self.atol_prob:g} ≥ 0 and "
                             f"min_agreement {self.min_agreement:g} within 0..1")
        bad = [name for name, tol in self.atol_outputs.items() if not (math.isfinite(tol) and tol >= 0)]
        if bad:
            raise ValueError(f"golden atol_outputs must be finite and ≥ 0; {show(bad)} are not")


@dataclass(frozen=True)
class TargetInfo:
    name: str
    backend: BackendName
    device: str
    precision: Precision


@dataclass(frozen=True)
class Calibration:
    """Temperature scaling fitted at build time on the validation split and folded into the graph
    (its logits are already divided by ``temperature``); ECE and NLL there, before and after."""

    temperature: float
    ece_before: float
    ece_after: float
    nll_before: float
    nll_after: float

    def __post_init__(self) -> None:
        if not self.temperature > 0:
            raise ValueError(f"temperature {self.temperature:g} must be positive")


@dataclass(frozen=True)
class ConformalRule:
    """Split conformal prediction sets (``tlc_runtime.conformal``): class k joins an image's set when
    its score is at most ``threshold``; the top class always does.

    - method: "lac" (score 1 − p_k) or "aps" (probability mass of the classes ranked up to and
      including k; not randomised).
    - coverage: 1 − α, the probability that the set holds the true label.
    - threshold: the conformal quantile of the artifact's own validation scores.
    - n_calibration: how many validation images it was computed on.
    """

    method: Literal["lac", "aps"]
    coverage: float
    threshold: float
    n_calibration: int

    def __post_init__(self) -> None:
        if not 0 < self.coverage < 1:
            raise ValueError(f"coverage {self.coverage:g} must be within 0..1 (exclusive)")
        if not 0 <= self.threshold <= 1 + 1e-9:
            raise ValueError(f"threshold {self.threshold:g} must be within 0..1 (scores are)")
        if self.n_calibration < 1:
            raise ValueError(f"n_calibration {self.n_calibration} must be at least 1")


TASK_OUTPUT_PREFIX = "task_"


@dataclass(frozen=True)
class TaskSpec:
    """One task of a multi-task model: its class names and the graph output holding its N×K logits.

    The first task of ``Manifest.tasks`` is the primary one: its output is ``logits`` and its classes
    are the manifest's ``class_names``; every other task's output is ``task_<name>``, an extra output.
    """

    name: str
    class_names: tuple[str, ...]
    output: str

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("_", "").isalnum():
            raise ValueError(f"task name {show(self.name)} must be letters, digits and underscores")
        try:
            check_class_names(self.class_names)
        except ValueError as exc:
            raise ValueError(f"task {show(self.name)}: {exc}") from None


@dataclass(frozen=True)
class OodRule:
    """The out-of-distribution gate: an image is OOD when the graph output ``output`` (higher = less
    like the training data) is above ``threshold``.

    - score: what ``output`` computes: "energy" (−logsumexp of the calibrated logits), "mahalanobis"
      (squared distance of the pooled features to the nearest class mean, shared covariance fitted on
      the training split) or "combined" (both, each divided by its validation spread, summed).
    - threshold: set on the artifact's own validation outputs so that ``acceptance`` of them pass.
    - n_fit / n_threshold: training images the Gaussian was fitted on; validation images behind the threshold.
    """

    score: Literal["energy", "mahalanobis", "combined"]
    threshold: float
    acceptance: float
    n_fit: int
    n_threshold: int
    output: str = "ood_score"

    def __post_init__(self) -> None:
        if not 0 < self.acceptance < 1:
            raise ValueError(f"acceptance {self.acceptance:g} must be within 0..1 (exclusive)")
        if not math.isfinite(self.threshold):
            raise ValueError(f"threshold {self.threshold!r} must be a finite number")
        if self.n_fit < 1 or self.n_threshold < 1:
            raise ValueError(f"n_fit {self.n_fit} and n_threshold {self.n_threshold} must be at least 1")


@dataclass(frozen=True)
class UncertaintyRule:
    """MC-dropout uncertainty computed in the graph (``tlc_runtime.uncertainty``): ``samples`` fixed-mask
    dropout passes at ``rate`` (``where``: "head" or "head+stage"), masks drawn from ``seed`` at build
    time; the graph's extra outputs ``total``, ``aleatoric`` and ``epistemic`` (nats). An image whose
    epistemic uncertainty exceeds ``epistemic_threshold`` (the 95th percentile of the artifact's own
    validation values) abstains."""

    samples: int
    rate: float
    where: Literal["head", "head+stage"]
    seed: int
    epistemic_threshold: float

    def __post_init__(self) -> None:
        if self.samples < 2:
            raise ValueError(f"samples {self.samples} must be at least 2")
        if not 0 < self.rate < 1:
            raise ValueError(f"rate {self.rate:g} must be within 0..1 (exclusive)")
        if not self.epistemic_threshold >= 0:
            raise ValueError(f"epistemic_threshold {self.epistemic_threshold:g} must be >= 0")


@dataclass(frozen=True)
class Manifest:
    schema_version: int
    model_name: str
    arch: str
    class_names: tuple[str, ...]
    input: InputSpec
    preprocessing: Preprocessing
    outputs: tuple[OutputSpec, ...]
    artifacts: tuple[Artifact, ...]
    default_artifact: str
    target: TargetInfo
    golden: GoldenSet
    provenance: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    verification: dict[str, Any] = field(default_factory=dict)
    files: dict[str, FileEntry] = field(default_factory=dict)
    calibration: Calibration | None = field(default=None, metadata={"omit_default": True})
    conformal: ConformalRule | None = field(default=None, metadata={"omit_default": True})
    ood: OodRule | None = field(default=None, metadata={"omit_default": True})
    uncertainty: UncertaintyRule | None = field(default=None, metadata={"omit_default": True})
    tasks: tuple[TaskSpec, ...] | None = field(default=None, metadata={"omit_default": True})

    def __post_init__(self) -> None:
        if self.schema_version != SCHEMA_VERSION:
            raise ValueError(f"schema_version {self.schema_version} is not supported by this runtime "
                             f"(supports {SCHEMA_VERSION}); rebuild the bundle or upgrade tlc-runtime")
        check_class_names(self.class_names)
        check_outputs(self.outputs)
        if set(self.golden.atol_outputs) != set(self.extra_outputs):
            raise ValueError(f"golden atol_outputs covers {show(sorted(self.golden.atol_outputs))}, "
                             f"the outputs after the logits are {show(list(self.extra_outputs))}")
        if self.uncertainty is not None and not {"total", "aleatoric", "epistemic"} <= set(self.extra_outputs):
            raise ValueError(f"the uncertainty section needs graph outputs total, aleatoric and epistemic; "
                             f"the outputs after the logits are {show(list(self.extra_outputs))}")
        if self.ood is not None and self.ood.output not in self.extra_outputs:
            raise ValueError(f"the ood section needs graph output {self.ood.output}; "
                             f"the outputs after the logits are {show(list(self.extra_outputs))}")
        if self.tasks is not None:
            check_tasks(self.tasks, self.class_names, self.extra_outputs)
        if not self.artifacts:
            raise ValueError("the bundle lists no artifacts")
        names = [a.name for a in self.artifacts]
        if len(set(names)) != len(names):
            raise ValueError(f"artifact names are not unique: {show(names)}")
        if self.default_artifact not in names:
            raise ValueError(f"default_artifact {show(self.default_artifact)} is not one of {show(names)}")

    @property
    def extra_outputs(self) -> tuple[str, ...]:
        """Names of the graph outputs after the logits, in graph order."""
        return tuple(o.name for o in self.outputs[1:])

    def artifact(self, name: str | None = None) -> Artifact:
        """The named artifact, or the default one."""
        wanted = name or self.default_artifact
        for art in self.artifacts:
            if art.name == wanted:
                return art
        raise BundleError(f"bundle has no artifact {show(wanted)}; it has {show([a.name for a in self.artifacts])}")

    def all_files(self) -> list[FileEntry]:
        """Every file the manifest records, artifacts first."""
        entries = [f for a in self.artifacts for f in a.files.values()]
        return entries + [self.golden.file] + list(self.files.values())

    def to_json(self) -> str:
        return json.dumps(to_dict(self), indent=2, sort_keys=False) + "\n"


def check_outputs(outputs: tuple[OutputSpec, ...]) -> None:
    """Logits first, then only scores, names unique."""
    if not outputs or outputs[0].kind != "logits":
        raise ValueError("the first output must be the logits")
    if any(o.kind != "score" for o in outputs[1:]):
        raise ValueError("only the first output may be logits; the others are scores")
    names = [o.name for o in outputs]
    if len(set(names)) != len(names):
        raise ValueError(f"output names are not unique: {show(names)}")


def check_tasks(tasks: tuple[TaskSpec, ...], class_names: tuple[str, ...], extra_outputs: tuple[str, ...]) -> None:
    """At least two tasks, names and outputs unique; the first is the logits with the manifest's classes,
    every other one reads an extra output."""
    if len(tasks) < 2:
        raise ValueError("tasks lists fewer than two tasks; a single-task bundle has no tasks section")
    first = tasks[0]
    if first.output != LOGITS or first.class_names != class_names:
        raise ValueError(f"the first task ({show(first.name)}) must read the {LOGITS!r} output with the "
                         "manifest's class_names")
    for task in tasks[1:]:
        if task.output not in extra_outputs:
            raise ValueError(f"task {show(task.name)} reads output {show(task.output)}, which is not one of the "
                             f"extra outputs {show(list(extra_outputs))}")
    for what, values in (("names", [t.name for t in tasks]), ("outputs", [t.output for t in tasks])):
        if len(set(values)) != len(values):
            raise ValueError(f"task {what} are not unique: {show(values)}")


def check_class_names(names: tuple[str, ...]) -> None:
    """At least two classes, each a distinct, non-blank name (a label must say which class won)."""
    if len(names) < 2:
        raise ValueError("class_names needs at least two classes")
    blank = [i for i, n in enumerate(names) if not n.strip()]
    if blank:
        raise ValueError(f"class_names has empty name(s) at index {', '.join(map(str, blank))}")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"class_names are not unique: {show(repeated)} repeated")


def check_relative_path(path: str) -> None:
    """Refuse absolute paths, '..' components, backslashes, NUL and control characters, and paths
    naming no file ("", ".", "./"): a bundle's paths name files inside it."""
    pure = PurePosixPath(path)
    if any(ord(c) < 32 or ord(c) == 127 for c in path):
        raise UnsafePathError(f"path {show(path)} in the manifest contains a NUL byte or control character")
    if not pure.parts:
        raise UnsafePathError(f"path {show(path)} in the manifest names no file")
    if "\\" in path or pure.is_absolute() or ".." in pure.parts or ":" in pure.parts[0]:
        raise UnsafePathError(f"path {show(path)} in the manifest leaves the bundle directory")


def parse_manifest(data: Any, where: str = MANIFEST_NAME) -> Manifest:
    """Typed, validated manifest from its JSON structure."""
    if isinstance(data, dict) and data.get("schema_version") not in (None, *READABLE_VERSIONS):
        raise SchemaError(f"{where}: schema_version {show(data.get('schema_version'))} is not supported "
                          f"(this runtime reads versions {', '.join(map(str, READABLE_VERSIONS))}); "
                          "upgrade tlc-runtime")
    return parse(Manifest, migrate(data), where)


def migrate(data: Any) -> Any:
    """A version-1 manifest as version 2: its one ``output`` becomes ``outputs``. Nothing else changed,
    and the files it hashes are untouched (the hashes cover the artifacts, not manifest.json)."""
    if not isinstance(data, dict) or data.get("schema_version") != 1:
        return data
    data = dict(data, schema_version=SCHEMA_VERSION)
    if "output" in data and "outputs" not in data:
        data["outputs"] = [data.pop("output")]
    return data


def read_manifest(bundle_dir: str | Path) -> Manifest:
    """Read and validate ``bundle_dir/manifest.json``."""
    path = Path(bundle_dir) / MANIFEST_NAME
    try:
        if not Path(bundle_dir).is_dir():
            raise BundleError(f"bundle directory not found: {bundle_dir}")
        if not path.is_file():
            raise BundleError(f"{bundle_dir} is not a tlc bundle: it has no {MANIFEST_NAME}")
        text = path.read_text(encoding="utf-8")
    except (OSError, ValueError) as exc:  # permissions, a NUL in the path, bad UTF-8...
        raise BundleError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    return parse_manifest(load_json(text, str(path)), str(path))


def load_json(text: str, where: str = MANIFEST_NAME) -> Any:
    """JSON document, refusing what Python's json would raise raw on or let through silently:
    integers of more than MAX_INT_DIGITS digits, nesting deeper than MAX_DEPTH, lone surrogates."""
    try:
        data = json.loads(text, parse_int=_bounded_int)
    except RecursionError:
        raise BundleError(f"{where}: not valid JSON (nested more than {MAX_DEPTH} deep)") from None
    except ValueError as exc:  # JSONDecodeError and _bounded_int's refusal
        raise BundleError(f"{where}: not valid JSON ({exc})") from None
    _check_tree(data, where)
    return data


def _bounded_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        raise ValueError(f"an integer of {digits} digits; at most {MAX_INT_DIGITS} are allowed")
    return int(text)


def _check_tree(data: Any, where: str) -> None:
    """Iteratively check nesting depth and that every string (and key) is valid Unicode."""
    stack = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise BundleError(f"{where}: not valid JSON (nested more than {MAX_DEPTH} deep)")
        if isinstance(node, dict):
            stack.extend((k, depth + 1) for k in node)
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
        elif isinstance(node, str):
            try:
                node.encode("utf-8")
            except UnicodeEncodeError:
                raise BundleError(f"{where}: string {show(node)} is not valid Unicode (lone surrogate)") from None
