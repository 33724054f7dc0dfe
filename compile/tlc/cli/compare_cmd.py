"""``tlc compare`` — candidate models trained on the same splits, built for one target, side by side."""

from __future__ import annotations

from pathlib import Path

import click

from .output import console, log

METRIC_HEADERS = (("precision", "precision"), ("recall", "recall"), ("f1", "F1"),
                  ("balanced_accuracy", "bal. acc."), ("auc", "AUC"))


@click.command()
@click.argument("data")
@click.option("--candidate", "candidates", multiple=True, metavar="NAME=SPEC",
              help="Repeatable. SPEC: ARCH (from scratch), ARCH:RUN_DIR (transfer from a tlc run, fine-tune "
                   "all) or ARCH:RUN_DIR:head (backbone frozen); e.g. small=small-cnn xray=resnet18:runs/a.")
@click.option("--target", default="x86-cpu", show_default=True, help="Target every candidate is built for.")
@click.option("--precision", default=None, help="Build precision (default: the target's).")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path), help="Comparison directory to write.")
@click.option("--overwrite", is_flag=True, help="Replace an earlier comparison in --out.")
@click.option("--img-size", default=64, show_default=True, type=int)
@click.option("--epochs", default=10, show_default=True, type=int)
@click.option("--batch-size", default=64, show_default=True, type=int)
@click.option("--lr", default=1e-3, show_default=True, type=float, help="Head learning rate (AdamW).")
@click.option("--backbone-lr-mult", default=0.1, show_default=True, type=float)
@click.option("--patience", default=5, show_default=True, type=int)
@click.option("--no-augment", is_flag=True)
@click.option("--hflip", is_flag=True)
@click.option("--no-class-weights", is_flag=True)
@click.option("--limit-train", default=None, type=int, help="Train every candidate on at most N images.")
@click.option("--seed", default=0, show_default=True, type=int, help="Splits, training and bootstrap seed.")
@click.option("--bootstrap", default=1000, show_default=True, type=click.IntRange(min=100),
              help="Bootstrap rounds of the 95% CIs.")
@click.option("--latency-runs", default=200, show_default=True, type=click.IntRange(min=10),
              help="Batch-1 inferences timed per candidate.")
def compare(data: str, candidates: tuple[str, ...], target: str, precision: str | None, out: Path,
            overwrite: bool, img_size: int, epochs: int, batch_size: int, lr: float, backbone_lr_mult: float,
            patience: int, no_augment: bool, hflip: bool, no_class_weights: bool, limit_train: int | None,
            seed: int, bootstrap: int, latency_runs: int) -> int:
    """Train each --candidate on DATA's splits with one recipe, build it for --target, and report
    precision, recall, F1 (macro), balanced accuracy and AUC with bootstrap 95% CIs on the test split,
    training time, batch-1 latency (p50/p99) through tlc_runtime, bundle size and, for transfer
    candidates, the source distance. Writes OUT/compare.json, .csv and .png."""
    from ..compare import compare as run_compare
    from ..compare import parse_candidates

    parsed = parse_candidates(candidates)
    recipe = dict(img_size=img_size, epochs=epochs, batch_size=batch_size, lr=lr,
                  backbone_lr_mult=backbone_lr_mult, patience=patience, augment=not no_augment, hflip=hflip,
                  class_weighted=not no_class_weights, limit_train=limit_train, seed=seed)
    result = run_compare(data, parsed, target, out, recipe=recipe, precision=precision, overwrite=overwrite,
                         bootstrap=bootstrap, latency_iterations=latency_runs, progress=True, log=log)
    _table(result)
    console.print(f"→ {out}/compare.json, compare.csv, compare.png", highlight=False)
    return 0


def _table(result) -> None:
    from rich.table import Table

    table = Table(title=f"{result.data} → {result.target} ({result.precision}), "
                        f"{result.test_images} test images, 95% bootstrap CIs")
    for header in ("candidate", *(h for _, h in METRIC_HEADERS), "train s", "p50 / p99 ms", "MB", "src dist / LogME"):
        table.add_column(header, justify="left" if header == "candidate" else "right")
    for c in result.candidates:
        cells = [_score(c.scores[key]) for key, _ in METRIC_HEADERS]
        latency = "—" if c.latency is None else f"{c.latency.p50_ms:.2f} / {c.latency.p99_ms:.2f}"
        source = c.source_distance or {}
        distance = "—" if source.get("distance") is None else f"{source['distance']:.3f}"
        fit = "—" if source.get("logme") is None else f"{source['logme']:.3f}"
        table.add_row(f"{c.candidate.name} ({c.candidate.spec})", *cells, f"{c.train_seconds:.1f}", latency,
                      f"{c.bundle_bytes / 1e6:.2f}", f"{distance} / {fit}")
    console.print(table)


def _score(score: dict) -> str:
    if score["value"] is None:
        return "—"
    lo, hi = score["ci95"]
    return f"{score['value']:.3f} [{lo:.3f}, {hi:.3f}]"
