"""Multi-task through the CLI: what is refused (train, build, verify and predict of every task:
tests/compile/bundler/test_build_multi_output.py)."""

from __future__ import annotations

import pytest
from tlc.cli.main import run

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

TINY = ["--arch", "resnet18", "--img-size", "16", "--epochs", "1", "--batch-size", "16", "--no-augment"]


def test_tasks_on_an_npz_is_a_user_error(tmp_path, capsys):
    import numpy as np

    np.savez(tmp_path / "d.npz", images=np.zeros((4, 8, 8), np.uint8), labels=np.arange(4) % 2)
    assert run(["train", str(tmp_path / "d.npz"), "--out", str(tmp_path / "run"), *TINY, "--tasks", "a,b"]) == 2
    assert "several tasks need a CSV manifest" in capsys.readouterr().err
