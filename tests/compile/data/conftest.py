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


def runtime_fixtures():
    """tests/runtime/conftest.py as a module (its tiny bundle builder), loaded once per session."""
    import importlib.util
    import sys

    name = "tlc_tests_runtime_conftest"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[2] / "runtime" / "conftest.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="session")
def tiny_classifiers(tmp_path_factory: pytest.TempPathFactory) -> dict[int, object]:
    """{8: classifier, 16: classifier}: the runtime tests' tiny 8×8 grey bundles at 8 and 16 bits, loaded."""
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    import tlc_runtime

    build = runtime_fixtures().build_bundle
    root = tmp_path_factory.mktemp("readers")
    return {bits: tlc_runtime.load(build(root / f"b{bits}", bit_depth=bits, seed=bits).path,
                                   options={"intra_op_num_threads": 1}) for bits in (8, 16)}
