"""The change record between two bundles (``tlc diff A B``): what changed in their manifests, and what
the change does to predictions on the same evaluation data (A's golden set, or a dataset's test split)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
from tlc_runtime.manifest import Manifest

from ..errors import ConfigError
from .evidence import golden_arrays, run_batches
from .stats import paired_deltas

TOOLCHAIN = ("tlc", "torch", "onnx", "onnxruntime", "opset", "python")


def weights_hash(manifest: Manifest) -> str:
    """One sha256 over the default artifact's files (role, path and content hash of each)."""
    files = manifest.artifact().files
    text = "\n".join(f"{role} {f.path} {f.sha256}" for role, f in sorted(files.items()))
    return hashlib.sha256(text.encode()).hexdigest()


def changes(a: Manifest, b: Manifest) -> list[dict[str, Any]]:
    """What the two manifests record about data, weights, build and toolchain, side by side."""
    pa, pb = a.provenance, b.provenance
    items: list[tuple[str, Any, Any]] = [
        ("data hash", pa.get("data_hash"), pb.get("data_hash")),
        ("data source", pa.get("data_source"), pb.get("data_source")),
        ("run id", pa.get("run_id"), pb.get("run_id")),
        ("architecture", a.arch, b.arch),
        ("weights (artifact files sha256)", weights_hash(a), weights_hash(b)),
        ("target", a.target.name, b.target.name),
        ("backend", a.target.backend, b.target.backend),
        ("precision", a.target.precision, b.target.precision),
        ("calibration temperature", a.calibration and a.calibration.temperature,
         b.calibration and b.calibration.temperature),
        ("conformal sets", _sets(a), _sets(b)),
        *((name, pa.get(name), pb.get(name)) for name in TOOLCHAIN),
        *((f"{name} (backend)", pa.get("backend_versions", {}).get(name), pb.get("backend_versions", {}).get(name))
          for name in sorted({*pa.get("backend_versions", {}), *pb.get("backend_versions", {})})),
        ("built", pa.get("created"), pb.get("created")),
    ]
    return [{"what": what, "a": va, "b": vb, "changed": va != vb} for what, va, vb in items]


def _sets(m: Manifest) -> str | None:
    return f"{m.conformal.method} at {m.conformal.coverage:.0%}" if m.conformal else None


def require_comparable(a: Manifest, b: Manifest) -> None:
    """ConfigError unless the two bundles classify the same classes from the same input."""
    if tuple(a.class_names) != tuple(b.class_names):
        raise ConfigError(f"the bundles have different classes ({', '.join(a.class_names)} vs "
                          f"{', '.join(b.class_names)}); a change record compares models of the same classes")
    shape = [(m.input.height, m.input.width, m.input.channels, m.input.dtype) for m in (a, b)]
    if shape[0] != shape[1]:
        raise ConfigError(f"the bundles take different inputs ({'×'.join(map(str, shape[0]))} vs "
                          f"{'×'.join(map(str, shape[1]))}); a change record compares models of the same input")


def impact(labels: np.ndarray | None, logits_a: np.ndarray, logits_b: np.ndarray,
           class_names: tuple[str, ...]) -> dict[str, Any]:
    """Flips per class and (with labels) accuracy and balanced-accuracy deltas B − A with paired CIs."""
    pred_a, pred_b = logits_a.argmax(1), logits_b.argmax(1)
    changed = pred_a != pred_b
    out: dict[str, Any] = {"n": len(pred_a), "changed": int(changed.sum())}
    if labels is None:
        out["flips_per_class"] = [{"class": name, "predicted_by_a": int((pred_a == c).sum()),
                                   "changed": int((changed & (pred_a == c)).sum())}
                                  for c, name in enumerate(class_names)]
        return out
    right_a, right_b = pred_a == labels, pred_b == labels
    out["flips_per_class"] = [
        {"class": name, "images": int(mask.sum()), "changed": int((changed & mask).sum()),
         "fixed": int((~right_a & right_b & mask).sum()), "broken": int((right_a & ~right_b & mask).sum())}
        for c, name in enumerate(class_names) for mask in [labels == c]]
    out["metrics"] = paired_deltas(labels, pred_a, pred_b, len(class_names))
    return out


def diff_bundles(a: str | Path, b: str | Path, data: Any = None, log=print) -> dict[str, Any]:
    """The change record of bundle ``b`` against bundle ``a`` on A's golden set or ``data``'s test split."""
    import tlc_runtime

    clf_a, clf_b = tlc_runtime.load(a), tlc_runtime.load(b)
    require_comparable(clf_a.manifest, clf_b.manifest)
    if data is None:
        inputs, _, labels = golden_arrays(a, clf_a.manifest)
        source = f"golden set of {a} ({len(inputs)} images)"
        logits_a, logits_b = (run_batches(c.predict_logits, inputs) for c in (clf_a, clf_b))
    else:
        labels, logits_a, logits_b, source = _on_data(clf_a, clf_b, data)
    log(f"comparing predictions on the {source}")
    return change_record(clf_a.manifest, clf_b.manifest, str(a), str(b), labels, logits_a, logits_b, source)


def change_record(a: Manifest, b: Manifest, name_a: str, name_b: str, labels: np.ndarray | None,
                  logits_a: np.ndarray, logits_b: np.ndarray, source: str) -> dict[str, Any]:
    """JSON-ready: the two bundles, what changed, and the impact on the evaluation set ``source``."""
    return {"a": name_a, "b": name_b, "changes": changes(a, b), "evaluated_on": source,
            "impact": impact(labels, logits_a, logits_b, tuple(a.class_names))}


def _on_data(clf_a, clf_b, data: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """Labels and both bundles' logits on the test split of ``data`` (each bundle prepares the native images)."""
    from ..data import load_dataset
    from ..verify.runner import _bundle_outputs, _labelled

    dataset = load_dataset(data) if isinstance(data, str | Path) else data
    split = "test" if "test" in dataset.splits else "val"
    images, labels, rois = _labelled(dataset, split, tuple(clf_a.manifest.class_names))
    logits = [_bundle_outputs(clf, images, rois)["logits"] for clf in (clf_a, clf_b)]
    return labels, logits[0], logits[1], f"{split} split of {dataset.source} ({len(labels)} images)"
