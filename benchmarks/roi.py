"""ROI benchmark: the same small model with and without cropping to the region of interest, on data
where the object is small in the frame.

Data: scikit-learn's digits (all 10 classes), each 8×8 digit placed at a random spot of a
canvas×canvas image among dim fragments of other digits (``tlc.data.digits.cluttered_with_boxes``,
which also returns each digit's true box), written as a MedMNIST-style .npz with a fixed stratified
60/20/20 split and a boxes CSV (``split,index,x0,y0,x1,y1``), and loaded back through
``tlc.data.load_dataset`` exactly as ``tlc train DATA --roi ...`` does.

Conditions (same splits and training subset, same architecture, image size, epochs and seeds;
ResNet-18 from scratch at 16 px by default):

  none      the whole frame
  given     the true boxes from the CSV (``--roi boxes.csv``)
  auto      the automatic rule with its defaults (``--roi auto``)
  auto-tN   the automatic rule at threshold N (``--auto-threshold``; Python API only)

Reported per condition: test balanced accuracy per seed, mean and spread (sample std, min..max), the
share of the frame the crops keep, and the crops' mean IoU with the true boxes (test split).

    python benchmarks/roi.py --out bench-out/roi                 # 4 conditions × 2 seeds: ~6-12 min on 2 cores
    python benchmarks/roi.py --seeds 0 --epochs 1 --out /tmp/roi  # smoke run

Output: a table on stdout, OUT/roi.json (every number and the arguments) and OUT/roi.png.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="bench-out/roi")
    p.add_argument("--arch", default="resnet18")
    p.add_argument("--img-size", type=int, default=16)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--limit-train", type=int, default=500, help="training images per run (seeded subset)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--canvas", type=int, default=24, help="frame side; the digit is 8×8")
    p.add_argument("--fragments", type=int, default=3, help="clutter fragments per image")
    p.add_argument("--auto-threshold", type=float, nargs="*", default=[0.6],
                   help="extra auto-rule thresholds to try (fractions of the robust intensity range)")
    p.add_argument("--conditions", nargs="+", default=None, help="run only these (e.g. none given)")
    p.add_argument("--data-seed", type=int, default=0)
    return p.parse_args()


def make_data(out: Path, canvas: int, fragments: int, seed: int) -> tuple[Path, Path, dict[str, np.ndarray]]:
    """Write OUT/digits.npz (stratified 60/20/20) and OUT/boxes.csv; return them and the true boxes per split."""
    from sklearn.datasets import load_digits
    from tlc.data.digits import cluttered_with_boxes

    bunch = load_digits()
    rng = np.random.default_rng(seed)
    images, boxes = cluttered_with_boxes(np.rint(bunch.images * 255 / 16).astype(np.uint8), rng, canvas, fragments)
    members: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    for digit in range(10):
        idx = rng.permutation(np.flatnonzero(bunch.target == digit))
        a, b = int(0.6 * len(idx)), int(0.8 * len(idx))
        members["train"] += idx[:a].tolist()
        members["val"] += idx[a:b].tolist()
        members["test"] += idx[b:].tolist()
    arrays, rows, true = {}, ["split,index,x0,y0,x1,y1"], {}
    for split, idx in members.items():
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = images[idx], bunch.target[idx]
        true[split] = boxes[idx]
        rows += [f"{split},{i},{','.join(map(str, box))}" for i, box in enumerate(boxes[idx])]
    np.savez(out / "digits.npz", **arrays, class_names=np.array([str(d) for d in range(10)]))
    (out / "boxes.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return out / "digits.npz", out / "boxes.csv", true


def datasets(npz: Path, boxes: Path, thresholds: list[float]) -> dict[str, Any]:
    from tlc.data import load_dataset
    from tlc.data.roi import with_roi
    from tlc_runtime.roi import RoiRule

    plain = load_dataset(npz)
    out = {"none": plain, "given": load_dataset(npz, roi=boxes), "auto": with_roi(plain, "auto")}
    out.update({f"auto-t{t:g}": with_roi(plain, RoiRule("auto", threshold=t)) for t in thresholds})
    return out


def crop_stats(dataset: Any, true: np.ndarray) -> dict[str, float]:
    """Share of the frame kept and mean IoU with the true boxes, on the test split."""
    from tlc_runtime.roi import auto_box

    split = dataset.splits["test"]
    frames = [(0, 0, im.shape[1], im.shape[0]) for im in split.images]
    if dataset.roi is None:
        boxes = frames
    elif split.rois is not None:
        boxes = list(split.rois)
    else:
        boxes = [auto_box(im, dataset.roi) for im in split.images]
    area = [_area(b) / _area(f) for b, f in zip(boxes, frames, strict=True)]
    iou = [_iou(b, tuple(t)) for b, t in zip(boxes, true, strict=True)]
    return {"frame_share": float(np.mean(area)), "iou_true": float(np.mean(iou))}


def _area(box: tuple[int, ...]) -> int:
    return max(0, box[2] - box[0]) * max(0, box[3] - box[1])


def _iou(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    inter = _area((max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])))
    return inter / (_area(a) + _area(b) - inter)


def train_one(dataset: Any, args: argparse.Namespace, seed: int, out: Path) -> dict[str, Any]:
    from tlc.train import TrainConfig, train

    config = TrainConfig(arch=args.arch, img_size=args.img_size, epochs=args.epochs, batch_size=64,
                         patience=None, seed=seed, limit_train=args.limit_train)
    started = time.perf_counter()
    info = train(dataset, out, config, progress=False, overwrite=True)
    return {"seed": seed, "test_balanced_accuracy": info.test_metrics["balanced_accuracy"],
            "best_epoch": info.best_epoch, "seconds": round(time.perf_counter() - started, 1)}


def summarise(runs: list[dict[str, Any]]) -> dict[str, float]:
    acc = np.array([r["test_balanced_accuracy"] for r in runs])
    return {"mean": float(acc.mean()), "std": float(acc.std(ddof=1)) if len(acc) > 1 else 0.0,
            "min": float(acc.min()), "max": float(acc.max())}


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    fig, ax = plt.subplots(figsize=(1.6 * len(names) + 2, 4))
    for x, name in enumerate(names):
        accs = [r["test_balanced_accuracy"] for r in results[name]["runs"]]
        ax.bar(x, np.mean(accs), color="#9ab" if name == "none" else "#4a8", alpha=0.8)
        ax.scatter([x] * len(accs), accs, color="k", s=12, zorder=3)
    ax.set_xticks(range(len(names)), [f"{n}\n{results[n]['crop']['frame_share']:.0%} of frame" for n in names])
    ax.set_ylabel("test balanced accuracy")
    ax.set_ylim(0, 1)
    ax.set_title("ROI cropping before classification (bars: mean, dots: seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    args = parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    npz, boxes, true = make_data(out, args.canvas, args.fragments, args.data_seed)
    results: dict[str, Any] = {}
    for name, dataset in datasets(npz, boxes, args.auto_threshold).items():
        if args.conditions and name not in args.conditions:
            continue
        runs = [train_one(dataset, args, seed, out / "runs" / f"{name}-s{seed}") for seed in args.seeds]
        results[name] = {"runs": runs, "summary": summarise(runs), "crop": crop_stats(dataset, true["test"])}
        s, c = results[name]["summary"], results[name]["crop"]
        print(f"{name:10s} bal.acc {s['mean']:.3f} ± {s['std']:.3f} ({s['min']:.3f}..{s['max']:.3f})  "
              f"frame kept {c['frame_share']:.0%}  IoU with true box {c['iou_true']:.2f}  "
              f"[{sum(r['seconds'] for r in runs):.0f} s]", flush=True)
    record = {"args": vars(args), "sizes": {k: int(len(v)) for k, v in true.items()}, "results": results}
    (out / "roi.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    plot(results, out / "roi.png")
    print(f"wrote {out / 'roi.json'} and {out / 'roi.png'}")


if __name__ == "__main__":
    main()
