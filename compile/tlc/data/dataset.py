"""The loaded dataset: native images per split plus the facts the model's input contract needs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tlc_runtime.manifest import DicomPolicy, InputSpec, Preprocessing
from tlc_runtime.preprocess import DEFAULT_RESIZE, to_model_input
from tlc_runtime.roi import Box, RoiRule

from ..errors import ConfigError
from .records import Task

SPLITS = ("train", "val", "test")
CACHE_LIMIT_BYTES = 256 * 2**20


@dataclass(frozen=True, eq=False)
class Split:
    """One split's images at native size (uint8/uint16; H×W when the dataset is grey, else H×W×3).

    ``rois``: each image's crop box (x0, y0, x1, y1) when the dataset's ROI rule is "given", else None.
    ``task_labels``: a multi-task dataset's N×T int64 labels, one column per task of ``Dataset.tasks``
    (the first equals ``labels``), -1 where an image has no label for that task; else None.
    """

    images: list[np.ndarray]
    labels: np.ndarray
    ids: tuple[str, ...]
    groups: tuple[str, ...] | None = None
    rois: tuple[Box, ...] | None = None
    task_labels: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.images)

    def __repr__(self) -> str:
        groups = "" if self.groups is None else f", groups={len(set(self.groups))}"
        return f"Split(n={len(self)}, labels={np.bincount(self.labels).tolist() if len(self) else []}{groups})"


@dataclass(frozen=True, eq=False)
class Dataset:
    """Class list, the three splits and the pixel facts (channels, bit depth, value range; ``dicom``:
    the policy its DICOM files were read with, None when it has none).

    ``roi`` is the crop applied before resizing (``tlc.data.roi``; "given" boxes sit in ``Split.rois``).
    ``tasks``: a multi-task dataset's tasks, the primary one (``class_names``) first; () for one task.
    """

    class_names: tuple[str, ...]
    splits: dict[str, Split]
    kind: str
    source: str
    content_hash: str
    channels: int
    bit_depth: int
    value_range: tuple[float, float]
    duplicates: dict[str, int] = field(default_factory=dict)
    dicom: DicomPolicy | None = None
    dropped_duplicates: tuple[dict[str, str], ...] = ()
    roi: RoiRule | None = None
    tasks: tuple[Task, ...] = ()
    _cache: dict[tuple[str, int], np.ndarray] = field(default_factory=dict, init=False, repr=False)

    @property
    def graph_dtype(self) -> str:
        """The model graph's input dtype: "uint8" for 8-bit data, "float32" (exact values) for 16-bit."""
        return "uint8" if self.bit_depth == 8 else "float32"

    def input_spec(self, size: int, name: str = "image") -> InputSpec:
        """The graph input this dataset feeds at ``size``×``size``."""
        return InputSpec(name=name, height=size, width=size, channels=self.channels, dtype=self.graph_dtype)

    def preprocessing(self, mean: tuple[float, ...], std: tuple[float, ...]) -> Preprocessing:
        """The manifest's preprocessing record for this data, given the backbone's mean/std."""
        return Preprocessing(resize=DEFAULT_RESIZE, value_range=self.value_range, mean=tuple(mean),
                             std=tuple(std), channel_rule="replicate" if self.channels == 1 else "rgb",
                             source_bit_depth=self.bit_depth, dicom=self.dicom, roi=self.roi)

    def arrays(self, split: str, size: int) -> tuple[np.ndarray, np.ndarray]:
        """(N×size×size×channels images in the graph dtype, int64 labels), cropped and resized like the
        runtime does."""
        if split not in self.splits:
            raise ConfigError(f"unknown split {split!r}; valid splits: {', '.join(self.splits)}")
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
            raise ConfigError(f"image size must be a positive integer, got {size!r}")
        size = int(size)
        cached = self._cache.get((split, size))
        if cached is None:
            cached = self._resize_split(split, size)
            if cached.nbytes <= CACHE_LIMIT_BYTES:
                cached.setflags(write=False)
                self._cache[(split, size)] = cached
            else:
                return cached, self.splits[split].labels.copy()
        return cached.copy(), self.splits[split].labels.copy()

    def _resize_split(self, split: str, size: int) -> np.ndarray:
        spec = self.input_spec(size)
        prep = self.preprocessing((0.0,) * 3, (1.0,) * 3)
        images, rois = self.splits[split].images, self.splits[split].rois
        out = np.empty((len(images), size, size, self.channels), dtype=np.dtype(self.graph_dtype))
        for i, image in enumerate(images):
            out[i] = to_model_input(image, spec, prep, roi=None if rois is None else rois[i])
        return out

    def summary(self) -> dict[str, Any]:
        """Plain dict for logs and run records: sizes and per-class counts per split, pixel facts, hash."""
        splits = {}
        for name, split in self.splits.items():
            counts = np.bincount(split.labels, minlength=len(self.class_names)) if len(split) else \
                np.zeros(len(self.class_names), dtype=np.int64)
            splits[name] = {
                "size": len(split),
                "per_class": {c: int(n) for c, n in zip(self.class_names, counts, strict=True)},
                "groups": None if split.groups is None else len(set(split.groups)),
            }
        return {
            "kind": self.kind,
            "source": self.source,
            "class_names": list(self.class_names),
            "splits": splits,
            "channels": self.channels,
            "bit_depth": self.bit_depth,
            "value_range": list(self.value_range),
            "content_hash": self.content_hash,
            "duplicates": dict(self.duplicates),
            "dropped_duplicates": [dict(d) for d in self.dropped_duplicates],
            "roi": None if self.roi is None else self.roi.mode,
            **({"tasks": {t.name: list(t.class_names) for t in self.tasks}} if self.tasks else {}),
        }
