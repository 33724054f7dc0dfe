"""Active-learning simulation: how many labels each ``tlc select`` strategy needs to reach the full-data
test AUC, versus labelling at random.

Pool: PneumoniaMNIST's train split with its labels hidden. Each strategy starts from the same stratified
random seed set (``--seed-size`` images), then every round selects ``--batch`` more from the pool with
``tlc.select.select`` (the library behind ``tlc select``: the run's own labelled images are excluded by
their pixels), reveals their labels, and fine-tunes the previous round's run on the grown set
(``tlc.train.train`` with ``weights=PREVIOUS_RUN``, ``--finetune-epochs``). "random" draws the same
number of unlabelled images at random. Every run validates on the same stratified ``--val-size``
images of the val split and reports AUC on the whole test split. The full-data reference trains once
on the whole train split with the first round's recipe (from scratch, ``--epochs``).

Recipe: ``small_cnn`` from scratch at 28 px (the native size), AdamW lr 3e-3, batch 32, class-weighted
loss, light augmentation; rounds fine-tune at lr 1e-3.

    python benchmarks/active_learning.py --data ../shared/data/pneumoniamnist.npz --out bench-out/al

Output: a table on stdout, OUT/active_learning.json (every number and the arguments) and
OUT/active_learning.png (test AUC against labels, one curve per strategy and seed, the full-data line).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="../shared/data/pneumoniamnist.npz")
    p.add_argument("--out", default="bench-out/al")
    p.add_argument("--strategies", default="random,entropy,hybrid")
    p.add_argument("--seeds", default="0", help="comma-separated seeds (seed set, training, random picks)")
    p.add_argument("--seed-size", type=int, default=100)
    p.add_argument("--batch", type=int, default=100, help="images labelled per round")
    p.add_argument("--rounds", type=int, default=6, help="selection rounds after the seed set")
    p.add_argument("--epochs", type=int, default=6, help="epochs from scratch (seed set and full data)")
    p.add_argument("--finetune-epochs", type=int, default=3)
    p.add_argument("--val-size", type=int, default=200)
    p.add_argument("--arch", default="small_cnn")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: every CPU)")
    p.add_argument("--merge", default=None, metavar="JSON,JSON,...",
                   help="no training: merge the curves of earlier runs' active_learning.json (e.g. one per seed, "
                        "run side by side) and write their joint summary and plot to OUT")
    return p.parse_args()


def stratified(labels: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` indices drawn per class in proportion (at least 2 of each class)."""
    picks = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        k = max(2, round(n * len(members) / len(labels)))
        picks.append(rng.choice(members, size=min(k, len(members)), replace=False))
    return np.sort(np.concatenate(picks))


def write_labelled(path: Path, data: dict[str, np.ndarray], labelled: np.ndarray, val: np.ndarray) -> Path:
    np.savez(path, train_images=data["train_images"][labelled], train_labels=data["train_labels"][labelled],
             val_images=data["val_images"][val], val_labels=data["val_labels"][val],
             test_images=data["test_images"], test_labels=data["test_labels"])
    return path


def train_round(source: Path, out: Path, args: argparse.Namespace, seed: int, parent: Path | None) -> dict[str, Any]:
    from tlc.train import TrainConfig, train

    config = TrainConfig(arch=args.arch, weights=str(parent) if parent else "none", img_size=28,
                         epochs=args.finetune_epochs if parent else args.epochs, batch_size=32,
                         lr=1e-3 if parent else 3e-3, backbone_lr_mult=1.0, patience=None, seed=seed,
                         threads=args.threads)
    started = time.perf_counter()
    info = train(source, out, config, progress=False, overwrite=True)
    return {"auc": info.test_metrics["auc"], "seconds": round(time.perf_counter() - started, 1)}


def pick(strategy: str, run: Path, args: argparse.Namespace, labelled: np.ndarray, pool_size: int,
         rng: np.random.Generator) -> np.ndarray:
    """Indices into the train split to label next."""
    if strategy == "random":
        unlabelled = np.setdiff1d(np.arange(pool_size), labelled)
        return rng.choice(unlabelled, size=args.batch, replace=False)
    from tlc.select import select

    chosen = select(run, args.data, args.batch, strategy, split="train", seed=int(rng.integers(1 << 30)))
    return np.array([int(i.rsplit(":", 1)[1]) for i in chosen.ids])


