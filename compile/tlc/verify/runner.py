"""``tlc verify``: the bundle (through tlc_runtime, its real preprocessing path) against the reference
PyTorch run on labelled data, with thresholds from the bundle's recorded budget or the flags; also the
bundle's calibration (ECE before/after its temperature) and its prediction sets' empirical coverage."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tlc_runtime.manifest import LOGITS

from ..errors import ConfigError
from ..targets import Tolerance
from .budget import Check, Verdict, judge, undecidable
from .compare import Comparison
from .ood import ood_metrics
from .parts import Parts, compare_outputs, member_results, parts_undecidable, task_label_columns, task_results
from .trust import trust_metrics
from .uncertainty import uncertainty_metrics


@dataclass
class VerifyResult:
    bundle: str
    data: str
    split: str
    comparison: Comparison
    verdict: Verdict
    runner: dict[str, Any]
    class_names: tuple[str, ...]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def checks(self) -> tuple[Check, ...]:
        return self.verdict.checks

    @property
    def passed(self) -> bool:
        return self.verdict.passed

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "bundle": self.bundle, "data": self.data, "split": self.split,
                "runner": self.runner, "class_names": list(self.class_names),
                "checks": [c.__dict__ for c in self.checks], "confidence": self.verdict.confidence,
                "resolution": self.verdict.resolution, "comparison": self.comparison.to_dict(), **self.extra}


def verify(bundle: str | Path, data: str | Path | Any, *, reference: str | Path | None = None,
           split: str = "test", max_drop: float | None = None, min_agreement: float | None = None,
           max_prob_delta: float | None = None, confidence: float | None = None, backend: str = "auto",
           device: str = "auto", bootstrap: int = 1000, log=print) -> VerifyResult:
    """Run bundle and reference on ``split`` of ``data``; compare; apply the budget."""
    import tlc_runtime
    from tlc_runtime.manifest import LOGITS

    from ..export.onnx_export import reference_outputs
    from ..models.checkpoint import load_deploy_model

    clf = tlc_runtime.load(bundle, backend=backend, device=device)
    manifest = clf.manifest
    run_dir = reference or manifest.provenance.get("run_dir")
    if not run_dir or not Path(run_dir).is_dir():
        raise ConfigError(f"reference run directory {run_dir!r} not found; pass --reference RUN_DIR")
    model, run = load_deploy_model(run_dir)
    if run.run_id != manifest.provenance.get("run_id"):
        raise ConfigError(f"reference run {run.run_id} is not the run this bundle was built from "
                          f"({manifest.provenance.get('run_id')}); pass the right --reference")
    if manifest.uncertainty is not None:  # the bundle's graph is the MC-dropout wrapper: so is its reference
        from ..models.mc_dropout import McDropoutModel

        model = McDropoutModel.for_run(model, run, manifest.uncertainty.samples, manifest.uncertainty.seed)
    dataset = _load(data, run)
    images, labels, rois = _labelled(dataset, split, tuple(manifest.class_names))
    tolerance = _tolerance(dict(manifest.verification.get("budget", {})), max_drop, min_agreement,
                           max_prob_delta, confidence)
    parts = Parts.of_run(run)
    task_labels = task_label_columns(dataset, _splits(dataset, split), parts)
    why = undecidable(labels, len(manifest.class_names), tolerance, manifest.class_names) or \
        parts_undecidable(parts, task_labels, len(labels), tolerance)
    if why:
        raise ConfigError(f"{split} split: {why}")
    log(f"running the bundle ({clf.info.backend}, {clf.info.device}, {clf.info.precision}) "
        f"and PyTorch on {len(labels)} images")
    bundle_outputs = _bundle_outputs(clf, images, rois)
    ref_inputs = np.concatenate([dataset.arrays(s, run.img_size)[0] for s in _splits(dataset, split)])
    ref_outputs = reference_outputs(model, ref_inputs)
    ref_logits = ref_outputs[LOGITS]
    if manifest.calibration is not None:  # the bundle's graph divides by T: so does its reference
        ref_logits = ref_logits / np.float32(manifest.calibration.temperature)
    comparison = compare_outputs({**ref_outputs, LOGITS: ref_logits}, bundle_outputs, labels,
                                 len(manifest.class_names), parts, task_labels, bootstrap)
    verdict = judge(comparison, tolerance, manifest.class_names)
    artifact = manifest.artifact()
    runner = {"backend": clf.info.backend, "device": clf.info.device, "precision": clf.info.precision,
              "artifact": artifact.name, "artifact_backend": artifact.backend,
              "proxy": clf.info.backend != artifact.backend}
    return VerifyResult(bundle=str(bundle), data=str(dataset.source), split=split, comparison=comparison,
                        verdict=verdict, runner=runner, class_names=tuple(manifest.class_names),
                        extra=_extra(bundle_outputs, labels, manifest, comparison, tolerance, parts))


def _extra(outputs: dict[str, np.ndarray], labels: np.ndarray, manifest, comparison: Comparison,
           tolerance: Tolerance, parts: Parts) -> dict[str, Any]:
    """Calibration and prediction sets of the bundle's logits; its MC-dropout uncertainty, its OOD
    gate's acceptance (these images are in-distribution), a multi-task bundle's per-task results and
    an ensemble's per-member results when it has them."""
    extra = trust_metrics(outputs[LOGITS], labels, manifest.calibration, manifest.conformal)
    if manifest.uncertainty is not None:
        extra["uncertainty"] = uncertainty_metrics(outputs, manifest.uncertainty, labels)
    if manifest.ood is not None:
        extra["ood"] = ood_metrics(outputs, manifest.ood)
    per_task = task_results(comparison, manifest.tasks, tolerance)
    if per_task:
        extra["tasks"] = per_task
    members = member_results(comparison, parts, tolerance)
    if members:
        extra["members"] = members
    return extra


