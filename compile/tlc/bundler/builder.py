"""``tlc build``: run directory + target → verified bundle, written atomically."""

from __future__ import annotations

import functools
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from tlc_runtime.integrity import file_entry
from tlc_runtime.manifest import LOGITS, SCHEMA_VERSION, GoldenSet, Manifest, TargetInfo

from .. import __version__
from ..errors import BudgetError, ConfigError
from ..export.onnx_export import export_onnx, input_spec_for, onnx_metadata, output_specs, reference_outputs
from ..report.write import write_report
from ..runs import RunInfo
from ..targets import Target, Tolerance, load_target
from ..verify.budget import judge, undecidable
from ..verify.compare import Comparison, compare_logits
from ..verify.parts import (
    Parts,
    member_results,
    parts_lines,
    parts_undecidable,
    task_label_columns,
    task_results,
)
from .bundle_writer import BundleStaging
from .context import BuildContext, BuiltArtifact
from .evaluate import EvalSet, backend_for, make_evaluator, open_artifact, run_session_outputs
from .golden import GOLDEN_FILE, output_tolerance, pick_golden, write_golden
from .ood import gate
from .ood import rule_and_report as ood_rule_and_report
from .registry import get_builder
from .reports import write_json
from .trust import RELIABILITY_FILE, TrustOptions, calibrate, conformal_and_report
from .uncertainty import mc_samples, rule_and_report, wrap

GOLDEN_COUNT = 32
MAX_EVAL = 1000


@dataclass(frozen=True)
class BuildResult:
    bundle: Path
    manifest: Manifest
    verification: Comparison
    report: dict[str, Any]


def build_bundle(run_dir: str | Path, target: str | Target, out: str | Path, *,
                 precision: str | None = None, data: Any = None, calib: Any = None,
                 tolerance: Tolerance | None = None, overwrite: bool = False,
                 options: dict[str, Any] | None = None, trust: TrustOptions | None = None,
                 log: Callable[[str], None] = print, sign_key: Any = None,
                 previous: str | Path | None = None) -> BuildResult:
    """Export the run, build the target's artifact at ``precision``, verify it, write the bundle.

    data: the run's dataset (path or Dataset); None means the source recorded in run.json.
    calib: calibration data (path or Dataset) for INT8; None means the run's training split.
    trust: temperature scaling and conformal prediction sets; None means ``TrustOptions()``
    (calibrated, LAC sets at 90% coverage).
    ``out`` is checked and locked first (one build per output), before any inference.
    sign_key: an Ed25519 private key (``tlc_runtime.signing.load_private_key``): the staged bundle is
    signed and its signature checked before it is moved into place.
    previous: an earlier bundle; reports/report.html then holds the change record against it.
    """
    started = time.perf_counter()
    target = load_target(target) if isinstance(target, str) else target
    precision = precision or target.precision
    if precision not in target.precisions:
        raise ConfigError(f"target {target.name} does not support precision {precision!r}; "
                          f"it supports {', '.join(target.precisions)}")
    tolerance = tolerance or target.tolerance(precision)
    with BundleStaging(out, overwrite=overwrite) as staging:
        manifest, verification, report = _build(staging, run_dir, target, precision, tolerance, data, calib,
                                                 options or {}, trust or TrustOptions(), log, started, previous)
        bundle = staging.commit(manifest, sign_key=sign_key)
    log(f"bundle written: {bundle}")
    return BuildResult(bundle=bundle, manifest=manifest, verification=verification, report=report)


