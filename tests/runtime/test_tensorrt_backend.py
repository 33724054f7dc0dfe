"""TensorRT backend: engine compatibility from the manifest alone, rebuild-and-cache decisions, and
(only where tensorrt and a GPU exist) a real engine build, load and predict."""

from __future__ import annotations

import gc
import importlib.util
import itertools
import subprocess
import sys
import textwrap
import threading
import types
import weakref
from pathlib import Path

import numpy as np
import onnx
import pytest
import tlc_runtime
from onnx import TensorProto, helper, numpy_helper
from tlc_runtime import loader
from tlc_runtime.backends import get_backend, trt_cuda
from tlc_runtime.backends import tensorrt as trt_backend
from tlc_runtime.backends.tensorrt import TensorRtBackend, check_engine_compat
from tlc_runtime.backends.trt_builder import BuildSettings, version_in_range
from tlc_runtime.backends.trt_cuda import GpuInfo
from tlc_runtime.errors import (
    BackendUnavailableError,
    BundleError,
    EngineIncompatibleError,
    InferenceError,
    TlcRuntimeError,
)
from tlc_runtime.integrity import file_entry, read_artifact
from tlc_runtime.manifest import Artifact, InputSpec

HAS_TRT = importlib.util.find_spec("tensorrt") is not None
SPEC = InputSpec(name="pixels", height=8, width=8, channels=1, dtype="uint8")
BUILT = {"tensorrt_version": "10.3.0.30", "compute_capability": "8.7"}


# --- engine compatibility, decided from the manifest without tensorrt ---------------------------

def test_same_release_and_sm_is_compatible() -> None:
    check_engine_compat(BUILT, "10.3.0.30", "8.7")
    check_engine_compat(BUILT, "10.3.0.26", "8.7")  # same release, other build number
    check_engine_compat({"tensorrt_version": "10.3", "compute_capability": "8.7"}, "10.3.0.30", "8.7")


@pytest.mark.parametrize(("version", "cc"), [("10.4.0", "8.7"), ("8.6.1", "8.7"), ("10.3.1", "8.7"),
                                             ("10.3.0.30", "7.2"), ("10.3.0.30", "8.6")])
def test_other_release_or_gpu_is_refused_with_both_sides_named(version: str, cc: str) -> None:
    with pytest.raises(EngineIncompatibleError) as info:
        check_engine_compat(BUILT, version, cc)
    message = str(info.value)
    assert "TensorRT 10.3.0.30 for SM 8.7" in message and f"TensorRT {version} / SM {cc}" in message
    assert "rebuild" in message


def test_engine_without_a_version_record_is_refused() -> None:
    with pytest.raises(EngineIncompatibleError, match="does not record"):
        check_engine_compat({"compute_capability": "8.7"}, "10.3.0", "8.7")


def test_version_range() -> None:
    assert version_in_range("10.3.0.30", "10.3", None) and version_in_range("8.5.2.2", "8.5", "8.5")
    assert not version_in_range("8.6.1", "8.5", "8.5") and not version_in_range("8.2.1", "8.5", None)


def test_recorded_settings_are_validated() -> None:
    with pytest.raises(BundleError, match="tensorrt_build"):
        BuildSettings.from_options({})
    bad = {"tensorrt_build": {"input_name": "pixels", "min_shape": [4, 8, 8, 1], "opt_shape": [1, 8, 8, 1],
                              "max_shape": [8, 8, 8, 1], "precision": "fp16"}}
    with pytest.raises(BundleError, match="min <= opt <= max"):
        BuildSettings.from_options(bad)


# --- backend without tensorrt ------------------------------------------------------------------

def test_backend_is_registered_with_its_formats() -> None:
    backend = get_backend("tensorrt")
    assert backend is TensorRtBackend and backend.formats == ("tensorrt-engine", "onnx")


@pytest.mark.skipif(HAS_TRT, reason="tensorrt is installed here")
def test_without_tensorrt_no_devices_and_a_clear_error(tmp_path: Path) -> None:
    assert TensorRtBackend.devices() == ()
    with pytest.raises(BackendUnavailableError, match="pip install tensorrt"):
        TensorRtBackend.open(engine_artifact(tmp_path, BUILT)[0], {}, SPEC)


def test_module_imports_without_torch_tlc_or_tensorrt() -> None:
    code = textwrap.dedent("""
        import sys
        sys.modules["torch"] = None
        sys.modules["tlc"] = None
        import tlc_runtime.backends.tensorrt
        assert "tensorrt" not in sys.modules and "cuda" not in sys.modules
    """)
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# --- available() means "can run here": the package, a TensorRT it supports and a CUDA GPU -----------

