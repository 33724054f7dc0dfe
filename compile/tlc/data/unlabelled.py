"""Unlabelled images for INT8 calibration: a flat folder of image files, read the way the runtime
reads them (``tlc_runtime.images.read_image``, the bundle's DICOM policy, crop and resize), so the
calibration batch is exactly what the deployed model will be given. Calibration needs no labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tlc_runtime.errors import TlcRuntimeError
from tlc_runtime.images import MAX_PIXELS, SUFFIXES, read_image
from tlc_runtime.manifest import InputSpec, Preprocessing
from tlc_runtime.preprocess import checked_pixels, fit_to_model

from ..errors import DataError


def is_flat_image_folder(path: str | Path) -> bool:
    """A directory holding image files directly (a labelled folder holds class subfolders instead)."""
    path = Path(path)
    return path.is_dir() and any(p.is_file() and p.suffix.lower() in SUFFIXES for p in path.iterdir())


def read_unlabelled(folder: str | Path, spec: InputSpec, prep: Preprocessing) -> np.ndarray:
    """Every image file directly in ``folder`` → N×H×W×C batch of the graph's dtype.

    DataError naming the file for one that cannot be read or does not suit the model; a rule that
    needs a box per image (ROI mode "given") has none here, which is a DataError too.
    """
    files = sorted(p for p in Path(folder).iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)
    if not files:
        raise DataError(f"{folder}: no image files ({', '.join(sorted(SUFFIXES))}) in this folder")
    if prep.roi is not None and prep.roi.mode == "given":
        raise DataError(f"{folder}: the run crops to given boxes, which an unlabelled folder has none of; "
                        "calibrate with the run's box CSV data instead")
    pixels = []
    for path in files:
        try:
            image = read_image(path, MAX_PIXELS, dicom=prep.dicom)
            pixels.append(checked_pixels(image, spec, prep))
        except TlcRuntimeError as exc:
            raise DataError(f"{path}: {exc}") from None
    return fit_to_model(pixels, spec, prep)
