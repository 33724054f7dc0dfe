"""Classifying many image files: folders walked for images, files read and prepared on worker
threads while the model runs on the previous batch, one result per file in the order given.

    for result in predict_files(clf, find_images(["scans/"])):
        print(result.path, result.error or result.prediction.label)
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .errors import InputError, TlcRuntimeError
from .images import SUFFIXES
from .results import Prediction, predictions_from_outputs

if TYPE_CHECKING:
    from .classifier import Classifier

DEFAULT_BATCH = 32


@dataclass(frozen=True)
class FileResult:
    """One file's outcome: a prediction, or the one-line reason the file could not be read."""

    path: Path
    prediction: Prediction | None
    error: str | None = None


def find_images(inputs: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Files as given (whatever their suffix: an unreadable one fails as its own result) and, for each
    directory, every file below it with a suffix in ``SUFFIXES``, sorted by path.

    InputError for a directory that holds no image file.
    """
    found: list[Path] = []
    for item in map(Path, inputs):
        if not item.is_dir():
            found.append(item)
            continue
        images = sorted(p for p in item.rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file())
        if not images:
            raise InputError(f"{item}: no image files ({', '.join(sorted(SUFFIXES))}) in this folder")
        found.extend(images)
    return found


def predict_files(clf: Classifier, paths: Iterable[str | os.PathLike[str]], *, batch_size: int = DEFAULT_BATCH,
                  workers: int | None = None) -> Iterator[FileResult]:
    """Yield one FileResult per path, in order, classifying ``batch_size`` images per model call.

    ``workers`` threads (default: the CPU count, at most 8) read and prepare the next two batches
    while the model runs. A file that cannot be read or prepared (any tlc_runtime error or OSError)
    gives a result with ``error`` set; a failing model call raises.
    """
    if batch_size < 1:
        raise TlcRuntimeError(f"batch_size must be at least 1, got {batch_size}")
    workers = workers or min(8, os.cpu_count() or 1)
    source = iter(map(Path, paths))
    queue: deque[tuple[Path, Future[np.ndarray]]] = deque()
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tlc-prepare")

    def top_up() -> None:
        while len(queue) < 2 * batch_size:
            path = next(source, None)
            if path is None:
                return
            queue.append((path, pool.submit(clf.prepare, path)))

    try:
        top_up()
        while queue:
            chunk = [queue.popleft() for _ in range(min(batch_size, len(queue)))]
            top_up()  # the workers go on reading while this batch waits and runs
            yield from _run_batch(clf, [(path, _outcome(future)) for path, future in chunk])
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _outcome(future: Future[np.ndarray]) -> np.ndarray | str:
    """The prepared image, or the one-line reason it could not be prepared."""
    try:
        return future.result()
    except (TlcRuntimeError, OSError) as exc:
        return str(exc)


def _run_batch(clf: Classifier, prepared: list[tuple[Path, np.ndarray | str]]) -> list[FileResult]:
    ready = [image for _, image in prepared if not isinstance(image, str)]
    predictions = iter(predictions_from_outputs(clf.predict_outputs(np.stack(ready)), clf.manifest)
                       if ready else [])
    return [FileResult(path, None, image) if isinstance(image, str) else FileResult(path, next(predictions))
            for path, image in prepared]