def _build(staging: BundleStaging, run_dir: str | Path, target: Target, precision: str, tolerance: Tolerance,
           data: Any, calib: Any, options: dict[str, Any], trust: TrustOptions,
           log: Callable[[str], None], started: float,
           previous: str | Path | None = None) -> tuple[Manifest, Comparison, dict[str, Any]]:
    """Everything between the locked staging directory and the commit: the manifest, what
    verification measured, and the build report (written into the staging bundle)."""
    from ..models.checkpoint import load_deploy_model  # torch: imported only when building

    model, run = load_deploy_model(run_dir)
    samples = mc_samples(run, trust.mc_samples, target.backend, log)  # refuses --mc-samples without --mc-dropout
    model = wrap(model, run, samples)
    dataset = _dataset(run, data)
    spec = input_spec_for(run.img_size, run.img_size, run.input_channels, run.input_dtype)
    eval_set = _eval_set(model, dataset, "val", run, MAX_EVAL, log)
    test_set = _eval_set(model, dataset, "test", run, MAX_EVAL, log)
    _require_decidable(tolerance, run.class_names, eval_set, test_set)  # every task's labels too
    sets_possible = trust.sets_possible(len(eval_set.labels), log)
    model, eval_set, test_set, fitted = calibrate(model, eval_set, test_set, trust, log)
    train_split = functools.cache(lambda: dataset.arrays("train", run.img_size))
    model, eval_set, test_set, ood_fit = gate(model, eval_set, test_set, train_split, target.backend, trust.ood, log)
    calibration = _calibration(dataset, calib, run, target, precision, options, spec)
    what = f"an ensemble of {len(run.members)} members" if run.is_ensemble else run.arch
    log(f"exporting {what} to ONNX (opset 17, preprocessing in the graph)")
    fp32_onnx = staging.work / "model.fp32.onnx"
    export = export_onnx(model, spec, fp32_onnx, eval_set.inputs[:64],
                         metadata=onnx_metadata(run.class_names, spec, run.preprocessing,
                                                fitted.temperature if fitted else None))
    _require_outputs_supported(target, fp32_onnx)
    ctx = BuildContext(target=target, precision=precision, run=run, input_spec=spec, fp32_onnx=fp32_onnx,
                       staging=staging.path, calibration=calibration,
                       evaluate=make_evaluator(staging.path, spec, eval_set), tolerance=tolerance, log=log,
                       confirm=make_evaluator(staging.path, spec, test_set),
                       options=options, evaluation_inputs=eval_set.inputs, work=staging.work, model=model,
                       train_split=train_split)
    log(f"building {target.backend} {precision} artifact for target {target.name}")
    built = get_builder(target.backend, precision)(ctx)
    log("verifying the artifact against PyTorch on the test split")
    verification, runner, test_outputs, val_outputs = _verify(staging.path, built, spec, test_set, eval_set)
    test_logits, val_logits = test_outputs[LOGITS], val_outputs[LOGITS]
    for line in parts_lines(verification):
        log(f"test split {line}")
    verdict = _enforce(verification, tolerance, target.name, precision, run.class_names, log)
    per_task = task_results(verification, run.tasks, tolerance)
    golden = _golden(staging.path, test_set, test_outputs, run.seed, tolerance)
    rule, trusted = conformal_and_report(staging.path, val_logits, eval_set.labels, test_logits, test_set.labels,
                                         fitted, trust, log, sets_possible)
    members = member_results(verification, test_set.parts, tolerance)
    uncertainty, uncertain = rule_and_report(run, samples, val_outputs, test_outputs, test_set.labels, log)
    ood, gated = ood_rule_and_report(ood_fit, trust.ood, val_outputs, test_outputs, log,
                                     eval_set.extras.get("ood_score"))
    report = {"export": export.to_dict(), "artifact": built.report, "runner": runner,
              **({"members": members} if members else {}),
              "verification": verification.to_dict(), **({"tasks": per_task} if per_task else {}),
              "budget": tolerance.__dict__,
              "verdict": verdict.to_dict(), **trusted, **uncertain, **gated,
              "seconds": round(time.perf_counter() - started, 2)}
    manifest = Manifest(
        schema_version=SCHEMA_VERSION, model_name=Path(run_dir).resolve().name, arch=run.arch,
        class_names=run.class_names, input=spec, preprocessing=run.preprocessing, outputs=output_specs(fp32_onnx),
        artifacts=(built.artifact,), default_artifact=built.artifact.name,
        target=TargetInfo(name=target.name, backend=target.backend, device=target.device,
                          precision=precision),
        golden=golden, provenance=_provenance(run, run_dir, export.opset, built),
        metrics={"test_reference": _metrics(verification, "reference"),
                 "test_bundle": _metrics(verification, "candidate")},
        verification={"split": "test", "runner": runner, "budget": tolerance.__dict__,
                      "agreement": verification.agreement,
                      "max_abs_prob_delta": verification.max_abs_prob_delta,
                      "balanced_accuracy_drop": verification.balanced_accuracy_drop,
                      "resolution": verdict.resolution, "passed": True,
                      **({"tasks": per_task} if per_task else {}),
                      **({"members": members} if members else {})},
        files={"build_report": _report_file(staging.path, "reports/build.json", report),
               "reliability_diagram": file_entry(staging.path, RELIABILITY_FILE)},
        calibration=fitted, conformal=rule, uncertainty=uncertainty, ood=ood, tasks=run.tasks)
    manifest = write_report(staging.path, manifest, report, test_set, test_outputs, previous, log)
    return manifest, verification, report