def _clear_gpu_probe() -> None:
    if hasattr(trt_cuda, "gpu_probe"):
        trt_cuda.gpu_probe.cache_clear()


@pytest.fixture
def trt_installed(tmp_path: Path, monkeypatch):
    """A stub tensorrt package importable from disk and CUDA bindings reporting ``state.devices`` GPUs
    (0: cudaErrorNoDevice, as on a CPU host with ``tlc[tensorrt]``); ``state.install(text)`` rewrites it."""
    state = types.SimpleNamespace(devices=0, asked=0)
    pkg = tmp_path / "stub" / "tensorrt"
    pkg.mkdir(parents=True)

    def install(text: str) -> None:
        (pkg / "__init__.py").write_text(text)
        sys.modules.pop("tensorrt", None)

    def device_count():
        state.asked += 1
        return (100, 0) if state.devices == 0 else (0, state.devices)

    state.install = install
    install('__version__ = "10.3.0.30"\n')
    monkeypatch.syspath_prepend(str(tmp_path / "stub"))
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # restores the real entry (or none) afterwards
    monkeypatch.delitem(sys.modules, "tensorrt")
    monkeypatch.setattr(trt_cuda, "cudart", lambda: types.SimpleNamespace(cudaGetDeviceCount=device_count))
    _clear_gpu_probe()
    yield state
    _clear_gpu_probe()


def test_tensorrt_without_a_gpu_is_not_available(trt_installed) -> None:
    assert importlib.util.find_spec("tensorrt") is not None  # the package imports here...
    assert not TensorRtBackend.available() and TensorRtBackend.devices() == ()  # ...but cannot run
    assert "no CUDA GPU" in TensorRtBackend.unavailable_reason()
    trt_installed.devices = 1
    _clear_gpu_probe()
    assert TensorRtBackend.available() and TensorRtBackend.devices() == ("cuda",)
    assert TensorRtBackend.unavailable_reason() is None


def test_the_gpu_probe_runs_once_and_never_raises(trt_installed, monkeypatch) -> None:
    for _ in range(3):
        TensorRtBackend.available()
    assert trt_installed.asked == 1  # cached: choosing a backend stays cheap

    def broken():
        raise RuntimeError("libcuda.so: cannot open shared object file")

    monkeypatch.setattr(trt_cuda, "cudart", lambda: types.SimpleNamespace(cudaGetDeviceCount=broken))
    _clear_gpu_probe()
    assert not TensorRtBackend.available() and "libcuda.so" in TensorRtBackend.unavailable_reason()


@pytest.mark.parametrize(("stub", "reason"), [
    ('__version__ = "8.4.3.1"\n', "8.4.3.1 is too old"),
    ('raise ImportError("libnvinfer.so.10: cannot open shared object file")\n', "libnvinfer.so.10"),
])
def test_tensorrt_that_cannot_run_here_is_not_available(trt_installed, stub: str, reason: str) -> None:
    trt_installed.devices = 1
    trt_installed.install(stub)
    assert not TensorRtBackend.available()  # and no exception escapes
    assert reason in TensorRtBackend.unavailable_reason()


def test_tensorrt_artifact_runs_on_onnxruntime_where_no_gpu_is(trt_installed, make_bundle) -> None:
    pytest.importorskip("onnxruntime")
    from tlc_runtime.backends.onnxruntime import OnnxRuntimeBackend

    bundle = make_bundle(artifact_backend="tensorrt")  # a jetson bundle's TensorRT-ready ONNX
    assert loader.choose_backend(bundle.manifest.artifact()) is OnnxRuntimeBackend
    clf = tlc_runtime.load(bundle.path, options={"intra_op_num_threads": 1})
    assert clf.info.backend == "onnxruntime" and clf.check().passed


# --- open(): refuse, rebuild, cache (fake tensorrt module and GPU; real decision logic) ----------

