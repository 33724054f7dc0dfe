"""OOD gate benchmark: AUROC of max-softmax, energy, Mahalanobis and the combined score, and the gate's
acceptance, for a PneumoniaMNIST model on ONNX Runtime FP32, ONNX Runtime INT8 and OpenVINO (FP32, CPU).

In-distribution: the test split. Out-of-distribution (no download; real images from installed packages):
- ``dicom-ct-mr-us``: random crops (35-100 % of the side, flips) of the CT, MR and ultrasound images
  among pydicom's bundled test files (CT_small, MR_small, examples_overlay, examples_palette,
  examples_rgb_color, ExplVR_BigEnd: 6 distinct images, 40 crops each);
- ``digits``: scikit-learn's 8×8 handwritten digits, upscaled;
- corruptions: ``noise`` (Gaussian noise frames), ``noisy-xray`` (test images + N(0, 60²)),
  ``blank`` (uniform frames at random levels), ``saturated`` (test images ×4, clipped),
  ``inverted`` (255 − test image).
The gate's threshold is set per artifact on its own validation outputs (95 % accepted), as tlc build does.

    python benchmarks/ood.py --run /work/bench-runs/resnet18 --out benchmarks/results/ood.json
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

SCORES = ("max_softmax", "energy", "mahalanobis", "combined")
DICOM_FILES = ("CT_small.dcm", "MR_small.dcm", "examples_overlay.dcm", "examples_palette.dcm",
               "examples_rgb_color.dcm", "ExplVR_BigEnd.dcm")


def to_uint8(a: np.ndarray) -> np.ndarray:
    a = a.astype(np.float64)
    if a.ndim == 3:
        a = a[..., :3] @ np.array([0.299, 0.587, 0.114])
    lo, hi = np.percentile(a, (0.5, 99.5))
    return np.clip((a - lo) / max(hi - lo, 1e-9) * 255, 0, 255).round().astype(np.uint8)


def dicom_crops(size: int, rng, per_image: int = 40) -> np.ndarray:
    import pydicom
    import pydicom.data
    from tlc_runtime.preprocess import resize

    root = Path(pydicom.data.__file__).parent / "test_files"
    out = []
    for name in DICOM_FILES:
        image = to_uint8(pydicom.dcmread(root / name).pixel_array)
        h, w = image.shape
        for _ in range(per_image):
            side = int(min(h, w) * rng.uniform(0.35, 1.0))
            y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
            crop = image[y:y + side, x:x + side]
            crop = crop[:, ::-1] if rng.random() < 0.5 else crop
            out.append(resize(np.ascontiguousarray(crop), size, size, "area-antialias-bilinear"))
    return np.stack(out)[..., None]


def ood_sets(test: np.ndarray, size: int, seed: int = 0) -> dict[str, np.ndarray]:
    from sklearn.datasets import load_digits
    from tlc_runtime.preprocess import resize

    rng = np.random.default_rng(seed)
    digits = np.rint(load_digits().images * 255 / 16).astype(np.uint8)
    n = len(test)
    as_u8 = lambda a: np.clip(a, 0, 255).round().astype(np.uint8)  # noqa: E731
    return {
        "dicom-ct-mr-us": dicom_crops(size, rng),
        "digits": resize(digits, size, size, "area-antialias-bilinear", batched=True)[..., None],
        "noise": as_u8(rng.normal(128, 64, (n, size, size, 1))),
        "noisy-xray": as_u8(test + rng.normal(0, 60, test.shape)),
        "blank": np.broadcast_to(rng.integers(0, 256, (n, 1, 1, 1)), test.shape).astype(np.uint8),
        "saturated": as_u8(test.astype(np.float64) * 4),
        "inverted": (255 - test).astype(np.uint8),
    }


def export(model, example: np.ndarray, path: Path) -> None:
    import torch
    from tlc.models.ood import OUTPUTS

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.from_numpy(example[:2]),), str(path), opset_version=17, dynamo=False,
                          input_names=["pixels"], output_names=list(OUTPUTS),
                          dynamic_axes={"pixels": {0: "batch"}, **{o: {0: "batch"} for o in OUTPUTS}})


def int8(fp32: Path, calibration: np.ndarray, work: Path, scores_in_float: bool) -> Path:
    """tlc's INT8 QDQ recipe (U8S8, MinMax); ``scores_in_float``: the OOD head's nodes stay float (tlc's
    default since quantize.graph.score_only_nodes; False quantizes them too, for comparison)."""
    from tlc.quantize.ort_int8 import QdqQuantizer, QdqScheme

    scheme = QdqScheme(activation_type="uint8", activation_symmetric=False)
    work.mkdir(exist_ok=True)
    quantizer = QdqQuantizer(fp32, calibration, scheme, "minmax", 99.99, work)
    if not scores_in_float:
        quantizer.score_only = []
    return quantizer.build(work / "model.int8.onnx")


def runner(kind: str, path: Path):
    """f(inputs) → dict of outputs."""
    if kind == "openvino":
        import openvino as ov

        compiled = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        from tlc.models.ood import OUTPUTS

        ports = {next(iter(o.get_names() & set(OUTPUTS))): o for o in compiled.outputs}
        return lambda x: {name: np.asarray(res[port]) for res in [compiled(x)] for name, port in ports.items()}
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return lambda x: dict(zip(names, sess.run(None, {"pixels": x}), strict=True))


def scores_of(run, inputs: np.ndarray, weights) -> dict[str, np.ndarray]:
    outs = [run(np.ascontiguousarray(inputs[i:i + 64])) for i in range(0, len(inputs), 64)]
    out = {k: np.concatenate([o[k] for o in outs]).astype(np.float64) for k in outs[0]}
    z = out["logits"] - out["logits"].max(axis=1, keepdims=True)
    probs = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    return {"max_softmax": -probs.max(axis=1), "energy": out["energy"], "mahalanobis": out["mahalanobis"],
            "combined": weights[0] * out["energy"] + weights[1] * out["mahalanobis"],
            "graph_ood_score": out["ood_score"]}


def evaluate(run, weights, val, test, sets) -> dict:
    from sklearn.metrics import roc_auc_score
    from tlc.bundler.ood import ood_threshold

    v, t = scores_of(run, val, weights), scores_of(run, test, weights)
    ood = {name: scores_of(run, images, weights) for name, images in sets.items()}
    result = {"graph_matches_combined": float(np.abs(t["graph_ood_score"] - t["combined"]).max()), "scores": {}}
    for score in SCORES:
        thr = ood_threshold(v[score], 0.95)
        row = {"threshold": thr, "test_acceptance": float((t[score] <= thr).mean()), "auroc": {}, "rejected": {}}
        for name in sets:
            o = ood[name][score]
            y = np.r_[np.zeros(len(t[score])), np.ones(len(o))]
            row["auroc"][name] = float(roc_auc_score(y, np.r_[t[score], o]))
            row["rejected"][name] = float((o > thr).mean())
        result["scores"][score] = row
    return result


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    backends = list(results["backends"])
    fig, axes = plt.subplots(1, len(backends), figsize=(5 * len(backends), 4.5), sharey=True)
    for ax, backend in zip(np.atleast_1d(axes), backends, strict=True):
        rows = results["backends"][backend]["scores"]
        sets = list(rows["energy"]["auroc"])
        for i, score in enumerate(SCORES):
            ax.bar(np.arange(len(sets)) + (i - 1.5) * 0.2, [rows[score]["auroc"][s] for s in sets], 0.2, label=score)
        ax.set_xticks(np.arange(len(sets)), sets, rotation=35, ha="right")
        ax.set_title(backend)
        ax.set_ylim(0.0, 1.0)
        ax.axhline(0.5, color="grey", lw=0.5)
    np.atleast_1d(axes)[0].set_ylabel("AUROC (ID test vs OOD)")
    np.atleast_1d(axes)[0].legend(loc="lower left", fontsize=8)
    fig.suptitle(f"OOD detection, {results['arch']} {results['img_size']} px on PneumoniaMNIST")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default="/work/bench-runs/resnet18")
    parser.add_argument("--out", default="benchmarks/results/ood.json")
    args = parser.parse_args()
    import torch
    from tlc.bundler.ood import OodOptions, scored_model
    from tlc.data import load_dataset
    from tlc.models.checkpoint import load_deploy_model

    torch.set_num_threads(1)
    started = time.perf_counter()
    model, run = load_deploy_model(args.run)
    source = run.data.source if os.path.isabs(run.data.source) else str(Path("/work/main") / run.data.source)
    dataset = load_dataset(source, seed=run.seed, **run.data_options())
    (train, train_y), (val, _), (test, _) = (dataset.arrays(s, run.img_size) for s in ("train", "val", "test"))
    scored, fit = scored_model(model, train, train_y, val, len(run.class_names), OodOptions(), print)
    weights = tuple(float(w) for w in scored.weights)
    sets = ood_sets(test, run.img_size)
    results = {"run": run.run_id, "arch": run.arch, "img_size": run.img_size,
               "fit": {"train_images": fit.n_images, "shrinkage": fit.shrinkage, "feature_dim": int(fit.means.shape[1])},
               "weights": weights, "sizes": {"val": len(val), "test": len(test), **{k: len(v) for k, v in sets.items()}},
               "backends": {}}
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "model.onnx"
        export(scored, test, fp32)
        artifacts = {"onnxruntime-fp32": ("onnxruntime", fp32),
                     "onnxruntime-int8": ("onnxruntime", int8(fp32, train[:300], Path(tmp) / "q", False)),
                     "onnxruntime-int8-scores-float": ("onnxruntime", int8(fp32, train[:300], Path(tmp) / "qf", True)),
                     "openvino-fp32": ("openvino", fp32)}
        for name, (kind, path) in artifacts.items():
            results["backends"][name] = evaluate(runner(kind, path), weights, val, test, sets)
            print(name, json.dumps({s: r["auroc"] for s, r in results["backends"][name]["scores"].items()}))
    results["seconds"] = round(time.perf_counter() - started, 1)
    out = Path(args.out)
    out.write_text(json.dumps(results, indent=2) + "\n")
    plot(results, out.with_suffix(".png"))
    print(f"wrote {out} and {out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
