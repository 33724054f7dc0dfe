"""The one small interface every inference backend implements, and the lazy registry.

A backend module is imported only when chosen, so ``import tlc_runtime`` needs numpy alone.
Like Polygraphy's runners: ``Session.infer()`` validates the batch against the input spec and
calls ``infer_impl()``; backends write only the ``*_impl`` part.
"""

from __future__ import annotations

import importlib
import importlib.util
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ..errors import BackendUnavailableError, InferenceError, InputError
from ..manifest import LOGITS, Artifact, InputSpec


@dataclass(frozen=True)
class SessionInfo:
    """What actually runs: backend, device, and the precision the backend really computes in."""

    backend: str
    device: str
    precision: str
    details: dict[str, Any] = field(default_factory=dict)


class Session(ABC):
    """A loaded model on one backend. ``infer`` must be safe to call from many threads at once."""

    def __init__(self, input_spec: InputSpec, info: SessionInfo) -> None:
        self.input_spec = input_spec
        self.info = info

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """N×H×W×C batch of the graph's dtype → N×K float32 logits."""
        return self.infer_outputs(batch)[LOGITS]

    def infer_outputs(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """N×H×W×C batch of the graph's dtype → every graph output by name (``logits`` first), float32."""
        spec = self.input_spec
        expected = (spec.height, spec.width, spec.channels)
        if batch.ndim != 4 or tuple(batch.shape[1:]) != expected:
            raise InputError(f"batch shape {batch.shape} does not match N×{expected[0]}×{expected[1]}×{expected[2]}")
        if batch.shape[0] == 0:
            raise InputError("empty batch")
        if batch.dtype != np.dtype(spec.dtype):
            raise InputError(f"batch dtype {batch.dtype} does not match the model input dtype {spec.dtype}")
        try:
            out = self.infer_impl(np.ascontiguousarray(batch))
        except InputError:
            raise
        except Exception as exc:  # a backend's raw error becomes ours, with its message
            raise InferenceError(f"{self.info.backend} failed: {exc}") from exc
        if not isinstance(out, dict):
            return {LOGITS: np.asarray(out, dtype=np.float32)}
        return {name: np.asarray(value, dtype=np.float32) for name, value in out.items()}

    @abstractmethod
    def infer_impl(self, batch: np.ndarray) -> np.ndarray | dict[str, np.ndarray]:
        """Run the model on a validated, contiguous batch; return the logits, or every output by name
        (``logits`` first) when the graph has more than one."""


class Backend(ABC):
    """Opens artifacts of the formats it lists into Sessions."""

    name: ClassVar[str]
    module: ClassVar[str]  # the package whose presence makes this backend available
    formats: ClassVar[tuple[str, ...]]
    install_hint: ClassVar[str]

    @classmethod
    def available(cls) -> bool:
        """True when this backend can run here, not merely when its package is installed.

        Cheap, never raises, and may cache what it probes. This default checks that the package can
        be imported (without importing it); a backend that needs a device (TensorRT: a CUDA GPU)
        overrides it to check that too, so that "auto" falls back to a backend that can run.
        """
        try:
            return importlib.util.find_spec(cls.module) is not None
        except (ImportError, ValueError):
            return False

    @classmethod
    @abstractmethod
    def devices(cls) -> tuple[str, ...]:
        """Devices this backend can run on here, best first (e.g. ("cuda", "cpu"))."""

    @classmethod
    @abstractmethod
    def open(cls, artifact: Artifact, files: dict[str, bytes], input_spec: InputSpec,
             device: str = "auto", options: dict[str, Any] | None = None) -> Session:
        """Load the artifact into a Session on ``device``.

        ``files``: role → the file's bytes, already checked against the manifest's sha256
        (``integrity.read_artifact``). A backend parses these bytes and never opens a bundle path,
        so what runs is what was checked; an ONNX file is first passed to
        ``onnx_external.check_no_external_data``, because external data would be read from disk.
        """


def file_label(artifact: Artifact, role: str) -> str:
    """The manifest path of ``artifact``'s file ``role``, for messages (the role when not listed)."""
    entry = artifact.files.get(role)
    return entry.path if entry is not None else role


_REGISTRY: dict[str, str] = {
    "onnxruntime": "tlc_runtime.backends.onnxruntime:OnnxRuntimeBackend",
    "openvino": "tlc_runtime.backends.openvino:OpenVinoBackend",
    "tensorrt": "tlc_runtime.backends.tensorrt:TensorRtBackend",
}


def backend_names() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def get_backend(name: str) -> type[Backend]:
    """The backend class registered under ``name`` (imports its module, not its heavy package)."""
    if name not in _REGISTRY:
        raise BackendUnavailableError(f"unknown backend {name!r}; known: {', '.join(_REGISTRY)}")
    module_name, cls_name = _REGISTRY[name].split(":")
    return getattr(importlib.import_module(module_name), cls_name)


def require(module: str, install_hint: str) -> Any:
    """Import a backend's heavy package, or raise BackendUnavailableError saying what to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise BackendUnavailableError(f"{module} is not installed ({exc}); {install_hint}") from None
