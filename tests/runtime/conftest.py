"""Tiny but real tlc bundles built without torch: an onnx.helper graph + manifest + golden.npz.

The model is a linear classifier on raw pixels: Cast → ×(1/hi) → −0.5 → Flatten → MatMul W → +b.
``TinyBundle.reference_logits`` computes the same thing in numpy (float64), so tests compare the
runtime against an independent implementation, not against itself.
"""

from __future__ import annotations

import dataclasses
import os
import struct
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from tlc_runtime.integrity import file_entry
from tlc_runtime.manifest import (
    MANIFEST_NAME,
    SCHEMA_VERSION,
    Artifact,
    GoldenSet,
    InputSpec,
    Manifest,
    OutputSpec,
    Preprocessing,
    TargetInfo,
    TaskSpec,
    read_manifest,
)

CLASSES = ("normal", "bacterial", "viral")


@dataclass
class TinyBundle:
    path: Path
    weights: np.ndarray  # (H*W*C, K) float32
    bias: np.ndarray     # (K,) float32
    scale: float         # 1 / value_range hi
    spec: InputSpec
    golden_inputs: np.ndarray
    task_weights: np.ndarray | None = None  # (H*W*C, K_view) for the "view" task's output ``task_view``

    def reference_task_logits(self, batch: np.ndarray) -> np.ndarray:
        """Numpy float64 logits of the second task (``task_view``) on an N×H×W×C graph-dtype batch."""
        x = batch.astype(np.float64) * self.scale - 0.5
        return x.reshape(len(x), -1) @ self.task_weights.astype(np.float64)

    def reference_logits(self, batch: np.ndarray) -> np.ndarray:
        """Numpy float64 forward pass of the graph on an N×H×W×C graph-dtype batch."""
        x = batch.astype(np.float64) * self.scale - 0.5
        return x.reshape(len(x), -1) @ self.weights.astype(np.float64) + self.bias

    @property
    def manifest(self) -> Manifest:
        return read_manifest(self.path)

    def write_manifest(self, manifest: Manifest) -> None:
        (self.path / MANIFEST_NAME).write_text(manifest.to_json(), encoding="utf-8")

    def rehash(self) -> None:
        """Re-record every file's sha256 (simulates a bundle whose content changed *and* was re-signed)."""
        m = self.manifest
        entry = lambda e: file_entry(self.path, e.path)  # noqa: E731
        arts = tuple(dataclasses.replace(a, files={r: entry(e) for r, e in a.files.items()}) for a in m.artifacts)
        golden = dataclasses.replace(m.golden, file=entry(m.golden.file))
        self.write_manifest(dataclasses.replace(m, artifacts=arts, golden=golden))

    @property
    def model_path(self) -> Path:
        return self.path / "model.onnx"