def _load(data: Any, run):
    from ..data import Dataset, load_dataset
    from ..data.roi import check_same_roi

    if not isinstance(data, Dataset):
        data = load_dataset(data, seed=run.seed, **run.data_options())
    check_same_roi(data, run.preprocessing.roi, run.run_id)
    return data


def _splits(dataset, split: str) -> list[str]:
    if split == "all":
        return [s for s in ("train", "val", "test") if s in dataset.splits]
    if split not in dataset.splits:
        raise ConfigError(f"split {split!r} not in the data; choose one of {sorted(dataset.splits)} or 'all'")
    return [split]


def _labelled(dataset, split: str, class_names: tuple[str, ...]) -> tuple[list[np.ndarray], np.ndarray, list]:
    """Native images, labels in the bundle's class order, and each image's ROI box (or None)."""
    if set(dataset.class_names) != set(class_names):
        raise ConfigError(f"data classes {list(dataset.class_names)} do not match the bundle's {list(class_names)}")
    remap = np.array([class_names.index(c) for c in dataset.class_names])
    images, labels, rois = [], [], []
    for s in _splits(dataset, split):
        images.extend(dataset.splits[s].images)
        rois.extend(dataset.splits[s].rois or [None] * len(dataset.splits[s]))
        labels.append(remap[dataset.splits[s].labels])
    labels = np.concatenate(labels) if labels else np.zeros(0, np.int64)
    if len(labels) == 0:
        raise ConfigError(f"no labelled images in split {split!r} of {dataset.source}")
    return images, labels, rois


def _bundle_outputs(clf, images: list[np.ndarray], rois: list, batch: int = 64) -> dict[str, np.ndarray]:
    """Every output of the bundle by name (``logits`` first) on the images, through its own preprocessing."""
    parts: list[dict[str, np.ndarray]] = []
    for start in range(0, len(images), batch):
        prepared = np.stack([clf.prepare(img, roi=roi) for img, roi in zip(images[start:start + batch],
                                                                          rois[start:start + batch], strict=True)])
        parts.append(clf.predict_outputs(prepared))
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def _tolerance(budget: dict[str, Any], max_drop, min_agreement, max_prob_delta, confidence) -> Tolerance:
    """The bundle's recorded budget, overridden by the flags.

    A bundle recorded before budgets had a confidence was built to the observed values: confidence 0.
    """
    given = {"min_agreement": budget.get("min_agreement") if min_agreement is None else min_agreement,
             "max_balanced_accuracy_drop": budget.get("max_balanced_accuracy_drop") if max_drop is None else max_drop,
             "max_abs_prob_delta": budget.get("max_abs_prob_delta") if max_prob_delta is None else max_prob_delta,
             "confidence": budget.get("confidence", 0.0) if confidence is None else confidence}
    if given["min_agreement"] is None and given["max_balanced_accuracy_drop"] is None \
            and given["max_abs_prob_delta"] is None:
        raise ConfigError("no thresholds: the bundle records no budget; pass --max-drop / --min-agreement")
    # a limit neither recorded nor given is not checked: the loosest value of each
    given["min_agreement"] = 0.0 if given["min_agreement"] is None else given["min_agreement"]
    if given["max_balanced_accuracy_drop"] is None:
        given["max_balanced_accuracy_drop"] = 1.0
    try:
        return Tolerance(**given)
    except ValueError as exc:
        raise ConfigError(f"budget: {exc}") from None
