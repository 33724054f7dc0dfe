"""One multi-task model (one backbone, a head per task) vs one model per task, on PneumoniaMNIST.

Three tasks on the same images, all through the real CSV path (PNG files + ``tasks.csv``,
``tlc.data.load_dataset``, ``tlc.train.train``, ``tlc build``'s API, ``tlc_runtime``, ``tlc verify``):

- ``finding``: the dataset's own label (normal / pneumonia);
- ``view``: "mirrored" when the image was flipped left-right (applied here and recorded), else "standard";
- ``exposure``: a gamma applied here and recorded: "dark" (gamma 1.8), "normal" (1.0), "bright" (0.55);
  left blank (no label, masked out of the loss) for ``--missing`` (30 %) of the images.

Each image draws its flip, its gamma and whether its exposure label is blank from one seeded generator.
The multi-task run (``--tasks finding,view,exposure``, ``--task-attention`` from ``--attention``) and
three single-task runs (``path,label,split`` CSVs over the same PNGs; the exposure one lists only the
labelled images) share the recipe (architecture, size, epochs, lr, seed). Measured on the test split:

- per-task accuracy and balanced accuracy of every bundle (FP32 x86-cpu, through ``tlc_runtime``) on the
  images labelled for that task, with bootstrap 95 % CIs and the paired CI of multi-task − single-task;
- batch-1 and batch-32 latency (p50/p90) of the one multi-task bundle vs the three single-task bundles
  called one after the other, interleaved (``tlc.bench.latency.compare_latency``), and model bytes;
- the multi-task run built for x86-cpu INT8 and intel-cpu FP32/INT8: built or refused (the message),
  and ``tlc verify``'s verdict with its per-task agreement with PyTorch.

    python benchmarks/multitask.py --data ../shared/data/pneumoniamnist.npz --out bench-out/multitask

Images, runs and bundles are kept under ``--out`` and reused; ``--results`` is where the JSON and PNG go.
``--tiny`` is a smoke run (few images, 1 epoch) that exercises every step.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

TASKS = ("finding", "view", "exposure")
GAMMA = {"dark": 1.8, "normal": 1.0, "bright": 0.55}
FINDING = ("normal", "pneumonia")
TINY_SIZES = {"train": 48, "val": 32, "test": 32}
EXTRA_BUILDS = (("x86-cpu", "int8"), ("intel-cpu", "fp32"), ("intel-cpu", "int8"))
BOOTSTRAP = 1000
STARTED = time.perf_counter()


def say(message: str) -> None:
    """Progress on stderr, with the seconds since the start."""
    print(f"[{time.perf_counter() - STARTED:6.0f} s] {message}", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared/data/pneumoniamnist.npz"))
    p.add_argument("--out", default="bench-out/multitask")
    p.add_argument("--results", default=str(Path(__file__).resolve().parent / "results"))
    p.add_argument("--arch", default="resnet18")
    p.add_argument("--img-size", type=int, default=28)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--attention", default="static", help="comma list of static, dynamic, none")
    p.add_argument("--missing", type=float, default=0.3, help="fraction of exposure labels left blank")
    p.add_argument("--iterations", type=int, default=200)
    p.add_argument("--tiny", action="store_true", help="smoke run: a few images per split, 1 epoch")
    p.add_argument("--extra-builds", default=",".join(f"{t}:{q}" for t, q in EXTRA_BUILDS),
                   help="TARGET:PRECISION list the multi-task run is also built for (empty: none)")
    args = p.parse_args(argv)
    args.extra_builds = [tuple(item.split(":")) for item in args.extra_builds.split(",") if item]
    if args.tiny:
        args.epochs, args.iterations = 1, 5
    return args


def gamma(image: np.ndarray, value: float) -> np.ndarray:
    """``image`` (uint8) with gamma ``value`` applied in unit range (> 1 darkens, < 1 brightens)."""
    return np.rint(255.0 * (image / 255.0) ** value).astype(np.uint8)


def tiny_subset(labels: np.ndarray, n: int) -> np.ndarray:
    """Indices of the first ``n // 2`` images of each class, in file order (``--tiny``)."""
    return np.sort(np.concatenate([np.flatnonzero(labels == c)[:n // 2] for c in range(len(FINDING))]))


def write_images(npz: str, root: Path, missing: float, tiny: bool) -> Path:
    """PNG files per split and ``tasks.csv`` (``path,finding,view,exposure,split``), plus one
    ``path,label,split`` CSV per task; returns ``tasks.csv`` (kept if already there)."""
    from PIL import Image

    csv_path = root / "tasks.csv"
    if csv_path.is_file():
        return csv_path
    data, rng, levels = np.load(npz), np.random.default_rng(0), list(GAMMA)
    rows = []
    for split in ("train", "val", "test"):
        images, labels = data[f"{split}_images"], data[f"{split}_labels"].reshape(-1)
        if tiny:
            keep = tiny_subset(labels, TINY_SIZES[split])
            images, labels = images[keep], labels[keep]
        (root / split).mkdir(parents=True, exist_ok=True)
        for i, (image, label) in enumerate(zip(images, labels, strict=True)):
            flip, level, blank = rng.random(), int(rng.integers(len(levels))), rng.random() < missing
            out = gamma(image[:, ::-1] if flip < 0.5 else image, GAMMA[levels[level]])
            Image.fromarray(np.ascontiguousarray(out)).save(root / split / f"{i}.png")
            rows.append((f"{split}/{i}.png", FINDING[int(label)], "mirrored" if flip < 0.5 else "standard",
                         "" if blank else levels[level], split))
    for t, task in enumerate(TASKS):
        lines = ["path,label,split"] + [f"{r[0]},{r[1 + t]},{r[4]}" for r in rows if r[1 + t]]
        (root / f"{task}.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    csv_path.write_text("\n".join(["path," + ",".join(TASKS) + ",split"] + [",".join(r) for r in rows]) + "\n",
                        encoding="utf-8")
    return csv_path


def train_run(csv: Path, run_dir: Path, args: argparse.Namespace, attention: str | None) -> float:
    """Train (multi-task when ``attention`` is given) unless ``run_dir`` holds a run; the wall seconds."""
    from tlc.train import train
    from tlc.train.config import TrainConfig

    if (run_dir / "run.json").is_file():
        return float("nan")
    multi = {"tasks": TASKS, "task_attention": attention} if attention else {}
    config = TrainConfig(arch=args.arch, img_size=args.img_size, epochs=args.epochs, lr=3e-3,
                         backbone_lr_mult=1.0, patience=None, seed=0, **multi)
    started = time.perf_counter()
    train(csv, run_dir, config, progress=False, overwrite=True)
    return time.perf_counter() - started


def build(run_dir: Path, target: str, precision: str, out: Path) -> dict[str, Any]:
    """Build ``run_dir`` for ``target`` at ``precision`` into ``out`` (kept if there): the bundle, or
    the refusal message of tlc's own error."""
    from tlc.bundler.builder import build_bundle
    from tlc.errors import TlcError

    if not (out / "manifest.json").is_file():
        try:
            build_bundle(run_dir, target, out, precision=precision, overwrite=True, log=lambda message: None)
        except TlcError as exc:
            return {"target": target, "precision": precision, "built": False, "refused": str(exc)}
    import tlc_runtime

    manifest = tlc_runtime.load(out).manifest
    return {"target": target, "precision": precision, "built": True, "bundle": str(out),
            "artifact_precision": manifest.artifact().precision}


def verify(bundle: Path, csv: Path, out: Path) -> dict[str, Any]:
    """``tlc verify BUNDLE --data CSV --json`` (the CLI, in this process): its exit code, verdict and
    per-task agreement."""
    from tlc.cli.main import run

    json_path = out / f"verify-{bundle.name}.json"
    json_path.unlink(missing_ok=True)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as err:
        code = run(["verify", str(bundle), "--data", str(csv), "--json", str(json_path)])
    if not json_path.is_file():
        return {"exit_code": code, "passed": False, "error": err.getvalue().strip().splitlines()[-1:]}
    report = json.loads(json_path.read_text(encoding="utf-8"))
    return {"exit_code": code, "passed": report["passed"],
            "agreement": report["comparison"]["agreement"],
            "tasks": {name: t["agreement"] for name, t in report.get("tasks", {}).items()}}


def task_predictions(bundle: Path, x: np.ndarray) -> dict[str, np.ndarray]:
    """Each task's predicted class names from a bundle on ``x`` (a single-task bundle: under "label")."""
    import tlc_runtime

    clf = tlc_runtime.load(bundle)
    outputs = clf.predict_outputs(x)
    specs = clf.manifest.tasks or ()
    named = {t.name: (outputs[t.output], t.class_names) for t in specs} or \
        {"label": (outputs["logits"], clf.class_names)}
    return {name: np.asarray(names)[logits.argmax(1)] for name, (logits, names) in named.items()}


def test_labels(csv: Path, img_size: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The test split's images (graph dtype) and each task's class-name labels ("" = no label)."""
    from tlc.data import load_dataset

    dataset = load_dataset(csv, seed=0, tasks=TASKS)
    x = dataset.arrays("test", img_size)[0]
    labels = dataset.splits["test"].task_labels
    names = {t.name: np.asarray([*t.class_names, ""])[labels[:, i]] for i, t in enumerate(dataset.tasks)}
    return x, names  # index -1 picks the "" appended last


def ci95(labels: np.ndarray, pred: np.ndarray, k: int) -> list[float]:
    """Bootstrap 95 % percentile CI of the balanced accuracy."""
    from tlc.verify.compare import balanced_accuracy

    rng = np.random.default_rng(0)
    draws = [balanced_accuracy(labels[idx], pred[idx], k)
             for idx in (rng.integers(0, len(labels), len(labels)) for _ in range(BOOTSTRAP))]
    return np.nanpercentile(draws, [2.5, 97.5]).tolist()


def quality(labels: dict[str, np.ndarray], preds: dict[str, dict[str, np.ndarray]]) -> dict[str, Any]:
    """Per task: each contender's accuracy and balanced accuracy (95 % CI) on the images labelled for
    the task, and every multi-task contender's paired difference to the single-task model."""
    from tlc.report.stats import paired_deltas

    result = {}
    for task, names in labels.items():
        keep = names != ""
        classes = sorted(set(names[keep]))
        y = np.searchsorted(classes, names[keep])
        index = {c: np.searchsorted(classes, p[task][keep]) for c, p in preds.items()}
        per = {"n": int(keep.sum()), "classes": classes}
        for contender, pred in index.items():
            deltas = paired_deltas(y, index["single"], pred, len(classes), rounds=BOOTSTRAP)
            per[contender] = {"accuracy": deltas["accuracy"]["b"],
                              "balanced_accuracy": deltas["balanced_accuracy"]["b"],
                              "balanced_accuracy_ci95": ci95(y, pred, len(classes))}
            if contender != "single":
                per[contender]["minus_single"] = {m: {"value": deltas[m]["delta"], "ci95": deltas[m]["ci95"]}
                                                  for m in ("accuracy", "balanced_accuracy")}
        result[task] = per
    return result


def latency(multi: Path, singles: list[Path], x: np.ndarray, iterations: int) -> dict[str, Any]:
    """p50/p90 of the one multi-task bundle vs the single-task bundles called in turn, via tlc_runtime."""
    from dataclasses import asdict

    import tlc_runtime
    from tlc.bench.latency import compare_latency

    one = tlc_runtime.load(multi)
    separate = [tlc_runtime.load(b) for b in singles]
    out = {}
    for batch in (1, 32):
        sample = np.ascontiguousarray(x[:batch])
        timings = compare_latency({"multitask": lambda s=sample: one.predict_outputs(s),
                                   "single_task_x3": lambda s=sample: [c.predict_outputs(s) for c in separate]},
                                  iterations=iterations, warmup=min(20, iterations))
        out[f"batch{batch}"] = {k: asdict(v) for k, v in timings.items()}
        out[f"batch{batch}"]["ratio_p50"] = timings["multitask"].p50_ms / timings["single_task_x3"].p50_ms
    return out


def sizes(bundle: Path) -> dict[str, int]:
    """Bytes of the bundle's model file(s) and of the whole bundle."""
    files = [f for f in bundle.rglob("*") if f.is_file()]
    return {"model_bytes": sum(f.stat().st_size for f in files if f.suffix in (".onnx", ".bin", ".xml")),
            "bundle_bytes": sum(f.stat().st_size for f in files)}


def feature_map(arch: str, size: int) -> list[int]:
    """H×W of the backbone's last feature map at ``size`` px: the positions task attention chooses among."""
    import torch
    from tlc.models.multitask import create_multitask_model

    model = create_multitask_model(arch, [("a", 2), ("b", 2)], "none").eval()
    with torch.no_grad():
        return list(model.forward_spatial(torch.zeros(1, 3, size, size)).shape[2:])


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    quality, timing, size = result["quality"], result["latency"], result["sizes"]
    contenders = [c for c in next(iter(quality.values())) if c not in ("n", "classes")]
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    ax, width = axes[0], 0.8 / len(contenders)
    for k, contender in enumerate(contenders):
        values = [quality[t][contender]["balanced_accuracy"] for t in quality]
        err = [[v - quality[t][contender]["balanced_accuracy_ci95"][0] for t, v in zip(quality, values, strict=True)],
               [quality[t][contender]["balanced_accuracy_ci95"][1] - v for t, v in zip(quality, values, strict=True)]]
        ax.bar(np.arange(len(quality)) + k * width, values, width, yerr=err, capsize=3, label=contender)
    ax.set_xticks(np.arange(len(quality)) + width * (len(contenders) - 1) / 2, list(quality))
    ax.set_ylim(0.3, 1.0)
    ax.set_title("test balanced accuracy per task (95% CI)")
    ax.legend(fontsize=8)
    ax = axes[1]
    batches = [b for b in timing if b.startswith("batch")]
    for k, (kind, label) in enumerate((("multitask", "one multi-task bundle"),
                                       ("single_task_x3", "3 single-task bundles"))):
        ax.bar(np.arange(len(batches)) + 0.4 * k, [timing[b][kind]["p50_ms"] for b in batches], 0.4, label=label)
    ax.set_xticks(np.arange(len(batches)) + 0.2, batches)
    ax.set_ylabel("p50 ms")
    ax.set_title("latency, tlc_runtime (ONNX Runtime FP32)")
    ax.legend(fontsize=8)
    ax = axes[2]
    ax.bar(list(size), [s["model_bytes"] / 2**20 for s in size.values()])
    ax.set_ylabel("MiB")
    ax.set_title("model bytes, FP32 x86-cpu bundle")
    ax.tick_params(axis="x", labelrotation=20)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def extra_targets(run_dir: Path, csv: Path, bundles: Path, fp32: Path,
                  extra: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """The multi-task run on x86-cpu FP32 (built already) and ``extra`` builds: built or refused, and
    ``tlc verify``'s verdict and per-task agreement for each bundle built."""
    rows = [{"target": "x86-cpu", "precision": "fp32", "built": True, "bundle": str(fp32),
             "artifact_precision": "fp32"}]
    for target, precision in extra:
        say(f"multi-task build {target} {precision}")
        rows.append(build(run_dir, target, precision, bundles / f"multitask-{target}-{precision}"))
    for row in rows:
        if row["built"]:
            say(f"tlc verify {row['target']} {row['precision']}")
            row["verify"] = verify(Path(row["bundle"]), csv, bundles)
    return rows


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    out, results = Path(args.out), Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    csv = write_images(args.data, out / "images", args.missing, args.tiny)
    attentions = [a.strip() for a in args.attention.split(",") if a.strip()]
    seconds, bundles = {}, out / "bundles"
    for attention in attentions:
        run_dir = out / "runs" / f"multitask-{attention}"
        say(f"multi-task run ({attention} attention)")
        seconds[f"multitask-{attention}"] = train_run(csv, run_dir, args, attention)
        build(run_dir, "x86-cpu", "fp32", bundles / f"multitask-{attention}")
    for task in TASKS:
        say(f"single-task run {task}")
        seconds[task] = train_run(csv.parent / f"{task}.csv", out / "runs" / task, args, None)
        build(out / "runs" / task, "x86-cpu", "fp32", bundles / task)
    say("test split through every bundle")
    x, labels = test_labels(csv, args.img_size)
    preds = {f"multitask-{a}": task_predictions(bundles / f"multitask-{a}", x) for a in attentions}
    preds["single"] = {task: task_predictions(bundles / task, x)["label"] for task in TASKS}
    first = bundles / f"multitask-{attentions[0]}"
    result = {"arguments": vars(args), "machine": platform.machine(), "test_images": len(x),
              "feature_map": feature_map(args.arch, args.img_size), "train_seconds": seconds,
              "quality": quality(labels, preds),
              "latency": say("latency") or latency(first, [bundles / t for t in TASKS], x, args.iterations),
              "sizes": {first.name: sizes(first), **{t: sizes(bundles / t) for t in TASKS}},
              "targets": extra_targets(out / "runs" / first.name, csv, bundles, first, args.extra_builds)}
    (results / "multitask.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    plot(result, results / "multitask.png")
    report(result)
    return result


def report(result: dict[str, Any]) -> None:
    """The figures on stdout."""
    for task, q in result["quality"].items():
        line = ", ".join(f"{c} {q[c]['balanced_accuracy']:.4f} {np.round(q[c]['balanced_accuracy_ci95'], 4).tolist()}"
                         for c in q if c not in ("n", "classes"))
        print(f"{task} (n={q['n']}) balanced accuracy: {line}")
    for batch, t in result["latency"].items():
        print(f"{batch}: multi-task {t['multitask']['p50_ms']:.2f} ms, 3 single-task "
              f"{t['single_task_x3']['p50_ms']:.2f} ms (ratio {t['ratio_p50']:.2f})")
    for row in result["targets"]:
        verdict = row.get("verify", {})
        print(f"{row['target']} {row['precision']}: " + (f"verify passed={verdict.get('passed')} "
              f"per-task agreement {verdict.get('tasks')}" if row["built"] else f"refused: {row['refused']}"))


if __name__ == "__main__":
    main()
