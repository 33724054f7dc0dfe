"""Spectral regularisation benchmark: does ``tlc train --spectral-reg`` help a few-label simulated→real transfer?

Source (simulated): the digits 0–9 *rendered* from a font (Pillow's bundled FreeType font), each with a
random rotation, scale, shift, stroke width and blur, reduced to 8×8 with 17 grey levels like the real
set: no handwriting at all. Target (real): scikit-learn's handwritten digits; a fixed half is the test
split, and each seed draws ``--labels`` training and as many validation images per class from the other
half (the few-label regime). Everything goes through ``.npz`` files and ``tlc.train.train`` exactly as
``tlc train synth.npz`` then ``tlc train real.npz --weights SYNTH_RUN --spectral-reg L`` would.

One source run (small_cnn at 32 px: its last feature map is 4×4, so each image's map is a 256×16
matrix); then, per seed, a fine-tune for every LAMBDA (the same data and seed for every LAMBDA: paired)
and, with ``--scratch``, one run from scratch on the same labels. Reported: test balanced accuracy and macro AUC, mean ± sd
over seeds, and for each LAMBDA > 0 the paired difference to LAMBDA = 0 with a paired t-test.

    python benchmarks/spectral.py --out bench-out/spectral
    python benchmarks/spectral.py --source bench-out/spectral/synth-run --out bench-out/spectral2  # reuse it

Output: a table on stdout, OUT/spectral.json (every number and the arguments) and OUT/spectral.png.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

LAMBDAS = (0.0, 1.0, 10.0)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="bench-out/spectral")
    p.add_argument("--lambdas", type=float, nargs="+", default=list(LAMBDAS))
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--labels", type=int, default=10, help="real training images per class")
    p.add_argument("--synth-per-class", type=int, default=150)
    p.add_argument("--img-size", type=int, default=32)
    p.add_argument("--pretrain-epochs", type=int, default=5)
    p.add_argument("--epochs", type=int, default=8, help="fine-tuning epochs")
    p.add_argument("--source", default=None, help="an existing source run (skips rendering and pretraining)")
    p.add_argument("--scratch", action="store_true", help="also train from scratch on each seed's labels")
    return p.parse_args()


def render_digits(per_class: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Simulated digits: font glyphs under random pose and stroke, 8×8 uint8 in 17 levels (0..255)."""
    from PIL import Image, ImageDraw, ImageFilter, ImageFont

    images, labels = [], []
    for digit in range(10):
        for _ in range(per_class):
            font = ImageFont.load_default(size=int(rng.integers(30, 40)))
            canvas = Image.new("L", (32, 32))
            offset = rng.uniform(-3, 3, size=2)
            ImageDraw.Draw(canvas).text((16 + offset[0], 16 + offset[1]), str(digit), fill=255, font=font,
                                        anchor="mm", stroke_width=int(rng.integers(0, 3)), stroke_fill=255)
            canvas = canvas.rotate(float(rng.uniform(-15, 15)), resample=Image.BILINEAR)
            canvas = canvas.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.3, 1.2))))
            small = np.asarray(canvas.resize((8, 8), Image.BOX), dtype=np.float64)
            small = small * 16 / max(small.max(), 1.0)
            images.append(np.rint(np.rint(small) * 255 / 16).astype(np.uint8))
            labels.append(digit)
    return np.stack(images), np.array(labels)


