"""The OpenVINO runtime backend on a small real graph (built with onnx.helper, converted to IR here)."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import threading

import numpy as np
import pytest
from tlc_runtime.backends import get_backend
from tlc_runtime.errors import BackendUnavailableError, BundleError, TlcRuntimeError
from tlc_runtime.integrity import file_entry, read_artifact
from tlc_runtime.manifest import Artifact, InputSpec

pytestmark = pytest.mark.openvino
ov = pytest.importorskip("openvino", reason="the openvino package is not installed")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

H = W = 12
SPEC = InputSpec(name="pixels", height=H, width=W, channels=1, dtype="uint8")


def _onnx_model(path):
    """uint8 NHWC pixels → /255 → NCHW → Conv(16) → Relu → Conv(24) → Relu → mean → MatMul → logits (N×3)."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(np.array(1 / 255, np.float32), "scale"),
             numpy_helper.from_array(rng.normal(0, 0.5, (16, 1, 3, 3)).astype(np.float32), "w1"),
             numpy_helper.from_array(rng.normal(0, 0.2, (24, 16, 3, 3)).astype(np.float32), "w2"),
             numpy_helper.from_array(rng.normal(0, 1.0, (24, 3)).astype(np.float32), "fc")]
    nodes = [helper.make_node("Cast", ["pixels"], ["f"], to=TensorProto.FLOAT),
             helper.make_node("Mul", ["f", "scale"], ["s"]),
             helper.make_node("Transpose", ["s"], ["t"], perm=[0, 3, 1, 2]),
             helper.make_node("Conv", ["t", "w1"], ["c1"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Conv", ["r1", "w2"], ["c2"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c2"], ["r2"]),
             helper.make_node("GlobalAveragePool", ["r2"], ["g"]),
             helper.make_node("Flatten", ["g"], ["flat"]),
             helper.make_node("MatMul", ["flat", "fc"], ["logits"])]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("pixels", TensorProto.UINT8, ["N", H, W, 1])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    root = tmp_path_factory.mktemp("ovbundle")
    onnx_path = _onnx_model(root / "model.onnx")
    (root / "openvino").mkdir()
    ov.save_model(ov.convert_model(str(onnx_path)), str(root / "openvino/model.xml"), compress_to_fp16=False)
    rng = np.random.default_rng(1)
    inputs = rng.integers(0, 256, (40, H, W, 1), dtype=np.uint8)
    ref = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"]).run(None, {"pixels": inputs})[0]
    return {"root": root, "inputs": inputs, "ref": ref}


def _artifact(root, **options):
    options.setdefault("device", "CPU")
    options.setdefault("INFERENCE_PRECISION_HINT", "f32")
    return Artifact(name="openvino-fp32", format="openvino-ir", backend="openvino", precision="fp32",
                    files={"xml": file_entry(root, "openvino/model.xml"), "bin": file_entry(root, "openvino/model.bin")},
                    options=options)


def _open(bundle, artifact=None, device="auto", options=None):
    art = artifact or _artifact(bundle["root"])
    return get_backend("openvino").open(art, read_artifact(bundle["root"], art), SPEC, device=device, options=options)


def _probs(logits):
    z = np.exp(logits - logits.max(1, keepdims=True))
    return z / z.sum(1, keepdims=True)


def test_fp32_ir_runs_f32_and_matches_onnxruntime(bundle):
    session = _open(bundle)
    assert session.info.backend == "openvino" and session.info.device == "CPU"
    assert session.info.precision == "f32"
    got = session.infer(bundle["inputs"])
    assert np.abs(_probs(got) - _probs(bundle["ref"])).max() <= 1e-4


def test_precision_reported_is_what_openvino_uses(bundle):
    """Without a recorded hint, a bf16-capable CPU computes in bf16 — and the session says so."""
    root = bundle["root"]
    art = Artifact(name="openvino-fp32", format="openvino-ir", backend="openvino", precision="fp32",
                   files={"xml": file_entry(root, "openvino/model.xml"), "bin": file_entry(root, "openvino/model.bin")},
                   options={"device": "CPU"})
    session = _open(bundle, art)
    caps = ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    assert session.info.precision == ("bf16" if "BF16" in caps else "f32")


def test_onnx_artifact_runs_on_openvino(bundle):
    root = bundle["root"]
    art = Artifact(name="onnx-fp32", format="onnx", backend="onnxruntime", precision="fp32",
                   files={"model": file_entry(root, "model.onnx")}, options={"INFERENCE_PRECISION_HINT": "f32"})
    got = _open(bundle, art).infer(bundle["inputs"][:5])
    assert np.allclose(got, bundle["ref"][:5], atol=1e-4)


def test_static_batch_model_chunks_any_batch(bundle, tmp_path):
    model = ov.Core().read_model(str(bundle["root"] / "openvino/model.xml"))
    model.reshape({model.inputs[0]: [1, H, W, 1]})
    (tmp_path / "openvino").mkdir()
    ov.save_model(model, str(tmp_path / "openvino/model.xml"), compress_to_fp16=False)
    art = _artifact(tmp_path, static_batch=1)
    session = get_backend("openvino").open(art, read_artifact(tmp_path, art), SPEC)
    got = session.infer(bundle["inputs"][:5])
    assert got.shape == (5, 3) and np.allclose(got, bundle["ref"][:5], atol=1e-4)


