"""The runtime's own exception types. Backends' raw errors never reach the caller."""

from __future__ import annotations


class TlcRuntimeError(Exception):
    """Base of every error tlc_runtime raises."""


class BundleError(TlcRuntimeError):
    """The bundle directory is missing, malformed or fails its manifest validation."""


class IntegrityError(BundleError):
    """An artifact's content does not match the sha256 recorded in the manifest."""


class SignatureError(BundleError):
    """A bundle that had to be signed by a trusted key is unsigned, signed by another key, or its
    manifest does not match its signature; or a key file is unusable."""


class UnsafePathError(BundleError):
    """A path in the manifest points outside the bundle directory."""


class SchemaError(BundleError):
    """A document (manifest, target file) does not follow its typed schema."""


class BackendUnavailableError(TlcRuntimeError):
    """No installed backend can run this bundle (the message says what to install)."""


class EngineIncompatibleError(TlcRuntimeError):
    """A prebuilt engine was made for another TensorRT version or GPU."""


class InputError(TlcRuntimeError, ValueError):
    """An input image has the wrong shape, dtype, values (NaN/Inf) or is an empty batch."""


class InferenceError(TlcRuntimeError):
    """The backend failed while running the model."""


class GoldenCheckError(TlcRuntimeError):
    """The bundle's golden set did not reproduce within tolerance on this device."""
