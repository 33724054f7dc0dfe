"""Writing a directory output (a bundle, a run) safely: one writer per output, work in a hidden
staging directory beside it, and a final rename that never replaces what it was not asked to.

Beside ``out`` live, while a command writes it:
  .NAME.lock             an exclusive ``flock``, held for the whole command (released by the kernel
                         when the process dies, even by kill -9)
  .NAME.staging-XXXXXXXX the output being written (and its scratch space)
  .NAME.old-XXXXXXXX     the previous output, for the instant of an --overwrite swap

Whoever holds the lock is the only live writer of ``out``, so any staging or backup directory of
``out`` it finds is left over from a killed command: it removes them (and restores a backup that a
kill during the swap left without its replacement).
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from pathlib import Path
from types import TracebackType

from .errors import ConfigError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; concurrent writers are not detected there
    fcntl = None  # type: ignore[assignment]


def sibling(out: Path, kind: str) -> Path:
    """A new hidden ``.NAME.<kind>-XXXXXXXX`` path beside ``out`` (kind: staging or old)."""
    return out.parent / f".{out.name}.{kind}-{uuid.uuid4().hex[:8]}"


class OutputLock:
    """``with OutputLock(out, "build"):`` — refuse at once when another command is writing ``out``."""

    def __init__(self, out: Path, what: str) -> None:
        self.out = out
        self.what = what
        self.path = out.parent / f".{out.name}.lock"
        self.fd: int | None = None

    def __enter__(self) -> OutputLock:
        if fcntl is None:
            return self
        try:
            self.out.parent.mkdir(parents=True, exist_ok=True)
            while self.fd is None:
                self.fd = self._try_lock()
        except OSError as exc:
            raise ConfigError(f"cannot write {self.out}: {exc.strerror}") from None
        remove_stale(self.out)
        return self

    def _try_lock(self) -> int | None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ConfigError(f"another {self.what} is writing {self.out} right now (lock {self.path}); "
                              "wait for it to finish or choose another output") from None
        try:
            same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if not same:  # the previous holder removed the file between our open and our lock: retry
            os.close(fd)
            return None
        return fd

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.fd is not None:
            self.path.unlink(missing_ok=True)  # while still locked, so nobody holds a removed file
            os.close(self.fd)
            self.fd = None


def remove_stale(out: Path) -> None:
    """Remove staging and backup directories of ``out`` left by killed commands (lock held)."""
    pattern = re.compile(rf"\.{re.escape(out.name)}\.(staging|old)-[0-9a-f]{{8}}")
    leftovers = [p for p in out.parent.iterdir() if pattern.fullmatch(p.name) and p.is_dir()]
    for path in sorted(leftovers):
        if path.name.startswith(f".{out.name}.old-") and not os.path.lexists(out):
            os.replace(path, out)  # killed mid-swap: the old output was moved aside, the new one not in
        else:
            shutil.rmtree(path, ignore_errors=True)


def move_into_place(staging: Path, out: Path, *, overwrite: bool, marker: str, what: str) -> None:
    """Rename the finished ``staging`` to ``out``. An ``out`` that exists now (perhaps created while the
    command ran) is replaced only with ``overwrite`` and only when it holds ``marker`` (a tlc ``what``)."""
    backup = None
    if os.path.lexists(out):
        if not overwrite:
            raise ConfigError(f"{out} appeared while the {what} was written; nothing was replaced "
                              "(choose another output or pass --overwrite)")
        if out.is_symlink() or not (out / marker).is_file():
            raise ConfigError(f"{out} appeared or changed while the {what} was written and is not a tlc "
                              f"{what}; refusing to replace it")
        backup = sibling(out, "old")
        os.replace(out, backup)
    try:
        os.rename(staging, out)
    except OSError as exc:
        if backup is not None:
            os.replace(backup, out)
        raise ConfigError(f"cannot move the finished {what} to {out}: {exc.strerror}") from None
    if backup is not None:
        shutil.rmtree(backup, ignore_errors=True)