def tiny_onnx(path: Path, spec: InputSpec, weights: np.ndarray, bias: np.ndarray, scale: float,
              batch1_only: bool = False, score_output: bool = False, task_weights: np.ndarray | None = None) -> None:
    """Write the linear-classifier graph; ``batch1_only`` reshapes to [1, -1] so batches > 1 fail at run time;
    ``score_output`` adds a second output ``score`` = each row's largest logit (N,), listed first;
    ``task_weights`` adds the output ``task_view`` = flat pixels @ task_weights (a second task's logits)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    elem = TensorProto.UINT8 if spec.dtype == "uint8" else TensorProto.FLOAT
    x = helper.make_tensor_value_info(spec.name, elem, ["N", spec.height, spec.width, spec.channels])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", weights.shape[1]])
    inits = [numpy_helper.from_array(np.array(scale, np.float32), "scale"),
             numpy_helper.from_array(np.array(0.5, np.float32), "half"),
             numpy_helper.from_array(weights.astype(np.float32), "W"),
             numpy_helper.from_array(bias.astype(np.float32), "b")]
    if batch1_only:
        inits.append(numpy_helper.from_array(np.array([1, -1], np.int64), "one_row"))
        flatten = helper.make_node("Reshape", ["centred", "one_row"], ["flat"])
    else:
        flatten = helper.make_node("Flatten", ["centred"], ["flat"], axis=1)
    nodes = [helper.make_node("Cast", [spec.name], ["xf"], to=TensorProto.FLOAT),
             helper.make_node("Mul", ["xf", "scale"], ["scaled"]),
             helper.make_node("Sub", ["scaled", "half"], ["centred"]),
             flatten,
             helper.make_node("MatMul", ["flat", "W"], ["mm"]),
             helper.make_node("Add", ["mm", "b"], ["logits"])]
    outputs = [y]
    if score_output:
        nodes.append(helper.make_node("ReduceMax", ["logits"], ["score"], keepdims=0, axes=[1]))
        outputs.insert(0, helper.make_tensor_value_info("score", TensorProto.FLOAT, ["N"]))
    if task_weights is not None:
        inits.append(numpy_helper.from_array(task_weights.astype(np.float32), "W_view"))
        nodes.append(helper.make_node("MatMul", ["flat", "W_view"], ["task_view"]))
        outputs.append(helper.make_tensor_value_info("task_view", TensorProto.FLOAT, ["N", task_weights.shape[1]]))
    graph = helper.make_graph(nodes, "tiny_linear", [x], outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="tlc-tests")
    model.ir_version = 9
    onnx.checker.check_model(model)
    onnx.save(model, path)


def build_bundle(root: Path, *, channels: int = 1, height: int = 8, width: int = 8, bit_depth: int = 8,
                 classes: tuple[str, ...] = CLASSES, golden_count: int = 16, artifact_backend: str = "onnxruntime",
                 batch1_only: bool = False, seed: int = 0, score_output: bool = False,
                 view_classes: tuple[str, ...] | None = None) -> TinyBundle:
    """Write a complete bundle directory under ``root`` and return its handle; ``view_classes`` makes it a
    multi-task bundle (primary task "finding", second task "view" with these classes)."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    dtype = "uint8" if bit_depth <= 8 else "float32"
    hi = float(2 ** bit_depth - 1)
    spec = InputSpec(name="pixels", height=height, width=width, channels=channels, dtype=dtype)
    prep = Preprocessing(resize="antialias-bilinear", value_range=(0.0, hi), mean=(0.5,) * 3, std=(0.25,) * 3,
                         channel_rule="replicate" if channels == 1 else "rgb", source_bit_depth=bit_depth)
    dim = height * width * channels
    weights = (rng.standard_normal((dim, len(classes))) * 6.0 / np.sqrt(dim)).astype(np.float32)
    bias = rng.standard_normal(len(classes)).astype(np.float32) * 0.1
    task_weights = None if view_classes is None else \
        (rng.standard_normal((dim, len(view_classes))) * 6.0 / np.sqrt(dim)).astype(np.float32)
    tiny_onnx(root / "model.onnx", spec, weights, bias, 1.0 / hi, batch1_only, score_output, task_weights)
    bundle = TinyBundle(root, weights, bias, 1.0 / hi, spec, np.empty(0), task_weights)
    golden_inputs = rng.integers(0, int(hi) + 1, (golden_count, height, width, channels)).astype(dtype)
    bundle.golden_inputs = golden_inputs
    reference = bundle.reference_logits(golden_inputs).astype(np.float32)
    extras = {"out_score": reference.max(axis=1)} if score_output else {}
    outputs = (OutputSpec(), *([OutputSpec(name="score", activation=None, kind="score")] if score_output else []))
    tasks = None
    if view_classes is not None:
        extras["out_task_view"] = bundle.reference_task_logits(golden_inputs).astype(np.float32)
        outputs = (*outputs, OutputSpec(name="task_view", activation=None, kind="score"))
        tasks = (TaskSpec("finding", classes, "logits"), TaskSpec("view", view_classes, "task_view"))
    np.savez(root / "golden.npz", inputs=golden_inputs, logits=reference, **extras)
    artifact = Artifact(name="onnx-fp32", format="onnx", backend=artifact_backend, precision="fp32",
                        files={"model": file_entry(root, "model.onnx")})
    manifest = Manifest(
        schema_version=SCHEMA_VERSION, model_name="tiny-linear", arch="linear", class_names=classes, input=spec,
        preprocessing=prep, outputs=outputs, artifacts=(artifact,), default_artifact="onnx-fp32",
        target=TargetInfo(name="x86-cpu", backend=artifact_backend, device="cpu", precision="fp32"),
        golden=GoldenSet(file=file_entry(root, "golden.npz"), count=golden_count, atol_prob=1e-4,
                         atol_outputs={name: 1e-4 for name in (o.name for o in outputs[1:])}),
        tasks=tasks,
    )
    bundle.write_manifest(manifest)
    return bundle


@pytest.fixture
def make_bundle(tmp_path: Path):
    """Factory: ``make_bundle(name="b", **build_bundle_kwargs) -> TinyBundle`` in a fresh directory."""
    def make(name: str = "bundle", **kwargs) -> TinyBundle:
        return build_bundle(tmp_path / name, **kwargs)
    pytest.importorskip("onnx")
    return make


