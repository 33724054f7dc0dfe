"""Writing report.html: into the staging bundle at build time (``write_report``), or again from what a
finished bundle holds (``regenerate``, ``tlc report``)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
from tlc_runtime.integrity import file_entry, read_verified
from tlc_runtime.manifest import LOGITS, Manifest

from ..errors import ConfigError
from .evidence import Evidence, golden_arrays, measure_latency, run_batches
from .html import ReportInput, render

REPORT_FILE = "reports/report.html"
ROLE = "report_html"


def write_report(bundle_dir: Path, manifest: Manifest, build: dict[str, Any], test_set: Any,
                 test_outputs: dict[str, np.ndarray], previous: str | Path | None = None,
                 log=print) -> Manifest:
    """Write ``reports/report.html`` into the staging bundle from the build's test split (``test_set``:
    the builder's EvalSet; ``test_outputs``: the artifact's outputs on it), time the artifact through
    tlc_runtime, add the change record against ``previous`` (a bundle) when given; return the manifest
    with the page hashed in ``files``."""
    from tlc_runtime.loader import open_artifact

    evidence = Evidence(f"test split at build time ({len(test_set.labels)} images)", test_set.inputs,
                        test_set.labels, test_set.reference, test_outputs[LOGITS])
    session = open_artifact(bundle_dir, manifest.artifact(), manifest.input)
    latency = {"where": f"tlc_runtime, {session.info.backend} on {session.info.device}, at build time",
               "batches": measure_latency(session.infer, test_set.inputs)}
    diff = _previous(previous, manifest, bundle_dir, evidence, log) if previous else None
    reliability = manifest.files.get("reliability_diagram")
    page = render(ReportInput(manifest=manifest, build=build, evidence=evidence, latency=latency, diff=diff,
                              reliability_png=read_verified(bundle_dir, reliability) if reliability else None))
    (bundle_dir / REPORT_FILE).parent.mkdir(parents=True, exist_ok=True)
    (bundle_dir / REPORT_FILE).write_text(page, encoding="utf-8")
    log(f"report: {REPORT_FILE}")
    return dataclasses.replace(manifest, files={**manifest.files, ROLE: file_entry(bundle_dir, REPORT_FILE)})


def _previous(previous: str | Path, manifest: Manifest, bundle_dir: Path, evidence: Evidence, log) -> dict:
    """The change record of this build against the bundle ``previous`` on this build's test split."""
    import tlc_runtime

    from .diff import change_record, require_comparable

    old = tlc_runtime.load(previous)
    require_comparable(old.manifest, manifest)
    log(f"change record against {previous} on the {evidence.source}")
    return change_record(old.manifest, manifest, str(previous), "this bundle", evidence.labels,
                         run_batches(old.predict_logits, evidence.inputs), evidence.artifact, evidence.source)


def default_out(bundle: Path) -> Path:
    """Beside the bundle, never inside it (its report.html is hashed in the manifest)."""
    bundle = Path(bundle).resolve()
    return bundle.parent / f"{bundle.name}.report.html"


def regenerate(bundle: str | Path, out: str | Path | None = None, data: Any = None, log=print) -> Path:
    """report.html again from the bundle: its build.json, its golden set (or ``data``'s test split, with
    PyTorch from the run the bundle records) run through its artifact here, and latency measured here."""
    import tlc_runtime

    bundle = Path(bundle)
    out = Path(out) if out else default_out(bundle)
    if out.resolve().is_relative_to(bundle.resolve()):
        raise ConfigError(f"{out} is inside the bundle, whose files are hashed in its manifest; write the report "
                          "elsewhere (--out)")
    clf = tlc_runtime.load(bundle)
    m = clf.manifest
    build = json.loads(read_verified(bundle, m.files["build_report"])) if "build_report" in m.files else {}
    if data is None:
        inputs, reference, labels = golden_arrays(bundle, m)
        evidence = Evidence(f"golden set ({len(inputs)} images), rerun here", inputs, labels, reference,
                            run_batches(clf.predict_logits, inputs))
    else:
        from .data_evidence import data_evidence

        evidence = data_evidence(clf, data, log)
    latency = {"where": f"tlc_runtime, {clf.info.backend} on {clf.info.device}, at report time",
               "batches": measure_latency(clf.predict_logits, evidence.inputs)}
    reliability = m.files.get("reliability_diagram")
    page = render(ReportInput(manifest=m, build=build, evidence=evidence, latency=latency,
                              reliability_png=read_verified(bundle, reliability) if reliability else None))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out