def _dataset(run: RunInfo, data: Any):
    from ..data import Dataset, load_dataset
    from ..data.roi import check_same_roi

    if isinstance(data, Dataset):
        check_same_roi(data, run.preprocessing.roi, run.run_id)
        return data
    source = data or run.data.source
    if run.data.kind == "digits" and data is None:
        raise ConfigError("this run was trained on data made in memory (scikit-learn's digits, e.g. by tlc demo), "
                          "which run.json cannot point to; give the data with --data")
    if data is None and not Path(source).exists():
        raise ConfigError(f"the run's data {source} (the path recorded in its run.json at training) is not there "
                          "any more; give the data with --data")
    dataset = load_dataset(source, seed=run.seed, **run.data_options())
    if tuple(dataset.class_names) != tuple(run.class_names):
        raise ConfigError(f"data {source} has classes {list(dataset.class_names)} but the run was trained "
                          f"on {list(run.class_names)}")
    check_same_roi(dataset, run.preprocessing.roi, run.run_id)
    return dataset


def _eval_set(model, dataset, split: str, run: RunInfo, limit: int, log) -> EvalSet:
    if split not in dataset.splits or len(dataset.splits[split]) == 0:
        split = "val" if split == "test" else "test"
    inputs, labels = dataset.arrays(split, run.img_size)
    if len(inputs) == 0:
        raise ConfigError("the dataset has no validation or test images to verify the build with")
    keep = None
    if len(inputs) > limit:
        keep = pick_golden(labels, limit, run.seed)
        inputs, labels = inputs[keep], labels[keep]
    log(f"reference PyTorch outputs on {len(inputs)} {split} images")
    outputs = reference_outputs(model, inputs)
    logits = outputs.pop(LOGITS)
    parts = Parts.of_run(run)
    task_labels = {name: column if keep is None else column[keep]
                   for name, column in task_label_columns(dataset, [split], parts).items()}
    return EvalSet(inputs=inputs, labels=labels, reference=logits, num_classes=len(run.class_names), extras=outputs,
                   parts=parts, task_labels=task_labels)


def _calibration(dataset, calib: Any, run: RunInfo, target: Target, precision: str,
                 options: dict[str, Any], spec) -> np.ndarray | None:
    """INT8 calibration inputs: the run's training split, a labelled dataset's training split, or every
    image of a flat unlabelled folder (calibration needs no labels)."""
    if precision != "int8":
        return None
    from ..data import Dataset, load_dataset
    from ..data.unlabelled import is_flat_image_folder, read_unlabelled
    from ..quantize.calibration import select_calibration

    if calib is not None and not isinstance(calib, Dataset) and is_flat_image_folder(calib):
        images = read_unlabelled(calib, spec, run.preprocessing)
        labels = np.zeros(len(images), np.int64)
    else:
        source = dataset if calib is None else (calib if isinstance(calib, Dataset) else
                                                load_dataset(calib, seed=run.seed, **run.data_options(splits=False)))
        images, labels = source.arrays("train", run.img_size)
    n = int(options.get("calibration_samples") or target.calibration.samples)
    return select_calibration(images, labels, n=n, seed=run.seed, min_samples=target.calibration.min_samples)


