"""What an artifact builder receives and returns.

``tlc build`` exports the run to an FP32 ONNX (preprocessing inside), then asks the builder
registered for (target backend, precision) to turn it into an Artifact inside the staging
directory. Builders write only under ``ctx.staging`` (the bundle) and ``ctx.work`` (scratch files), and
never touch the final bundle path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tlc_runtime.manifest import Artifact, InputSpec

from ..runs import RunInfo
from ..targets import Target, Tolerance
from ..verify.compare import Comparison

# evaluate(artifact) runs a candidate artifact (files already in the staging dir, hashes filled)
# through tlc_runtime on the build's evaluation set and compares it with the reference outputs.
Evaluate = Callable[[Artifact], Comparison]


@dataclass
class BuildContext:
    target: Target
    precision: str
    run: RunInfo
    input_spec: InputSpec
    fp32_onnx: Path                 # FP32 ONNX with preprocessing inside, NHWC raw-pixel input
    staging: Path                   # the bundle being written; artifact files go under it
    calibration: np.ndarray | None  # N×H×W×C inputs in the graph dtype (int8 only)
    evaluate: Evaluate
    tolerance: Tolerance            # the accuracy budget for this precision
    log: Callable[[str], None] = print
    options: dict[str, Any] = field(default_factory=dict)  # CLI overrides (e.g. calibration method)
    evaluation_inputs: np.ndarray | None = None  # the inputs ``evaluate`` uses (NNCF accuracy control)
    work: Path | None = None        # scratch space removed with the staging dir (None: the system temp dir)
    model: Any = None               # the run's PyTorch DeployModel (raw pixels → logits), eval mode (INT8 QAT)
    # the run's training images (N×H×W×C graph dtype) and labels, loaded on demand (INT8 ladder)
    train_split: Callable[[], tuple[np.ndarray, np.ndarray]] | None = None
    # the same as ``evaluate`` on the test split: the INT8 ladder confirms each rung that passes on
    # the validation split with it before stopping (None: no confirmation)
    confirm: Evaluate | None = None


@dataclass
class BuiltArtifact:
    artifact: Artifact                                       # manifest entry, hashes filled
    report: dict[str, Any] = field(default_factory=dict)     # what was done (fallback steps, ...)
    extra_files: dict[str, str] = field(default_factory=dict)  # role -> relative path (timing cache...)


Builder = Callable[[BuildContext], BuiltArtifact]
