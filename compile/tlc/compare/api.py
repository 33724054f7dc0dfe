"""``compare()``: train every candidate on one loaded dataset (so on the same splits) with one recipe,
build each for the target, score each built bundle on the test split through tlc_runtime, time them
all at batch 1 in one interleaved loop, and write the comparison directory atomically.

OUT/
  compare.json, compare.csv, compare.png   the comparison (tlc.compare.write)
  runs/NAME/                               each candidate's run directory
  bundles/NAME/                            each candidate's bundle
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..bench.latency import Latency, compare_latency
from ..bundler.builder import build_bundle
from ..data import Dataset
from ..errors import ConfigError
from ..outdir import OutputLock, move_into_place, sibling
from ..targets import load_target
from ..train import TrainConfig, train
from ..train.trainer import load_training_data
from ..verify.compare import softmax
from .candidates import Candidate
from .scores import ROUNDS, scores_with_ci

MARKER = "compare.json"
BATCH = 64


@dataclass(frozen=True)
class CandidateResult:
    """One candidate's scores (``tlc.compare.scores``), training time, batch-1 latency of its bundle,
    bundle size, and its source distance (a transfer candidate; ``tlc.train.source_distance``)."""

    candidate: Candidate
    scores: dict[str, dict[str, Any]]
    train_seconds: float
    bundle_bytes: int
    source_distance: dict[str, Any] | None
    best_epoch: int
    latency: Latency | None = None

    def to_dict(self) -> dict[str, Any]:
        c = self.candidate
        return {"name": c.name, "spec": c.spec, "arch": c.arch, "weights": c.weights, "freeze": c.freeze,
                "run": f"runs/{c.name}", "bundle": f"bundles/{c.name}", "best_epoch": self.best_epoch,
                "scores": self.scores, "train_seconds": self.train_seconds, "bundle_bytes": self.bundle_bytes,
                "latency_ms": None if self.latency is None else
                {"p50": self.latency.p50_ms, "p99": self.latency.p99_ms, "n": self.latency.n},
                "source_distance": self.source_distance}


@dataclass(frozen=True)
class CompareResult:
    out: Path
    data: str
    target: str
    precision: str
    test_images: int
    recipe: dict[str, Any]
    candidates: list[CandidateResult] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"data": self.data, "target": self.target, "precision": self.precision,
                "test_images": self.test_images, "recipe": self.recipe,
                "candidates": [c.to_dict() for c in self.candidates]}


def compare(data: str | Path | Dataset, candidates: list[Candidate], target: str, out: str | Path, *,
            recipe: dict[str, Any] | None = None, precision: str | None = None, overwrite: bool = False,
            bootstrap: int = ROUNDS, latency_iterations: int = 200, progress: bool = False,
            log: Callable[[str], None] = print) -> CompareResult:
    """Compare ``candidates`` on ``data`` for ``target`` (module docstring); ``recipe``: TrainConfig
    fields every candidate shares (arch, weights and freeze come from each candidate)."""
    from .write import write_outputs

    out = Path(out)
    built_for = load_target(target)
    if precision is not None and precision not in built_for.precisions:
        raise ConfigError(f"target {built_for.name} does not support precision {precision!r}; "
                          f"it supports {', '.join(built_for.precisions)}")
    base = TrainConfig(**(recipe or {}))
    dataset = load_training_data(data, base)
    test_x, test_y = dataset.arrays("test", base.img_size)
    if len(test_y) == 0:
        raise ConfigError(f"{dataset.source}: no test images to compare the candidates on")
    _check_out(out, overwrite)
    with OutputLock(out, "comparison"):
        _check_out(out, overwrite)
        work = sibling(out, "staging")
        work.mkdir()
        try:
            results = [_candidate(i, len(candidates), c, dataset, base, built_for, precision, work, test_x,
                                  test_y, bootstrap, progress, log) for i, c in enumerate(candidates, 1)]
            log(f"timing {len(results)} bundles at batch 1, interleaved ({latency_iterations} runs each)")
            results = _time(results, work, test_x[:1], latency_iterations)
            result = CompareResult(out=out, data=str(dataset.source), target=built_for.name,
                                   precision=precision or built_for.precision, test_images=len(test_y),
                                   recipe=base.to_dict(), candidates=results)
            write_outputs(result, work)
            move_into_place(work, out, overwrite=overwrite, marker=MARKER, what="comparison")
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return result


def _check_out(out: Path, overwrite: bool) -> None:
    if not out.exists():
        return
    if not out.is_dir():
        raise ConfigError(f"output path {out} exists and is not a directory")
    if (out / MARKER).is_file() and not overwrite:
        raise ConfigError(f"{out} already holds a comparison; choose another directory or pass --overwrite")
    if not (out / MARKER).is_file() and any(out.iterdir()):
        raise ConfigError(f"{out} is not empty and holds no comparison; choose a new or empty directory")
    if not any(out.iterdir()):
        out.rmdir()


def _candidate(i: int, n: int, c: Candidate, dataset: Dataset, base: TrainConfig, target, precision: str | None,
               work: Path, test_x: np.ndarray, test_y: np.ndarray, bootstrap: int, progress: bool,
               log: Callable[[str], None]) -> CandidateResult:
    """Train, build and score one candidate in ``work``."""
    log(f"[{i}/{n}] {c.name}: training {c.spec}" + (" (backbone frozen)" if c.head_only else ""))
    config = replace(base, arch=c.arch, weights=c.weights, freeze=c.freeze)
    started = time.perf_counter()
    info = train(dataset, work / "runs" / c.name, config, progress=progress)
    seconds = time.perf_counter() - started
    log(f"[{i}/{n}] {c.name}: trained in {seconds:.1f} s; building for {target.name}")
    bundle = work / "bundles" / c.name
    build_bundle(work / "runs" / c.name, target, bundle, precision=precision, data=dataset, log=lambda _m: None)
    probs = softmax(_bundle_logits(bundle, test_x))
    return CandidateResult(candidate=c, scores=scores_with_ci(test_y, probs, bootstrap), train_seconds=seconds,
                           bundle_bytes=sum(p.stat().st_size for p in bundle.rglob("*") if p.is_file()),
                           source_distance=info.source_distance, best_epoch=info.best_epoch)


def _bundle_logits(bundle: Path, inputs: np.ndarray) -> np.ndarray:
    """The built bundle's logits on ``inputs`` through tlc_runtime."""
    import tlc_runtime

    clf = tlc_runtime.load(bundle)
    return np.concatenate([clf.predict_logits(inputs[s:s + BATCH]) for s in range(0, len(inputs), BATCH)])


def _time(results: list[CandidateResult], work: Path, image: np.ndarray, iterations: int) -> list[CandidateResult]:
    """Batch-1 latency of every bundle through tlc_runtime, all timed in one interleaved loop."""
    import tlc_runtime

    sessions = {r.candidate.name: tlc_runtime.load(work / "bundles" / r.candidate.name) for r in results}
    calls = {name: (lambda clf=clf: clf.predict_logits(image)) for name, clf in sessions.items()}
    stats = compare_latency(calls, iterations=iterations, warmup=max(3, iterations // 10),
                            rounds=min(10, iterations))
    return [replace(r, latency=stats[r.candidate.name]) for r in results]
