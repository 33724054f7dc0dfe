"""Choosing the backend and device, and the ONNX Runtime backend's options."""

from __future__ import annotations

from pathlib import Path

import pytest
import tlc_runtime
from tlc_runtime import loader
from tlc_runtime.backends.onnxruntime import OnnxRuntimeBackend, providers_for
from tlc_runtime.backends.tensorrt import TensorRtBackend

ort = pytest.importorskip("onnxruntime")


def test_onnx_artifact_for_a_missing_backend_runs_on_onnxruntime(make_bundle):
    if TensorRtBackend.available():
        pytest.skip("tensorrt can run here (package and GPU), so auto would pick it")
    bundle = make_bundle(artifact_backend="tensorrt")
    clf = tlc_runtime.load(bundle.path, options={"intra_op_num_threads": 1})
    assert clf.info.backend == "onnxruntime"
    assert clf.check().passed


def test_auto_prefers_the_artifacts_own_backend(grey_bundle):
    art = grey_bundle.manifest.artifact()
    assert loader.candidate_backends(art)[0] == "onnxruntime"
    assert loader.choose_backend(art) is OnnxRuntimeBackend


def test_unknown_backend_name(grey_bundle):
    with pytest.raises(tlc_runtime.BackendUnavailableError, match="unknown backend 'mxnet'.*onnxruntime"):
        tlc_runtime.load(grey_bundle.path, backend="mxnet")


def test_no_installed_backend_says_what_to_install(grey_bundle, monkeypatch):
    monkeypatch.setattr(loader, "_available", lambda cls: False)
    with pytest.raises(tlc_runtime.BackendUnavailableError, match="pip install onnxruntime"):
        tlc_runtime.load(grey_bundle.path)
    with pytest.raises(tlc_runtime.BackendUnavailableError, match="not installed; pip install onnxruntime"):
        tlc_runtime.load(grey_bundle.path, backend="onnxruntime")


def test_unavailable_device_is_refused(grey_bundle):
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("CUDA is available here")
    assert OnnxRuntimeBackend.devices() == ("cpu",)
    with pytest.raises(tlc_runtime.BackendUnavailableError, match="device 'cuda'.*available: cpu"):
        tlc_runtime.load(grey_bundle.path, device="cuda")


def test_bad_option_values_are_refused(grey_bundle):
    with pytest.raises(tlc_runtime.TlcRuntimeError, match="graph_optimization_level 'max'"):
        tlc_runtime.load(grey_bundle.path, options={"graph_optimization_level": "max"})
    with pytest.raises(tlc_runtime.TlcRuntimeError, match="intra_op_num_threads must be"):
        tlc_runtime.load(grey_bundle.path, options={"intra_op_num_threads": -1})
    with pytest.raises(tlc_runtime.TlcRuntimeError, match="max_batch must be"):
        tlc_runtime.load(grey_bundle.path, options={"max_batch": 0})


def test_session_options_are_applied_and_other_backends_keys_ignored(grey_bundle, tmp_path):
    clf = tlc_runtime.load(grey_bundle.path, options={"graph_optimization_level": "disable",
                                                       "intra_op_num_threads": 1, "rebuild": False},
                           cache_dir=tmp_path / "cache", backend=None, device=None)
    assert clf.check().passed
    assert clf.artifact_name == "onnx-fp32" and clf.artifact.format == "onnx"
    assert (tmp_path / "cache").is_dir()


def test_provider_lists_per_device():
    assert providers_for("cpu", "fp32", None) == ["CPUExecutionProvider"]
    assert providers_for("cuda", "fp16", None) == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    name, opts = providers_for("tensorrt", "fp16", "/cache")[0]
    assert name == "TensorrtExecutionProvider"
    assert opts["trt_fp16_enable"] and not opts["trt_int8_enable"]
    assert opts["trt_engine_cache_enable"] and opts["trt_engine_cache_path"] == "/cache"
    assert providers_for("tensorrt", "fp32", "/c")[1:] == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    _, int8 = providers_for("tensorrt", "int8", None)[0]
    assert int8["trt_int8_enable"] and not int8["trt_fp16_enable"] and "trt_engine_cache_enable" not in int8
    with pytest.raises(tlc_runtime.BackendUnavailableError, match="no device 'npu'"):
        providers_for("npu", "fp32", None)