def curve(strategy: str, seed: int, data: dict[str, np.ndarray], val: np.ndarray, args: argparse.Namespace,
          work: Path) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    labelled = stratified(data["train_labels"], args.seed_size, rng)
    points, run = [], None
    for r in range(args.rounds + 1):
        if r:
            new = pick(strategy, run, args, labelled, len(data["train_labels"]), rng)
            assert not np.isin(new, labelled).any(), "a labelled image was selected again"
            labelled = np.sort(np.concatenate([labelled, new]))
        source = write_labelled(work / f"{strategy}-{seed}-{r}.npz", data, labelled, val)
        out = work / f"{strategy}-{seed}-{r}"
        result = train_round(source, out, args, seed, run)
        if run is not None:
            shutil.rmtree(run)
        run = out
        points.append({"round": r, "labels": int(len(labelled)),
                       "positives": int(data["train_labels"][labelled].sum()), **result})
        print(f"{strategy:8s} seed {seed} round {r}: {len(labelled):5d} labels  AUC {result['auc']:.4f}  "
              f"({result['seconds']:.0f} s)", flush=True)
    shutil.rmtree(run)
    return points


def labels_to_reach(points: list[dict[str, Any]], target: float) -> int | None:
    """The fewest labels at which the curve reaches ``target`` (None: never within the budget)."""
    return next((p["labels"] for p in points if p["auc"] >= target), None)


def summarise(curves: dict[str, dict[int, list]], full: dict[str, Any], pool_size: int) -> dict[str, Any]:
    target = full["auc"] - 0.01
    summary = {}
    for strategy, by_seed in curves.items():
        needed = [labels_to_reach(points, target) for points in by_seed.values()]
        summary[strategy] = {"labels_to_reach": needed,
                             "final_auc": [points[-1]["auc"] for points in by_seed.values()]}
    random_needed = summary.get("random", {}).get("labels_to_reach", [])
    for s in summary.values():
        s["saved_vs_full"] = [None if n is None else round(1 - n / pool_size, 3) for n in s["labels_to_reach"]]
        s["saved_vs_random"] = [None if n is None or r is None else round(1 - n / r, 3)
                                for n, r in zip(s["labels_to_reach"], random_needed, strict=False)]
    for strategy, mean in mean_curves(curves).items():
        reached = next((n for n, auc in mean if auc >= target), None)
        summary[strategy]["mean_curve"] = [[n, round(auc, 4)] for n, auc in mean]
        summary[strategy]["mean_curve_labels_to_reach"] = reached
    random_mean = summary.get("random", {}).get("mean_curve_labels_to_reach")
    for s in summary.values():
        n = s["mean_curve_labels_to_reach"]
        s["mean_curve_saved_vs_random"] = None if n is None or random_mean is None else round(1 - n / random_mean, 3)
    return {"target_auc": target, "strategies": summary}


def mean_curves(curves: dict[str, dict[int, list]]) -> dict[str, list[tuple[int, float]]]:
    """Per strategy, (labels, mean test AUC over the seeds) at every label count all seeds reached."""
    out = {}
    for strategy, by_seed in curves.items():
        rounds = min(len(points) for points in by_seed.values())
        labels = {tuple(p["labels"] for p in points[:rounds]) for points in by_seed.values()}
        if len(labels) != 1:
            raise ValueError(f"{strategy}: the seeds' rounds do not label the same numbers of images")
        out[strategy] = [(by_seed[next(iter(by_seed))][i]["labels"],
                          float(np.mean([points[i]["auc"] for points in by_seed.values()]))) for i in range(rounds)]
    return out


