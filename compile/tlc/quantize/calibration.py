"""Calibration data for post-training quantization: a stratified, seeded sample and a batch reader.

The sample is drawn from the run's training split (or a ``--calib`` dataset) so every class is
represented in proportion; the same seed always gives the same images, so builds are repeatable.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError


def check_calibration(images: np.ndarray | None, min_samples: int, what: str = "calibration set") -> np.ndarray:
    """``images`` as an N×H×W×C array with at least ``min_samples`` images, else ConfigError."""
    count = 0 if images is None else len(images)
    if count == 0:
        raise ConfigError(f"the {what} is empty; INT8 quantization needs at least {min_samples} images "
                          "(pass a dataset with --calib or build with --precision fp32)")
    if images.ndim != 4:
        raise ConfigError(f"the {what} must be N×H×W×C, got shape {images.shape}")
    if count < min_samples:
        raise ConfigError(f"the {what} has {count} images; INT8 quantization needs at least {min_samples} "
                          "(use a larger --calib dataset, or lower calibration.min_samples in the target file)")
    return images


def select_calibration(images: np.ndarray, labels: np.ndarray, n: int, seed: int, min_samples: int) -> np.ndarray:
    """Stratified, seeded sample of ``n`` images (all of them when fewer are available).

    Each class gets a share proportional to its frequency (largest remainder, at least one image per
    class when ``n`` allows it). Raises ConfigError before any work when the data or ``n`` is too small.
    """
    images = np.asarray(images)
    labels = np.asarray(labels).reshape(-1)
    if n < min_samples:
        raise ConfigError(f"calibration.samples is {n}, below calibration.min_samples {min_samples}; "
                          f"ask for at least {min_samples} calibration images")
    check_calibration(images, min_samples)
    if len(labels) != len(images):
        raise ConfigError(f"calibration data has {len(images)} images but {len(labels)} labels")
    if n >= len(images):
        return images
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    quotas = _proportional_quotas(counts, n)
    chosen = []
    for cls, quota in zip(classes, quotas, strict=True):
        members = np.flatnonzero(labels == cls)
        chosen.append(rng.permutation(members)[:quota])
    return images[np.sort(np.concatenate(chosen))]


def _proportional_quotas(counts: np.ndarray, n: int) -> np.ndarray:
    """Split ``n`` over classes of sizes ``counts`` proportionally (largest remainder method)."""
    exact = counts * (n / counts.sum())
    quotas = np.floor(exact).astype(int)
    if n >= len(counts):  # every class present gets at least one image
        quotas = np.maximum(quotas, 1)
    while quotas.sum() > n:  # the minimum of one may overshoot: take back from the largest shares
        quotas[np.argmax(quotas - exact)] -= 1
    remainder = exact - quotas
    for idx in np.argsort(-remainder, kind="stable"):
        if quotas.sum() >= n:
            break
        if quotas[idx] < counts[idx]:
            quotas[idx] += 1
    return np.minimum(quotas, counts)


class ArrayDataReader:
    """onnxruntime CalibrationDataReader over an N×H×W×C array, in fixed-size batches.

    onnxruntime recognises any object with ``get_next()`` as a CalibrationDataReader (its ABC's
    subclass hook), so this module does not import onnxruntime.
    """

    def __init__(self, inputs: np.ndarray, input_name: str, batch_size: int = 16) -> None:
        self.inputs = np.ascontiguousarray(inputs)
        self.input_name = input_name
        self.batch_size = max(1, int(batch_size))
        self._start, self._end = 0, len(self.inputs)
        self._pos = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._pos >= self._end:
            return None
        stop = min(self._pos + self.batch_size, self._end)
        batch = self.inputs[self._pos:stop]
        self._pos = stop
        return {self.input_name: batch}

    def rewind(self) -> None:
        self._pos = self._start

    def set_range(self, start_index: int, end_index: int) -> None:
        self._start, self._end = start_index, min(end_index, len(self.inputs))
        self._pos = self._start

    def __len__(self) -> int:
        return len(self.inputs)

    def __iter__(self) -> ArrayDataReader:
        return self

    def __next__(self) -> dict[str, np.ndarray]:
        item = self.get_next()
        if item is None:
            raise StopIteration
        return item
