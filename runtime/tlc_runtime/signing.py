"""Signed bundles: an Ed25519 signature over ``manifest.json``, which hashes every other byte.

``signature.json`` beside the manifest holds ``{"format": "tlc-signature", "version": 1,
"algorithm": "ed25519", "key_id", "signature"}``: the signature (base64) of the manifest's exact
bytes, and the key id (the first 16 hex digits of the sha256 of the raw public key) that names the
key without trusting it. Since the manifest records the sha256 and size of every artifact, golden
and report file, one signature covers the whole bundle; ``tlc_runtime.load(bundle, trusted_keys=...)``
checks it before parsing anything, and the bytes it checked are the bytes it parses.

Why this and not sigstore's ``model-signing``: its key-based mode also works offline, but it signs a
digest of every file it walks (ours are already in the manifest), brings in-toto and sigstore
dependencies, and its bundle format is still moving; ``cryptography``'s Ed25519 is one well-kept
wheel, and nothing here is our own cryptography. ``cryptography`` is optional for the runtime
(``tlc-runtime[signing]``): only signed loading imports it.

Keys are PEM files: a PKCS#8 private key (``NAME.key``, written readable by its owner only) and
its SubjectPublicKeyInfo public key (``NAME.pub``), the formats ``openssl pkey`` reads.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .errors import BackendUnavailableError, SignatureError
from .manifest import MANIFEST_NAME

SIGNATURE_NAME = "signature.json"
FORMAT = "tlc-signature"
INSTALL_HINT = "pip install 'tlc-runtime[signing]' (the cryptography package)"

KeySource = str | os.PathLike | bytes


def _crypto() -> Any:
    try:
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:
        raise BackendUnavailableError(f"signed bundles need the cryptography package: {INSTALL_HINT}") from None
    return ed25519


def _serialization() -> Any:
    _crypto()
    from cryptography.hazmat.primitives import serialization

    return serialization


def key_id(public_key: Any) -> str:
    """First 16 hex digits of the sha256 of the raw 32-byte public key."""
    s = _serialization()
    raw = public_key.public_bytes(s.Encoding.Raw, s.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def generate_key_pair(stem: str | Path) -> tuple[Path, Path]:
    """Write ``STEM.key`` (private, mode 0600) and ``STEM.pub``; refuse to overwrite either."""
    ed25519, s = _crypto(), _serialization()
    stem = Path(stem)
    private_path, public_path = stem.with_name(stem.name + ".key"), stem.with_name(stem.name + ".pub")
    existing = [str(p) for p in (private_path, public_path) if p.exists()]
    if existing:
        raise SignatureError(f"{', '.join(existing)} already exist; choose another name (keys are never overwritten)")
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(s.Encoding.PEM, s.PrivateFormat.PKCS8, s.NoEncryption())
    public = key.public_key().public_bytes(s.Encoding.PEM, s.PublicFormat.SubjectPublicKeyInfo)
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(private)
    public_path.write_bytes(public)
    return private_path, public_path


def public_pem(private_key: Any) -> bytes:
    """The PEM public key of ``private_key``."""
    s = _serialization()
    return private_key.public_key().public_bytes(s.Encoding.PEM, s.PublicFormat.SubjectPublicKeyInfo)


def _pem(source: KeySource, what: str) -> bytes:
    if isinstance(source, bytes):
        return source
    try:
        return Path(source).read_bytes()
    except OSError as exc:
        raise SignatureError(f"cannot read {what} {source}: {exc.strerror or exc}") from None


def load_private_key(source: KeySource) -> Any:
    """An Ed25519 private key from a PEM file (or PEM bytes); SignatureError otherwise."""
    ed25519, s = _crypto(), _serialization()
    try:
        key = s.load_pem_private_key(_pem(source, "private key"), password=None)
    except (ValueError, TypeError) as exc:
        raise SignatureError(f"{_name(source)} is not an unencrypted PEM private key ({exc})") from None
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise SignatureError(f"{_name(source)} is not an Ed25519 key (tlc keygen makes one)")
    return key


def load_public_key(source: KeySource) -> Any:
    """An Ed25519 public key from a PEM file (or PEM bytes); SignatureError otherwise."""
    ed25519, s = _crypto(), _serialization()
    try:
        key = s.load_pem_public_key(_pem(source, "public key"))
    except (ValueError, TypeError) as exc:
        raise SignatureError(f"{_name(source)} is not a PEM public key ({exc})") from None
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise SignatureError(f"{_name(source)} is not an Ed25519 public key (tlc keygen makes one)")
    return key


def _name(source: KeySource) -> str:
    return "the given key bytes" if isinstance(source, bytes) else str(source)


def sign_bundle(bundle_dir: str | Path, private_key: Any) -> Path:
    """Sign ``bundle_dir/manifest.json`` as it is now; write ``signature.json`` atomically."""
    bundle = Path(bundle_dir)
    manifest = _read(bundle / MANIFEST_NAME, "manifest")
    record = {"format": FORMAT, "version": 1, "algorithm": "ed25519", "key_id": key_id(private_key.public_key()),
              "signature": base64.b64encode(private_key.sign(manifest)).decode("ascii")}
    tmp = bundle / (SIGNATURE_NAME + ".tmp")
    tmp.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    tmp.replace(bundle / SIGNATURE_NAME)
    return bundle / SIGNATURE_NAME


def verified_manifest_bytes(bundle_dir: str | Path, trusted_keys: Iterable[KeySource]) -> tuple[bytes, str]:
    """(the manifest's bytes, the key id that signed them) when one of ``trusted_keys`` signed exactly
    these bytes; SignatureError for an unsigned bundle, an unknown key or a bad signature."""
    keys = [load_public_key(k) for k in trusted_keys]
    if not keys:
        raise SignatureError("trusted_keys is empty: give at least one public key, or load without trusted_keys")
    bundle = Path(bundle_dir)
    if not (bundle / SIGNATURE_NAME).is_file():
        raise SignatureError(f"{bundle} is not signed (no {SIGNATURE_NAME}); refusing it because trusted keys were given")
    record = _signature_record(bundle / SIGNATURE_NAME)
    manifest = _read(bundle / MANIFEST_NAME, "manifest")
    by_id = {key_id(k): k for k in keys}
    key = by_id.get(record["key_id"])
    if key is None:
        raise SignatureError(f"{bundle} is signed by key {record['key_id']}, which is not among the trusted keys "
                             f"({', '.join(sorted(by_id))})")
    from cryptography.exceptions import InvalidSignature

    try:
        key.verify(record["signature"], manifest)
    except InvalidSignature:
        raise SignatureError(f"{bundle}: the signature does not match manifest.json (the manifest changed after "
                             f"signing, or the signature is forged); refusing the bundle") from None
    return manifest, record["key_id"]


def _signature_record(path: Path) -> dict[str, Any]:
    try:
        record = json.loads(_read(path, "signature"))
        ok = (isinstance(record, dict) and record.get("format") == FORMAT and record.get("version") == 1
              and record.get("algorithm") == "ed25519" and isinstance(record.get("key_id"), str))
        signature = base64.b64decode(record["signature"], validate=True) if ok else b""
    except (ValueError, KeyError, TypeError):
        ok, signature = False, b""
    if not ok or len(signature) != 64:
        raise SignatureError(f"{path} is not a tlc Ed25519 signature record; re-sign the bundle")
    return {**record, "signature": signature}


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SignatureError(f"cannot read the {what} {path}: {exc.strerror or exc}") from None