def plot(curves: dict[str, dict[int, list]], full: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    colours = {"random": "grey", "entropy": "tab:blue", "margin": "tab:cyan", "mc-dropout": "tab:purple",
               "coreset": "tab:green", "hybrid": "tab:red"}
    several = any(len(by_seed) > 1 for by_seed in curves.values())
    for strategy, by_seed in curves.items():
        for i, points in enumerate(by_seed.values()):
            ax.plot([p["labels"] for p in points], [p["auc"] for p in points], marker="o", ms=3,
                    color=colours.get(strategy), alpha=0.3 if several else 0.9, lw=0.8 if several else 1.5,
                    label=None if several or i else strategy)
    for strategy, mean in mean_curves(curves).items() if several else ():
        ax.plot(*zip(*mean, strict=True), color=colours.get(strategy), lw=2.2,
                label=f"{strategy} (mean of {len(curves[strategy])} seeds)")
    ax.axhline(full["auc"], color="black", ls="--", lw=1, label=f"full data ({full['labels']} labels)")
    ax.axhline(full["auc"] - 0.01, color="black", ls=":", lw=1, label="full data − 0.01")
    ax.set_xlabel("labelled images")
    ax.set_ylabel("test AUC")
    ax.set_title("PneumoniaMNIST active learning (small_cnn, 28 px)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def full_data(data: dict[str, np.ndarray], val: np.ndarray, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """The full-data reference, reused from OUT/full_data.json when it was trained with the same recipe."""
    recipe = {k: getattr(args, k) for k in ("data", "arch", "epochs", "val_size")}
    cached = out / "full_data.json"
    if cached.is_file() and json.loads(cached.read_text())["recipe"] == recipe:
        return json.loads(cached.read_text())["result"]
    pool_size = len(data["train_labels"])
    source = write_labelled(out / "work" / "full.npz", data, np.arange(pool_size), val)
    result = {"labels": pool_size, **train_round(source, out / "work" / "full", args, 0, None)}
    cached.write_text(json.dumps({"recipe": recipe, "result": result}, indent=2) + "\n")
    return result


def merge(files: list[str], out: Path) -> dict[str, Any]:
    """The joint result of earlier runs (same recipe and full-data reference; seeds may differ)."""
    runs = [json.loads(Path(f).read_text()) for f in files]
    ignored = ("seeds", "out", "threads", "merge")  # what may differ between runs of one recipe
    recipes = {json.dumps({k: v for k, v in r["args"].items() if k not in ignored}, sort_keys=True) for r in runs}
    references = {(r["full_data"]["labels"], round(r["full_data"]["auc"], 6)) for r in runs}
    if len(recipes) != 1 or len(references) != 1:
        raise SystemExit("the runs to merge differ in recipe or full-data reference; rerun them with one recipe "
                         "(copy OUT/full_data.json between them to share the reference)")
    curves: dict[str, dict[int, list]] = {}
    for r in runs:
        for strategy, by_seed in r["curves"].items():
            for seed, points in by_seed.items():
                if int(seed) in curves.get(strategy, {}):
                    raise SystemExit(f"seed {seed} of {strategy} is in more than one run")
                curves.setdefault(strategy, {})[int(seed)] = points
    full, pool_size = runs[0]["full_data"], runs[0]["pool_size"]
    result = {"args": {"merged": files, **{k: v for k, v in runs[0]["args"].items() if k != "seeds"}},
              "pool_size": pool_size, "full_data": full, "curves": curves, **summarise(curves, full, pool_size)}
    out.mkdir(parents=True, exist_ok=True)
    plot(curves, full, out / "active_learning.png")
    return result


def main() -> None:
    args = parse_args()
    out = Path(args.out)
    if args.merge:
        result = merge(args.merge.split(","), out)
        (out / "active_learning.json").write_text(json.dumps(result, indent=2) + "\n")
        report(result)
        return
    work = out / "work"
    work.mkdir(parents=True, exist_ok=True)
    with np.load(args.data) as npz:
        data = {k: npz[k] for k in npz.files}
    for key in ("train_labels", "val_labels", "test_labels"):
        data[key] = data[key].reshape(-1).astype(np.int64)
    val = stratified(data["val_labels"], args.val_size, np.random.default_rng(1234))
    pool_size = len(data["train_labels"])
    full = full_data(data, val, args, out)
    print(f"full data: {pool_size} labels  AUC {full['auc']:.4f}  ({full['seconds']:.0f} s)", flush=True)
    curves: dict[str, dict[int, list]] = {}
    for strategy in args.strategies.split(","):
        for seed in map(int, args.seeds.split(",")):
            curves.setdefault(strategy, {})[seed] = curve(strategy, seed, data, val, args, work)
    result = {"args": vars(args), "pool_size": pool_size, "full_data": full, "curves": curves,
              **summarise(curves, full, pool_size)}
    (out / "active_learning.json").write_text(json.dumps(result, indent=2) + "\n")
    plot(curves, full, out / "active_learning.png")
    report(result)
    shutil.rmtree(work)


def report(result: dict[str, Any]) -> None:
    for strategy, s in result["strategies"].items():
        print(f"{strategy:8s} labels to reach {result['target_auc']:.4f}: {s['labels_to_reach']}  "
              f"saved vs full {s['saved_vs_full']}  vs random {s['saved_vs_random']}; mean curve: "
              f"{s['mean_curve_labels_to_reach']} labels, saved vs random {s['mean_curve_saved_vs_random']}")


if __name__ == "__main__":
    main()
