"""Ensemble of N members compiled to one graph vs each single member, on PneumoniaMNIST.

Trains an ensemble run with ``tlc.train.ensemble.train_members`` (N ResNet-18 members at 28 px, seeds
0..N-1, the same split), builds the ensemble and every member to an FP32 x86-cpu bundle with
``tlc build``'s API, then measures on the whole test split:

- balanced accuracy and AUC of the ensemble and of each member through ``tlc_runtime`` (the built
  bundles: temperature scaling inside, which changes neither), with bootstrap 95% CIs, and the paired
  bootstrap CI of the ensemble's gain over each member;
- latency (p50/p90, ONNX Runtime, intra-op threads = physical cores) of the one-graph ensemble vs the N
  member graphs run one after the other in N separate sessions, at batch 1 and 32, interleaved.

    python benchmarks/ensemble.py --data ../shared/data/pneumoniamnist.npz --out bench-out/ensemble

Runs and bundles are kept under ``--out`` and reused; ``--results`` is where the JSON and PNG go.
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path
from typing import Any

import numpy as np

BOOTSTRAP = 2000


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared/data/pneumoniamnist.npz"))
    p.add_argument("--out", default="bench-out/ensemble")
    p.add_argument("--results", default=str(Path(__file__).resolve().parent / "results"))
    p.add_argument("--arch", default="resnet18")
    p.add_argument("--members", type=int, default=3)
    p.add_argument("--img-size", type=int, default=28)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--iterations", type=int, default=200)
    return p.parse_args()


def ensemble_run(args: argparse.Namespace, out: Path) -> Path:
    from tlc.train.config import TrainConfig
    from tlc.train.ensemble import train_members

    run_dir = out / "ensemble-run"
    if not (run_dir / "run.json").is_file():
        config = TrainConfig(arch=args.arch, img_size=args.img_size, epochs=args.epochs, lr=3e-3,
                             backbone_lr_mult=1.0, patience=None, seed=0)
        train_members(args.data, run_dir, config, args.members, progress=False, overwrite=True)
    return run_dir


def bundle(run_dir: Path, out: Path, data: str) -> Path:
    from tlc.bundler.builder import build_bundle

    if not (out / "manifest.json").is_file():
        build_bundle(run_dir, "x86-cpu", out, data=data, overwrite=True, log=lambda message: None)
    return out


def test_split(run_dir: Path, data: str) -> tuple[np.ndarray, np.ndarray]:
    from tlc.data import load_dataset
    from tlc.runs import read_run_info

    run = read_run_info(run_dir)
    return load_dataset(data, seed=run.seed, **run.data_options()).arrays("test", run.img_size)


def probabilities(bundle_dir: Path, x: np.ndarray) -> np.ndarray:
    import tlc_runtime
    from tlc.verify.compare import softmax

    clf = tlc_runtime.load(bundle_dir)
    return softmax(np.concatenate([clf.predict_logits(x[i:i + 64]) for i in range(0, len(x), 64)]))


def metrics(labels: np.ndarray, probs: np.ndarray) -> tuple[float, float]:
    from sklearn.metrics import roc_auc_score
    from tlc.verify.compare import balanced_accuracy

    return balanced_accuracy(labels, probs.argmax(1), probs.shape[1]), float(roc_auc_score(labels, probs[:, 1]))


def bootstrap(labels: np.ndarray, probs: dict[str, np.ndarray]) -> dict[str, Any]:
    """Point value and 95% CI of (balanced accuracy, AUC) per contender, and of the ensemble's paired gain."""
    from tlc.verify.bootstrap import bootstrap_draws

    names = list(probs)
    stacked = bootstrap_draws(len(labels), lambda idx: [metrics(labels[idx], probs[n][idx]) for n in names],
                              BOOTSTRAP, 0)  # rounds × contenders × 2: every contender on the same draw
    draws = {name: stacked[:, i] for i, name in enumerate(names)}
    result: dict[str, Any] = {}
    for name, p in probs.items():
        values = draws[name]
        point = metrics(labels, p)
        result[name] = {m: {"value": point[j], "ci95": np.percentile(values[:, j], [2.5, 97.5]).tolist()}
                        for j, m in enumerate(("balanced_accuracy", "auc"))}
        if name != "ensemble":
            gain = np.array(draws["ensemble"]) - values
            result[name]["ensemble_gain"] = {
                m: {"value": metrics(labels, probs["ensemble"])[j] - point[j],
                    "ci95": np.percentile(gain[:, j], [2.5, 97.5]).tolist()}
                for j, m in enumerate(("balanced_accuracy", "auc"))}
    return result


