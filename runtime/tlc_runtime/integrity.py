"""Content hashes and path safety for bundle files.

What a backend loads is what was hashed: ``read_verified`` reads a file once into memory, checks
those bytes, and returns them, so nothing can change the file between the check and the load
(models are tens of MB, so holding one in memory is cheap).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

from .errors import BundleError, IntegrityError, UnsafePathError
from .manifest import Artifact, FileEntry, Manifest, check_relative_path
from .schema import show

_CHUNK = 1 << 20


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def file_entry(bundle_dir: str | Path, relative: str) -> FileEntry:
    """FileEntry (hash and size) for a file already inside the bundle directory."""
    path = Path(bundle_dir) / relative
    return FileEntry(path=relative, sha256=sha256_file(path), bytes=path.stat().st_size)


def resolve_inside(bundle_dir: str | Path, relative: str) -> Path:
    """Absolute path of a bundle file; refuses paths (or symlinks) that leave the bundle."""
    check_relative_path(relative)
    try:
        root = Path(bundle_dir).resolve()
        path = (root / relative).resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop (RuntimeError before Python 3.13)
        raise BundleError(f"bundle path {show(relative)} cannot be resolved: {_reason(exc)}") from None
    if root != path and root not in path.parents:
        raise UnsafePathError(f"path {show(relative)} in the manifest resolves outside the bundle")
    return path


def verify_file(bundle_dir: str | Path, entry: FileEntry) -> Path:
    """Check one file's presence, size and sha256; return its absolute path.

    The path may change after the check: to use the content, take ``read_verified``'s bytes instead.
    """
    path = _existing(bundle_dir, entry)
    try:
        _check(entry, path.stat().st_size, lambda: sha256_file(path))
    except OSError as exc:  # unreadable (permissions), a name too long...
        raise BundleError(f"cannot read bundle file {entry.path}: {_reason(exc)}") from None
    return path


def read_verified(bundle_dir: str | Path, entry: FileEntry) -> bytes:
    """The file's bytes, read once and checked against the manifest's size and sha256."""
    path = _existing(bundle_dir, entry)
    try:
        with open(path, "rb") as fh:
            if os.fstat(fh.fileno()).st_size != entry.bytes:  # refused unread: a recorded size may be absurd
                raise _mismatch(entry)
            data = fh.read(entry.bytes + 1)  # one byte more reveals a longer file without reading it all
    except OSError as exc:
        raise BundleError(f"cannot read bundle file {entry.path}: {_reason(exc)}") from None
    _check(entry, len(data), lambda: hashlib.sha256(data).hexdigest())
    return data


def _reason(exc: BaseException) -> str:
    """The OS's short reason (e.g. "Permission denied"), without the full path it was given."""
    return getattr(exc, "strerror", None) or str(exc).split(" from ")[0]


def read_artifact(bundle_dir: str | Path, artifact: Artifact) -> dict[str, bytes]:
    """Role → verified bytes of every file of ``artifact`` (what ``Backend.open`` takes)."""
    return {role: read_verified(bundle_dir, entry) for role, entry in artifact.files.items()}


def verify_bundle(bundle_dir: str | Path, manifest: Manifest, keep: Artifact | None = None) -> dict[str, bytes]:
    """Check every file the manifest records before any backend parses one.

    Returns ``read_artifact`` of ``keep`` (one of the manifest's artifacts; empty when None): its files
    are read once, and the checked bytes are the ones handed on; the others are hashed as a stream.
    """
    kept = {entry.path for entry in keep.files.values()} if keep is not None else set()
    data: dict[str, bytes] = {}
    for entry in manifest.all_files():
        if entry.path in kept:
            data[entry.path] = read_verified(bundle_dir, entry)
        else:
            verify_file(bundle_dir, entry)
    return {role: data[entry.path] for role, entry in keep.files.items()} if keep is not None else {}


def _existing(bundle_dir: str | Path, entry: FileEntry) -> Path:
    path = resolve_inside(bundle_dir, entry.path)
    try:
        exists = path.is_file()
    except OSError as exc:  # a name too long for the file system...
        raise BundleError(f"cannot read bundle file {show(entry.path)}: {_reason(exc)}") from None
    if not exists:
        raise BundleError(f"bundle file missing: {entry.path}")
    return path


def _check(entry: FileEntry, size: int, digest: Callable[[], str]) -> None:
    if size != entry.bytes or digest() != entry.sha256:
        raise _mismatch(entry)


def _mismatch(entry: FileEntry) -> IntegrityError:
    return IntegrityError(f"bundle file {entry.path} does not match its sha256 in the manifest "
                          "(modified or corrupt); rebuild the bundle")
