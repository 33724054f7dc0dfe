"""``tlc predict`` — classify image files with a bundle (through tlc_runtime, as a device would)."""

from __future__ import annotations

import csv
import os
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from .output import console, err_console, print_json


@click.command()
@click.argument("bundle", type=click.Path(path_type=Path))
@click.argument("images", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--csv", "csv_out", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Many files: write one row per file (path, label, confidence, prob_CLASS..., error) to this "
                   "CSV, reading files on worker threads; an unreadable file gets an error row and exit code 2.")
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True,
              help="Images per model call (with --csv).")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Threads reading and preparing images (with --csv); default: the CPU count, at most 8.")
@click.option("--backend", default="auto", show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--max-pixels", type=click.IntRange(min=1), default=None,
              help="Largest image file (height × width) to read; default tlc_runtime.images.MAX_PIXELS.")
@click.option("--nproc", type=click.IntRange(min=1), default=1, show_default=True,
              help="With --csv: split the files between N processes (torchrun's launcher; --nnodes, --node-rank, "
                   "--rdzv-endpoint for several nodes), merged into one CSV in input order. See docs/distributed.md.")
@click.option("--nnodes", type=click.IntRange(min=1), default=1, show_default=True, help="Nodes (with --nproc).")
@click.option("--node-rank", type=int, default=None, help="This node's rank (0 merges the CSV).")
@click.option("--rdzv-endpoint", default=None, metavar="HOST:PORT", help="Node 0's address, for several nodes.")
@click.option("--resume", is_flag=True, help="With --nproc: keep the shards a failed run finished; score the rest.")
def predict(bundle: Path, images: tuple[str, ...], as_json: bool, csv_out: Path | None, batch_size: int,
            workers: int | None, backend: str, device: str, max_pixels: int | None, nproc: int, nnodes: int,
            node_rank: int | None, rdzv_endpoint: str | None, resume: bool) -> int:
    """Predict the class of each IMAGE (PNG, JPEG, TIFF, BMP, .npy, DICOM .dcm) with BUNDLE.

    An IMAGE that is a folder stands for every image file below it. For many files use --csv.
    """
    import tlc_runtime
    from tlc_runtime.files import find_images

    from ..errors import ConfigError

    if as_json and csv_out is not None:
        raise ConfigError("use --json or --csv, not both")
    if nproc * nnodes > 1 or resume:
        if csv_out is None:
            raise ConfigError("--nproc, --nnodes and --resume need --csv (sharded scoring writes one CSV)")
        from ..launch import LaunchSpec

        spec = LaunchSpec(nproc, nnodes, node_rank, rdzv_endpoint)
        return _predict_sharded(spec, bundle, find_images(images), csv_out, resume,
                                (batch_size, workers, backend, device, max_pixels))
    clf = tlc_runtime.load(bundle, backend=backend, device=device)
    if max_pixels is not None:
        clf.max_pixels = max_pixels
    paths = find_images(images)
    with warnings.catch_warnings():
        _ignore_pillow_bomb_warning()
        if csv_out is not None:
            return _predict_to_csv(clf, paths, csv_out, batch_size, workers)
        results = clf.predict_batch(paths)
    if as_json:
        print_json([{"image": str(img), **p.to_dict()} for img, p in zip(paths, results, strict=True)])
        return 0
    gated = clf.manifest.ood is not None
    table = Table("image", "label", "confidence", *(["OOD"] if gated else []),
                  title=f"{bundle} ({clf.info.backend}, {clf.info.precision})")
    for img, p in zip(paths, results, strict=True):
        table.add_row(str(img), p.label, f"{p.confidence:.4f}", *(["yes" if p.ood else "no"] if gated else []))
    console.print(table)
    return 0


def _predict_to_csv(clf: Any, paths: list[Path], out: Path, batch_size: int, workers: int | None) -> int:
    """Stream every file's result into ``out`` (atomically); exit code 2 when some file failed."""

    started = time.perf_counter()
    with _atomic_csv(out) as writer, _progress(len(paths)) as advance:
        failed = _write_rows(clf, paths, writer, batch_size, workers, advance)
    seconds = max(time.perf_counter() - started, 1e-9)
    console.print(f"{len(paths)} images in {seconds:.1f} s ({len(paths) / seconds:.1f} images/s) → {out}",
                  highlight=False)
    if failed:
        click.echo(f"Error: {len(failed)} of {len(paths)} files could not be read (first: {failed[0].error}); "
                   f"see the error column of {out}", err=True)
        return 2
    return 0


