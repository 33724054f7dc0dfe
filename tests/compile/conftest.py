"""Fixtures shared by the compiler tests: a multi-task CSV manifest made from real digits."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session")
def digits_tasks_csv(tmp_path_factory):
    """``tasks.csv`` over 300 sklearn digits 0–2 (8×8 grey PNGs), header ``path,finding,view,exposure,split``:

    - finding: the digit ("d0", "d1", "d2");
    - view: "mirrored" when the image was flipped left-right (applied and recorded here), else "plain";
    - exposure: "dim" when its pixels were halved (applied and recorded), else "full"; empty (no label)
      for every fifth image. Splits 60/20/20 in file order.
    """
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits(n_class=3)
    rng = np.random.default_rng(0)
    root = tmp_path_factory.mktemp("tasks")
    lines = ["path,finding,view,exposure,split"]
    n = 300
    for i in range(n):
        image = np.rint(digits.images[i] * 255 / 16).astype(np.uint8)
        mirrored, dim = bool(rng.integers(2)), bool(rng.integers(2))
        image = image[:, ::-1] if mirrored else image
        image = (image // 2).astype(np.uint8) if dim else image
        Image.fromarray(np.ascontiguousarray(image)).save(root / f"{i}.png")
        exposure = "" if i % 5 == 4 else ("dim" if dim else "full")
        split = "train" if i < 0.6 * n else "val" if i < 0.8 * n else "test"
        lines.append(f"{i}.png,d{digits.target[i]},{'mirrored' if mirrored else 'plain'},{exposure},{split}")
    path = root / "tasks.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def in_workers(tmp_path_factory, monkeypatch):
    """``in_workers(code)``: run ``code`` at start-up in every Python process spawned from now on (the
    distributed workers), as a ``sitecustomize`` module put first on PYTHONPATH; a test injects a fault
    into a worker this way, so production code carries no test hooks."""
    import os
    import textwrap

    def install(code: str) -> None:
        folder = tmp_path_factory.mktemp("in_workers")
        (folder / "sitecustomize.py").write_text(textwrap.dedent(code))
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")])))

    return install