def ort_session(path: Path):
    import onnxruntime as ort
    from tlc_runtime.backends.onnxruntime import available_cores

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = available_cores()
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feed = session.get_inputs()[0].name
    return lambda batch: session.run(None, {feed: batch})


def latency(ensemble_bundle: Path, member_bundles: list[Path], x: np.ndarray, iterations: int) -> dict[str, Any]:
    from dataclasses import asdict

    from tlc.bench.latency import compare_latency

    one = ort_session(ensemble_bundle / "model.fp32.onnx")
    separate = [ort_session(b / "model.fp32.onnx") for b in member_bundles]
    out = {}
    for batch in (1, 32):
        sample = np.ascontiguousarray(x[:batch])
        timings = compare_latency({"one_graph": lambda s=sample: one(s),
                                   "separate_sessions": lambda s=sample: [run(s) for run in separate]},
                                  iterations=iterations, warmup=20)
        out[f"batch{batch}"] = {k: asdict(v) for k, v in timings.items()}
        out[f"batch{batch}"]["ratio_p50"] = timings["one_graph"].p50_ms / timings["separate_sessions"].p50_ms
    return out


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    quality, timing = result["quality"], result["latency"]
    names = list(quality)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for ax, metric in zip(axes[:2], ("balanced_accuracy", "auc"), strict=True):
        values = [quality[n][metric]["value"] for n in names]
        low = [v - quality[n][metric]["ci95"][0] for n, v in zip(names, values, strict=True)]
        high = [quality[n][metric]["ci95"][1] - v for n, v in zip(names, values, strict=True)]
        ax.bar(names, values, yerr=[low, high], capsize=4, color=["C3" if n == "ensemble" else "C0" for n in names])
        ax.set_ylim(min(values) - 0.1, 1.0)
        ax.set_title(f"test {metric.replace('_', ' ')} (95% CI)")
    ax = axes[2]
    batches = [b for b in timing if b.startswith("batch")]
    for k, (kind, label) in enumerate((("one_graph", "one graph"), ("separate_sessions", "separate sessions"))):
        ax.bar(np.arange(len(batches)) + 0.4 * k, [timing[b][kind]["p50_ms"] for b in batches], 0.4, label=label)
    ax.set_xticks(np.arange(len(batches)) + 0.2, batches)
    ax.set_ylabel("p50 ms")
    ax.set_title("latency, ONNX Runtime FP32")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    args = parse_args()
    out, results = Path(args.out), Path(args.results)
    out.mkdir(parents=True, exist_ok=True)
    results.mkdir(parents=True, exist_ok=True)
    from tlc.runs import read_run_info

    run_dir = ensemble_run(args, out)
    info = read_run_info(run_dir)
    ens_bundle = bundle(run_dir, out / "bundles" / "ensemble", args.data)
    member_bundles = [bundle(run_dir / m.path, out / "bundles" / f"member{i}", args.data)
                      for i, m in enumerate(info.members)]
    x, y = test_split(run_dir, args.data)
    probs = {"ensemble": probabilities(ens_bundle, x)}
    probs.update({f"member{i}": probabilities(b, x) for i, b in enumerate(member_bundles)})
    result = {"arguments": vars(args), "machine": platform.machine(), "test_images": len(y),
              "members": [{"run_id": m.run_id, "arch": m.arch, "seed": read_run_info(run_dir / m.path).seed}
                          for m in info.members],
              "quality": bootstrap(y, probs), "latency": latency(ens_bundle, member_bundles, x, args.iterations)}
    (results / "ensemble.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    plot(result, results / "ensemble.png")
    for name, q in result["quality"].items():
        print(f"{name:10s} balanced accuracy {q['balanced_accuracy']['value']:.4f} "
              f"{np.round(q['balanced_accuracy']['ci95'], 4).tolist()}  AUC {q['auc']['value']:.4f} "
              f"{np.round(q['auc']['ci95'], 4).tolist()}")
    for batch, t in result["latency"].items():
        print(f"{batch}: one graph {t['one_graph']['p50_ms']:.2f} ms, separate sessions "
              f"{t['separate_sessions']['p50_ms']:.2f} ms (ratio {t['ratio_p50']:.2f})")


if __name__ == "__main__":
    main()
