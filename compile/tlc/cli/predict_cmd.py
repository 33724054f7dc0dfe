"""``tlc predict`` — classify image files with a bundle (through tlc_runtime, as a device would)."""

from __future__ import annotations

import warnings
from pathlib import Path

import click
from rich.table import Table

from .output import console, print_json


@click.command()
@click.argument("bundle", type=click.Path(path_type=Path))
@click.argument("images", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--backend", default="auto", show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--max-pixels", type=click.IntRange(min=1), default=None,
              help="Largest image file (height × width) to read; default tlc_runtime.images.MAX_PIXELS.")
def predict(bundle: Path, images: tuple[str, ...], as_json: bool, backend: str, device: str,
            max_pixels: int | None) -> None:
    """Predict the class of each IMAGE (PNG, JPEG, TIFF, .npy, DICOM .dcm) with BUNDLE."""
    import tlc_runtime

    clf = tlc_runtime.load(bundle, backend=backend, device=device)
    if max_pixels is not None:
        clf.max_pixels = max_pixels
    with warnings.catch_warnings():
        _ignore_pillow_bomb_warning()
        results = clf.predict_batch(list(images))
    if as_json:
        print_json([{"image": img, "label": p.label, "index": p.index, "confidence": p.confidence,
                     "probabilities": dict(zip(clf.class_names, map(float, p.probabilities), strict=True))
                     if not isinstance(p.probabilities, dict) else p.probabilities}
                    for img, p in zip(images, results, strict=True)])
        return
    table = Table("image", "label", "confidence", title=f"{bundle} ({clf.info.backend}, {clf.info.precision})")
    for img, p in zip(images, results, strict=True):
        table.add_row(img, p.label, f"{p.confidence:.4f}")
    console.print(table)


def _ignore_pillow_bomb_warning() -> None:
    """Pillow warns about big images as it opens them; the runtime's own pixel limit then refuses or
    accepts the file, so the warning would only add a confusing second line."""
    try:
        from PIL import Image
    except ImportError:
        return
    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
