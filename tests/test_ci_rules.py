"""The CI contract for real data: skip outside CI, fail loudly under CI=true."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
# The cheapest test that needs ../shared/data: its fixture asks for the data before any training.
NEEDS_DATA = "tests/e2e/test_cli_path.py::test_build_writes_a_valid_bundle"


def _pytest_without_data(tmp_path: Path, ci: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TLC_SHARED_DATA": str(tmp_path / "absent"), "CI": ci}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", NEEDS_DATA],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_missing_shared_data_fails_under_ci(tmp_path):
    result = _pytest_without_data(tmp_path, "true")
    assert result.returncode == 1, result.stdout
    assert "CI=true requires it" in result.stdout
    assert "1 error" in result.stdout or "1 failed" in result.stdout


def test_missing_shared_data_skips_outside_ci(tmp_path):
    result = _pytest_without_data(tmp_path, "")
    assert result.returncode == 0, result.stdout
    assert "1 skipped" in result.stdout and "real data not found" in result.stdout
