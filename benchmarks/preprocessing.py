"""Preprocessing benchmark (issue #11): the runtime's resize against OpenCV, on scanner-sized frames.

Measured in one run, every contender of a case interleaved in one loop (background load hits all alike):

  resize    tlc_runtime's "area-antialias-bilinear" (new bundles) and "antialias-bilinear" (old
            bundles) against OpenCV ``cv2.resize(..., INTER_AREA)`` (default threads and 1 thread),
            for 2048² uint16/uint8 → 64², 2000×1800 → 64², 512² → 224² and 28² → 64²
  memory    tracemalloc peak while preparing the 2048² uint16 frame, as a multiple of the frame
  predict   ``clf.predict(frame)`` end to end on a 2048² uint16 frame against the bare ONNX Runtime
            call on a prepared 64² input (a tiny real bundle: ResNet-18 trained for one short epoch
            on PneumoniaMNIST stored as 12-bit), and the same bundle recorded with the old filter
  batch     ``predict_batch`` of 32 same-size frames (one vectorised resize) against preparing
            them one by one (the code before issue #11)
  numerics  max/mean |Δ| in grey levels between the two filters on synthetic smooth and noisy
            frames and on real X-rays resized up to 2048², and agreement of the bundle's
            predictions on the test split through either filter

Goals: prepare ≤ 1.5× OpenCV INTER_AREA, peak extra memory < 2× the frame, predict ≤ 2.5× the bare call.

    pip install -e .[bench]      # opencv-python-headless, for the comparison only
    python benchmarks/preprocessing.py --out bench-out/preprocessing
    python benchmarks/preprocessing.py --quick      # fewer timings and images (a smoke run)

Output: a markdown table on stdout and OUT/preprocessing.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

OLD, NEW = "antialias-bilinear", "area-antialias-bilinear"
GOALS = {"max_prepare_vs_cv2": 1.5, "max_peak_vs_frame": 2.0, "max_predict_vs_bare": 2.5}
CASES = [  # name, frame shape, dtype, highest value, output size
    ("2048² u16 → 64²", (2048, 2048), np.uint16, 4095, (64, 64)),
    ("2048² u8 → 64²", (2048, 2048), np.uint8, 255, (64, 64)),
    ("2000×1800 u16 → 64²", (2000, 1800), np.uint16, 4095, (64, 64)),
    ("512² u16 → 224²", (512, 512), np.uint16, 4095, (224, 224)),
    ("512² u8 → 224²", (512, 512), np.uint8, 255, (224, 224)),
    ("28² u8 → 64²", (28, 28), np.uint8, 255, (64, 64)),
]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared/data/pneumoniamnist.npz"))
    p.add_argument("--out", default="bench-out/preprocessing")
    p.add_argument("--arch", default="resnet18")
    p.add_argument("--iterations", type=int, default=60, help="timed calls per contender")
    p.add_argument("--xrays", type=int, default=200, help="test X-rays resized up to 2048² for the numerics")
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    if args.quick:
        args.iterations, args.xrays = 10, 20
    return args


def synthetic(shape: tuple[int, int], dtype: type, hi: int, noise: float, seed: int = 0) -> np.ndarray:
    """A smooth frame (low-frequency waves over a gradient), plus Gaussian noise of ``noise``·hi."""
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float32)
    smooth = 0.5 + 0.3 * np.sin(xx * 6 / shape[1]) * np.cos(yy * 5 / shape[0]) + 0.1 * xx / shape[1]
    values = smooth * hi + np.random.default_rng(seed).normal(0, noise * hi, shape)
    return np.clip(np.rint(values), 0, hi).astype(dtype)


def rotating(shape: tuple[int, int], dtype: type, hi: int, count: int = 8) -> Callable[[], np.ndarray]:
    """A function handing out ``count`` distinct noisy frames in turn: 8 frames of 2048² uint16 (64 MiB)
    exceed this machine's L3 cache (36 MiB), so every call reads its frame from memory, as a frame
    fresh from a scanner or a file would be (one frame called in a loop would stay in the cache)."""
    frames = itertools.cycle([synthetic(shape, dtype, hi, noise=0.05, seed=i) for i in range(count)])
    return lambda: next(frames)


def timed(fns: dict[str, Callable[[], Any]], iterations: int, block: int = 10,
          pause_s: float = 0.05) -> dict[str, float]:
    """Median ms per call (and the 10th percentile as NAME_p10: on a busy machine it tells the cost
    without the other processes' bursts). The contenders take turns in blocks of ``block`` calls (order reversed every
    round), each block after a pause and one warm call, so that background load hits every contender
    alike and ONNX Runtime threads still spinning after a model call do not tax the next contender."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    names = list(fns)
    for round_ in range(max(1, -(-iterations // block))):
        for name in names if round_ % 2 == 0 else names[::-1]:
            fn = fns[name]
            time.sleep(pause_s)
            fn()
            for _ in range(block):
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
    return {**{name: float(np.median(t) * 1e3) for name, t in times.items()},
            **{f"{name}_p10": float(np.percentile(t, 10) * 1e3) for name, t in times.items()}}


def peak_bytes(fn: Callable[[], Any]) -> int:
    """Peak bytes allocated (tracemalloc) while ``fn`` runs, after one warm-up call."""
    fn()
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def delta(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    d = np.abs(a.astype(np.float64) - b.astype(np.float64))
    return {"max": float(d.max()), "mean": float(d.mean())}


def resize_case(cv2: Any, name: str, shape: tuple[int, int], dtype: type, hi: int,
                size: tuple[int, int], iterations: int) -> dict[str, Any]:
    """Timings of both filters and OpenCV on one noisy frame, and the filters' |Δ| on smooth and noisy frames."""
    from tlc_runtime.preprocess import resize

    frame = synthetic(shape, dtype, hi, noise=0.05)
    h, w = size
    a, b, c = (rotating(shape, dtype, hi) for _ in range(3))
    fns = {"new": lambda: resize(a(), h, w, NEW), "old": lambda: resize(b(), h, w, OLD),
           "cv2": lambda: cv2.resize(c(), (w, h), interpolation=cv2.INTER_AREA)}
    ms = timed(fns, iterations)
    cv2_threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    ms["cv2_1thread"] = timed({"cv2": fns["cv2"]}, iterations)["cv2"]
    cv2.setNumThreads(cv2_threads)
    smooth = synthetic(shape, dtype, hi, noise=0.0)
    return {"case": name, "ms": ms, "new_vs_cv2": ms["new"] / ms["cv2"],
            "new_vs_cv2_p10": ms["new_p10"] / ms["cv2_p10"], "new_vs_old": ms["new"] / ms["old"],
            "delta_smooth": delta(resize(smooth, h, w, NEW), resize(smooth, h, w, OLD)),
            "delta_noisy": delta(resize(frame, h, w, NEW), resize(frame, h, w, OLD)),
            "delta_vs_cv2_area": delta(resize(frame, h, w, NEW), cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA))}


def train_bundle(args: argparse.Namespace, out: Path) -> Path:
    """A tiny real 12-bit bundle: PneumoniaMNIST ×16 as uint16, one short epoch, x86-cpu FP32."""
    from tlc.bundler.builder import build_bundle
    from tlc.train.config import TrainConfig
    from tlc.train.trainer import train

    bundle = out / "bundle-new"
    if (bundle / "manifest.json").is_file():
        return bundle
    data = out / "pneumoniamnist-12bit.npz"
    with np.load(args.data) as src:
        np.savez(data, **{k: (v.astype(np.uint16) * 16 if k.endswith("_images") else v) for k, v in src.items()})
    run_dir = out / "run"
    train(str(data), run_dir, TrainConfig(arch=args.arch, img_size=64, epochs=1, limit_train=400, batch_size=32,
                                          patience=None, seed=0), progress=False, overwrite=True)
    build_bundle(run_dir, "x86-cpu", bundle, precision="fp32", overwrite=True, log=lambda _m: None)
    return bundle


def old_filter_copy(bundle: Path) -> Path:
    """The same bundle with its manifest naming the old filter (what a pre-#11 bundle records)."""
    import dataclasses

    from tlc_runtime.manifest import MANIFEST_NAME, read_manifest

    old = bundle.with_name("bundle-old")
    shutil.rmtree(old, ignore_errors=True)
    shutil.copytree(bundle, old)
    m = read_manifest(old)
    m = dataclasses.replace(m, preprocessing=dataclasses.replace(m.preprocessing, resize=OLD))
    (old / MANIFEST_NAME).write_text(m.to_json(), encoding="utf-8")
    return old


def bare_call(clf: Any) -> Callable[[np.ndarray], np.ndarray]:
    """The bundle's ONNX model in a plain ONNX Runtime session, threads as tlc_runtime sets them."""
    import onnxruntime as ort
    from tlc_runtime.backends.onnxruntime import available_cores

    options = ort.SessionOptions()
    options.intra_op_num_threads = available_cores()
    session = ort.InferenceSession(str(clf.bundle_dir / clf.artifact.files["model"].path), options,
                                   providers=["CPUExecutionProvider"])
    feed = session.get_inputs()[0].name
    return lambda batch: session.run(None, {feed: batch})[0]


def predict_case(cv2: Any, new: Any, old: Any, iterations: int) -> dict[str, Any]:
    """prepare/predict on a 2048² uint16 frame: against OpenCV, the bare model call and the old filter."""
    frame = synthetic((2048, 2048), np.uint16, 4095, noise=0.05)
    x = new.prepare(frame)[None]
    bare = bare_call(new)
    f = {name: rotating((2048, 2048), np.uint16, 4095) for name in ("prepare", "prepare_old", "cv2", "predict", "old")}
    fns = {"prepare": lambda: new.prepare(f["prepare"]()), "prepare_old": lambda: old.prepare(f["prepare_old"]()),
           "cv2_area": lambda: cv2.resize(f["cv2"](), (64, 64), interpolation=cv2.INTER_AREA),
           "predict": lambda: new.predict(f["predict"]()), "predict_old": lambda: old.predict(f["old"]()),
           "bare_model": lambda: bare(x)}
    ms = timed(fns, iterations)
    peaks = {"prepare": peak_bytes(lambda: new.prepare(frame)), "prepare_old": peak_bytes(lambda: old.prepare(frame))}
    return {"ms": ms, "frame_bytes": frame.nbytes, "peak_bytes": peaks,
            "prepare_vs_cv2": ms["prepare"] / ms["cv2_area"], "peak_vs_frame": peaks["prepare"] / frame.nbytes,
            "prepare_vs_cv2_p10": ms["prepare_p10"] / ms["cv2_area_p10"],
            "predict_vs_bare": ms["predict"] / ms["bare_model"],
            "predict_vs_bare_p10": ms["predict_p10"] / ms["bare_model_p10"],
            "predict_old_vs_bare": ms["predict_old"] / ms["bare_model"]}


def batch_case(clf: Any, side: int, iterations: int) -> dict[str, Any]:
    """32 same-size uint16 frames: preparation vectorised (what predict_batch does) against one by one
    (what it did before issue #11), alone and with the model call (predict_batch end to end)."""
    from tlc_runtime.preprocess import checked_pixels, fit_to_model, to_model_input

    spec, prep = clf.input_spec, clf.manifest.preprocessing
    frames = [synthetic((side, side), np.uint16, 4095, noise=0.05, seed=i) for i in range(32)]
    vectorised = lambda: fit_to_model([checked_pixels(f, spec, prep) for f in frames], spec, prep)  # noqa: E731
    one_by_one = lambda: np.stack([to_model_input(f, spec, prep) for f in frames])  # noqa: E731
    assert np.array_equal(vectorised(), one_by_one())
    ms = timed({"prepare_vectorised": vectorised, "prepare_one_by_one": one_by_one,
                "predict_batch": lambda: clf.predict_batch(frames),
                "predict_one_by_one": lambda: clf.predict_logits(one_by_one())}, iterations, block=2)
    return {"frames": f"32 × {side}² uint16", "ms": ms,
            "prepare_gain": ms["prepare_one_by_one"] / ms["prepare_vectorised"],
            "predict_gain": ms["predict_one_by_one"] / ms["predict_batch"]}


def xray_agreement(clf: Any, data: str, n: int) -> dict[str, Any]:
    """Real test X-rays (12-bit) resized up to 2048² (plain and with 2% noise), then to 64² by either
    filter: |Δ| in grey levels and agreement of the bundle's predicted classes."""
    from tlc_runtime.preprocess import resize

    with np.load(data) as src:
        images = src["test_images"][:n].astype(np.uint16) * 16
    rng = np.random.default_rng(0)
    out: dict[str, Any] = {"images": len(images)}
    for noise in (0.0, 0.02):
        deltas, same = [], 0
        for image in images:
            big = resize(image, 2048, 2048, OLD)
            if noise:
                big = np.clip(big + rng.normal(0, noise * 4095, big.shape), 0, 4095).astype(np.uint16)
            a, b = resize(big, 64, 64, NEW), resize(big, 64, 64, OLD)
            deltas.append(delta(a, b))
            same += int(np.argmax(clf.predict_logits(a[None, :, :, None].astype(np.float32)))
                        == np.argmax(clf.predict_logits(b[None, :, :, None].astype(np.float32))))
        out[f"noise_{noise:g}"] = {"max": max(d["max"] for d in deltas),
                                   "mean": float(np.mean([d["mean"] for d in deltas])),
                                   "agreement": same / len(images)}
    return out


def markdown(results: dict[str, Any]) -> str:
    """The tables of benchmarks/README.md."""
    lines = ["| resize | new (ms) | old (ms) | cv2 INTER_AREA (ms, default / 1 thread) | new/cv2 (p10) | new/old "
             "| Δ smooth max/mean | Δ noisy max/mean |", "|---|---|---|---|---|---|---|---|"]
    for r in results["resize"]:
        ms = r["ms"]
        lines.append(f"| {r['case']} | {ms['new']:.2f} | {ms['old']:.2f} | {ms['cv2']:.2f} / {ms['cv2_1thread']:.2f} "
                     f"| {r['new_vs_cv2']:.2f}× ({r['new_vs_cv2_p10']:.2f}×) | {r['new_vs_old']:.3f}× | {r['delta_smooth']['max']:g} / "
                     f"{r['delta_smooth']['mean']:.3f} | {r['delta_noisy']['max']:g} / {r['delta_noisy']['mean']:.3f} |")
    p = results["predict"]
    ms = p["ms"]
    lines += ["", "| 2048² uint16 frame, 64² model | new filter | old filter | goal |", "|---|---|---|---|",
              f"| prepare (ms) | {ms['prepare']:.2f} ({p['prepare_vs_cv2']:.2f}× cv2 {ms['cv2_area']:.2f}; p10 "
              f"{p['prepare_vs_cv2_p10']:.2f}×) "
              f"| {ms['prepare_old']:.2f} | ≤ {GOALS['max_prepare_vs_cv2']}× cv2 |",
              f"| peak extra memory (× frame) | {p['peak_vs_frame']:.2f} "
              f"| {p['peak_bytes']['prepare_old'] / p['frame_bytes']:.2f} | < {GOALS['max_peak_vs_frame']}× |",
              f"| predict (ms) | {ms['predict']:.2f} ({p['predict_vs_bare']:.2f}× bare {ms['bare_model']:.2f}; p10 "
              f"{p['predict_vs_bare_p10']:.2f}×) "
              f"| {ms['predict_old']:.2f} ({p['predict_old_vs_bare']:.2f}×) | ≤ {GOALS['max_predict_vs_bare']}× bare |"]
    lines += ["", "| batch | prepare: vectorised / one by one (ms) | gain | predict_batch / one by one (ms) | gain |",
              "|---|---|---|---|---|"]
    for b in results["batch"]:
        ms = b["ms"]
        lines.append(f"| {b['frames']} | {ms['prepare_vectorised']:.1f} / {ms['prepare_one_by_one']:.1f} "
                     f"| {b['prepare_gain']:.2f}× | {ms['predict_batch']:.1f} / {ms['predict_one_by_one']:.1f} "
                     f"| {b['predict_gain']:.2f}× |")
    x = results["xrays"]
    lines += ["", f"| {x['images']} test X-rays → 2048² → 64² | Δ max | Δ mean | prediction agreement |",
              "|---|---|---|---|"]
    lines += [f"| noise {k[6:]} | {v['max']:g} | {v['mean']:.3f} | {v['agreement']:.1%} |"
              for k, v in x.items() if k.startswith("noise_")]
    return "\n".join(lines)


def main() -> None:
    args = parse_args()
    import cv2
    import tlc_runtime

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    bundle = train_bundle(args, out)
    new = tlc_runtime.load(bundle, backend="onnxruntime")
    old = tlc_runtime.load(old_filter_copy(bundle), backend="onnxruntime")
    results: dict[str, Any] = {"goals": GOALS, "args": vars(args), "cv2": cv2.__version__,
                               "cv2_threads": cv2.getNumThreads()}
    results["resize"] = [resize_case(cv2, *case, args.iterations) for case in CASES]
    results["predict"] = predict_case(cv2, new, old, args.iterations)
    results["batch"] = [batch_case(new, side, max(4, args.iterations // 5)) for side in (2048, 256, 28)]
    results["xrays"] = xray_agreement(new, args.data, args.xrays)
    (out / "preprocessing.json").write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")
    print(markdown(results))


if __name__ == "__main__":
    main()
