"""``tlc inspect`` — manifest summary and integrity status of a bundle."""

from __future__ import annotations

from pathlib import Path

import click

from .output import console, pct, phrases, print_json


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
    members = manifest.provenance.get("ensemble_members")
    if members:
        console.print(f"ensemble of {len(members)} members in one graph (mean probability): "
                      + ", ".join(f"{m.get('arch')} ({m.get('run_id')})" for m in members))
    console.print(f"classes: {', '.join(manifest.class_names)}")
    phrases(f"input: {spec.name} N×{spec.height}×{spec.width}×{spec.channels} {spec.dtype} {spec.layout};",
            f"values {prep.value_range[0]:g}..{prep.value_range[1]:g} ({prep.source_bit_depth}-bit),",
            f"channels {prep.channel_rule},", f"resize {prep.resize} (in the runtime)", sep=" ", indent=2)
    if manifest.extra_outputs:
        console.print(f"outputs: logits, then {', '.join(manifest.extra_outputs)}")
    if manifest.ood is not None:
        g = manifest.ood
        phrases(f"OOD gate: {g.score} score ({g.output}),", f"threshold {g.threshold:.4g},",
                f"accepts {100 * g.acceptance:.0f}% of {g.n_threshold} validation images;",
                f"Gaussian fitted on {g.n_fit} training images", sep=" ", indent=2)
    t = manifest.target
    console.print(f"target: {t.name} ({t.backend}, {t.device}, {t.precision})")
    for art in manifest.artifacts:
        default = " (default)" if art.name == manifest.default_artifact else ""
        phrases(f"artifact [bold]{art.name}[/bold]{default}:", f"{art.format} on {art.backend}, {art.precision};",
                "files " + ", ".join(f"{f.path} ({f.bytes / 1e6:.1f} MB)" for f in art.files.values()), sep=" ",
                indent=2)
    for art in manifest.artifacts:
        trt = art.options.get("tensorrt_build")
        if trt is not None and art.format == "onnx":
            console.print(f"[yellow]no TensorRT engine inside[/yellow]: {art.options.get('engine_note', 'the engine is built on the device at first load, or with:')}")
            if art.options.get("trtexec"):
                console.print(f"  {art.options['trtexec']}", soft_wrap=True)
    v = manifest.verification
    if v:
        runner = v.get("runner") or {}
        proxy = f" (proxy for {runner['proxy_for']})" if runner.get("proxy_for") else ""
        phrases(f"verified at build on the {v.get('split')} split:", f"agreement {pct(v.get('agreement'))},",
                f"balanced-accuracy drop {pct(v.get('balanced_accuracy_drop'))},",
                f"max |Δprob| {_sci(v.get('max_abs_prob_delta'))},",
                f"on {runner.get('backend')}/{runner.get('device')} in {runner.get('precision')}{proxy}", sep=" ",
                indent=2)
    phrases(f"golden set: {manifest.golden.count} images; check on a device:",
            f"python -m tlc_runtime check {bundle}", sep=" ", indent=2)
    prov = manifest.provenance
    known = [f"{label} {prov[key]}" for label, key in (("run", "run_id"), ("tlc", "tlc"), ("torch", "torch"),
                                                        ("created", "created")) if prov.get(key)]
    phrases("provenance:", *[p + "," for p in known[:-1]], *known[-1:], sep=" ", indent=2)
    bad = {p: s for p, s in integrity.items() if s != "ok"}
    if bad:
        for path, status in bad.items():
            console.print(f"[red]integrity FAILED[/red] {path}: {status}")
        return 1
    console.print(f"[green]integrity ok[/green]: {len(integrity)} files match their sha256")
    return 0


def _sci(value: float | None) -> str:
    return "—" if value is None else f"{value:.2e}"
