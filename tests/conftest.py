"""Fixtures for every test: where the shared real data lives, and the CI rule for it.

The real data sits in ``../shared/data`` beside the repository (override with ``TLC_SHARED_DATA``).
Outside CI a test that needs it skips with the reason; under ``CI=true`` it fails instead, so a CI run
can never go green by silently dropping the end-to-end tests.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    return Path(os.environ.get("TLC_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def require_shared_file(name: str) -> Path:
    """Path of a shared data file; skip without it, or fail under CI=true."""
    path = shared_data_dir() / name
    if not path.is_file():
        reason = f"real data not found at {path} (the shared data folder sits beside the repo)"
        if in_ci():
            pytest.fail(f"{reason}; CI=true requires it", pytrace=False)
        pytest.skip(reason)
    return path


@pytest.fixture(scope="session")
def pneumonia_npz() -> Path:
    """The real PneumoniaMNIST file (../shared/data/pneumoniamnist.npz)."""
    return require_shared_file("pneumoniamnist.npz")


@pytest.fixture(scope="session")
def small_eval_budget():
    """f(tolerance) → the same budget with margins a few-hundred-image digits evaluation set can decide.

    The default INT8/FP16 margins (≥ 99 % agreement, ≤ 1 point drop, at 95 % confidence) need about
    300 images and 50 per class of 10 to be decidable at all; the quantization tests evaluate on ~450
    digits (45 per class), where ≥ 98 % and ≤ 3 points can be shown. Exact budgets (FP32) stay exact.
    """
    import dataclasses

    def widen(tol):
        if tol.confidence == 0:
            return tol
        agreement = tol.min_agreement if tol.min_agreement >= 1.0 else min(tol.min_agreement, 0.98)
        drop = tol.max_balanced_accuracy_drop
        return dataclasses.replace(tol, min_agreement=agreement, max_balanced_accuracy_drop=drop if drop <= 0 else max(drop, 0.03))

    return widen
