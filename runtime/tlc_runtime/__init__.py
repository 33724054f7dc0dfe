"""tlc_runtime — load a tlc bundle and classify images with numpy plus one backend (no torch)."""

from .errors import (
    BackendUnavailableError,
    BundleError,
    EngineIncompatibleError,
    GoldenCheckError,
    InferenceError,
    InputError,
    IntegrityError,
    SchemaError,
    TlcRuntimeError,
    UnsafePathError,
)

__version__ = "0.1.0"

__all__ = [
    "BackendUnavailableError", "BundleError", "EngineIncompatibleError", "GoldenCheckError",
    "InferenceError", "InputError", "IntegrityError", "SchemaError", "TlcRuntimeError",
    "UnsafePathError", "__version__",
]
