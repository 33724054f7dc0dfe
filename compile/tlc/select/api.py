"""``select()``: rank a pool of unlabelled images with a trained run and keep the ``budget`` to label next."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tlc_runtime.preprocess import checked_pixels, fit_to_model

from ..data.pool import read_pool
from ..errors import ConfigError, DataError
from ..export.onnx_export import input_spec_for
from ..models.checkpoint import load_run_model
from ..models.deploy import DeployModel
from . import strategies
from .labelled import Labelled, read_exclude, run_labelled
from .scoring import mc_dropout_scores, probabilities_and_features

STRATEGIES = ("entropy", "margin", "mc-dropout", "coreset", "hybrid")
SCORE_NAMES = {"entropy": "entropy", "margin": "1 - (p1 - p2)", "mc-dropout": "mutual information",
               "coreset": "distance to the nearest centre", "hybrid": "entropy"}


@dataclass(frozen=True)
class Selection:
    """The images to label next, best first: ``ids`` (pool ids), ``scores`` (``SCORE_NAMES``),
    ``predicted`` (class names) and ``probability`` (of the predicted class)."""

    strategy: str
    id_column: str
    ids: tuple[str, ...]
    scores: tuple[float, ...]
    predicted: tuple[str, ...]
    probability: tuple[float, ...]
    pool_size: int
    excluded: int
    note: str = ""


def select(run_dir: str | Path, pool: str | Path, budget: int, strategy: str = "entropy", *,
           split: str | None = None, exclude: tuple[Path, ...] = (), samples: int = 16, seed: int = 0) -> Selection:
    """Rank ``pool`` with the run at ``run_dir`` by ``strategy`` and keep the ``budget`` best.

    Pool images labelled already (the run's own data, by pixel digest; rows of the ``exclude`` CSVs)
    are left out first. ``samples``/``seed``: the MC-dropout passes. ConfigError/DataError for bad input.
    """
    if strategy not in STRATEGIES:
        raise ConfigError(f"unknown strategy {strategy!r}; valid: {', '.join(STRATEGIES)}")
    if budget < 1:
        raise ConfigError(f"the budget must be at least 1 image, got {budget}")
    classifier, run = load_run_model(run_dir)
    model = DeployModel(classifier, run.preprocessing, run.input_channels).eval()
    spec = input_spec_for(run.img_size, run.img_size, run.input_channels, run.input_dtype)
    found = read_pool(pool, spec, run.preprocessing, split)
    labelled = run_labelled(run)
    for path in exclude:
        more = read_exclude(Path(path), run.preprocessing.dicom)
        labelled.ids |= more.ids
        labelled.digests |= more.digests
    keep = np.array([not labelled.excludes(i, d) for i, d in zip(found.ids, found.digests, strict=True)], bool)
    if not keep.any():
        raise DataError(f"{pool}: every one of its {len(found)} images is labelled already (the run's data "
                        "or --exclude); nothing is left to select")
    inputs = found.inputs[keep]
    picks, scores, probs, note = _rank(model, run, inputs, budget, strategy, labelled, samples, seed)
    ids = np.asarray(found.ids, dtype=object)[keep][picks]
    top = probs[picks].argmax(axis=1)
    return Selection(strategy, found.id_column, tuple(ids), tuple(float(s) for s in scores),
                     tuple(run.class_names[c] for c in top), tuple(float(p) for p in probs[picks].max(axis=1)),
                     len(found), int((~keep).sum()), note)


def _rank(model: DeployModel, run, inputs: np.ndarray, budget: int, strategy: str, labelled: Labelled,
          samples: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """(picked rows, their scores, every row's probabilities, note) for one strategy."""
    if strategy == "mc-dropout":
        info, probs, note = mc_dropout_scores(model, run, inputs, samples, seed)
        picks = strategies.top_k(info, budget)
        return picks, info[picks], probs, note
    probs, features = probabilities_and_features(model, inputs)
    if strategy in ("entropy", "margin"):
        scores = strategies.entropy(probs) if strategy == "entropy" else strategies.margin(probs)
        picks = strategies.top_k(scores, budget)
        return picks, scores[picks], probs, ""
    centres = _labelled_features(model, run, labelled)
    if strategy == "coreset":
        picks, distances = strategies.k_center_greedy(features, budget, centres)
        return picks, distances, probs, ""
    picks, scores = strategies.hybrid(probs, features, budget, centres)
    return picks, scores, probs, ""


def _labelled_features(model: DeployModel, run, labelled: Labelled) -> np.ndarray | None:
    """Pooled features of the run's own labelled images (the k-center greedy's first centres)."""
    if not labelled.images:
        return None
    spec = input_spec_for(run.img_size, run.img_size, run.input_channels, run.input_dtype)
    pixels = [checked_pixels(image, spec, run.preprocessing) for image in labelled.images]
    return probabilities_and_features(model, fit_to_model(pixels, spec, run.preprocessing))[1]


def write_selection(selection: Selection, out: Path) -> None:
    """The selection as CSV (``path|id,score,rank,predicted,probability``), written atomically."""
    import csv

    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", newline="", encoding="utf-8") as fp:
            writer = csv.writer(fp)
            writer.writerow([selection.id_column, "score", "rank", "predicted", "probability"])
            for rank, row in enumerate(zip(selection.ids, selection.scores, selection.predicted,
                                           selection.probability, strict=True), start=1):
                writer.writerow([row[0], f"{row[1]:.6g}", rank, row[2], f"{row[3]:.6g}"])
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
