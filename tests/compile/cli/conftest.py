"""`tlc predict` runs on the runtime tests' tiny bundle and hostile files (one builder, reused from there)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location("tlc_tests_runtime_conftest",
                                               Path(__file__).resolve().parents[2] / "runtime" / "conftest.py")
runtime_fixtures = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = runtime_fixtures  # dataclasses look their module up there
_spec.loader.exec_module(runtime_fixtures)

image_files = runtime_fixtures.image_files
hostile_file = runtime_fixtures.hostile_file


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A read-only 8×8 grey uint8 bundle directory (tests/runtime/conftest.py's build_bundle)."""
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    return runtime_fixtures.build_bundle(tmp_path_factory.mktemp("cli") / "bundle").path
