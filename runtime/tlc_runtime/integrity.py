"""Content hashes and path safety for bundle files."""

from __future__ import annotations

import hashlib
from pathlib import Path

from .errors import BundleError, IntegrityError, UnsafePathError
from .manifest import FileEntry, Manifest, check_relative_path
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
    """Check one file's presence, size and sha256; return its absolute path."""
    path = resolve_inside(bundle_dir, entry.path)
    try:
        if not path.is_file():
            raise BundleError(f"bundle file missing: {entry.path}")
        intact = path.stat().st_size == entry.bytes and sha256_file(path) == entry.sha256
    except OSError as exc:  # unreadable (permissions), a name too long...
        raise BundleError(f"cannot read bundle file {entry.path}: {_reason(exc)}") from None
    if not intact:
        raise IntegrityError(f"bundle file {entry.path} does not match its sha256 in the manifest "
                             "(modified or corrupt); rebuild the bundle")
    return path


def _reason(exc: BaseException) -> str:
    """The OS's short reason (e.g. "Permission denied"), without the full path it was given."""
    return getattr(exc, "strerror", None) or str(exc).split(" from ")[0]


def verify_bundle(bundle_dir: str | Path, manifest: Manifest) -> None:
    """Check every file the manifest records before any backend parses one."""
    for entry in manifest.all_files():
        verify_file(bundle_dir, entry)
