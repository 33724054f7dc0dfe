"""``tlc demo`` — the whole path on real data shipped with scikit-learn, no download.

The digits are placed at random spots of a 16×16 canvas among fragments of other digits
(``load_digits(clutter=True)``): plain 8×8 digits are so easy that scratch training matches transfer.
Pretrain on digits 0–4, transfer to digits 5–9 with a few labels per class, show the gain over the
same budget from scratch, build a bundle for this machine's CPU target, verify it against PyTorch,
and classify a few image files through tlc_runtime as a device would.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

SOURCE_CLASSES = (0, 1, 2, 3, 4)
TARGET_CLASSES = (5, 6, 7, 8, 9)


@dataclass
class DemoResult:
    out: Path
    scratch_balanced_accuracy: float
    transfer_balanced_accuracy: float
    bundle: Path
    verify_passed: bool
    agreement: float
    max_abs_prob_delta: float
    predictions: list[dict[str, Any]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def host_cpu_target() -> str:
    return "arm64-cpu" if platform.machine().lower() in ("aarch64", "arm64") else "x86-cpu"


def run_demo(out: str | Path, *, labels_per_class: int = 10, arch: str = "resnet18", img_size: int = 32,
             pretrain_epochs: int = 15, finetune_epochs: int = 15, seed: int = 0,
             log: Callable[[str], None] = print) -> DemoResult:
    from .bundler.builder import build_bundle
    from .data import load_digits
    from .train import TrainConfig, train
    from .verify.runner import verify

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    source = load_digits(SOURCE_CLASSES, seed=seed, clutter=True)
    target = load_digits(TARGET_CLASSES, per_class_train=labels_per_class, seed=seed, clutter=True)
    log(f"pretraining {arch} on digits {SOURCE_CLASSES} ({len(source.splits['train'])} images)")
    base = dict(arch=arch, img_size=img_size, batch_size=32, seed=seed, patience=None)
    train(source, out / "pretrain", TrainConfig(epochs=pretrain_epochs, lr=2e-3, **base), progress=True,
          overwrite=True)
    seconds["pretrain"] = time.perf_counter() - t0

    log(f"fine-tuning on digits {TARGET_CLASSES} with {labels_per_class} labels per class: "
        "from the pretrained run, and from scratch with the same budget")
    t1 = time.perf_counter()
    transfer = train(target, out / "transfer",
                     TrainConfig(epochs=finetune_epochs, weights=str(out / "pretrain"), **base),
                     progress=True, overwrite=True)
    scratch = train(target, out / "scratch", TrainConfig(epochs=finetune_epochs, **base), progress=True,
                    overwrite=True)
    seconds["finetune"] = time.perf_counter() - t1

    t2 = time.perf_counter()
    target_name = host_cpu_target()
    log(f"building a bundle for {target_name}")
    built = build_bundle(out / "transfer", target_name, out / "bundle", data=target, overwrite=True, log=log)
    seconds["build"] = time.perf_counter() - t2

    t3 = time.perf_counter()
    result = verify(built.bundle, target, reference=out / "transfer", split="test", log=log)
    seconds["verify"] = time.perf_counter() - t3
    predictions = _predict_files(built.bundle, target, out / "samples")
    seconds["total"] = time.perf_counter() - t0
    return DemoResult(out=out, scratch_balanced_accuracy=scratch.test_metrics["balanced_accuracy"],
                      transfer_balanced_accuracy=transfer.test_metrics["balanced_accuracy"],
                      bundle=built.bundle, verify_passed=result.passed, agreement=result.comparison.agreement,
                      max_abs_prob_delta=result.comparison.max_abs_prob_delta, predictions=predictions,
                      seconds=seconds)


def _predict_files(bundle: Path, dataset, folder: Path, count: int = 5) -> list[dict[str, Any]]:
    """Save a few test digits as PNG files and classify them through tlc_runtime."""
    import tlc_runtime
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    test = dataset.splits["test"]
    picks = np.random.default_rng(1).choice(len(test), size=min(count, len(test)), replace=False)
    paths = []
    for i in picks:
        path = folder / f"test-{int(i):03d}-{dataset.class_names[test.labels[i]]}.png"
        Image.fromarray(test.images[i]).save(path)
        paths.append(path)
    clf = tlc_runtime.load(bundle)
    preds = clf.predict_batch([str(p) for p in paths])
    return [{"image": p.name, "true": dataset.class_names[test.labels[i]], "predicted": pred.label,
             "confidence": pred.confidence} for p, i, pred in zip(paths, picks, preds, strict=True)]
