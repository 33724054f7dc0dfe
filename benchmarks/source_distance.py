"""Source-distance benchmark: do the source measures rank transfer sources the way fine-tuning does?

Target: PneumoniaMNIST with few labels (``--train-images`` stratified from its train split; its val and
test splits as published). Five ResNet-18 sources, none of which saw a pneumonia label:
  upright   PneumoniaMNIST train images not among the target's, half mirrored left-right, the label
            "mirrored or not" (same domain, a self-made task that keeps every image upright);
  rotation  the same kind of images rotated 0/90/180/270°, the label the rotation (``compare.py``'s);
  digits    scikit-learn's 8×8 digits, 10 classes;
  cluttered ``tlc.data.digits``'s cluttered digits (16×16 canvas, fragments of other digits), 10 classes;
  shapes    generated: a disc, square or cross on noise (``compare.py``'s);
and three with a known order of usefulness, all on the same balanced ~735 other PneumoniaMNIST train
images (every normal one the target left, as many pneumonia ones), differing only in their labels:
  same-task     the true normal/pneumonia labels (a same-domain, same-task source: should transfer best);
  noisy-task    half of the labels redrawn at random (a quarter wrong);
  random-labels every label redrawn at random (the same images, no task to learn).
A measure computed from the images alone gives these three almost the same value; a measure that
predicts transfer must rank them same-task > noisy-task > random-labels.
Each source is fine-tuned on the target with ``--seeds`` seeds (one recipe, no build: the run's own
test AUC). Per source: the Fréchet source distance and the proxy A-distance (``tlc.train.source_distance``)
and diagnostics (the distance with the rotation source's upright images only; the target's spread in
the source's feature space; a linear probe on frozen source features, the one diagnostic that uses the
target's labels), and the Spearman correlation of each with the mean test AUC; ResNet-18 from scratch
with the same recipe as the no-transfer reference.

    python benchmarks/source_distance.py --data ../shared/data/pneumoniamnist.npz --out bench-out/source-distance

Source runs and fine-tunes are cached under OUT (a rerun with the same OUT only recomputes the measures).
Output: OUT/source_distance.json and OUT/source_distance.png (measure vs mean AUC).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from compare import _split_save, digits_source, make_target, rotation_source, shapes_source, spearman

GRADED = ("same-task", "noisy-task", "random-labels")  # known order of usefulness, best first


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="../shared/data/pneumoniamnist.npz")
    p.add_argument("--out", default="bench-out/source-distance")
    p.add_argument("--train-images", type=int, default=200, help="labelled target training images")
    p.add_argument("--source-images", type=int, default=800, help="images per generated/PneumoniaMNIST source")
    p.add_argument("--img-size", type=int, default=28)
    p.add_argument("--source-epochs", type=int, default=2)
    p.add_argument("--epochs", type=int, default=6, help="fine-tuning epochs")
    p.add_argument("--seeds", type=int, default=2, help="fine-tuning seeds per source")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--holdout", action="store_true",
                   help="fine-tune outcome on half the published val split (the other half selects epochs) "
                        "instead of the published test split")
    p.add_argument("--sources", default=None, help="comma-separated subset of the sources (default: all)")
    return p.parse_args()


def upright_source(src: dict, unused: np.ndarray, n: int, seed: int, path: Path) -> Path:
    """Other target-domain images, upright; half mirrored left-right, label = mirrored."""
    idx = np.random.default_rng(seed + 1).permutation(unused)[:n]
    flip = np.arange(len(idx)) % 2
    images = np.stack([src["train_images"][i][:, ::-1] if f else src["train_images"][i]
                       for i, f in zip(idx, flip, strict=True)])
    return _split_save(path, images, flip, seed)


def holdout_target(path: Path) -> Path:
    """The target with its published val split halved (stratified, seeded): one half still selects the
    best epoch, the other becomes the test split. Fine-tuned AUC on it is then measured on the target's
    own distribution with no selection on it (PneumoniaMNIST's published test split is shifted from its
    train/val images)."""
    arrays = dict(np.load(path))
    labels = arrays["val_labels"]
    rng = np.random.default_rng(7)
    held = np.concatenate([rng.permutation(np.flatnonzero(labels == c))[: int(np.sum(labels == c)) // 2]
                           for c in np.unique(labels)])
    keep = np.setdiff1d(np.arange(len(labels)), held)
    arrays.update(test_images=arrays["val_images"][held], test_labels=labels[held],
                  val_images=arrays["val_images"][keep], val_labels=labels[keep])
    np.savez(path, **arrays)
    return path


def labelled_source(src: dict, unused: np.ndarray, seed: int, redraw: float, path: Path) -> Path:
    """Balanced other PneumoniaMNIST images with their labels, a ``redraw`` share of them redrawn at random."""
    labels = src["train_labels"].reshape(-1)
    rng = np.random.default_rng(seed + 2)
    normal = unused[labels[unused] == 0]
    idx = np.concatenate([normal, rng.permutation(unused[labels[unused] == 1])[:len(normal)]])
    noisy = np.random.default_rng(seed + 3)
    redrawn = noisy.random(len(idx)) < redraw  # the same draw for every share: nested noise
    new = np.where(redrawn, noisy.integers(0, 2, len(idx)), labels[idx])
    return _split_save(path, src["train_images"][idx], new, seed)


def cluttered_source(path: Path, seed: int) -> Path:
    from tlc.data.digits import load_digits

    data = load_digits(range(10), clutter=True, seed=seed)
    arrays = {s: data.arrays(s, 16) for s in ("train", "val", "test")}
    np.savez(path, **{f"{s}_images": a[0] for s, a in arrays.items()}, **{f"{s}_labels": a[1] for s, a in arrays.items()})
    return path


def make_data(args: argparse.Namespace, data_dir: Path) -> tuple[Path, dict[str, Path]]:
    data_dir.mkdir(parents=True, exist_ok=True)
    src = dict(np.load(args.data))
    target, unused = make_target(src, args.train_images, 0, data_dir / "target.npz")
    if args.holdout:
        target = holdout_target(target)
    sources = {"upright": upright_source(src, unused, args.source_images, 0, data_dir / "upright.npz"),
               "rotation": rotation_source(src, unused, args.source_images, 0, data_dir / "rotation.npz"),
               "digits": digits_source(data_dir / "digits.npz", 0),
               "cluttered": cluttered_source(data_dir / "cluttered.npz", 0),
               "shapes": shapes_source(args.source_images, 0, data_dir / "shapes.npz"),
               "same-task": labelled_source(src, unused, 0, 0.0, data_dir / "same-task.npz"),
               "noisy-task": labelled_source(src, unused, 0, 0.5, data_dir / "noisy-task.npz"),
               "random-labels": labelled_source(src, unused, 0, 1.0, data_dir / "random-labels.npz")}
    wanted = args.sources.split(",") if args.sources else list(sources)
    unknown = set(wanted) - set(sources)
    if unknown:
        raise SystemExit(f"unknown source(s) {sorted(unknown)}; known: {', '.join(sources)}")
    return target, {name: sources[name] for name in wanted}


def train_cached(data: Path, run: Path, log: str, threads: int, **config) -> dict:
    """run.json of ``run``, training it first unless it is already there."""
    from tlc.train import TrainConfig, train

    if not (run / "run.json").is_file():
        started = time.perf_counter()
        train(data, run, TrainConfig(arch="resnet18", img_size=config.pop("img_size"), threads=threads, **config), progress=False,
              overwrite=True)
        print(f"{log}: trained in {time.perf_counter() - started:.0f} s", flush=True)
    return json.loads((run / "run.json").read_text())


def measures(run: Path, target: Path, seed: int = 0) -> dict:
    """The three source measures (distance, PAD, LogME) and the diagnostics of one source run against the
    target's training images."""
    from tlc.data import load_dataset
    from tlc.models.checkpoint import load_run_model
    from tlc.models.deploy import DeployModel
    from tlc.train.rundir import make_preprocessing
    from tlc.train.source_distance import (
        MAX_IMAGES,
        _features,
        _sample,
        normalised_frechet,
        proxy_a_distance,
        source_distance,
    )

    dataset = load_dataset(target)
    distance = source_distance(run, dataset, seed=seed)
    classifier, info = load_run_model(run)
    model_s = DeployModel(classifier, info.preprocessing, info.input_channels)
    model_t = DeployModel(classifier, make_preprocessing(dataset, info), 1)
    images_t = dataset.arrays("train", info.img_size)[0]
    feats_t = _features(model_t, images_t[_sample(len(images_t), MAX_IMAGES, seed + 1)])
    half = len(feats_t) // 2
    out = {**distance.to_dict(),
           "target_trace": float(np.trace(np.cov(feats_t, rowvar=False))),
           "target_vs_target": normalised_frechet(feats_t[:half], feats_t[half:])[0],
           "frechet_over_target_trace": distance.frechet / float(np.trace(np.cov(feats_t, rowvar=False)))}
    out["spread_ratio"] = out["target_trace"] / distance.source_trace
    out["probe_val_auc"] = probe_auc(model_t, dataset, info.img_size)
    if run.name == "rotation":  # the same images, upright only (label 0 = not rotated)
        images, labels = load_dataset(info.data.source, seed=info.seed, **info.data_options()).arrays(
            "train", info.img_size)
        upright = images[labels == 0]
        feats_up = _features(model_s, upright[:MAX_IMAGES])
        out["upright_only_distance"] = normalised_frechet(feats_up, feats_t)[0]
        out["upright_only_pad"] = proxy_a_distance(feats_up, feats_t, seed)
    return out


