"""tlc_runtime — load a tlc bundle and classify images with numpy plus one backend (no torch).

    clf = tlc_runtime.load("bundle/")
    clf.predict(image)            # → Prediction(label, index, confidence, probabilities)
    clf.check()                   # golden self-check on this device
"""

from .classifier import Classifier
from .errors import (
    BackendUnavailableError,
    BundleError,
    EngineIncompatibleError,
    GoldenCheckError,
    InferenceError,
    InputError,
    IntegrityError,
    SchemaError,
    SignatureError,
    TlcRuntimeError,
    UnsafePathError,
)
from .golden import GoldenReport
from .loader import load
from .results import Prediction

__version__ = "0.1.0"

__all__ = [
    "BackendUnavailableError", "BundleError", "Classifier", "EngineIncompatibleError", "GoldenCheckError",
    "GoldenReport", "InferenceError", "InputError", "IntegrityError", "Prediction", "SchemaError",
    "SignatureError", "TlcRuntimeError", "UnsafePathError", "__version__", "load",
]
