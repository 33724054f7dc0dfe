"""Remember what tlc has already told the user, so a warning about the same data is said once.

Keys (sha256 hex strings) are appended to ``said.txt`` in tlc's cache directory: ``TLC_CACHE_DIR``,
else ``$XDG_CACHE_HOME/tlc``, else ``~/.cache/tlc``. When the directory cannot be written (read-only
home, CI sandbox), nothing is remembered and every warning is said again: never an error.
"""

from __future__ import annotations

import os
from pathlib import Path

FILE = "said.txt"


def cache_dir() -> Path:
    """tlc's per-user cache directory (not created here)."""
    if os.environ.get("TLC_CACHE_DIR"):
        return Path(os.environ["TLC_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tlc"


def first_time(key: str) -> bool:
    """True the first time ``key`` is seen on this machine (and remember it); False afterwards."""
    path = cache_dir() / FILE
    try:
        if path.is_file() and key in path.read_text(encoding="utf-8").split():
            return False
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(key + "\n")
    except OSError:
        return True
    return True
