"""Atomic bundle writing: everything goes to a hidden staging directory next to the destination,
is validated there (manifest schema + every hash), and only then renamed into place.

One build per destination at a time: the whole build holds an exclusive lock beside ``out``
(``tlc.outdir``), and the lock holder removes what killed builds left (staging, scratch space).
A failed or interrupted build removes its staging directory and never touches an existing bundle;
``overwrite=True`` swaps a finished bundle in for the old one only after the new one is complete.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from types import TracebackType
from typing import Any

from tlc_runtime.integrity import verify_bundle
from tlc_runtime.manifest import MANIFEST_NAME, Manifest, read_manifest
from tlc_runtime.signing import public_pem, sign_bundle, verified_manifest_bytes

from ..errors import BuildError, ConfigError
from ..outdir import OutputLock, move_into_place, sibling


class BundleStaging:
    """``with BundleStaging(out) as staging: ...; staging.commit(manifest)``.

    ``staging.path`` is the bundle being written; ``staging.work`` is scratch space for files that
    do not go into the bundle (the FP32 export, candidates), removed with the staging directory.
    """

    def __init__(self, out: str | Path, overwrite: bool = False) -> None:
        self.out = Path(out)
        self.overwrite = overwrite
        self.root = sibling(self.out, "staging")
        self.path = self.root / "bundle"
        self.work = self.root / "work"
        self.lock = OutputLock(self.out, "build")
        self.committed = False

    def __enter__(self) -> BundleStaging:
        self.lock.__enter__()
        try:
            self._check_out()
            self.path.mkdir(parents=True)
            self.work.mkdir()
        except OSError as exc:
            self._cleanup()
            raise ConfigError(f"cannot write a bundle at {self.out}: {exc.strerror}") from None
        except BaseException:
            self._cleanup()
            raise
        return self

    def _check_out(self) -> None:
        if self.out.exists() and not self.overwrite:
            raise ConfigError(f"{self.out} already exists; choose another --out or pass --overwrite")
        if self.out.exists() and not (self.out / MANIFEST_NAME).is_file():
            raise ConfigError(f"{self.out} exists and is not a tlc bundle; refusing to replace it")

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._cleanup()

    def _cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
        self.lock.__exit__(None, None, None)

    def commit(self, manifest: Manifest, sign_key: Any = None) -> Path:
        """Write the manifest, re-read and verify the whole staging bundle (signed with ``sign_key``
        and the signature checked, when given), then move it into place."""
        (self.path / MANIFEST_NAME).write_text(manifest.to_json(), encoding="utf-8")
        try:
            if sign_key is not None:
                sign_bundle(self.path, sign_key)
                verified_manifest_bytes(self.path, [public_pem(sign_key)])
            verify_bundle(self.path, read_manifest(self.path))
        except Exception as exc:
            raise BuildError(f"the staged bundle failed its own validation: {exc}") from None
        move_into_place(self.path, self.out, overwrite=self.overwrite, marker=MANIFEST_NAME, what="bundle")
        self.committed = True
        return self.out
