"""The compiler's packages import one way: cli → bundler/quantize/tensorrt/bench → train/verify →
models/data/export → runtime. Every import counts, including the lazy ones inside functions."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TLC = Path(__file__).resolve().parents[1] / "compile" / "tlc"

# Higher numbers may import lower ones (and their own layer), never higher ones.
LAYERS = {
    "cli": 4, "demo": 4,
    "bundler": 3, "report": 3, "quantize": 3, "tensorrt": 3, "bench": 3, "select": 3, "compare": 3,
    "train": 2, "verify": 2,
    "models": 1, "data": 1, "export": 1,
    "runs": 1, "targets": 0, "errors": 0, "outdir": 0, "said": 0, "launch": 0,
}


def _package_of(module: Path) -> str:
    rel = module.relative_to(TLC)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _imported_packages(module: Path, source: str | None = None) -> set[str]:
    """The tlc top-level packages/modules ``module`` imports (absolute ``tlc.x`` or relative)."""
    rel = module.relative_to(TLC)
    package = ["tlc", *rel.parts[:-1]]  # what a relative import resolves against (an __init__ too)
    tree = ast.parse(source if source is not None else module.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            if node.module:
                names = [".".join([*base, node.module])]
            else:
                names = [".".join([*base, a.name]) for a in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "tlc" and len(parts) > 1:
                found.add(parts[1])
    return found


def _modules() -> list[Path]:
    return sorted(p for p in TLC.rglob("*.py") if _package_of(p) in LAYERS)


def test_every_tlc_package_has_a_layer():
    packages = {_package_of(p) for p in TLC.rglob("*.py")} - {"__init__"}
    assert packages <= set(LAYERS), f"give these a layer in LAYERS: {sorted(packages - set(LAYERS))}"


@pytest.mark.parametrize("module", _modules(), ids=lambda p: str(p.relative_to(TLC)))
def test_imports_point_down(module):
    own = _package_of(module)
    upward = sorted(p for p in _imported_packages(module) if p in LAYERS and LAYERS[p] > LAYERS[own])
    assert not upward, f"tlc/{module.relative_to(TLC)} ({own}) imports higher layers: {upward}"


def test_the_checker_sees_relative_and_lazy_imports():
    """The rule would catch models importing training code lazily (what issue 13 removed)."""
    probe = TLC / "models" / "probe.py"
    assert "train" in _imported_packages(probe, "def f():\n    from ..train.weights import x\n")
    assert "train" in _imported_packages(probe, "import tlc.train.trainer\n")
    assert _imported_packages(probe, "from .weights import x\n") == {"models"}
    assert _imported_packages(probe, "from .. import errors\n") == {"errors"}