def probe_auc(model, dataset, img_size: int) -> float:
    """Diagnostic that uses the target's labels (as LogME does, without fitting a classifier): validation AUC
    of a logistic regression on the frozen source features of the labelled target training images."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from tlc.train.source_distance import _features

    (x, y), (vx, vy) = dataset.arrays("train", img_size), dataset.arrays("val", img_size)
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000, class_weight="balanced"))
    clf.fit(_features(model, x), y)
    return float(roc_auc_score(vy, clf.predict_proba(_features(model, vx))[:, 1]))


def correlations(rows: list[dict], keys: list[str], outcome: str) -> dict[str, dict[str, float] | None]:
    """Spearman of each measure with ``outcome`` over all sources and over the label-graded three, printed."""
    graded = [r for r in rows if r["source"] in GRADED]
    out: dict[str, dict[str, float] | None] = {}
    for group, members in (("all", rows), ("label_graded", graded if len(graded) == len(GRADED) else None)):
        if members is None:
            out[group] = None
            continue
        out[group] = {k: spearman([r[k] for r in members], [r[outcome] for r in members]) for k in keys}
        for k, v in out[group].items():
            print(f"Spearman({k}, {outcome}) over {len(members)} sources ({group}): {v:+.2f}")
    return out


def plot(rows: list[dict], keys: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(keys), figsize=(5 * len(keys), 8), squeeze=False)
    for row_axes, (outcome, label) in zip(axes, (("auc", "test AUC"), ("val_auc", "val AUC")), strict=True):
        for ax, key in zip(row_axes, keys, strict=True):
            for r in rows:
                mean = r[f"{outcome}_mean"]
                ax.errorbar([r[key]], [mean], yerr=[[mean - r[f"{outcome}_min"]], [r[f"{outcome}_max"] - mean]],
                            fmt="o", capsize=4)
                ax.annotate(r["source"], (r[key], mean), textcoords="offset points", xytext=(6, 4))
            ax.set_xlabel(key.replace("_", " "))
            ax.set_ylabel(f"fine-tuned {label} (mean, range over seeds)")
            ax.grid(alpha=0.3)
    fig.suptitle("PneumoniaMNIST, 200 labels: source measure vs fine-tuned AUC")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    import torch

    args = parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    started = time.perf_counter()
    target, sources = make_data(args, out / "data")
    finetunes = out / ("finetune-holdout" if args.holdout else "finetune")  # a cached run keeps its outcome
    rows = []
    for name, npz in sources.items():
        source_info = train_cached(npz, out / "sources" / name, f"source {name}", args.threads, img_size=args.img_size,
                                   epochs=args.source_epochs, batch_size=64, lr=3e-3, patience=None, seed=0)
        aucs, val_aucs = [], []
        for seed in range(args.seeds):
            info = train_cached(target, finetunes / f"{name}-s{seed}", f"fine-tune {name} seed {seed}", args.threads,
                                img_size=args.img_size, weights=str(out / "sources" / name), epochs=args.epochs,
                                batch_size=32, lr=3e-3, patience=None, seed=seed)
            aucs.append(info["test_metrics"]["auc"])
            val_aucs.append(info["val_metrics"]["auc"])
        row = {**measures(out / "sources" / name, target), "source": name,
               "source_val_balanced_accuracy": source_info["val_metrics"]["balanced_accuracy"],
               "aucs": aucs, "auc_mean": float(np.mean(aucs)), "auc_min": min(aucs), "auc_max": max(aucs),
               "val_aucs": val_aucs, "val_auc_mean": float(np.mean(val_aucs)), "val_auc_min": min(val_aucs),
               "val_auc_max": max(val_aucs)}
        print(json.dumps(row), flush=True)
        rows.append(row)
    scratch = [train_cached(target, finetunes / f"scratch-s{seed}", f"scratch seed {seed}", args.threads, img_size=args.img_size,
                            epochs=args.epochs, batch_size=32, lr=3e-3, patience=None, seed=seed)["test_metrics"]["auc"]
               for seed in range(args.seeds)]
    print(f"resnet18 from scratch, same recipe: test AUC {np.mean(scratch):.3f} {scratch}")
    keys = ["distance", "pad", "logme", "frechet_over_target_trace", "probe_val_auc"]
    rho = {outcome: correlations(rows, keys, outcome) for outcome in ("auc_mean", "val_auc_mean")}
    summary = {"args": vars(args), "sources": rows, "scratch_aucs": scratch, "spearman": rho,
               "total_seconds": time.perf_counter() - started}
    (out / "source_distance.json").write_text(json.dumps(summary, indent=2) + "\n")
    plot(rows, keys, out / "source_distance.png")


if __name__ == "__main__":
    main()
