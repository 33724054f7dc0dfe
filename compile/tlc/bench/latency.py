"""Batch latency of a bundle through tlc_runtime, side by side with the bare backend call.

Timings alternate between the contenders in rounds (A, B, A, B, ...) so that both see the same
machine state; the ratio between them is what matters, not the absolute numbers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Latency:
    n: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    min_ms: float

    @classmethod
    def of(cls, seconds: list[float]) -> Latency:
        ms = np.array(seconds) * 1e3
        return cls(n=len(ms), p50_ms=float(np.percentile(ms, 50)), p90_ms=float(np.percentile(ms, 90)),
                   p99_ms=float(np.percentile(ms, 99)), mean_ms=float(ms.mean()), min_ms=float(ms.min()))


def compare_latency(contenders: dict[str, Callable[[], Any]], iterations: int = 300, warmup: int = 30,
                    rounds: int = 10) -> dict[str, Latency]:
    """Time each callable ``iterations`` times, interleaved in ``rounds`` blocks, after a warm-up."""
    for fn in contenders.values():
        for _ in range(warmup):
            fn()
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    per_round = max(1, iterations // rounds)
    for _ in range(rounds):
        for name, fn in contenders.items():
            times = samples[name]
            for _ in range(per_round):
                t0 = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t0)
    return {name: Latency.of(times) for name, times in samples.items()}


def bare_onnxruntime(clf) -> Callable[[np.ndarray], Any] | None:
    """A plain ``onnxruntime.InferenceSession.run`` on the same model file, or None if not ONNX."""
    artifact = clf.artifact
    if artifact.format != "onnx" or clf.info.backend != "onnxruntime":
        return None
    import onnxruntime as ort

    path = Path(clf.bundle_dir) / artifact.files["model"].path
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    in_name, out_name = session.get_inputs()[0].name, session.get_outputs()[0].name
    return lambda batch: session.run([out_name], {in_name: batch})


def bench_bundle(bundle: str | Path, batch_sizes: tuple[int, ...] = (1,), iterations: int = 300,
                 warmup: int = 30, backend: str = "auto", device: str = "auto") -> dict[str, Any]:
    """Latency of the bundle for each batch size: runtime (prepared input), runtime including
    preprocessing (resize of a 4× larger native image), and the bare backend where it applies."""
    import tlc_runtime

    clf = tlc_runtime.load(bundle, backend=backend, device=device)
    spec = clf.manifest.input
    rng = np.random.default_rng(0)
    high = 255 if spec.dtype == "uint8" else clf.manifest.preprocessing.value_range[1]
    native = rng.integers(0, high + 1, (spec.height * 4, spec.width * 4)).astype(
        np.uint8 if spec.dtype == "uint8" else np.uint16)
    bare = bare_onnxruntime(clf)
    results: dict[str, Any] = {"bundle": str(bundle), "backend": clf.info.backend, "device": clf.info.device,
                               "precision": clf.info.precision, "batches": {}}
    for b in batch_sizes:
        batch = np.stack([clf.prepare(native)] * b)
        images = [native] * b
        contenders: dict[str, Callable[[], Any]] = {
            "runtime": lambda batch=batch: clf.predict_logits(batch),
            "runtime+preprocess": (lambda images=images: clf.predict_batch(images)),
        }
        if bare is not None:
            contenders["bare_backend"] = lambda batch=batch: bare(batch)
        stats = compare_latency(contenders, iterations=iterations, warmup=warmup)
        entry = {name: asdict(s) for name, s in stats.items()}
        if "bare_backend" in stats:
            base = stats["bare_backend"].p50_ms
            entry["overhead_p50"] = stats["runtime"].p50_ms / base - 1
            entry["overhead_p50_with_preprocess"] = stats["runtime+preprocess"].p50_ms / base - 1
        results["batches"][str(b)] = entry
    return results
