"""Packaging contract: the package list matches the tree, imports stay light, the runtime stands alone."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_every_package_directory_is_listed_in_pyproject():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = set()
    for top, name in (("compile", "tlc"), ("runtime", "tlc_runtime")):
        for init in (ROOT / top / name).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / top)
            found.add(".".join(rel.parts))
    found.add("tlc.target_files")
    assert found == listed, f"missing: {found - listed}, stale: {listed - found}"


def test_import_tlc_and_runtime_need_no_heavy_packages():
    heavy = ["torch", "onnx", "onnxruntime", "openvino", "tensorrt", "nncf", "matplotlib", "sklearn"]
    code = ("import sys, tlc, tlc.cli.main, tlc_runtime, tlc_runtime.backends; "
            f"print([m for m in {heavy!r} if m in sys.modules])")
    result = _run(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_tlc_help_lists_commands_without_optional_backends():
    block = "import sys; [sys.modules.__setitem__(m, None) for m in ('openvino', 'tensorrt', 'nncf', 'torch')]; "
    result = _run(block + "from tlc.cli.main import run; sys.exit(run(['--help']))")
    assert result.returncode == 0, result.stderr
    for command in ("train", "build", "verify", "predict", "inspect", "bench", "targets", "demo"):
        assert command in result.stdout
    for command in ("train", "build", "verify", "predict", "inspect", "bench", "targets", "demo"):
        sub = _run(block + f"from tlc.cli.main import run; sys.exit(run([{command!r}, '--help']))")
        assert sub.returncode == 0, (command, sub.stderr)


def test_runtime_never_imports_tlc():
    for path in (ROOT / "runtime" / "tlc_runtime").rglob("*.py"):
        text = path.read_text()
        assert "import tlc\n" not in text and "from tlc " not in text and "from tlc." not in text, path


def test_target_files_ship_with_the_package():
    from tlc.targets import builtin_targets

    names = set(builtin_targets())
    assert {"x86-cpu", "arm64-cpu"} <= names
    assert names == {p.stem for p in (ROOT / "targets").glob("*.toml")}
