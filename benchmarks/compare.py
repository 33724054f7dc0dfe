"""Compare benchmark: does the source distance rank transfer sources the way their test AUC does?

Target: PneumoniaMNIST with few labels (``--train-images`` drawn stratified from its train split; its
val and test splits as published). Sources, none of which saw a pneumonia label, each a ResNet-18 tlc
run trained here:
  rotation  PneumoniaMNIST train images (other than the target's) rotated 0/90/180/270°, the label
            the rotation (a self-made task in the target's own domain);
  digits    scikit-learn's 8×8 digits (``tlc.data.digits``'s source), 10 classes;
  shapes    generated 28×28 images: a disc, a square or a cross at a random place on noise.
Candidates (``tlc.compare``: same splits, one recipe, FP32 x86-cpu bundles): small-cnn and ResNet-18
from scratch, and ResNet-18 fine-tuned from each source. Reported: the compare table, and per source
its distance (``tlc.train.source_distance``) against its test AUC with their Spearman correlation.

    python benchmarks/compare.py --data ../shared/data/pneumoniamnist.npz --out bench-out/compare

Output: the table on stdout, OUT/compare/ (compare.json/csv/png, runs, bundles), and OUT/compare_bench.json
and OUT/compare_bench.png (distance vs AUC) — the copies in benchmarks/results come from one such run.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="../shared/data/pneumoniamnist.npz")
    p.add_argument("--out", default="bench-out/compare")
    p.add_argument("--train-images", type=int, default=200, help="labelled target training images")
    p.add_argument("--source-images", type=int, default=1500, help="training images per source")
    p.add_argument("--img-size", type=int, default=28)
    p.add_argument("--source-epochs", type=int, default=3)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args()


def _split_save(path: Path, images: np.ndarray, labels: np.ndarray, seed: int) -> Path:
    """An npz with a shuffled 80/10/10 train/val/test split."""
    order = np.random.default_rng(seed).permutation(len(labels))
    images, labels = images[order], labels[order]
    a, b = int(0.8 * len(labels)), int(0.9 * len(labels))
    np.savez(path, train_images=images[:a], train_labels=labels[:a], val_images=images[a:b],
             val_labels=labels[a:b], test_images=images[b:], test_labels=labels[b:])
    return path


def make_target(src: dict, n: int, seed: int, path: Path) -> tuple[Path, np.ndarray]:
    """Few-label target: ``n`` stratified train images; returns the npz and the unused train indices."""
    labels = src["train_labels"].reshape(-1)
    rng = np.random.default_rng(seed)
    picked = np.concatenate([rng.permutation(np.flatnonzero(labels == c))[: round(n * np.mean(labels == c))]
                             for c in np.unique(labels)])
    np.savez(path, train_images=src["train_images"][picked], train_labels=labels[picked],
             val_images=src["val_images"], val_labels=src["val_labels"].reshape(-1),
             test_images=src["test_images"], test_labels=src["test_labels"].reshape(-1))
    return path, np.setdiff1d(np.arange(len(labels)), picked)


def rotation_source(src: dict, unused: np.ndarray, n: int, seed: int, path: Path) -> Path:
    idx = np.random.default_rng(seed).permutation(unused)[:n]
    k = np.arange(len(idx)) % 4
    images = np.stack([np.rot90(src["train_images"][i], r) for i, r in zip(idx, k, strict=True)])
    return _split_save(path, images, k, seed)


def digits_source(path: Path, seed: int) -> Path:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return _split_save(path, np.rint(bunch.images * 255 / 16).astype(np.uint8), bunch.target, seed)


def shapes_source(n: int, seed: int, path: Path, size: int = 28) -> Path:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    images, labels = np.empty((n, size, size), np.uint8), np.arange(n) % 3
    for i, label in enumerate(labels):
        cy, cx, r = rng.integers(8, size - 8), rng.integers(8, size - 8), rng.integers(4, 8)
        shape = [(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r,
                 (abs(yy - cy) <= r) & (abs(xx - cx) <= r),
                 ((abs(yy - cy) <= 1) & (abs(xx - cx) <= r)) | ((abs(xx - cx) <= 1) & (abs(yy - cy) <= r))][label]
        noise = rng.normal(60, 25, (size, size))
        images[i] = np.clip(np.where(shape, 200 + rng.normal(0, 20, (size, size)), noise), 0, 255)
    return _split_save(path, images, labels, seed)


def train_sources(paths: dict[str, Path], args: argparse.Namespace, out: Path) -> dict[str, float]:
    from tlc.train import TrainConfig, train

    seconds = {}
    for name, npz in paths.items():
        started = time.perf_counter()
        config = TrainConfig(arch="resnet18", img_size=args.img_size, epochs=args.source_epochs, batch_size=64,
                             lr=3e-3, patience=None, seed=args.seed)
        train(npz, out / "sources" / name, config, progress=False, overwrite=True)
        seconds[name] = time.perf_counter() - started
        print(f"source {name}: trained in {seconds[name]:.0f} s", flush=True)
    return seconds


def spearman(x: list[float], y: list[float]) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(x, y).statistic)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for r in rows:
        lo, hi = r["auc_ci95"]
        ax.errorbar([r["distance"]], [r["auc"]], yerr=[[r["auc"] - lo], [hi - r["auc"]]], fmt="o", capsize=4)
        ax.annotate(r["source"], (r["distance"], r["auc"]), textcoords="offset points", xytext=(6, 4))
    ax.set_xlabel("source distance (Fréchet / source trace)")
    ax.set_ylabel("target test AUC (95 % bootstrap CI)")
    ax.set_title("PneumoniaMNIST, few labels: source distance vs transfer AUC")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    args = parse_args()
    out = Path(args.out)
    (out / "data").mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    src = dict(np.load(args.data))
    target, unused = make_target(src, args.train_images, args.seed, out / "data" / "target.npz")
    sources = {"rotation": rotation_source(src, unused, args.source_images, args.seed, out / "data" / "rotation.npz"),
               "digits": digits_source(out / "data" / "digits.npz", args.seed),
               "shapes": shapes_source(args.source_images, args.seed, out / "data" / "shapes.npz")}
    source_seconds = train_sources(sources, args, out)

    from tlc.compare import compare, parse_candidates

    specs = ["small=small-cnn", "scratch=resnet18",
             *(f"{name}=resnet18:{out / 'sources' / name}" for name in sources)]
    recipe = dict(img_size=args.img_size, epochs=args.epochs, batch_size=32, lr=3e-3, patience=None, seed=args.seed)
    result = compare(target, parse_candidates(specs), "x86-cpu", out / "compare", recipe=recipe, overwrite=True,
                     latency_iterations=200, log=lambda m: print(m, flush=True))
    table = result.to_dict()["candidates"]
    for c in table:
        s = c["scores"]
        dist = c["source_distance"]["distance"] if c["source_distance"] else None
        print(f"{c['name']:8s} AUC {s['auc']['value']:.3f} {s['auc']['ci95']}  bal-acc {s['balanced_accuracy']['value']:.3f}"
              f"  F1 {s['f1']['value']:.3f}  p50 {c['latency_ms']['p50']:.2f} ms  {c['bundle_bytes'] / 1e6:.1f} MB"
              f"  train {c['train_seconds']:.0f} s  distance {dist}")
    rows = [{"source": c["name"], "distance": c["source_distance"]["distance"], "auc": c["scores"]["auc"]["value"],
             "auc_ci95": c["scores"]["auc"]["ci95"], "balanced_accuracy": c["scores"]["balanced_accuracy"]["value"]}
            for c in table if c["source_distance"]]
    rho_auc = spearman([r["distance"] for r in rows], [r["auc"] for r in rows])
    rho_bal = spearman([r["distance"] for r in rows], [r["balanced_accuracy"] for r in rows])
    print(f"Spearman(distance, AUC) over {len(rows)} sources: {rho_auc:+.2f}; (distance, bal-acc): {rho_bal:+.2f}")
    summary = {"args": vars(args), "source_train_seconds": source_seconds, "candidates": table, "sources": rows,
               "spearman_distance_auc": rho_auc, "spearman_distance_balanced_accuracy": rho_bal,
               "total_seconds": time.perf_counter() - started}
    text = json.dumps(summary, indent=2).replace(json.dumps(str(out.resolve()))[1:-1], "OUT")  # portable paths
    (out / "compare_bench.json").write_text(text + "\n")
    plot(rows, out / "compare_bench.png")


if __name__ == "__main__":
    main()