def write_synth(path: Path, per_class: int) -> None:
    images, labels = render_digits(per_class, np.random.default_rng(0))
    order = np.random.default_rng(1).permutation(len(labels))
    val = order[: len(order) // 5]
    train = order[len(order) // 5:]
    np.savez(path, train_images=images[train], train_labels=labels[train], val_images=images[val],
             val_labels=labels[val], class_names=np.array([str(d) for d in range(10)]))


def real_digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return np.rint(bunch.images * 255 / 16).astype(np.uint8), bunch.target


def write_real(path: Path, seed: int, labels_per_class: int) -> None:
    """A fixed test half (the same for every seed); train and val: ``labels_per_class`` each, seeded."""
    images, labels = real_digits()
    split = np.random.default_rng(1234).permutation(len(labels))
    test, pool = split[: len(split) // 2], split[len(split) // 2:]
    rng = np.random.default_rng(seed)
    train, val = [], []
    for digit in range(10):
        members = rng.permutation(pool[labels[pool] == digit])
        train += list(members[:labels_per_class])
        val += list(members[labels_per_class:2 * labels_per_class])
    np.savez(path, **{f"{name}_{kind}": arr[np.array(idx)] for name, idx in
                      (("train", train), ("val", val), ("test", test)) for kind, arr in
                      (("images", images), ("labels", labels))},
             class_names=np.array([str(d) for d in range(10)]))


def fine_tune(data: Path, out: Path, args: argparse.Namespace, seed: int, weights: str, lam: float) -> dict:
    from tlc.train import TrainConfig, train

    config = TrainConfig(arch="small_cnn", weights=weights, img_size=args.img_size, epochs=args.epochs,
                         batch_size=16, patience=None, seed=seed, spectral_reg=lam)
    started = time.perf_counter()
    info = train(data, out, config, progress=False, overwrite=True)
    penalties = [e.get("spectral_penalty") for e in info.epochs]
    return {"balanced_accuracy": info.test_metrics["balanced_accuracy"], "auc": info.test_metrics["auc"],
            "best_epoch": info.best_epoch, "seconds": round(time.perf_counter() - started, 1),
            "last_spectral_penalty": penalties[-1]}


def paired(rows: list[dict], lam: float, metric: str) -> dict[str, Any]:
    from scipy.stats import ttest_rel

    base = np.array([r[metric] for r in rows if r["lambda"] == 0.0 and r["kind"] == "transfer"])
    mine = np.array([r[metric] for r in rows if r["lambda"] == lam and r["kind"] == "transfer"])
    diff = mine - base
    p = float(ttest_rel(mine, base).pvalue) if len(diff) > 1 and diff.std() > 0 else None
    return {"mean_diff": float(diff.mean()), "sd_diff": float(diff.std(ddof=1)) if len(diff) > 1 else None,
            "better_seeds": int((diff > 0).sum()), "worse_seeds": int((diff < 0).sum()), "p_paired_t": p}


def summarise(rows: list[dict], lambdas: list[float]) -> dict[str, Any]:
    groups = {f"transfer λ={lam:g}": [r for r in rows if r["kind"] == "transfer" and r["lambda"] == lam]
              for lam in lambdas}
    groups["scratch"] = [r for r in rows if r["kind"] == "scratch"]
    summary = {name: {m: [float(np.mean([r[m] for r in g])), float(np.std([r[m] for r in g], ddof=1))]
                      for m in ("balanced_accuracy", "auc")} for name, g in groups.items() if g}
    effects = {f"λ={lam:g}": {m: paired(rows, lam, m) for m in ("balanced_accuracy", "auc")}
               for lam in lambdas if lam > 0}
    return {"summary": summary, "paired_vs_lambda0": effects}


def plot(path: Path, rows: list[dict], lambdas: list[float]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    seeds = sorted({r["seed"] for r in rows})
    for ax, metric in zip(axes, ("balanced_accuracy", "auc"), strict=True):
        for seed in seeds:
            ys = [next(r[metric] for r in rows if r["seed"] == seed and r["kind"] == "transfer"
                       and r["lambda"] == lam) for lam in lambdas]
            ax.plot(range(len(lambdas)), ys, "o-", alpha=0.6, label=f"seed {seed}")
        scratch = [r[metric] for r in rows if r["kind"] == "scratch"]
        if scratch:
            ax.axhline(float(np.mean(scratch)), color="grey", linestyle=":", label="scratch (mean)")
        ax.set_xticks(range(len(lambdas)), [f"{lam:g}" for lam in lambdas])
        ax.set_xlabel("--spectral-reg LAMBDA")
        ax.set_ylabel(f"test {metric.replace('_', ' ')}")
        ax.set_title(f"rendered → real digits: {metric.replace('_', ' ')}")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    from tlc.train import TrainConfig, train

    args = parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    lambdas = sorted(set(args.lambdas) | {0.0})
    started = time.perf_counter()
    if args.source:
        from tlc.runs import read_run_info

        source_dir, source = Path(args.source), read_run_info(args.source)
    else:
        write_synth(out / "synth.npz", args.synth_per_class)
        source_dir = out / "synth-run"
        source = train(out / "synth.npz", source_dir,
                       TrainConfig(arch="small_cnn", img_size=args.img_size, epochs=args.pretrain_epochs,
                                   batch_size=32, lr=2e-3, patience=None), progress=False, overwrite=True)
    print(f"source run: val balanced accuracy {source.val_metrics['balanced_accuracy']:.3f} on rendered digits")
    rows = []
    for seed in range(args.seeds):
        data = out / f"real-{seed}.npz"
        write_real(data, seed, args.labels)
        runs = [("transfer", lam, str(source_dir)) for lam in lambdas] + ([("scratch", 0.0, "none")] if args.scratch
                                                                          else [])
        for kind, lam, weights in runs:
            result = fine_tune(data, out / "ft", args, seed, weights, lam)
            rows.append({"seed": seed, "kind": kind, "lambda": lam, **result})
            print(f"seed {seed} {kind:8s} λ={lam:<4g} balanced accuracy {result['balanced_accuracy']:.4f} "
                  f"AUC {result['auc']:.4f}  ({result['seconds']}s)", flush=True)
    report = {"args": vars(args), "source_val_balanced_accuracy": source.val_metrics["balanced_accuracy"],
              "rows": rows, **summarise(rows, lambdas), "seconds": round(time.perf_counter() - started, 1)}
    (out / "spectral.json").write_text(json.dumps(report, indent=2) + "\n")
    plot(out / "spectral.png", rows, lambdas)
    for name, metrics in report["summary"].items():
        print(f"{name:18s} " + "  ".join(f"{m} {v[0]:.4f} ± {v[1]:.4f}" for m, v in metrics.items()))
    for name, metrics in report["paired_vs_lambda0"].items():
        print(f"{name} vs λ=0: " + "  ".join(
            f"{m} Δ {e['mean_diff']:+.4f} (better {e['better_seeds']}/{args.seeds}, p={e['p_paired_t']})"
            for m, e in metrics.items()))


if __name__ == "__main__":
    main()
