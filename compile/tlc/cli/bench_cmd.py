"""``tlc bench`` — latency of a bundle on this machine."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from .output import console


@click.command()
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option("--batch", "batches", multiple=True, type=int, default=(1,), show_default=True,
              help="Batch size (repeat for several).")
@click.option("--iterations", default=300, show_default=True, type=int)
@click.option("--warmup", default=30, show_default=True, type=int)
@click.option("--backend", default="auto", show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--json", "json_out", type=click.Path(path_type=Path), default=None, help="Also write JSON here.")
def bench(bundle: Path, batches: tuple[int, ...], iterations: int, warmup: int, backend: str, device: str,
          json_out: Path | None) -> None:
    """Measure BUNDLE's latency through tlc_runtime and, for ONNX, the bare onnxruntime call."""
    from ..bench.latency import bench_bundle
    from ..bundler.reports import write_json

    result = bench_bundle(bundle, tuple(batches), iterations, warmup, backend, device)
    if json_out:
        write_json(json_out, result)
    table = Table("batch", "path", "p50 ms", "p99 ms", "mean ms",
                  title=f"{bundle} — {result['backend']} / {result['device']} / {result['precision']}")
    for b, entry in result["batches"].items():
        for name, stats in entry.items():
            if isinstance(stats, dict):
                table.add_row(b, name, f"{stats['p50_ms']:.3f}", f"{stats['p99_ms']:.3f}", f"{stats['mean_ms']:.3f}")
        if "overhead_p50" in entry:
            table.add_row(b, "runtime overhead (p50)", f"{100 * entry['overhead_p50']:+.1f}%", "", "")
    console.print(table)
