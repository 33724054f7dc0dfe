"""Run a candidate artifact from the staging directory through tlc_runtime and compare it with the
reference outputs. When the artifact's backend is absent here but its format is ONNX (a TensorRT-ready
ONNX on a machine without TensorRT), ONNX Runtime runs it as a proxy and the result says so."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tlc_runtime.backends import Session
from tlc_runtime.errors import BackendUnavailableError
from tlc_runtime.loader import choose_backend
from tlc_runtime.loader import open_artifact as runtime_open_artifact
from tlc_runtime.manifest import LOGITS, Artifact, InputSpec

from ..errors import BuildError
from ..verify.compare import Comparison
from ..verify.parts import Parts, compare_outputs


@dataclass(frozen=True)
class EvalSet:
    inputs: np.ndarray       # N×H×W×C graph dtype
    labels: np.ndarray       # N
    reference: np.ndarray    # N×K PyTorch logits
    num_classes: int
    extras: dict[str, np.ndarray] = field(default_factory=dict)  # PyTorch's other outputs by name
    parts: Parts = Parts()   # the tasks and members judged beside the logits
    task_labels: dict[str, np.ndarray] = field(default_factory=dict)  # extra task → N labels, -1 missing

    def compare(self, outputs: dict[str, np.ndarray], bootstrap: int = 1000) -> Comparison:
        """A candidate's outputs (by name) against the reference: the logits and every part."""
        return compare_outputs({LOGITS: self.reference, **self.extras}, outputs, self.labels, self.num_classes,
                               self.parts, self.task_labels, bootstrap)


def backend_for(artifact: Artifact) -> tuple[str, bool]:
    """(backend that runs the artifact here, whether it stands in as a proxy for the artifact's own)."""
    try:
        name = choose_backend(artifact).name
    except BackendUnavailableError as exc:
        raise BuildError(f"cannot evaluate artifact {artifact.name!r}: {exc}") from None
    return name, name != artifact.backend


def open_artifact(bundle_dir: Path, artifact: Artifact, spec: InputSpec) -> Session:
    """Open the artifact the way tlc_runtime.load would: from its hash-checked bytes."""
    return runtime_open_artifact(bundle_dir, artifact, spec)


def run_session(session: Session, inputs: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """The session's logits for ``inputs``, in batches."""
    return np.concatenate([session.infer(inputs[i:i + batch_size]) for i in range(0, len(inputs), batch_size)])


def run_session_outputs(session: Session, inputs: np.ndarray, batch_size: int = 64) -> dict[str, np.ndarray]:
    """Every graph output of the session for ``inputs`` by name (logits first), in batches."""
    parts = [session.infer_outputs(inputs[i:i + batch_size]) for i in range(0, len(inputs), batch_size)]
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def make_evaluator(bundle_dir: Path, spec: InputSpec, eval_set: EvalSet):
    """evaluate(artifact) → Comparison on ``eval_set``, its tasks and members included (used by builders
    for fallback decisions: a candidate is over budget when any part is)."""

    def evaluate(artifact: Artifact) -> Comparison:
        session = open_artifact(bundle_dir, artifact, spec)
        if not eval_set.parts.tasks and not eval_set.parts.members:
            return eval_set.compare({LOGITS: run_session(session, eval_set.inputs)})
        return eval_set.compare(run_session_outputs(session, eval_set.inputs))

    return evaluate
