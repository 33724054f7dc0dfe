"""The runtime works where PyTorch and tlc do not exist, and ``import tlc_runtime`` needs numpy only."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytest.importorskip("onnxruntime")

HEAVY = ("torch", "torchvision", "tlc", "onnx", "onnxruntime", "openvino", "tensorrt", "PIL", "click", "rich")

SCRIPT = """
import json, sys
sys.modules["torch"] = None   # any `import torch` now raises ImportError
sys.modules["tlc"] = None
import numpy as np
import tlc_runtime
clf = tlc_runtime.load(sys.argv[1], check=True, options={"intra_op_num_threads": 1})
pred = clf.predict(np.arange(64, dtype=np.uint8).reshape(8, 8))
report = clf.check()
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "torchvision", "tlc")
                and sys.modules[m] is not None)
print(json.dumps({"label": pred.label, "passed": report.passed, "loaded": loaded}))
"""


def _run(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)


def test_load_predict_and_check_without_torch_or_tlc(grey_bundle):
    proc = _run(SCRIPT, str(grey_bundle.path))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["passed"] is True
    assert out["label"] in ("normal", "bacterial", "viral")
    assert out["loaded"] == []


def test_import_tlc_runtime_needs_numpy_only():
    code = ("import sys, tlc_runtime; "
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))")
    proc = _run(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
