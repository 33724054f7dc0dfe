"""INT8 benchmark: tlc's INT8 bundles against the INT8 a user writes by hand, on PneumoniaMNIST.

For each architecture (ResNet-18, MobileNetV2, MobileNetV3-Large, EfficientNet-B0 at 64 px by
default), one briefly trained run is shared by every contender:

  fp32-ort      tlc bundle, target x86-cpu, fp32 (the latency baseline for ONNX Runtime)
  tlc-ort-int8  tlc bundle, target x86-cpu, int8 (QDQ U8S8 + accuracy-aware fallback)
  hand-ort-int8 the best hand-written ONNX Runtime recipe: quant_pre_process, then
                quantize_static(QDQ, per_channel=True, U8 activations, S8 weights, MinMax) on the
                same FP32 ONNX and the same calibration images
  fp32-ov       tlc bundle, target intel-cpu, fp32 (the latency baseline for OpenVINO)
  tlc-ov-int8   tlc bundle, target intel-cpu, int8 (NNCF + accuracy control)
  hand-nncf     plain nncf.quantize(ov.convert_model(onnx), nncf.Dataset(calib)), compiled with defaults

Every ONNX Runtime session (bare or through tlc_runtime) runs with intra-op threads = the physical
cores available, set explicitly (left at 0, ONNX Runtime also pins its threads to cores).

Reported for each: balanced-accuracy drop and top-1 agreement against PyTorch on the test split,
batch-1 latency p50/p99 through tlc_runtime and through the bare backend call (all contenders
interleaved in one loop), runtime overhead, and the ratios to the FP32 bundle and to the hand-written
recipe of the same backend (bare calls). Every contender, hand-written ones included, is judged by
tlc's INT8 budget (``tlc.verify.budget.judge``: ≥ 99 % agreement and ≤ 1 point balanced-accuracy drop,
shown at 95 % one-sided confidence) on the test split. Goals (issue #10): within that budget, faster
than FP32, ONNX Runtime ≤ 1.0× the hand recipe with agreement at least as high, OpenVINO ≤ 1.15× plain
NNCF, runtime overhead ≤ 3%.

    python benchmarks/quantization.py --data ../shared/data/pneumoniamnist.npz --out bench-out/quant
    python benchmarks/quantization.py --tiny          # minutes-scale smoke run (not a measurement)

Output: a rich table, OUT/quantization.json and OUT/quantization.png.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

GOALS = {"budget": "the target's default int8 tolerance, tlc.verify.budget.judge", "max_vs_fp32": 1.0,
         "max_vs_hand": {"onnxruntime": 1.0, "openvino": 1.15}, "max_overhead": 0.03}
ARCHS = ["resnet18", "mobilenet_v2", "mobilenet_v3_large", "efficientnet_b0"]


@dataclass
class Contender:
    name: str
    backend: str
    precision: str
    bare: Callable[[np.ndarray], np.ndarray]          # batch → logits, the backend called directly
    runtime: Callable[[np.ndarray], np.ndarray] | None = None  # through tlc_runtime (bundles only)
    notes: dict[str, Any] = field(default_factory=dict)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared/data/pneumoniamnist.npz"))
    p.add_argument("--out", default="bench-out/quantization")
    p.add_argument("--archs", nargs="+", default=ARCHS)
    p.add_argument("--img-size", type=int, default=64)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--limit-train", type=int, default=None)
    p.add_argument("--run", action="append", default=[], metavar="ARCH=RUN_DIR", help="reuse a trained run")
    p.add_argument("--iterations", type=int, default=400)
    p.add_argument("--rebuild", action="store_true", help="rebuild bundles that already exist under --out")
    p.add_argument("--rungs", nargs="+", default=None, metavar="RUNG",
                   help="INT8 ladder rungs tlc may climb (default: all; e.g. ptq ptq-calibration fallback)")
    p.add_argument("--max-fallback-steps", type=int, default=None, help="rebuilds the fallback rung may try")
    p.add_argument("--tiny", action="store_true", help="one small arch, 32 px, 1 epoch, few timings")
    args = p.parse_args()
    if args.tiny:
        args.archs, args.img_size, args.epochs, args.limit_train, args.iterations = \
            ["mobilenet_v2"], 32, 1, 300, 100
    return args


def train_run(arch: str, args: argparse.Namespace, out: Path) -> Path:
    given = dict(item.split("=", 1) for item in args.run)
    if arch in given:
        return Path(given[arch])
    from tlc.train.config import TrainConfig
    from tlc.train.trainer import train

    run_dir = out / "runs" / arch
    if not (run_dir / "run.json").is_file():
        train(args.data, run_dir, TrainConfig(arch=arch, img_size=args.img_size, epochs=args.epochs,
                                              limit_train=args.limit_train, seed=0), progress=False,
              overwrite=True)
    return run_dir


def load_data(run_dir: Path, data: str):
    """(dataset, run info, test inputs, test labels, PyTorch reference logits)."""
    from tlc.data import load_dataset
    from tlc.export.onnx_export import reference_logits
    from tlc.models.checkpoint import load_deploy_model

    model, run = load_deploy_model(run_dir)
    dataset = load_dataset(data, seed=run.seed, **run.data_options())
    x, y = dataset.arrays("test", run.img_size)
    return dataset, run, x, y, reference_logits(model, x)


def bundle_contender(name: str, bundle: Path) -> Contender:
    import tlc_runtime

    clf = tlc_runtime.load(bundle)
    art = clf.artifact
    if art.backend == "onnxruntime":
        bare = ort_call(bundle / art.files["model"].path)
    else:
        bare = ov_call(bundle / art.files["xml"].path, {k: art.options[k] for k in
                                                        ("INFERENCE_PRECISION_HINT", "PERFORMANCE_HINT")})
    model_file = art.files.get("model") or art.files["xml"]
    return Contender(name, art.backend, art.precision, bare, clf.predict_logits,
                     notes={"session_precision": clf.info.precision, "bundle": str(bundle),
                            "model_file": str(bundle / model_file.path)})


def ort_call(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    """A bare ONNX Runtime session, intra-op threads = physical cores set explicitly (as tlc_runtime)."""
    import onnxruntime as ort
    from tlc_runtime.backends.onnxruntime import available_cores

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = available_cores()
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = [session.get_outputs()[0].name]
    feed = session.get_inputs()[0].name
    return lambda batch: session.run(names, {feed: batch})[0]


def ov_call(model: Any, config: dict[str, Any] | None = None) -> Callable[[np.ndarray], np.ndarray]:
    import openvino as ov

    compiled = ov.Core().compile_model(str(model) if isinstance(model, Path) else model, "CPU", config or {})
    request = compiled.create_infer_request()

    def call(batch: np.ndarray) -> np.ndarray:
        request.infer({0: batch}, share_inputs=True)
        return request.get_output_tensor(0).data.copy()

    return call


def hand_written(fp32_onnx: Path, calib: np.ndarray, work: Path) -> list[Contender]:
    """What a user writes by hand with each toolkit's defaults, on the same FP32 ONNX and images."""
    import nncf
    import openvino as ov
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process
    from tlc.quantize.calibration import ArrayDataReader

    out, prepared = work / "hand-ort-int8.onnx", work / "hand-ort-int8.pre.onnx"
    quant_pre_process(str(fp32_onnx), str(prepared))
    quantize_static(str(prepared), str(out), ArrayDataReader(calib, "pixels"), quant_format=QuantFormat.QDQ,
                    per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    calibrate_method=CalibrationMethod.MinMax)
    model = nncf.quantize(ov.convert_model(str(fp32_onnx)), nncf.Dataset([calib[i:i + 1] for i in range(len(calib))]),
                          subset_size=len(calib))
    ov_bare = ov_call(model)
    precision = ov.Core().compile_model(model, "CPU").get_property("INFERENCE_PRECISION_HINT").to_string()
    return [Contender("hand-ort-int8", "onnxruntime", "int8", ort_call(out)),
            Contender("hand-nncf", "openvino", "int8", ov_bare, notes={"session_precision": precision})]


