"""The golden self-check: does this device reproduce the reference logits recorded at build time?

The golden file (manifest.golden.file) is an .npz with ``inputs`` (N×H×W×C, graph dtype, already
resized), ``logits`` (N×K float32 reference logits), optionally ``labels``, and ``out_<name>`` for
every output after the logits (the reference values, compared within ``golden.atol_outputs[name]``).
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import BundleError
from .integrity import read_verified
from .manifest import LOGITS, Manifest
from .results import softmax

OUTPUT_PREFIX = "out_"

if TYPE_CHECKING:
    from .classifier import Classifier


@dataclass(frozen=True)
class GoldenReport:
    """Golden inputs run on this backend/device, compared with the reference probabilities."""

    n: int
    agreement: float
    max_abs_prob_delta: float
    mean_abs_prob_delta: float
    passed: bool
    backend: str
    device: str
    precision: str
    atol_prob: float
    min_agreement: float
    max_abs_output_delta: dict[str, float] = field(default_factory=dict)
    atol_outputs: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        """One ASCII line (it may be printed on devices whose console is not UTF-8)."""
        verdict = "PASS" if self.passed else "FAIL"
        extras = "".join(f", max |d{name}| {delta:.2e} (need <= {self.atol_outputs[name]:.2e})"
                         for name, delta in self.max_abs_output_delta.items())
        return (f"{verdict}: {self.n} golden images on {self.backend}/{self.device} ({self.precision}): "
                f"top-1 agreement {self.agreement:.4f} (need >= {self.min_agreement:g}), "
                f"max |dprob| {self.max_abs_prob_delta:.2e} (need <= {self.atol_prob:g}), "
                f"mean |dprob| {self.mean_abs_prob_delta:.2e}{extras}")


def read_golden(bundle_dir: str | Path, manifest: Manifest) -> tuple[np.ndarray, np.ndarray]:
    """Hash-checked golden ``inputs`` and ``logits``, validated against the manifest."""
    inputs, outputs = read_golden_outputs(bundle_dir, manifest)
    return inputs, outputs[LOGITS]


def read_golden_outputs(bundle_dir: str | Path, manifest: Manifest) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Hash-checked golden ``inputs`` and the reference of every output the manifest lists, by name."""
    entry = manifest.golden.file
    raw = read_verified(bundle_dir, entry)  # the checked bytes are the ones parsed
    wanted = ("inputs", "logits", *(OUTPUT_PREFIX + name for name in manifest.extra_outputs))
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as data:
            arrays = {k: data[k] for k in wanted if k in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise BundleError(f"golden file {entry.path} is not a readable .npz: {exc}") from None
    missing = [k for k in wanted if k not in arrays]
    if missing:
        raise BundleError(f"golden file {entry.path} lacks {', '.join(missing)}; rebuild the bundle")
    inputs, logits = arrays["inputs"], arrays["logits"]
    spec, k = manifest.input, len(manifest.class_names)
    if inputs.shape[1:] != (spec.height, spec.width, spec.channels) or inputs.dtype != np.dtype(spec.dtype):
        raise BundleError(f"golden inputs are {inputs.dtype} {inputs.shape}, the model takes "
                          f"{spec.dtype} N×{spec.height}×{spec.width}×{spec.channels}; rebuild the bundle")
    if len(inputs) != manifest.golden.count:
        raise BundleError(f"golden file {entry.path} holds {len(inputs)} inputs, the manifest says "
                          f"{manifest.golden.count}; rebuild the bundle")
    if logits.shape != (len(inputs), k) or len(inputs) == 0:
        raise BundleError(f"golden logits shape {logits.shape} does not match {len(inputs)} inputs × {k} "
                          "classes; rebuild the bundle")
    outputs = {LOGITS: logits.astype(np.float32)}
    for name in manifest.extra_outputs:
        values = arrays[OUTPUT_PREFIX + name]
        if values.shape[:1] != (len(inputs),):
            raise BundleError(f"golden output {name!r} has shape {values.shape} for {len(inputs)} inputs; "
                              "rebuild the bundle")
        outputs[name] = values.astype(np.float32)
    return inputs, outputs


def check(clf: Classifier) -> GoldenReport:
    """Run the golden inputs through ``clf``'s session and compare softmax probabilities."""
    manifest = clf.manifest
    inputs, references = read_golden_outputs(clf.bundle_dir, manifest)
    outputs = clf.predict_outputs(inputs)
    p_ref, p_cand = softmax(references[LOGITS]), softmax(outputs[LOGITS])
    extra = {name: float(np.abs(outputs[name] - references[name]).max()) for name in manifest.extra_outputs}
    delta = np.abs(p_ref - p_cand)
    agreement = float((p_ref.argmax(1) == p_cand.argmax(1)).mean())
    max_delta = float(delta.max())
    golden = manifest.golden
    info = clf.info
    return GoldenReport(
        n=len(inputs), agreement=agreement, max_abs_prob_delta=max_delta,
        mean_abs_prob_delta=float(delta.mean()),
        passed=(agreement >= golden.min_agreement and max_delta <= golden.atol_prob
                and all(delta <= golden.atol_outputs[name] for name, delta in extra.items())),
        backend=info.backend, device=info.device, precision=info.precision,
        atol_prob=golden.atol_prob, min_agreement=golden.min_agreement,
        max_abs_output_delta=extra, atol_outputs=dict(golden.atol_outputs),
    )
