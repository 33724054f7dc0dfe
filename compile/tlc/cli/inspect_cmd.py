"""``tlc inspect`` — manifest summary and integrity status of a bundle."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from .output import console, print_json


@click.command()
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the manifest and integrity as JSON.")
def inspect(bundle: Path, as_json: bool) -> int:
    """Show what BUNDLE holds and whether every file matches its recorded sha256."""
    from tlc_runtime.info import file_status
    from tlc_runtime.manifest import read_manifest
    from tlc_runtime.schema import to_dict

    manifest = read_manifest(bundle)
    integrity = {entry.path: file_status(bundle, entry) for entry in manifest.all_files()}
    intact = all(v == "ok" for v in integrity.values())
    if as_json:
        print_json({"manifest": to_dict(manifest), "integrity": integrity, "intact": intact})
        return 0 if intact else 1
    spec, prep = manifest.input, manifest.preprocessing
    console.print(f"[bold]{bundle}[/bold]  schema v{manifest.schema_version}  model {manifest.model_name} ({manifest.arch})")
    console.print(f"classes: {', '.join(manifest.class_names)}")
    console.print(f"input: {spec.name} N×{spec.height}×{spec.width}×{spec.channels} {spec.dtype} {spec.layout}; "
                  f"values {prep.value_range[0]:g}..{prep.value_range[1]:g} ({prep.source_bit_depth}-bit), "
                  f"channels {prep.channel_rule}, resize {prep.resize} (in the runtime)")
    if manifest.extra_outputs:
        console.print(f"outputs: logits, then {', '.join(manifest.extra_outputs)}")
    t = manifest.target
    console.print(f"target: {t.name} ({t.backend}, {t.device}, {t.precision})")
    table = Table("artifact", "format", "backend", "precision", "files")
    for art in manifest.artifacts:
        table.add_row(art.name + (" (default)" if art.name == manifest.default_artifact else ""), art.format,
                      art.backend, art.precision, ", ".join(f"{r}={f.path}" for r, f in art.files.items()))
    console.print(table)
    for art in manifest.artifacts:
        trt = art.options.get("tensorrt_build")
        if trt is not None and art.format == "onnx":
            console.print(f"[yellow]no TensorRT engine inside[/yellow]: {art.options.get('engine_note', 'the engine is built on the device at first load, or with:')}")
            if art.options.get("trtexec"):
                console.print(f"  {art.options['trtexec']}", soft_wrap=True)
    v = manifest.verification
    if v:
        console.print(f"verified at build on {v.get('split')}: agreement {v.get('agreement')}, "
                      f"max|Δprob| {v.get('max_abs_prob_delta')}, runner {v.get('runner')}")
    console.print(f"golden set: {manifest.golden.count} images (check on a device: python -m tlc_runtime check {bundle})")
    console.print(f"provenance: {manifest.provenance.get('run_id')}, tlc {manifest.provenance.get('tlc')}, "
                  f"torch {manifest.provenance.get('torch')}, created {manifest.provenance.get('created')}")
    bad = {p: s for p, s in integrity.items() if s != "ok"}
    if bad:
        for path, status in bad.items():
            console.print(f"[red]integrity FAILED[/red] {path}: {status}")
        return 1
    console.print(f"[green]integrity ok[/green]: {len(integrity)} files match their sha256")
    return 0
