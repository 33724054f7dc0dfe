"""``tlc report --data``: the report's evidence on a dataset's test split, with the bundle run through
tlc_runtime (its own preprocessing) and PyTorch from the run directory the bundle records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from .evidence import Evidence


def data_evidence(clf, data: Any, log=print) -> Evidence:
    """Labels, prepared inputs, reference and bundle logits on the test (else validation) split of ``data``."""
    from ..export.onnx_export import reference_logits
    from ..models.checkpoint import load_deploy_model
    from ..verify.runner import _bundle_outputs, _labelled, _load

    m = clf.manifest
    run_dir = m.provenance.get("run_dir")
    if not run_dir or not Path(run_dir).is_dir():
        raise ConfigError(f"the run this bundle was built from ({run_dir}) is not there; the report on --data "
                          "needs its PyTorch model")
    model, run = load_deploy_model(run_dir)
    if m.uncertainty is not None:
        from ..models.mc_dropout import McDropoutModel

        model = McDropoutModel.for_run(model, run, m.uncertainty.samples, m.uncertainty.seed)
    dataset = _load(data, run)
    split = "test" if "test" in dataset.splits else "val"
    images, labels, rois = _labelled(dataset, split, tuple(m.class_names))
    log(f"running the bundle and PyTorch on {len(labels)} {split} images of {dataset.source}")
    inputs = np.stack([clf.prepare(img, roi=roi) for img, roi in zip(images, rois, strict=True)])
    artifact = _bundle_outputs(clf, images, rois)["logits"]
    reference = reference_logits(model, dataset.arrays(split, run.img_size)[0])
    if m.calibration is not None:
        reference = reference / np.float32(m.calibration.temperature)
    return Evidence(f"{split} split of {dataset.source} ({len(labels)} images)", inputs, labels, reference, artifact)
