"""The comparison's files: compare.json (everything), compare.csv (one row per candidate) and
compare.png (a metric with its 95 % CI against batch-1 latency, one point per candidate)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import TYPE_CHECKING

from .scores import METRICS

if TYPE_CHECKING:
    from .api import CompareResult

CSV_EXTRA = ("train_seconds", "latency_p50_ms", "latency_p99_ms", "bundle_bytes", "source_distance",
             "source_logme")


def plotted_metric(result: CompareResult) -> str:
    """AUC when every candidate has one, else balanced accuracy."""
    have_auc = all(c.scores["auc"]["value"] is not None for c in result.candidates)
    return "auc" if have_auc else "balanced_accuracy"


def write_outputs(result: CompareResult, folder: Path) -> None:
    """compare.json, compare.csv and compare.png in ``folder``."""
    (folder / "compare.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
    _write_csv(result, folder / "compare.csv")
    _write_png(result, folder / "compare.png")


def csv_rows(result: CompareResult) -> list[dict[str, object]]:
    rows = []
    for c in result.to_dict()["candidates"]:
        row: dict[str, object] = {"name": c["name"], "spec": c["spec"]}
        for metric in METRICS:
            score = c["scores"][metric]
            lo, hi = score["ci95"] or (None, None)
            row.update({metric: score["value"], f"{metric}_ci_low": lo, f"{metric}_ci_high": hi})
        latency = c["latency_ms"] or {}
        distance = c["source_distance"] or {}
        row.update({"train_seconds": c["train_seconds"], "latency_p50_ms": latency.get("p50"),
                    "latency_p99_ms": latency.get("p99"), "bundle_bytes": c["bundle_bytes"],
                    "source_distance": distance.get("distance"), "source_logme": distance.get("logme")})
        rows.append(row)
    return rows


def _write_csv(result: CompareResult, path: Path) -> None:
    rows = csv_rows(result)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)


def _write_png(result: CompareResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric = plotted_metric(result)
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for c in result.candidates:
        score = c.scores[metric]
        if score["value"] is None or c.latency is None:
            continue
        lo, hi = score["ci95"]
        ax.errorbar([c.latency.p50_ms], [score["value"]], yerr=[[score["value"] - lo], [hi - score["value"]]],
                    fmt="o", capsize=4, label=c.candidate.name)
        ax.annotate(c.candidate.name, (c.latency.p50_ms, score["value"]), textcoords="offset points",
                    xytext=(6, 4), fontsize=8)
    ax.set_xlabel(f"batch-1 latency p50 (ms, {result.target}, {result.precision})")
    ax.set_ylabel(f"test {metric.replace('_', ' ')} (95 % bootstrap CI)")
    ax.set_title(f"tlc compare — {Path(result.data).name}, {result.test_images} test images")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