def _write_rows(clf: Any, paths: list[Path], writer: Any, batch_size: int, workers: int | None,
                advance: Callable[[], None]) -> list[Any]:
    """The header and one row per file; returns the results of the files that could not be read."""
    from tlc_runtime.files import predict_files

    classes = list(clf.class_names)
    failed = []
    writer.writerow(["path", "label", "confidence", *(f"prob_{c}" for c in classes), "error"])
    for result in predict_files(clf, paths, batch_size=batch_size, workers=workers):
        p = result.prediction
        if p is None:
            failed.append(result)
            writer.writerow([str(result.path), "", "", *([""] * len(classes)), result.error])
        else:
            writer.writerow([str(result.path), p.label, p.confidence, *(p.probabilities[c] for c in classes), ""])
        advance()
    return failed


def _predict_sharded(spec: Any, bundle: Path, paths: list[Path], out: Path, resume: bool,
                     options: tuple[Any, ...]) -> int:
    """``--nproc``: ``tlc.cli.sharded`` with a shard writer that loads the bundle in each process."""
    import functools

    import tlc_runtime
    from tlc_runtime.integrity import sha256_file

    from .sharded import score_sharded

    tlc_runtime.load(bundle, backend=options[2], device=options[3])  # a bad bundle fails here, not N times
    fingerprint = sha256_file(bundle / "manifest.json" if bundle.is_dir() else bundle) + f"/{options[2]}/{options[3]}"
    started = time.perf_counter()
    failed = score_sharded(spec, paths, out, functools.partial(_write_shard, str(bundle), options), fingerprint,
                           resume)
    if not spec.is_main_node:
        console.print(f"node {spec.node_rank}: its shards are written (node 0 merges {out})", highlight=False)
        return 2 if failed else 0
    seconds = max(time.perf_counter() - started, 1e-9)
    console.print(f"{len(paths)} images on {spec.world_size} processes in {seconds:.1f} s → {out}", highlight=False)
    if failed:
        click.echo(f"Error: {failed} of {len(paths)} files could not be read; see the error column of {out}",
                   err=True)
        return 2
    return 0


def _write_shard(bundle: str, options: tuple[Any, ...], rank: int, paths: list[str], out: Path) -> int:
    """One shard's CSV (a ``tlc.cli.sharded.ShardWriter``): the bundle loaded in this process."""
    import tlc_runtime

    batch_size, workers, backend, device, max_pixels = options
    clf = tlc_runtime.load(bundle, backend=backend, device=device)
    if max_pixels is not None:
        clf.max_pixels = max_pixels
    with warnings.catch_warnings(), open(out, "w", newline="", encoding="utf-8") as fp:
        _ignore_pillow_bomb_warning()
        failed = _write_rows(clf, [Path(p) for p in paths], csv.writer(fp), batch_size, workers, lambda: None)
    return len(failed)


@contextmanager
def _atomic_csv(path: Path) -> Iterator[Any]:
    """A csv.writer into a temporary file beside ``path`` that replaces ``path`` only on success."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", newline="", encoding="utf-8") as fp:
            yield csv.writer(fp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def _progress(total: int) -> Iterator[Callable[[], None]]:
    """Yields ``advance()``: a progress bar on stderr when it is a terminal, else nothing."""
    if not err_console.is_terminal:
        yield lambda: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn, TimeRemainingColumn

    with Progress("predicting", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
                  console=err_console, transient=True) as bar:
        task = bar.add_task("predict", total=total)
        yield lambda: bar.advance(task)


def _ignore_pillow_bomb_warning() -> None:
    """Pillow warns about big images as it opens them; the runtime's own pixel limit then refuses or
    accepts the file, so the warning would only add a confusing second line."""
    try:
        from PIL import Image
    except ImportError:
        return
    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