def paired_latency(fns: dict[str, Callable[[], Any]], iterations: int, block: int = 25,
                   pause_s: float = 0.05) -> dict[str, Any]:
    """Alternate blocks of calls between ``fns`` (A, B, B, A, ...), each block after a short pause and
    a few warm calls, so thread pools that spin after a call (ONNX Runtime's) do not tax the other."""
    import time

    from tlc.bench.latency import Latency

    names = list(fns)
    samples: dict[str, list[float]] = {n: [] for n in names}
    for round_ in range(max(1, iterations // block)):
        for name in (names if round_ % 2 == 0 else names[::-1]):
            fn = fns[name]
            time.sleep(pause_s)
            for _ in range(3):
                fn()
            for _ in range(block):
                t0 = time.perf_counter()
                fn()
                samples[name].append(time.perf_counter() - t0)
    return {n: Latency.of(v) for n, v in samples.items()}


def logits_of(fn: Callable[[np.ndarray], np.ndarray], x: np.ndarray, batch: int = 64) -> np.ndarray:
    return np.concatenate([fn(np.ascontiguousarray(x[i:i + batch])) for i in range(0, len(x), batch)])


def bench_arch(arch: str, args: argparse.Namespace, out: Path) -> list[dict[str, Any]]:
    from tlc.bundler.builder import build_bundle
    from tlc.quantize.calibration import select_calibration
    from tlc.targets import load_target
    from tlc.verify.budget import judge
    from tlc.verify.compare import compare_logits

    run_dir = train_run(arch, args, out)
    dataset, run, x_test, y_test, ref = load_data(run_dir, args.data)
    from tlc.errors import TlcError

    bundles, failed = {}, []
    for name, target, precision in (("fp32-ort", "x86-cpu", "fp32"), ("tlc-ort-int8", "x86-cpu", "int8"),
                                    ("fp32-ov", "intel-cpu", "fp32"), ("tlc-ov-int8", "intel-cpu", "int8")):
        path = out / "bundles" / arch / name
        try:
            if args.rebuild or not (path / "manifest.json").is_file():
                build_bundle(run_dir, target, path, precision=precision, data=dataset, overwrite=True,
                             options=build_options(args, target), log=lambda _m: None)
            bundles[name] = path
        except TlcError as exc:  # e.g. BudgetError: no bundle; the row says why
            if precision == "fp32":
                raise
            failed.append({"arch": arch, "contender": name, "error": str(exc)})
    contenders = [bundle_contender(name, path) for name, path in bundles.items()]
    target = load_target("x86-cpu")
    images, labels = dataset.arrays("train", run.img_size)
    calib = select_calibration(images, labels, n=target.calibration.samples, seed=run.seed,
                               min_samples=target.calibration.min_samples)
    fp32_onnx = Path(contenders[0].notes["model_file"])
    contenders += hand_written(fp32_onnx, calib, out / "bundles" / arch)
    one = np.ascontiguousarray(x_test[:1])
    calls: dict[str, Callable[[], Any]] = {}
    for c in contenders:  # all interleaved in one loop: background load hits every contender alike
        calls[f"{c.name}/bare"] = lambda c=c: c.bare(one)
        if c.runtime is not None:
            calls[f"{c.name}/runtime"] = lambda c=c: c.runtime(one)
    latency = paired_latency(calls, args.iterations)
    rows = []
    for c in contenders:
        cmp = compare_logits(ref, logits_of(c.runtime or c.bare, x_test), y_test, len(run.class_names))
        verdict = judge(cmp, target.tolerance("int8"), run.class_names)
        bare, rt = latency[f"{c.name}/bare"], latency.get(f"{c.name}/runtime")
        rows.append({"arch": arch, "contender": c.name, "backend": c.backend, "precision": c.precision,
                     "within_budget": verdict.passed, "verdict": verdict.to_dict(),
                     "agreement": cmp.agreement, "bal_acc_drop": cmp.balanced_accuracy_drop,
                     "bal_acc_drop_ci95": cmp.balanced_accuracy_drop_ci95,
                     "max_abs_prob_delta": cmp.max_abs_prob_delta, "bare": asdict(bare),
                     "runtime": asdict(rt) if rt else None,
                     "overhead": (rt.p50_ms / bare.p50_ms - 1) if rt else None, **c.notes})
    add_ratios(rows)
    return rows + failed


def build_options(args: argparse.Namespace, target: str) -> dict[str, Any]:
    """``build_bundle`` options from the command line: the INT8 ladder's rungs (those of ``--rungs``
    that the target's backend has) and the fallback's rebuild steps."""
    from tlc.quantize import openvino_rungs, ort_rungs

    options: dict[str, Any] = {}
    if args.rungs:
        names = openvino_rungs.RUNG_NAMES if target == "intel-cpu" else ort_rungs.RUNG_NAMES
        options["int8_rungs"] = [r for r in args.rungs if r in names]
    if args.max_fallback_steps is not None:
        options["max_fallback_steps"] = args.max_fallback_steps
    return options


def add_ratios(rows: list[dict[str, Any]]) -> None:
    """Ratios (bare p50) to the same backend's FP32 bundle and hand-written recipe; goal checks."""
    by = {r["contender"]: r for r in rows}
    fp32 = {"onnxruntime": by["fp32-ort"]["bare"]["p50_ms"], "openvino": by["fp32-ov"]["bare"]["p50_ms"]}
    hand = {r["backend"]: r for r in rows if r["contender"].startswith("hand-")}
    for r in rows:
        if "error" in r:
            continue
        r["vs_fp32"] = r["bare"]["p50_ms"] / fp32[r["backend"]]
        peer = hand.get(r["backend"])
        if peer is not None:
            r["vs_hand"] = r["bare"]["p50_ms"] / peer["bare"]["p50_ms"]
        if r["contender"].startswith("tlc-"):
            r["goals"] = {"budget": r["within_budget"],
                          "vs_fp32": r["vs_fp32"] < GOALS["max_vs_fp32"],
                          "vs_hand": r["vs_hand"] <= GOALS["max_vs_hand"][r["backend"]],
                          "overhead": r["overhead"] is not None and r["overhead"] <= GOALS["max_overhead"]}
            if r["backend"] == "onnxruntime":  # same recipe family: at least as exact as the hand one
                r["goals"]["agreement_vs_hand"] = r["agreement"] >= peer["agreement"]


def print_table(rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="INT8 quantization: tlc vs hand-written (batch 1, CPU)")
    for col in ("arch", "contender", "agree", "Δbal-acc pts [95% CI]", "budget", "runtime p50/p99 ms",
                "bare p50/p99 ms", "overhead", "×fp32", "×hand", "goals"):
        table.add_column(col)
    for r in rows:
        if "error" in r:
            table.add_row(r["arch"], r["contender"], *["-"] * 8, "FAILED: " + r["error"][:60])
            continue
        rt = r["runtime"]
        goals = r.get("goals")
        ci = r.get("bal_acc_drop_ci95")
        drop = f"{(r['bal_acc_drop'] or 0) * 100:+.2f}" + (f" [{ci[0] * 100:+.2f}, {ci[1] * 100:+.2f}]" if ci else "")
        table.add_row(r["arch"], r["contender"], f"{r['agreement']:.2%}", drop, "ok" if r["within_budget"] else "over",
                      f"{rt['p50_ms']:.3f}/{rt['p99_ms']:.3f}" if rt else "-",
                      f"{r['bare']['p50_ms']:.3f}/{r['bare']['p99_ms']:.3f}",
                      f"{r['overhead']:+.1%}" if r["overhead"] is not None else "-", f"{r['vs_fp32']:.2f}",
                      f"{r['vs_hand']:.2f}" if "vs_hand" in r else "-",
                      ("ok" if all(goals.values()) else "MISS " + ",".join(k for k, v in goals.items() if not v))
                      if goals else "")
    Console(width=200).print(table)


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    archs = sorted({r["arch"] for r in rows})
    fig, axes = plt.subplots(1, len(archs), figsize=(6 * len(archs), 4), squeeze=False)
    for ax, arch in zip(axes[0], archs, strict=True):
        mine = [r for r in rows if r["arch"] == arch and "error" not in r]
        ax.bar([r["contender"] for r in mine], [r["bare"]["p50_ms"] for r in mine],
               color=["tab:green" if r["contender"].startswith("tlc") else "tab:grey" for r in mine])
        for i, r in enumerate(mine):
            ax.text(i, r["bare"]["p50_ms"], f"{r['agreement']:.1%}", ha="center", va="bottom", fontsize=8)
        ax.set_title(f"{arch}: batch-1 p50 latency (label: agreement)")
        ax.set_ylabel("ms")
        ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    args = parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = [row for arch in args.archs for row in bench_arch(arch, args, out)]
    print_table(rows)
    meta = {"goals": GOALS, "args": {k: v for k, v in vars(args).items()}, "rows": rows}
    (out / "quantization.json").write_text(json.dumps(meta, indent=2, default=str) + "\n")
    plot(rows, out / "quantization.png")
    print(f"wrote {out / 'quantization.json'} and {out / 'quantization.png'}")


if __name__ == "__main__":
    main()
