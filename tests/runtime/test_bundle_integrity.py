"""A bundle is trusted only after its manifest validates and every file matches its sha256."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil

import numpy as np
import pytest
import tlc_runtime
from tlc_runtime.backends.onnxruntime import OnnxRuntimeBackend
from tlc_runtime.integrity import file_entry

pytest.importorskip("onnxruntime")


@pytest.fixture
def no_backend_parse(monkeypatch):
    """Fail the test if any backend tries to open a model file."""
    def refuse(*args, **kwargs):
        raise AssertionError("the backend was asked to parse a file of an unverified bundle")
    monkeypatch.setattr(OnnxRuntimeBackend, "open", classmethod(refuse))


def _edit_json(bundle, edit) -> None:
    path = bundle.path / "manifest.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def test_tampered_artifact_byte_is_caught_before_the_backend_parses(make_bundle, no_backend_parse):
    bundle = make_bundle()
    raw = bytearray(bundle.model_path.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    bundle.model_path.write_bytes(bytes(raw))
    with pytest.raises(tlc_runtime.IntegrityError, match="model.onnx"):
        tlc_runtime.load(bundle.path)


def test_tampered_golden_file_is_caught(make_bundle, no_backend_parse):
    bundle = make_bundle()
    with open(bundle.path / "golden.npz", "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(tlc_runtime.IntegrityError, match="golden.npz"):
        tlc_runtime.load(bundle.path)


def test_missing_file_is_a_bundle_error(make_bundle, no_backend_parse):
    bundle = make_bundle()
    (bundle.path / "golden.npz").unlink()
    with pytest.raises(tlc_runtime.BundleError, match="missing: golden.npz"):
        tlc_runtime.load(bundle.path)


def test_missing_directory_and_manifest(tmp_path):
    with pytest.raises(tlc_runtime.BundleError, match="not found"):
        tlc_runtime.load(tmp_path / "nope")
    with pytest.raises(tlc_runtime.BundleError, match="no manifest.json"):
        tlc_runtime.load(tmp_path)


@pytest.mark.parametrize("bad_path", ["../x.onnx", "sub/../../x.onnx", "/etc/passwd", "C:/x.onnx", "a\\b.onnx"])
def test_paths_leaving_the_bundle_are_refused(make_bundle, no_backend_parse, bad_path):
    bundle = make_bundle()
    _edit_json(bundle, lambda d: d["artifacts"][0]["files"]["model"].update(path=bad_path))
    with pytest.raises(tlc_runtime.UnsafePathError):
        tlc_runtime.load(bundle.path)


def test_symlink_pointing_outside_is_refused(make_bundle, no_backend_parse, tmp_path):
    bundle = make_bundle()
    outside = tmp_path / "outside.onnx"
    shutil.move(bundle.model_path, outside)
    os.symlink(outside, bundle.model_path)  # same bytes, so only the path check can stop it
    with pytest.raises(tlc_runtime.UnsafePathError, match="outside the bundle"):
        tlc_runtime.load(bundle.path)


def test_unknown_manifest_key_lists_valid_keys(make_bundle, no_backend_parse):
    bundle = make_bundle()
    _edit_json(bundle, lambda d: d.update(colour="blue"))
    with pytest.raises(tlc_runtime.SchemaError, match="unknown key.*'colour'.*valid keys"):
        tlc_runtime.load(bundle.path)


def test_wrong_schema_version(make_bundle, no_backend_parse):
    bundle = make_bundle()
    _edit_json(bundle, lambda d: d.update(schema_version=99))
    with pytest.raises(tlc_runtime.SchemaError, match="schema_version 99"):
        tlc_runtime.load(bundle.path)


def test_wrong_type_in_manifest(make_bundle, no_backend_parse):
    bundle = make_bundle()
    _edit_json(bundle, lambda d: d["input"].update(height="eight"))
    with pytest.raises(tlc_runtime.SchemaError, match="input.height"):
        tlc_runtime.load(bundle.path)


def test_broken_json(make_bundle, no_backend_parse):
    bundle = make_bundle()
    (bundle.path / "manifest.json").write_text('{"schema_version": 1,')
    with pytest.raises(tlc_runtime.BundleError, match="not valid JSON"):
        tlc_runtime.load(bundle.path)


def test_corrupt_model_with_matching_hash_is_a_one_line_bundle_error(make_bundle):
    bundle = make_bundle()
    bundle.model_path.write_bytes(b"this is not an onnx protobuf" * 10)
    bundle.rehash()
    with pytest.raises(tlc_runtime.BundleError, match="cannot load artifact 'onnx-fp32'") as info:
        tlc_runtime.load(bundle.path)
    assert "\n" not in str(info.value)
    assert type(info.value).__module__ == "tlc_runtime.errors"


def test_model_whose_input_disagrees_with_the_manifest(make_bundle):
    bundle = make_bundle()
    other = make_bundle("rgb", channels=3)
    shutil.copy(other.model_path, bundle.model_path)
    bundle.rehash()
    with pytest.raises(tlc_runtime.BundleError, match="input shape"):
        tlc_runtime.load(bundle.path)


def test_unknown_artifact_name(make_bundle):
    bundle = make_bundle()
    with pytest.raises(tlc_runtime.BundleError, match="no artifact 'int8'.*onnx-fp32"):
        tlc_runtime.load(bundle.path, artifact="int8")


def _raw_edit(bundle, old: str, new: str) -> None:
    """Replace JSON text (for values json.dumps cannot write: huge integers, NaN, deep nesting)."""
    path = bundle.path / "manifest.json"
    text = json.dumps(json.loads(path.read_text()))
    assert old in text
    path.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize("new", [
    "1" * 5000,                          # Python's int limit: a raw ValueError before
    "[" * 1000 + "]" * 1000,             # RecursionError before
    '{"a":' * 1000 + "1" + "}" * 1000,
    "[" * 100 + "]" * 100,               # parses, but far deeper than any manifest (5)
], ids=["5000-digit-int", "1000-deep-list", "1000-deep-object", "100-deep-list"])
def test_huge_numbers_and_deep_nesting_are_bundle_errors(make_bundle, no_backend_parse, new):
    bundle = make_bundle()
    _raw_edit(bundle, '"provenance": {}', '"provenance": {"x": ' + new + "}")  # an untyped section
    with pytest.raises(tlc_runtime.BundleError, match="not valid JSON.*(digits|deep)") as info:
        tlc_runtime.load(bundle.path)
    assert "\n" not in str(info.value) and len(str(info.value)) < 300


@pytest.mark.parametrize("new", ['"atol_prob": NaN', '"atol_prob": Infinity', '"atol_prob": 1e999',
                                 '"atol_prob": -Infinity'])
def test_non_finite_numbers_in_typed_fields_are_schema_errors(make_bundle, no_backend_parse, new):
    bundle = make_bundle()
    _raw_edit(bundle, '"atol_prob": 0.0001', new)
    with pytest.raises(tlc_runtime.SchemaError, match="golden.atol_prob: expected a finite number"):
        tlc_runtime.load(bundle.path)


def test_lone_surrogate_and_bool_for_int_literal_are_refused(make_bundle, no_backend_parse):
    bundle = make_bundle()
    _raw_edit(bundle, '"model_name": "tiny-linear"', '"model_name": "\\ud800"')
    with pytest.raises(tlc_runtime.BundleError, match="not valid Unicode"):
        tlc_runtime.load(bundle.path)
    bundle = make_bundle("b2")
    _edit_json(bundle, lambda d: d["input"].update(channels=True))  # True == 1, but it is not a channel count
    with pytest.raises(tlc_runtime.SchemaError, match="input.channels"):
        tlc_runtime.load(bundle.path)


@pytest.mark.parametrize("bad_path, match", [(".", "names no file"), ("./", "names no file"), ("", "names no file"),
                                             ("model.onnx\0", "NUL"), ("a\0b", "NUL"), ("a\nb", "control")])
def test_paths_naming_no_file_or_holding_nul_are_refused(make_bundle, no_backend_parse, bad_path, match):
    bundle = make_bundle()
    _edit_json(bundle, lambda d: d["artifacts"][0]["files"]["model"].update(path=bad_path))
    with pytest.raises(tlc_runtime.UnsafePathError, match=match) as info:
        tlc_runtime.load(bundle.path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("path", ["loop", "loop/model.onnx"])
def test_symlink_loop_is_a_bundle_error(make_bundle, no_backend_parse, path):
    bundle = make_bundle()
    os.symlink("loop", bundle.path / "loop")
    _edit_json(bundle, lambda d: d["artifacts"][0]["files"]["model"].update(path=path))
    with pytest.raises(tlc_runtime.BundleError, match="cannot be resolved"):
        tlc_runtime.load(bundle.path)


def test_absurd_recorded_size_is_an_integrity_error_without_reading(make_bundle, no_backend_parse):
    bundle = make_bundle()
    _edit_json(bundle, lambda d: d["artifacts"][0]["files"]["model"].update(bytes=2**63))
    with pytest.raises(tlc_runtime.IntegrityError, match="model.onnx"):
        tlc_runtime.load(bundle.path)


def test_file_name_too_long_is_a_bundle_error(make_bundle, no_backend_parse):
    bundle = make_bundle()
    _edit_json(bundle, lambda d: d["golden"]["file"].update(path="x" * 300))
    with pytest.raises(tlc_runtime.BundleError, match="cannot read bundle file") as info:
        tlc_runtime.load(bundle.path)
    assert "\n" not in str(info.value)


@pytest.fixture
def deny_read(monkeypatch):
    """``deny_read(path)``: opening ``path`` raises PermissionError, as chmod 000 would for a non-root user
    (the tests run as root, whom chmod does not stop). Patches the open that pathlib, numpy and io use."""
    import builtins
    import io

    denied: set[str] = set()
    real_open = builtins.open

    def guarded_open(file, *args, **kwargs):
        if isinstance(file, (str, os.PathLike)) and os.path.realpath(file) in denied:
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded_open)
    monkeypatch.setattr(io, "open", guarded_open)
    return lambda path: denied.add(os.path.realpath(path))


@pytest.mark.parametrize("name", ["manifest.json", "model.onnx", "golden.npz"])
def test_unreadable_bundle_file_is_a_bundle_error(make_bundle, no_backend_parse, deny_read, name):
    bundle = make_bundle()
    deny_read(bundle.path / name)
    with pytest.raises(tlc_runtime.BundleError, match="Permission denied") as info:
        tlc_runtime.load(bundle.path)
    assert name in str(info.value) and "\n" not in str(info.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a chmod 000 file; deny_read covers this case as root")
def test_chmod_000_model_is_a_bundle_error(make_bundle, no_backend_parse):
    bundle = make_bundle()
    bundle.model_path.chmod(0)
    with pytest.raises(tlc_runtime.BundleError, match="Permission denied"):
        tlc_runtime.load(bundle.path)


@pytest.mark.parametrize("names, match", [
    (["normal", "normal", "viral"], "not unique: \\['normal'\\]"),
    (["normal", "", "viral"], "empty name.*index 1"),
    (["normal", "bacterial", "  "], "empty name.*index 2"),
])
def test_duplicate_or_empty_class_names_are_refused(make_bundle, no_backend_parse, names, match):
    bundle = make_bundle()
    _edit_json(bundle, lambda d: d.update(class_names=names))
    with pytest.raises(tlc_runtime.SchemaError, match=match):
        tlc_runtime.load(bundle.path)


@pytest.mark.parametrize("names", [["normal", "bacterial", "viral", "fungal"], ["normal", "bacterial"]])
def test_class_count_other_than_the_model_outputs_is_refused_at_load(make_bundle, no_backend_parse, names):
    bundle = make_bundle()  # the model has 3 outputs, recorded as the golden logits' width
    _edit_json(bundle, lambda d: d.update(class_names=names))
    with pytest.raises(tlc_runtime.BundleError, match=f"× {len(names)} classes"):
        tlc_runtime.load(bundle.path)


# --- every byte a backend reads is a hash-checked byte (issue #9, items 4 and 5) -----------------

BACKENDS = ["onnxruntime", pytest.param("openvino", marks=pytest.mark.openvino)]


def _load_f32(path, backend):
    """``load`` on CPU with exact f32 arithmetic (OpenVINO might otherwise pick bf16)."""
    if backend == "openvino":
        pytest.importorskip("openvino")
    return tlc_runtime.load(path, backend=backend, device="cpu", options={"inference_precision": "f32"})


def _move_weights_to_external_file(bundle, location="weights.bin"):
    """Rewrite model.onnx so its initializers live in ``location`` next to it; re-sign model.onnx."""
    import onnx

    model = onnx.load(str(bundle.model_path))
    onnx.save(model, str(bundle.model_path), save_as_external_data=True, location=location, size_threshold=0)
    bundle.rehash()
    return bundle.path / location


@pytest.mark.parametrize("backend", BACKENDS)
def test_tampered_external_data_the_manifest_does_not_list_never_runs(make_bundle, backend):
    bundle = make_bundle()
    weights = _move_weights_to_external_file(bundle)
    weights.write_bytes(np.full(weights.stat().st_size // 4, np.nan, np.float32).tobytes())
    with pytest.raises(tlc_runtime.BundleError, match="external data") as info:
        _load_f32(bundle.path, backend)
    assert "weights.bin" in str(info.value) and "\n" not in str(info.value)


def test_external_data_is_refused_even_when_the_manifest_lists_it(make_bundle):
    """tlc never writes external data, so the runtime refuses it rather than load unverifiable bytes."""
    bundle = make_bundle()
    _move_weights_to_external_file(bundle)
    m = bundle.manifest
    files = {**m.artifacts[0].files, "weights": file_entry(bundle.path, "weights.bin")}
    bundle.write_manifest(dataclasses.replace(m, artifacts=(dataclasses.replace(m.artifacts[0], files=files),)))
    with pytest.raises(tlc_runtime.BundleError, match="external data"):
        tlc_runtime.load(bundle.path)


@pytest.mark.parametrize("backend", BACKENDS)
def test_bundle_swapped_after_the_hash_check_does_not_run(make_bundle, swap_after_verify, backend):
    """Rename-exchange of the bundle directory right after verification: the checked model still runs."""
    bundle = make_bundle()
    attacker = make_bundle("attacker", seed=1)  # same shapes, other weights, its own valid manifest
    swap_after_verify(bundle.path, attacker.path)
    clf = _load_f32(bundle.path, backend)
    inputs = bundle.golden_inputs
    np.testing.assert_allclose(clf.predict_logits(inputs), bundle.reference_logits(inputs), rtol=1e-4, atol=1e-4)
    assert not np.allclose(attacker.reference_logits(inputs), bundle.reference_logits(inputs), atol=1e-2)