def _verify(bundle_dir: Path, built: BuiltArtifact, spec, test_set: EvalSet,
            val_set: EvalSet) -> tuple[Comparison, dict, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The artifact against the reference on the test split; its test and validation outputs (by name)."""
    name, proxy = backend_for(built.artifact)
    session = open_artifact(bundle_dir, built.artifact, spec)
    test = run_session_outputs(session, test_set.inputs)
    runner = {"backend": name, "proxy_for": built.artifact.backend if proxy else None,
              "device": session.info.device, "precision": session.info.precision}
    return test_set.compare(test), runner, test, run_session_outputs(session, val_set.inputs)


def _require_outputs_supported(target: Target, onnx_path: Path) -> None:
    """TensorRT sessions bind one output: refuse a graph with more before building an engine for it."""
    extra = [o.name for o in output_specs(onnx_path)[1:]]
    if extra and target.backend == "tensorrt":
        raise ConfigError(f"target {target.name} (TensorRT) runs single-output graphs; this model also outputs "
                          f"{', '.join(extra)}. Build without them for this target")


def _require_decidable(tol: Tolerance, class_names, *sets: EvalSet) -> None:
    """Refuse, before building anything, a budget the evaluation data (or a task's labels) are too few
    to decide."""
    for which, eval_set in zip(("validation", "test"), sets, strict=True):
        why = undecidable(eval_set.labels, eval_set.num_classes, tol, class_names) or \
            parts_undecidable(eval_set.parts, eval_set.task_labels, len(eval_set.labels), tol)
        if why:
            raise ConfigError(f"{which} split: {why}")


def _enforce(c: Comparison, tol: Tolerance, target: str, precision: str, class_names, log):
    """The verdict on the test split; BudgetError when it fails."""
    verdict = judge(c, tol, class_names)
    if not verdict.passed:
        raise BudgetError(f"{target} {precision} artifact breaks its accuracy budget on the test split: "
                          + "; ".join(verdict.problems()) + f" ({verdict.resolution}; no bundle written)")
    log(f"test split {verdict.summary()}")
    return verdict


def _golden(bundle_dir: Path, test_set: EvalSet, test_outputs: dict[str, np.ndarray], seed: int,
            tol: Tolerance) -> GoldenSet:
    """A stratified subset of the test set; its tolerance is what this build measured on it, with headroom."""
    idx = pick_golden(test_set.labels, GOLDEN_COUNT, seed)
    inputs, reference, labels = test_set.inputs[idx], test_set.reference[idx], test_set.labels[idx]
    extras = {name: values[idx] for name, values in test_set.extras.items()}
    write_golden(bundle_dir / GOLDEN_FILE, inputs, reference, labels, extras)
    here = compare_logits(reference, test_outputs[LOGITS][idx])
    atol = tol.max_abs_prob_delta if tol.max_abs_prob_delta is not None else 0.05
    # the golden check on a device must reproduce what this build measured, with headroom
    atol = max(atol, 2 * here.max_abs_prob_delta)
    return GoldenSet(file=file_entry(bundle_dir, GOLDEN_FILE), count=len(idx), atol_prob=float(atol),
                     min_agreement=min(tol.min_agreement, here.agreement),
                     atol_outputs={name: output_tolerance(ref, test_outputs[name][idx])
                                   for name, ref in extras.items()})


def _report_file(bundle_dir: Path, relative: str, data: dict) -> Any:
    write_json(bundle_dir / relative, data)
    return file_entry(bundle_dir, relative)


def _metrics(c: Comparison, which: str) -> dict[str, Any]:
    return {"accuracy": getattr(c, f"accuracy_{which}"),
            "balanced_accuracy": getattr(c, f"balanced_accuracy_{which}"),
            "recall": list(getattr(c, f"recall_{which}") or ())}


def _provenance(run: RunInfo, run_dir, opset: int, built: BuiltArtifact) -> dict[str, Any]:
    import onnx
    import onnxruntime
    import torch

    return {"tlc": __version__, "torch": torch.__version__, "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__, "opset": opset, "run_id": run.run_id,
            "run_dir": str(Path(run_dir).resolve()), "data_hash": run.data.content_hash,
            "data_source": run.data.source, "python": platform.python_version(),
            "machine": platform.machine(), "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "backend_versions": built.report.get("backend_versions", {}),
            **({"ensemble_members": [{"run_id": m.run_id, "arch": m.arch} for m in run.members]}
               if run.is_ensemble else {})}
