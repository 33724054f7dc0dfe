"""``load()``: manifest → integrity check → backend choice → Session → Classifier.

Nothing parses a model file before every file of the bundle has matched its recorded sha256, and
what the backend parses is exactly what was hashed: the artifact's files are read once into memory,
checked, and handed to the backend as bytes (models are tens of MB, so memory is no concern). A
backend never opens a bundle path, so swapping or editing the bundle after the check changes nothing.
ONNX models that keep tensors in external data files are refused (see ``onnx_external``): loaded
from memory, their external data would be read from the working directory, outside every hash;
tlc never writes external data, so no real bundle has any.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .backends.base import Backend, Session, backend_names, get_backend
from .classifier import Classifier
from .errors import BackendUnavailableError, BundleError, GoldenCheckError, TlcRuntimeError
from .golden import read_golden
from .integrity import read_artifact, verify_bundle
from .manifest import Artifact, InputSpec, Manifest, load_json, parse_manifest, read_manifest
from .signing import KeySource, verified_manifest_bytes


def load(bundle_dir: str | Path, backend: str | None = "auto", device: str | None = "auto", artifact: str | None = None,
         check: bool = False, cache_dir: str | Path | None = None,
         options: dict[str, Any] | None = None, trusted_keys: Iterable[KeySource] | None = None) -> Classifier:
    """Load a tlc bundle directory into a ready-to-predict Classifier.

    - backend: "auto" or None (default) = the artifact's own backend if installed, else another installed
      backend that runs the artifact's format; or a backend name ("onnxruntime", "openvino", "tensorrt").
    - device: "auto" or None (default) lets the backend pick its best device; or e.g. "cpu", "cuda".
    - artifact: None (default) = the manifest's default_artifact; or an artifact name.
    - check: True runs the golden self-check now and raises GoldenCheckError if it fails.
    - cache_dir: where a backend may cache compiled engines (TensorRT, OpenVINO); None = no cache.
    - options: backend settings (e.g. {"intra_op_num_threads": 2}); each backend reads the keys it
      knows. "max_batch" (else the artifact's options["max_batch"]) caps the batch of one infer call.
    - trusted_keys: Ed25519 public keys (PEM paths or bytes). When given, the bundle must carry a signature
      of its manifest by one of them (``tlc_runtime.signing``), checked before anything else is parsed;
      otherwise SignatureError. None (default) loads signed and unsigned bundles alike.
    """
    bundle = Path(bundle_dir)
    manifest = read_manifest(bundle) if trusted_keys is None else signed_manifest(bundle, trusted_keys)
    art = manifest.artifact(artifact)
    read_golden(bundle, manifest)  # its logits must have one column per class name, before a backend runs
    files = verify_bundle(bundle, manifest, keep=art)
    options = dict(options or {})
    max_batch = options.pop("max_batch", None)
    if max_batch is None:
        max_batch = art.options.get("max_batch")
    session = open_artifact(bundle, art, manifest.input, backend or "auto", device or "auto", cache_dir, options,
                            files=files)
    clf = Classifier(manifest, session, bundle, max_batch=max_batch, artifact_name=art.name)
    if check:
        report = clf.check()
        if not report.passed:
            raise GoldenCheckError(f"{bundle}: golden self-check failed: {report.summary()}")
    return clf


def signed_manifest(bundle_dir: str | Path, trusted_keys: Iterable[KeySource]) -> Manifest:
    """The manifest, parsed from the very bytes a trusted key's signature was checked on."""
    raw, _ = verified_manifest_bytes(bundle_dir, list(trusted_keys))
    where = str(Path(bundle_dir) / "manifest.json")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BundleError(f"{where}: not valid UTF-8") from None
    return parse_manifest(load_json(text, where), where)


def open_artifact(bundle_dir: str | Path, artifact: Artifact, input_spec: InputSpec, backend: str = "auto",
                  device: str = "auto", cache_dir: str | Path | None = None,
                  options: dict[str, Any] | None = None, files: dict[str, bytes] | None = None) -> Session:
    """Session for one artifact, run from hash-checked bytes.

    ``files``: role → the artifact's verified bytes (``integrity.read_artifact``, as ``load`` passes);
    None (default) reads and checks them here.
    """
    backend_cls = choose_backend(artifact, backend)
    if files is None:
        files = read_artifact(bundle_dir, artifact)
    opts = dict(options or {})
    if cache_dir is not None:
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        opts["cache_dir"] = str(cache_dir)
    try:
        return backend_cls.open(artifact, files, input_spec, device=device, options=opts)
    except TlcRuntimeError:
        raise
    except Exception as exc:  # last line of defence: a backend's raw error becomes ours
        first = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
        raise BundleError(f"{backend_cls.name} could not open artifact {artifact.name!r}: {first}") from None


def choose_backend(artifact: Artifact, requested: str = "auto") -> type[Backend]:
    """The backend class that will run ``artifact`` (see ``load`` for the "auto" rule)."""
    if requested != "auto":
        cls = get_backend(requested)
        if artifact.format not in cls.formats:
            raise BackendUnavailableError(f"backend {requested!r} cannot run artifact {artifact.name!r} "
                                          f"(format {artifact.format}); it runs {', '.join(cls.formats)}")
        if not _available(cls):
            raise BackendUnavailableError(f"backend {requested!r} is not installed; {cls.install_hint}")
        return cls
    hints = []
    for name in candidate_backends(artifact):
        try:
            cls = get_backend(name)
        except ImportError:  # that backend's module is not part of this install
            hints.append(f"pip install {name}")
            continue
        if artifact.format not in cls.formats:
            continue
        if _available(cls):
            return cls
        hints.append(cls.install_hint)
    raise BackendUnavailableError(f"no installed backend can run artifact {artifact.name!r} (format "
                                  f"{artifact.format}); {' or '.join(dict.fromkeys(hints)) or 'upgrade tlc-runtime'}")


def candidate_backends(artifact: Artifact) -> list[str]:
    """The artifact's own backend first, then every other registered backend, in registry order."""
    return [artifact.backend] + [n for n in backend_names() if n != artifact.backend]


def _available(cls: type[Backend]) -> bool:
    return cls.available()
