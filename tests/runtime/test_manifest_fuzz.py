"""Manifest fuzz: whatever a manifest.json holds, ``tlc_runtime.load`` raises only its own error types.

Seeded and deterministic. Each case mutates a real bundle's manifest.json (type swaps, deletions,
unknown keys, huge integers, deep nesting, NaN/Infinity, odd and unicode strings, NUL bytes,
"."/"./"/symlink-loop paths, wrong class counts...) and runs the real ``load``. A load that succeeds
is fine; any exception that is not a ``TlcRuntimeError`` is a finding.
"""

from __future__ import annotations

import copy
import json
import os
import random
from collections.abc import Callable
from typing import Any

import pytest
import tlc_runtime
from tlc_runtime.errors import TlcRuntimeError

pytest.importorskip("onnxruntime")

CASES = 400
SEED = 9

# Raw JSON text that json.dumps cannot write (or writes only non-standard): spliced in after dumps.
RAW = {
    "huge-int": "1" + "0" * 5000,
    "big-int": "9" * 400,
    "huge-neg": "-" + "7" * 4400,
    "deep-list": "[" * 1000 + "]" * 1000,
    "deep-object": '{"a":' * 1000 + "1" + "}" * 1000,
    "nesting-200": "[" * 200 + "]" * 200,
    "NaN": "NaN",
    "Infinity": "Infinity",
    "-Infinity": "-Infinity",
    "overflow-float": "1e999",
    "tiny-float": "1e-999",
    "lone-surrogate": '"\\ud800"',
    "neg-zero": "-0.0",
}

