"""Tiny image files in tmp_path for the tlc.data tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

WriteImage = Callable[..., Path]


def random_image(seed: int, shape: tuple[int, ...] = (6, 5), dtype: type = np.uint8, high: int = 256) -> np.ndarray:
    """A distinct pseudo-random image per seed (distinct images never merge as duplicates)."""
    return np.random.default_rng(seed).integers(0, high, size=shape).astype(dtype)


@pytest.fixture
def write_image() -> WriteImage:
    """write_image(path, array) saves an array with Pillow (format from the suffix), returns path."""

    def write(path: Path, array: np.ndarray) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(array).save(path)
        return path

    return write


@pytest.fixture
def make_folder(tmp_path: Path, write_image: WriteImage) -> Callable[..., Path]:
    """make_folder(counts={"cat": 6, ...}, split=None) → ROOT with distinct grey PNGs per class."""

    def make(counts: dict[str, int], split: str | None = None, root: Path | None = None,
             seed: int = 0) -> Path:
        root = root or tmp_path / "data"
        base = root / split if split else root
        for c, (name, n) in enumerate(sorted(counts.items())):
            for i in range(n):
                write_image(base / name / f"{name}_{i:03d}.png", random_image(seed * 10_000 + c * 1000 + i))
        return root

    return make


@pytest.fixture
def rand_image() -> Callable[..., np.ndarray]:
    """rand_image(seed, shape=(6, 5), dtype=np.uint8, high=256): distinct pseudo-random pixels."""
    return random_image