def test_thread_safe_results_equal_sequential(bundle):
    session = _open(bundle)
    inputs = bundle["inputs"]
    expected = [session.infer(inputs[i:i + 2]) for i in range(0, 40, 2)]
    results: dict[tuple[int, int, int], np.ndarray] = {}
    errors = []

    def worker(tid):
        try:
            for rep in range(5):
                for k, i in enumerate(range(0, 40, 2)):
                    if (k + tid) % 3 == rep % 3:
                        results[(tid, rep, k)] = session.infer(inputs[i:i + 2])
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and results
    for (_tid, _rep, k), got in results.items():
        np.testing.assert_array_equal(got, expected[k])


def test_device_choice(bundle):
    # auto: the recorded device when present, else CPU; explicit names are case-insensitive
    assert _open(bundle, _artifact(bundle["root"], device="GPU.7")).info.device == "CPU"
    assert _open(bundle, device="cpu").info.device == "CPU"
    missing = next(d for d in ("NPU", "GPU", "FPGA") if d not in ov.Core().available_devices)
    with pytest.raises(BackendUnavailableError, match=f"no device '{missing}'"):
        _open(bundle, device=missing)
    assert "CPU" in get_backend("openvino").devices()


def test_options_and_cache_dir(bundle, tmp_path):
    with pytest.raises(TlcRuntimeError, match="num_threads must be an integer"):
        _open(bundle, options={"num_threads": "two"})
    with pytest.raises(TlcRuntimeError, match="inference_precision"):
        _open(bundle, options={"inference_precision": "f64"})
    session = _open(bundle, options={"cache_dir": str(tmp_path), "performance_hint": "THROUGHPUT", "num_threads": 1})
    session.infer(bundle["inputs"][:1])
    assert session.info.details["performance_hint"] == "THROUGHPUT"
    assert any(tmp_path.iterdir()), "OpenVINO should write its compiled-model cache"
    # keys for other backends, and the artifact's own options passed back (the build does this), are ignored
    art = _artifact(bundle["root"])
    opts = {**art.options, "intra_op_num_threads": 2}
    assert _open(bundle, art, options=opts).info.precision == "f32"


def test_bad_artifacts_are_bundle_errors(bundle, tmp_path):
    (tmp_path / "openvino").mkdir()
    (tmp_path / "openvino/model.xml").write_text("<net>not a model")
    (tmp_path / "openvino/model.bin").write_bytes(b"\0" * 8)
    art = _artifact(tmp_path)
    with pytest.raises(BundleError, match="openvino cannot read artifact 'openvino-fp32'"):
        get_backend("openvino").open(art, read_artifact(tmp_path, art), SPEC)
    wrong = InputSpec(name="pixels", height=H, width=W, channels=1, dtype="float32")
    good = _artifact(bundle["root"])
    with pytest.raises(BundleError, match="takes u8 pixels but the manifest says float32"):
        get_backend("openvino").open(good, read_artifact(bundle["root"], good), wrong)


def test_importing_the_backend_does_not_import_openvino():
    code = ("import sys, tlc_runtime.backends.openvino as m; "
            "assert 'openvino' not in sys.modules, 'openvino imported eagerly'; print(m.OpenVinoBackend.available())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


def _ir_bundle(make_bundle, name, seed):
    """A tiny conftest bundle whose default artifact is an OpenVINO IR converted from its ONNX."""
    tiny = make_bundle(name, seed=seed)
    (tiny.path / "openvino").mkdir()
    ov.save_model(ov.convert_model(str(tiny.model_path)), str(tiny.path / "openvino/model.xml"),
                  compress_to_fp16=False)
    files = {"xml": file_entry(tiny.path, "openvino/model.xml"), "bin": file_entry(tiny.path, "openvino/model.bin")}
    art = Artifact(name="openvino-fp32", format="openvino-ir", backend="openvino", precision="fp32", files=files,
                   options={"device": "CPU", "INFERENCE_PRECISION_HINT": "f32"})
    m = tiny.manifest
    tiny.write_manifest(dataclasses.replace(m, artifacts=(*m.artifacts, art), default_artifact=art.name))
    return tiny


def test_ir_bundle_swapped_after_the_hash_check_does_not_run(make_bundle, swap_after_verify):
    """Rename-exchange of the bundle directory after verification: OpenVINO runs the checked xml + bin."""
    import tlc_runtime

    checked, attacker = _ir_bundle(make_bundle, "checked", 0), _ir_bundle(make_bundle, "attacker", 1)
    swap_after_verify(checked.path, attacker.path)
    clf = tlc_runtime.load(checked.path, backend="openvino")
    assert clf.info.backend == "openvino" and clf.artifact_name == "openvino-fp32"
    inputs = checked.golden_inputs
    np.testing.assert_allclose(clf.predict_logits(inputs), checked.reference_logits(inputs), rtol=1e-4, atol=1e-4)