@pytest.fixture(scope="session")
def grey_bundle(tmp_path_factory: pytest.TempPathFactory) -> TinyBundle:
    """Shared read-only 8×8 grey uint8 bundle (do not modify it in a test: use make_bundle)."""
    pytest.importorskip("onnx")
    return build_bundle(tmp_path_factory.mktemp("grey") / "bundle")


@pytest.fixture(scope="session")
def grey_clf(grey_bundle: TinyBundle):
    """The shared grey bundle loaded on onnxruntime CPU with one thread."""
    pytest.importorskip("onnxruntime")
    import tlc_runtime

    return tlc_runtime.load(grey_bundle.path, backend="onnxruntime", device="cpu",
                            options={"intra_op_num_threads": 1})


class ImageFiles:
    """Writes hostile image files into one directory, cheaply (no file's pixels are held in memory)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def png(self, name: str, width: int, height: int, bit_depth: int, color_type: int,
            rows: Iterable[bytes]) -> Path:
        """A PNG from raw rows (filter byte added here): also kinds Pillow cannot write (48-bit RGB)."""
        def chunk(kind: bytes, data: bytes) -> bytes:
            return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

        packer = zlib.compressobj()
        idat = b"".join(packer.compress(b"\x00" + row) for row in rows) + packer.flush()
        header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
        path = self.root / name
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat)
                         + chunk(b"IEND", b""))
        return path

    def png_bomb(self, name: str = "bomb.png", side: int = 13_000) -> Path:
        """The decompression bomb of issue #9: a side×side black 1-bit PNG, a few hundred KB on disk."""
        row = bytes((side + 7) // 8)
        return self.png(name, side, side, 1, 0, (row for _ in range(side)))

    def png_rgb48(self, name: str = "rgb48.png") -> Path:
        """A small 48-bit RGB PNG (Pillow would cut it to 8 bits)."""
        pixels = np.random.default_rng(0).integers(0, 65536, (5, 4, 3)).astype(">u2")
        return self.png(name, 4, 5, 16, 2, (row.tobytes() for row in pixels))

    def npy_header(self, name: str, shape: tuple[int, ...], dtype: str = "<u1") -> Path:
        """A .npy whose header claims ``shape`` but which holds no pixel data."""
        path = self.root / name
        with open(path, "wb") as fp:
            np.lib.format.write_array_header_1_0(fp, {"descr": dtype, "fortran_order": False, "shape": shape})
        return path

    def zero_bytes(self, name: str = "empty.npy") -> Path:
        path = self.root / name
        path.write_bytes(b"")
        return path

    def npy(self, name: str, array: np.ndarray) -> Path:
        np.save(self.root / name, array)
        return self.root / name


# Files that must each give a one-line InputError from predict (and exit 2 from `tlc predict`).
HOSTILE_FILES: dict[str, Callable[[ImageFiles], Path]] = {
    "zero-byte npy": lambda f: f.zero_bytes("empty.npy"),
    "npy header bomb": lambda f: f.npy_header("huge.npy", (200_000, 200_000)),
    "png bomb": lambda f: f.png_bomb("bomb.png"),
    "48-bit png": lambda f: f.png_rgb48("rgb48.png"),
    "float64 1e300": lambda f: f.npy("big.npy", np.full((8, 8), 1e300)),
    "float below range": lambda f: f.npy("negative.npy", np.full((8, 8), -1.0, np.float32)),
}


@pytest.fixture
def image_files(tmp_path: Path) -> ImageFiles:
    return ImageFiles(tmp_path)


@pytest.fixture(params=list(HOSTILE_FILES))
def hostile_file(request: pytest.FixtureRequest, image_files: ImageFiles) -> Path:
    """Each of HOSTILE_FILES in turn, written to tmp_path."""
    return HOSTILE_FILES[request.param](image_files)


@pytest.fixture
def swap_after_verify(monkeypatch) -> Callable[[Path, Path], None]:
    """swap_after_verify(checked, attacker): rename-exchange the bundle dirs right after load() verifies."""

    def arm(checked: Path, attacker: Path) -> None:
        from tlc_runtime import loader

        verify = loader.verify_bundle

        def verify_then_swap(*args, **kwargs):
            result = verify(*args, **kwargs)
            os.rename(checked, checked.with_name(checked.name + "-was-checked"))
            os.rename(attacker, checked)
            return result

        monkeypatch.setattr(loader, "verify_bundle", verify_then_swap)

    return arm