def tiny_onnx(path: Path, input_type: int = TensorProto.UINT8) -> Path:
    """pixels N×8×8×1 → Cast → Transpose → Conv → GlobalAveragePool → Flatten → Gemm → logits (3)."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(size=(4, 1, 3, 3)).astype(np.float32) * 0.05, "w"),
             numpy_helper.from_array(rng.normal(size=(3, 4)).astype(np.float32), "fc_w"),
             numpy_helper.from_array(np.zeros(3, np.float32), "fc_b")]
    nodes = [helper.make_node("Cast", ["pixels"], ["x"], to=TensorProto.FLOAT),
             helper.make_node("Transpose", ["x"], ["xt"], perm=[0, 3, 1, 2]),
             helper.make_node("Conv", ["xt", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("GlobalAveragePool", ["c"], ["g"]),
             helper.make_node("Flatten", ["g"], ["f"]),
             helper.make_node("Gemm", ["f", "fc_w", "fc_b"], ["logits"], transB=1)]
    graph = helper.make_graph(nodes, "t", [helper.make_tensor_value_info("pixels", input_type, ["n", 8, 8, 1])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", 3])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def engine_artifact(bundle: Path, record: dict, with_onnx: bool = False) -> tuple[Artifact, dict[str, bytes]]:
    (bundle / "model.engine").write_bytes(b"engine built elsewhere")
    files = {"engine": file_entry(bundle, "model.engine")}
    if with_onnx:
        tiny_onnx(bundle / "model.onnx")
        files["model"] = file_entry(bundle, "model.onnx")
    settings = BuildSettings(input_name="pixels", min_shape=(1, 8, 8, 1), opt_shape=(1, 8, 8, 1),
                             max_shape=(4, 8, 8, 1), precision="fp16")
    art = Artifact(name="tensorrt-fp16", format="tensorrt-engine", backend="tensorrt", precision="fp16",
                   files=files, options={**record, "tensorrt_build": settings.to_dict()})
    return art, read_artifact(bundle, art)


@pytest.fixture
def fake_device(monkeypatch):
    """A fake tensorrt 10.3.0.30 and an SM 8.7 GPU; records deserialized bytes and engine builds."""
    seen = types.SimpleNamespace(deserialized=[], builds=[], gpu=GpuInfo("Orin", "8.7", 8000), refuse={})

    class Runtime:
        def __init__(self, _logger) -> None:
            pass

        def deserialize_cuda_engine(self, data: bytes):
            seen.deserialized.append(bytes(data))
            refusal = seen.refuse.get(bytes(data))  # None (TensorRT's "cannot load") or an exception
            if isinstance(refusal, Exception):
                raise refusal
            return None if bytes(data) in seen.refuse else object()

    def logger(_level: int) -> None:
        return None

    logger.WARNING = 2
    fake = types.SimpleNamespace(__version__="10.3.0.30", Runtime=Runtime, Logger=logger)
    monkeypatch.setitem(sys.modules, "tensorrt", fake)
    from tlc_runtime.backends import trt_cuda
    monkeypatch.setattr(trt_cuda, "gpu_count", lambda: 1)
    monkeypatch.setattr(trt_cuda, "gpu_info", lambda _d=0: seen.gpu)

    def build(trt, onnx_path, settings, timing_cache=None, log=None):
        seen.builds.append((Path(onnx_path).name, settings, timing_cache))
        return b"engine for " + seen.gpu.name.encode(), b"timing"

    monkeypatch.setattr(trt_backend, "build_serialized_engine", build)
    monkeypatch.setattr(trt_backend, "TensorRtSession", lambda trt, rt, engine, spec, info, **_: info)
    return seen


def test_compatible_engine_is_loaded_from_the_bundle(tmp_path: Path, fake_device) -> None:
    art, files = engine_artifact(tmp_path, BUILT)
    info = TensorRtBackend.open(art, files, SPEC, options={"cache_dir": tmp_path / "cache"})
    assert fake_device.deserialized == [b"engine built elsewhere"] and fake_device.builds == []
    assert info.details["engine_source"] == "bundle" and info.device == "cuda" and info.precision == "fp16"


def test_incompatible_engine_is_refused_before_deserializing(tmp_path: Path, fake_device) -> None:
    art, files = engine_artifact(tmp_path, {"tensorrt_version": "8.6.1", "compute_capability": "8.7"})
    with pytest.raises(EngineIncompatibleError, match="TensorRT 8.6.1"):
        TensorRtBackend.open(art, files, SPEC, options={"cache_dir": tmp_path / "cache"})
    assert fake_device.deserialized == []


def test_incompatible_engine_is_rebuilt_from_the_onnx_and_cached(tmp_path: Path, fake_device) -> None:
    art, files = engine_artifact(tmp_path, {"tensorrt_version": "10.3.0.30", "compute_capability": "7.2"},
                                 with_onnx=True)
    cache = tmp_path / "cache"
    first = TensorRtBackend.open(art, files, SPEC, options={"cache_dir": cache})
    assert first.details["engine_source"] == "built" and fake_device.deserialized == [b"engine for Orin"]
    (name, settings, _timing), = fake_device.builds
    assert name == "model.onnx" and settings == BuildSettings.from_options(art.options)
    again = TensorRtBackend.open(art, files, SPEC, options={"cache_dir": cache})
    assert again.details["engine_source"] == "cache" and len(fake_device.builds) == 1
    fake_device.gpu = GpuInfo("Other Orin", "8.7", 8000)  # another GPU: its own cache entry
    assert TensorRtBackend.open(art, files, SPEC, options={"cache_dir": cache}).details["engine_source"] == "built"
    assert fake_device.builds[-1][2] == b"timing"  # the device's timing cache seeds the next build
    with pytest.raises(EngineIncompatibleError):
        TensorRtBackend.open(art, files, SPEC, options={"cache_dir": tmp_path / "c2", "rebuild": False})


def test_without_a_cache_dir_the_engine_is_not_kept(tmp_path: Path, fake_device, monkeypatch) -> None:
    monkeypatch.delenv("TLC_RUNTIME_CACHE", raising=False)
    art, files = engine_artifact(tmp_path, {"tensorrt_version": "10.2.0", "compute_capability": "8.7"},
                                 with_onnx=True)
    sources = [TensorRtBackend.open(art, files, SPEC).details["engine_source"] for _ in range(2)]
    assert sources == ["built", "built"] and len(fake_device.builds) == 2


def test_onnx_artifact_prefers_the_tensorrt_copy(tmp_path: Path, fake_device) -> None:
    tiny_onnx(tmp_path / "model.onnx")
    tiny_onnx(tmp_path / "model.trt.onnx", TensorProto.FLOAT)
    files = {"model": file_entry(tmp_path, "model.onnx"), "tensorrt_onnx": file_entry(tmp_path, "model.trt.onnx")}
    art = Artifact(name="tensorrt-fp32", format="onnx", backend="tensorrt", precision="fp32", files=files)
    TensorRtBackend.open(art, read_artifact(tmp_path, art), SPEC,
                         options={"cache_dir": tmp_path / "cache"})
    (name, settings, _), = fake_device.builds
    assert name == "model.trt.onnx" and settings.max_shape == (8, 8, 8, 1)  # defaults from the input spec


@pytest.mark.parametrize("refusal", [None, RuntimeError("Serialization assertion failed")])
def test_bundle_engine_that_fails_to_deserialize_is_rebuilt_from_the_onnx(tmp_path: Path, fake_device,
                                                                          refusal) -> None:
    art, files = engine_artifact(tmp_path, BUILT, with_onnx=True)  # the version check passes
    fake_device.refuse[b"engine built elsewhere"] = refusal
    lines: list[str] = []
    with pytest.warns(RuntimeWarning, match="could not deserialize the bundle's engine"):
        info = TensorRtBackend.open(art, files, SPEC, options={"cache_dir": tmp_path / "cache", "log": lines.append})
    assert info.details["engine_source"] == "built"
    assert fake_device.deserialized == [b"engine built elsewhere", b"engine for Orin"]
    (name, settings, _), = fake_device.builds
    assert name == "model.onnx" and settings == BuildSettings.from_options(art.options)
    assert any("bundled ONNX" in line for line in lines)


def test_bundle_engine_that_fails_to_deserialize_without_onnx_is_a_clear_error(tmp_path: Path,
                                                                               fake_device) -> None:
    art, files = engine_artifact(tmp_path, BUILT)
    fake_device.refuse[b"engine built elsewhere"] = None
    with pytest.raises(EngineIncompatibleError, match="could not deserialize"):
        TensorRtBackend.open(art, files, SPEC, options={"cache_dir": tmp_path / "cache"})
    art, files = engine_artifact(tmp_path, BUILT, with_onnx=True)
    with pytest.raises(EngineIncompatibleError, match="could not deserialize"):
        TensorRtBackend.open(art, files, SPEC, options={"cache_dir": tmp_path / "cache", "rebuild": False})
    assert fake_device.builds == []


def test_cpu_device_is_refused(tmp_path: Path, fake_device) -> None:
    art, files = engine_artifact(tmp_path, BUILT)
    with pytest.raises(BackendUnavailableError, match="cuda"):
        TensorRtBackend.open(art, files, SPEC, device="cpu")


# --- real TensorRT on a real GPU (skipped where either is missing) -----------------------------

@pytest.mark.tensorrt
@pytest.mark.gpu
def test_real_engine_build_load_and_predict(tmp_path: Path) -> None:
    reason = TensorRtBackend.unavailable_reason()  # the package, TensorRT 8.5+ and a GPU; never raises
    if reason is not None:
        pytest.skip(f"needs TensorRT on a CUDA GPU: {reason}")
    ort = pytest.importorskip("onnxruntime", reason="the reference runs on onnxruntime")
    files = {"model": file_entry(tmp_path, tiny_onnx(tmp_path / "model.onnx").name)}
    settings = BuildSettings(input_name="pixels", min_shape=(1, 8, 8, 1), opt_shape=(2, 8, 8, 1),
                             max_shape=(4, 8, 8, 1), precision="fp32")
    art = Artifact(name="tensorrt-fp32", format="onnx", backend="tensorrt", precision="fp32", files=files,
                   options={"tensorrt_build": settings.to_dict()})
    session = TensorRtBackend.open(art, read_artifact(tmp_path, art), SPEC,
                                   options={"cache_dir": tmp_path / "cache"})
    batch = np.random.default_rng(0).integers(0, 256, size=(6, 8, 8, 1), dtype=np.uint8)  # > max batch: chunks
    reference = ort.InferenceSession(str(tmp_path / "model.onnx")).run(None, {"pixels": batch})[0]
    np.testing.assert_allclose(session.infer(batch), reference, rtol=1e-3, atol=1e-3)
    assert session.info.details["engine_source"] == "built"


# --- the Session on a fake engine and fake device memory (chunking, padding, host cast, threads) --

class _Memory:
    """Host bytearrays standing in for device buffers, addressed by integer 'pointers'."""
    buffers: dict[int, bytearray] = {}
    pointers = itertools.count(1)

    def __init__(self, nbytes: int) -> None:
        self.nbytes, self.ptr = nbytes, next(_Memory.pointers)
        _Memory.buffers[self.ptr] = bytearray(nbytes)

    def upload(self, host: np.ndarray, _stream) -> None:
        _Memory.buffers[self.ptr][:host.nbytes] = host.tobytes()

    def download(self, host: np.ndarray, _stream) -> None:
        host.view(np.uint8).reshape(-1)[:] = np.frombuffer(_Memory.buffers[self.ptr][:host.nbytes], np.uint8)

    def free(self) -> None:
        _Memory.buffers.pop(self.ptr, None)


class _Stream:
    handle = 7

    def synchronize(self) -> None:
        pass

    def destroy(self) -> None:
        pass


class _Engine:
    """Engine with input pixels (float32, profile batch 2..4) and logits = mean(pixels) * (1, 2, 3)."""

    num_io_tensors = 2
    calls: list = []
    live: weakref.WeakSet = weakref.WeakSet()  # execution contexts not yet released

    def get_tensor_name(self, i: int) -> str:
        return ["pixels", "logits"][i]

    def get_tensor_mode(self, name: str) -> str:
        return "IN" if name == "pixels" else "OUT"

    def get_tensor_dtype(self, name: str) -> str:
        return "float32"

    def get_tensor_shape(self, name: str) -> tuple:
        return (-1, 8, 8, 1) if name == "pixels" else (-1, 3)

    def get_tensor_profile_shape(self, name: str, profile: int) -> tuple:
        return (2, 8, 8, 1), (2, 8, 8, 1), (4, 8, 8, 1)

    def create_execution_context(self):
        engine = self

        class Context:
            def __init__(self) -> None:
                self.addr, self.shape = {}, None

            def set_tensor_address(self, name: str, ptr: int) -> None:
                self.addr[name] = ptr

            def set_input_shape(self, name: str, shape: tuple) -> bool:
                self.shape = shape
                return True

            def execute_async_v3(self, handle: int) -> bool:
                n = self.shape[0]
                engine.calls.append(n)
                x = np.frombuffer(_Memory.buffers[self.addr["pixels"]][:n * 64 * 4], np.float32).reshape(n, -1)
                out = (x.mean(axis=1, keepdims=True) * np.array([1, 2, 3], np.float32)).astype(np.float32)
                _Memory.buffers[self.addr["logits"]][:out.nbytes] = out.tobytes()
                return handle == 7

        context = Context()
        self.live.add(context)
        return context


@pytest.fixture
def fake_session(monkeypatch):
    """A TensorRtSession over _Engine, with _Memory as device memory (emptied before the test)."""
    from tlc_runtime.backends import trt_session
    from tlc_runtime.backends.base import SessionInfo

    monkeypatch.setattr(trt_session, "DeviceBuffer", _Memory)
    monkeypatch.setattr(trt_session, "Stream", _Stream)
    _Memory.buffers.clear()
    fake_trt = types.SimpleNamespace(TensorIOMode=types.SimpleNamespace(INPUT="IN"), nptype=np.dtype)
    return trt_session.TensorRtSession(fake_trt, None, _Engine(), SPEC, SessionInfo("tensorrt", "cuda", "fp32"))


def _live_contexts() -> int:
    gc.collect()
    return len(_Engine.live)


def test_thread_churn_does_not_grow_gpu_memory(fake_session) -> None:
    batch = np.random.default_rng(1).integers(0, 256, size=(3, 8, 8, 1), dtype=np.uint8)
    expected = fake_session.infer(batch)
    before = (_live_contexts(), len(_Memory.buffers))
    for _ in range(40):  # short-lived threads, one after another (a web server's worker churn)
        worker = threading.Thread(target=lambda: np.testing.assert_allclose(fake_session.infer(batch), expected))
        worker.start()
        worker.join()
    assert (_live_contexts(), len(_Memory.buffers)) == before == (1, 2)
    results: list[np.ndarray] = []
    for _ in range(5):  # bursts of concurrent short-lived threads: bounded by the pool, not the thread count
        workers = [threading.Thread(target=lambda: results.append(fake_session.infer(batch))) for _ in range(12)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    assert len(results) == 60 and all(np.array_equal(r, expected) for r in results)  # the waiting calls ran too
    assert 1 <= _live_contexts() <= fake_session.max_contexts < 12
    assert len(_Memory.buffers) == 2 * _live_contexts()
    fake_session.close()
    assert _live_contexts() == 0 and _Memory.buffers == {}


def test_a_failed_call_frees_its_context_and_a_closed_session_refuses(fake_session, monkeypatch) -> None:
    batch = np.zeros((2, 8, 8, 1), np.uint8)
    fake_session.infer(batch)
    monkeypatch.setattr(_Stream, "handle", 8)  # the fake engine fails execute_async_v3 on this stream
    with pytest.raises(InferenceError, match="execute_async_v3 failed"):
        fake_session.infer(batch)
    assert _live_contexts() == 0 and _Memory.buffers == {}  # not lent again in an unknown state
    monkeypatch.setattr(_Stream, "handle", 7)
    assert fake_session.infer(batch).shape == (2, 3) and _live_contexts() == 1
    fake_session.close()
    with pytest.raises(InferenceError, match="closed"):
        fake_session.infer(batch)
    assert _live_contexts() == 0 and _Memory.buffers == {}


@pytest.mark.parametrize("value", [0, -1, 2.0, True, "4"])
def test_max_contexts_must_be_a_positive_integer(tmp_path: Path, fake_device, value) -> None:
    art, files = engine_artifact(tmp_path, BUILT)
    with pytest.raises(TlcRuntimeError, match="max_contexts must be an integer"):
        TensorRtBackend.open(art, files, SPEC, options={"max_contexts": value})
    assert fake_device.deserialized == []  # refused before any engine work


def test_session_chunks_pads_casts_and_is_thread_safe(fake_session) -> None:
    from concurrent.futures import ThreadPoolExecutor

    session = fake_session
    engine = session._engine
    assert (session.min_batch, session.max_batch, session.in_dtype) == (2, 4, np.float32)
    batch = np.random.default_rng(0).integers(0, 256, size=(9, 8, 8, 1), dtype=np.uint8)
    expected = batch.reshape(9, -1).astype(np.float32).mean(1, keepdims=True) * np.array([1, 2, 3], np.float32)
    engine.calls.clear()
    np.testing.assert_allclose(session.infer(batch), expected, rtol=1e-6)
    assert engine.calls == [4, 4, 2]  # chunks of the max batch; the last one (1 image) padded to 2
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda i: session.infer(batch[i:i + 3]), range(6)))
    for i, out in enumerate(results):
        np.testing.assert_allclose(out, expected[i:i + 3], rtol=1e-6)
    assert 1 <= _live_contexts() <= 4  # contexts (and buffers) are reused, not made per call
    session.close()
