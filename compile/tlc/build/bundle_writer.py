"""Atomic bundle writing: everything goes to a hidden staging directory next to the destination,
is validated there (manifest schema + every hash), and only then renamed into place.

A failed or interrupted build removes its staging directory and never touches an existing bundle;
``overwrite=True`` swaps a finished bundle in for the old one only after the new one is complete.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from types import TracebackType

from tlc_runtime.integrity import verify_bundle
from tlc_runtime.manifest import MANIFEST_NAME, Manifest, read_manifest

from ..errors import BuildError, ConfigError


class BundleStaging:
    """``with BundleStaging(out) as staging: ...; staging.commit(manifest)``."""

    def __init__(self, out: str | Path, overwrite: bool = False) -> None:
        self.out = Path(out)
        self.overwrite = overwrite
        self.path = self.out.parent / f".{self.out.name}.staging-{uuid.uuid4().hex[:8]}"
        self.committed = False

    def __enter__(self) -> BundleStaging:
        if self.out.exists() and not self.overwrite:
            raise ConfigError(f"{self.out} already exists; choose another --out or pass --overwrite")
        if self.out.exists() and not (self.out / MANIFEST_NAME).is_file():
            raise ConfigError(f"{self.out} exists and is not a tlc bundle; refusing to replace it")
        try:
            self.out.parent.mkdir(parents=True, exist_ok=True)
            self.path.mkdir()
        except OSError as exc:
            raise ConfigError(f"cannot write a bundle at {self.out}: {exc.strerror}") from None
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if not self.committed:
            shutil.rmtree(self.path, ignore_errors=True)

    def commit(self, manifest: Manifest) -> Path:
        """Write the manifest, re-read and verify the whole staging bundle, then move it into place."""
        (self.path / MANIFEST_NAME).write_text(manifest.to_json(), encoding="utf-8")
        try:
            verify_bundle(self.path, read_manifest(self.path))
        except Exception as exc:
            raise BuildError(f"the staged bundle failed its own validation: {exc}") from None
        backup = None
        if self.out.exists():
            backup = self.out.parent / f".{self.out.name}.old-{uuid.uuid4().hex[:8]}"
            os.replace(self.out, backup)
        os.replace(self.path, self.out)
        self.committed = True
        if backup is not None:
            shutil.rmtree(backup, ignore_errors=True)
        return self.out