def test_tensorrt_ep_engines_are_cached_per_model_content(make_bundle, monkeypatch, tmp_path):
    """The EP keys its engines by graph structure: same architecture, other weights must not share an engine."""
    seen = []

    def session(model, sess_options=None, providers=None):
        seen.append(Path(providers[0][1]["trt_engine_cache_path"]))
        raise RuntimeError("no GPU in this test")

    monkeypatch.setattr(ort, "get_available_providers", lambda: ["TensorrtExecutionProvider", "CPUExecutionProvider"])
    monkeypatch.setattr(ort, "InferenceSession", session)
    cache = tmp_path / "cache"
    for name, seed in (("a", 0), ("b", 1), ("a-again", 0)):
        with pytest.raises(tlc_runtime.BundleError):
            tlc_runtime.load(make_bundle(name, seed=seed).path, backend="onnxruntime", device="tensorrt",
                             cache_dir=cache)
    assert seen[0] != seen[1] and seen[0] == seen[2]
    assert all(p.is_dir() and cache in p.parents for p in seen)


def test_default_thread_count_is_explicit_so_onnxruntime_does_not_pin_threads(grey_bundle, monkeypatch):
    """Issue #10 item 2: left at 0, ONNX Runtime picks its thread count *and* pins its threads to
    cores, which measured 1.1-1.5× slower at batch 1 on a shared 2-core VM than the same count
    set explicitly (what a hand-written session does). The runtime sets the count itself."""
    from tlc_runtime.backends import onnxruntime as backend

    monkeypatch.setattr(backend, "available_cores", lambda: 3)
    clf = tlc_runtime.load(grey_bundle.path)  # the artifact records intra_op_num_threads 0 (default)
    assert clf.info.details["intra_op_num_threads"] == 3
    assert clf._session._sess.get_session_options().intra_op_num_threads == 3
    clf = tlc_runtime.load(grey_bundle.path, options={"intra_op_num_threads": 1})
    assert clf._session._sess.get_session_options().intra_op_num_threads == 1
    assert clf.info.details["intra_op_num_threads"] == 1


def test_available_cores_counts_physical_cores_this_process_may_use():
    import os

    from tlc_runtime.backends.onnxruntime import available_cores

    cores = available_cores()
    allowed = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert 1 <= cores <= allowed


def test_allow_spinning_reaches_the_session_and_is_validated(grey_bundle):
    """Issue #10 item 2: idle ORT threads spinning cost 2× latency next to another busy process."""
    for value, expected in ((False, "0"), (True, "1")):
        clf = tlc_runtime.load(grey_bundle.path, options={"allow_spinning": value})
        entries = clf._session._sess.get_session_options().get_session_config_entry
        assert entries("session.intra_op.allow_spinning") == expected
        assert clf.check().passed
    with pytest.raises(tlc_runtime.TlcRuntimeError, match="allow_spinning must be true or false"):
        tlc_runtime.load(grey_bundle.path, options={"allow_spinning": "no"})


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads thread affinities from Linux /proc")
def test_runtime_sessions_leave_onnxruntime_threads_unpinned(grey_bundle):
    """The behaviour behind the explicit count: no ORT worker thread is tied to one core."""
    import threading

    import numpy as np

    def affinities() -> dict[str, str]:
        out = {}
        for task in Path("/proc/self/task").iterdir():
            try:
                status = (task / "status").read_text()
            except OSError:  # the thread ended meanwhile
                continue
            out[task.name] = next(line.split()[1] for line in status.splitlines()
                                  if line.startswith("Cpus_allowed_list"))
        return out

    before = affinities()
    clf = tlc_runtime.load(grey_bundle.path)
    clf.predict_logits(np.zeros((2, 8, 8, 1), np.uint8))
    new = {tid: cpus for tid, cpus in affinities().items() if tid not in before}
    process = before[str(threading.get_native_id())]
    assert all(cpus == process for cpus in new.values()), f"pinned ORT threads: {new} (process: {process})"
