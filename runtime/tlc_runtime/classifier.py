"""A loaded bundle: prepare images, run the backend session, turn logits into Predictions.

Safe to share between threads: predictions keep no per-call state on the object, and every
backend Session's ``infer`` is thread-safe by contract.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .backends.base import Session, SessionInfo
from .errors import InferenceError, InputError, TlcRuntimeError
from .images import MAX_PIXELS, is_image_path, read_image
from .manifest import LOGITS, Artifact, InputSpec, Manifest
from .preprocess import checked_pixels, fit_to_model
from .results import Prediction, predictions_from_outputs

if TYPE_CHECKING:
    from .golden import GoldenReport

ImageLike = np.ndarray | str | Path
ValueRange = tuple[float, float]


class Classifier:
    """Image classifier backed by one bundle artifact on one backend (made by ``tlc_runtime.load``).

    Pixel values: the model's range is 0..2**bits-1 for the bit depth it was trained on (0..255 for
    8-bit models, 0..4095 for 12-bit ones; ``manifest.preprocessing.source_bit_depth``). Integer
    images are raw values on that range: values outside it are an InputError, uint16 images are
    refused by 8-bit models and uint8 by deeper ones; other integer types are converted when in
    range. Float images need a declared range, ``predict(image, value_range=(0.0, 1.0))`` (also
    ``predict_batch`` and ``prepare``): lo..hi is mapped onto the model's range and rounded to its
    integers; pixels outside lo..hi are refused, never clipped. A float image without a declared
    range is refused: it is never guessed to be 0..1 or 0..255. Files are read by
    ``tlc_runtime.images.read_image``, into exactly the array training made of them.

    ``max_pixels`` (default ``images.MAX_PIXELS``) is the largest image file predict reads; set it
    on the object to accept larger files.
    """

    max_pixels: int = MAX_PIXELS

    def __init__(self, manifest: Manifest, session: Session, bundle_dir: str | Path,
                 max_batch: int | None = None, artifact_name: str | None = None) -> None:
        if max_batch is not None and (isinstance(max_batch, bool) or not isinstance(max_batch, int)
                                      or max_batch < 1):
            raise TlcRuntimeError(f"max_batch must be a positive integer, got {max_batch!r}")
        self.manifest = manifest
        self.bundle_dir = Path(bundle_dir)
        self.max_batch = max_batch
        self.artifact_name = manifest.artifact(artifact_name).name
        self._session = session
        self._infer = session.infer_outputs
        self._spec = manifest.input
        self._prep = manifest.preprocessing
        self._names = manifest.class_names

    @property
    def class_names(self) -> tuple[str, ...]:
        return self._names

    @property
    def info(self) -> SessionInfo:
        """Backend, device and precision really used."""
        return self._session.info

    @property
    def artifact(self) -> Artifact:
        """The manifest entry of the artifact this classifier runs."""
        return self.manifest.artifact(self.artifact_name)

    @property
    def input_spec(self) -> InputSpec:
        return self._spec

    def prepare(self, image: ImageLike, value_range: ValueRange | None = None,
                roi: Sequence[int] | None = None) -> np.ndarray:
        """One image (array or file path) → H×W×C array of the graph's dtype at the model's size.

        ``value_range``: see the class docstring. ``roi`` = (x0, y0, x1, y1) crops the image first
        (pixels, x1/y1 exclusive); without it the bundle's automatic rule crops, if it has one
        (``tlc_runtime.roi``). A bundle trained on given boxes needs ``roi``.
        """
        return fit_to_model([self._pixels(image, value_range, roi)], self._spec, self._prep)[0]

    def _pixels(self, image: ImageLike, value_range: ValueRange | None, roi: Sequence[int] | None) -> np.ndarray:
        """An array, or a file read, cropped and validated for this model (``checked_pixels``); not resized."""
        if not is_image_path(image):
            return checked_pixels(image, self._spec, self._prep, value_range, roi)
        pixels = read_image(image, self.max_pixels, allow_float=True, dicom=self._prep.dicom)  # floats: see above
        try:
            return checked_pixels(pixels, self._spec, self._prep, value_range, roi)
        except InputError as exc:
            raise InputError(f"{image}: {exc}") from None

    def predict(self, image: ImageLike, value_range: ValueRange | None = None,
                roi: Sequence[int] | None = None) -> Prediction:
        """Classify one image: an H×W or H×W×C array or an image file path (``value_range`` and
        ``roi``: see ``prepare``)."""
        batch = self.prepare(image, value_range, roi)[None]
        return predictions_from_outputs(self._checked(self._infer(batch), 1), self.manifest)[0]

    def predict_batch(self, images: Iterable[ImageLike] | np.ndarray, value_range: ValueRange | None = None,
                      rois: Sequence[Sequence[int] | None] | None = None) -> list[Prediction]:
        """Classify many images (a list of arrays/paths, or an N×H×W(×C) array) in one infer call;
        ``value_range`` applies to every image, ``rois`` holds one box (or None) per image.

        Images of one shape and dtype are resized together (one vectorised call, no per-image loop).
        """
        if isinstance(images, np.ndarray):
            if images.ndim not in (3, 4):
                raise InputError(f"a batch array must be N×H×W or N×H×W×C, got shape {images.shape}")
        elif is_image_path(images) or not isinstance(images, Iterable):
            raise InputError("predict_batch takes a list of images or an N×H×W(×C) array; "
                             "use predict() for one image")
        else:
            images = list(images)
        if len(images) == 0:
            raise InputError("empty batch: pass at least one image")
        rois = [None] * len(images) if rois is None else list(rois)
        if len(rois) != len(images):
            raise InputError(f"rois has {len(rois)} boxes for {len(images)} images; pass one box (or None) per image")
        batch = fit_to_model([self._pixels(img, value_range, roi) for img, roi in zip(images, rois, strict=True)],
                             self._spec, self._prep)
        return predictions_from_outputs(self.predict_outputs(batch), self.manifest)

    def predict_logits(self, batch: np.ndarray) -> np.ndarray:
        """Already-prepared N×H×W×C batch of the graph dtype → N×K float32 logits."""
        return self.predict_outputs(batch)[LOGITS]

    def predict_outputs(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """Already-prepared N×H×W×C batch of the graph dtype → every output the manifest lists, by name
        (N×K float32 ``logits`` first, then the scores), in chunks of ``max_batch``."""
        if not isinstance(batch, np.ndarray):
            raise InputError(f"predict_outputs takes a numpy array, got {type(batch).__name__}")
        limit = self.max_batch
        if limit is None or batch.ndim != 4 or len(batch) <= limit:
            return self._checked(self._infer(batch), len(batch))
        parts = [self._infer(batch[i:i + limit]) for i in range(0, len(batch), limit)]
        return self._checked({name: np.concatenate([p[name] for p in parts]) for name in parts[0]}, len(batch))

    def _checked(self, outputs: dict[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
        """The manifest's outputs if the logits are N×K (K its class count) and every output holds N rows of
        finite numbers; else InferenceError."""
        k, backend = len(self._names), self.info.backend
        logits = outputs[LOGITS]
        if logits.shape != (n, k):
            raise InferenceError(f"{backend} returned logits of shape {logits.shape} for {n} image(s), "
                                 f"but the manifest lists {k} classes; rebuild the bundle")
        wanted = (LOGITS, *self.manifest.extra_outputs)
        missing = [name for name in wanted if name not in outputs]
        if missing:
            raise InferenceError(f"{backend} returned no {', '.join(map(repr, missing))} output; the manifest "
                                 f"lists {list(wanted)} (this backend runs single-output graphs only, or the "
                                 "artifact does not match the manifest)")
        for name in wanted:
            value = outputs[name]
            if value.shape[:1] != (n,):
                raise InferenceError(f"{backend} returned output {name!r} of shape {value.shape} for {n} image(s)")
            finite = np.isfinite(value.reshape(n, -1)).all(axis=1)
            if not finite.all():
                raise InferenceError(f"{backend} returned NaN or Inf {name} for {int((~finite).sum())} of {n} "
                                     f"image(s); the model file is broken (or overflowed in {self.info.precision})")
        for task in self.manifest.tasks or ():
            if outputs[task.output].shape != (n, len(task.class_names)):
                raise InferenceError(f"{backend} returned task output {task.output!r} of shape "
                                     f"{outputs[task.output].shape} for {n} image(s), but task {task.name!r} "
                                     f"has {len(task.class_names)} classes; rebuild the bundle")
        return {name: outputs[name] for name in wanted}

    def check(self) -> GoldenReport:
        """Run the bundle's golden set on this session and compare with the reference logits."""
        from .golden import check

        return check(self)

    def __repr__(self) -> str:
        info = self.info
        return (f"Classifier({self.manifest.model_name!r}, classes={list(self._names)}, "
                f"backend={info.backend}, device={info.device}, precision={info.precision})")

    def describe(self) -> dict[str, Any]:
        """Short JSON-ready summary of what is loaded."""
        return {"model": self.manifest.model_name, "arch": self.manifest.arch, "artifact": self.artifact_name,
                "classes": list(self._names), "backend": self.info.backend,
                "device": self.info.device, "precision": self.info.precision}