VALUES: list[Any] = [
    None, True, False, 0, -1, 1, 2, 3, 255, 65536, 2**63, -(2**63), 0.5, -0.0, 1e308, "", " ", ".", "./", "..",
    "/", "\0", "a\0b", "model.onnx\0", "nul\x00.onnx", "é", "日本語", "\u202e", "\n", "x" * 5000, "a/" * 300,
    "loop", "loop/x", "dir", "manifest.json", "model.onnx/", "./model.onnx", "golden.npz", "fp32", "onnx",
    "onnxruntime", "softmax", "uint8", "NHWC", "00" * 32, "g" * 64, [], [1], ["a", "a"], ["", "b"], [None],
    {}, {"a": 1}, {"path": "model.onnx"}, *[f"<raw:{k}>" for k in RAW],
]


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every location in a JSON tree, as a tuple of keys/indexes."""
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, prefix + (i,))
    return out


def _parent(doc: Any, path: tuple) -> Any:
    for key in path[:-1]:
        doc = doc[key]
    return doc


def _replace(doc: Any, rng: random.Random) -> str:
    path = rng.choice(_paths(doc)[1:])
    value = copy.deepcopy(rng.choice(VALUES))
    _parent(doc, path)[path[-1]] = value
    return f"set {path} = {value!r:.40}"


def _delete(doc: Any, rng: random.Random) -> str:
    path = rng.choice(_paths(doc)[1:])
    del _parent(doc, path)[path[-1]]
    return f"delete {path}"


def _add_key(doc: Any, rng: random.Random) -> str:
    tables = [p for p in _paths(doc) if isinstance(_parent(doc, p + ("x",)), dict)]
    path = rng.choice(tables)
    key = rng.choice(["colour", "", "\0", "é", "path", "__class__", "1" * 100])
    _parent(doc, path + ("x",))[key] = rng.choice(VALUES)
    return f"add key {key!r} under {path}"


def _classes(doc: Any, rng: random.Random) -> str:
    names = doc["class_names"]
    choice = rng.randrange(7)
    if choice == 0:
        names.append(f"extra{len(names)}")
    elif choice == 1:
        names.pop()
    elif choice == 2:
        names[-1] = names[0]
    elif choice == 3:
        names[rng.randrange(len(names))] = rng.choice(["", " ", "\t"])
    elif choice == 4:
        names[:] = [f"c{i}" for i in range(rng.choice([0, 1, 2, 4, 100]))]
    elif choice == 5:
        names[0] = rng.choice(["é", "日本語", "a\0b", "\n", "x" * 1000])
    else:
        doc["class_names"] = rng.choice(["normal", {"a": 1}, None, 3])
    return f"class_names mutation {choice}"


def _file_path(doc: Any, rng: random.Random) -> str:
    entries = [e for a in doc.get("artifacts", []) if isinstance(a, dict) and isinstance(a.get("files"), dict)
               for e in a["files"].values() if isinstance(e, dict)]
    entries.append(doc["golden"]["file"]) if isinstance(doc.get("golden"), dict) else None
    entry = rng.choice([e for e in entries if isinstance(e, dict)] or [{}])
    entry["path"] = rng.choice([".", "./", "", "loop", "loop/model.onnx", "dir", "dir/", "a\0b", "\0",
                                "model.onnx\0", "x" * 300, "d/" * 2000 + "f", "é.onnx", "CON", "model.onnx/.",
                                "./golden.npz", "manifest.json", 7, None, ["model.onnx"]])
    return f"file path = {entry.get('path')!r:.40}"


MUTATORS: list[Callable[[Any, random.Random], str]] = [_replace] * 5 + [_delete] * 2 + [_add_key, _classes, _file_path]


def _inconsistent(pred: tlc_runtime.Prediction, class_names: tuple[str, ...]) -> str:
    """What is wrong with a prediction that a loaded bundle returned ("" when nothing is)."""
    if len(pred.probabilities) != len(class_names):
        return f"{len(pred.probabilities)} probabilities for {len(class_names)} classes"
    if pred.probabilities[pred.label] != pred.confidence or class_names[pred.index] != pred.label:
        return f"label {pred.label!r} whose probability {pred.probabilities[pred.label]} is not its confidence"
    return ""


def _render(doc: Any) -> str:
    text = json.dumps(doc)
    for key, raw in RAW.items():
        text = text.replace(json.dumps(f"<raw:{key}>"), raw)
    return text


@pytest.fixture
def fuzz_bundle(make_bundle):
    bundle = make_bundle()
    os.symlink("loop", bundle.path / "loop")  # a symlink loop a path may name
    (bundle.path / "dir").mkdir()
    return bundle


def test_manifest_fuzz_raises_only_tlc_runtime_errors(fuzz_bundle):
    manifest_path = fuzz_bundle.path / "manifest.json"
    original = json.loads(manifest_path.read_text(encoding="utf-8"))
    rng = random.Random(SEED)
    image = fuzz_bundle.golden_inputs[0]
    findings, outcomes = [], {"loaded": 0, "refused": 0}
    try:
        for case in range(CASES):
            doc = copy.deepcopy(original)
            steps = []
            for _ in range(rng.choice([1, 1, 1, 2, 3])):
                try:
                    steps.append(rng.choice(MUTATORS)(doc, rng))
                except (AttributeError, IndexError, KeyError, TypeError):  # an earlier step removed that part
                    continue
            manifest_path.write_text(_render(doc), encoding="utf-8")
            try:
                clf = tlc_runtime.load(fuzz_bundle.path, backend="onnxruntime", device="cpu",
                                       options={"intra_op_num_threads": 1})
                outcomes["loaded"] += 1
                problem = _inconsistent(clf.predict(image), clf.class_names)
                if problem:
                    findings.append(f"case {case} {steps}: loaded, then predicted {problem}")
            except TlcRuntimeError as exc:
                outcomes["refused"] += 1
                if "\n" in str(exc):
                    findings.append(f"case {case} {steps}: message is not one line: {str(exc)[:200]!r}")
            except BaseException as exc:  # noqa: BLE001 - every other exception is the finding
                findings.append(f"case {case} {steps}: {type(exc).__name__}: {str(exc)[:200]}")
    finally:
        manifest_path.write_text(json.dumps(original), encoding="utf-8")
    assert not findings, f"{len(findings)} of {CASES} cases raised non-tlc errors:\n" + "\n".join(findings)
    assert outcomes["refused"] > CASES // 2  # the fuzz really exercises the error paths
