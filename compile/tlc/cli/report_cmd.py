"""``tlc report`` and ``tlc diff``: the bundle's HTML report again, and the change record of two bundles."""

from __future__ import annotations

from pathlib import Path

import click

from .output import console, log, pct, phrases, readable


@click.command()
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option("--out", "-o", type=click.Path(path_type=Path), default=None,
              help="HTML file to write (default: BUNDLE.report.html beside the bundle, never inside it).")
@click.option("--data", default=None,
              help="Report on this labelled data's test split (PyTorch from the run the bundle records); "
                   "default: the bundle's golden set.")
@click.option("--open", "open_browser", is_flag=True, help="Open the report in a web browser.")
def report(bundle: Path, out: Path | None, data: str | None, open_browser: bool) -> None:
    """Regenerate BUNDLE's report.html from what the bundle holds, its artifact run here."""
    from ..report.write import regenerate

    written = regenerate(bundle, out, data=data, log=log)
    console.print(f"report: {written}", highlight=False)
    if open_browser:
        import webbrowser

        webbrowser.open(written.resolve().as_uri())


@click.command()
@click.argument("bundle_a", type=click.Path(path_type=Path))
@click.argument("bundle_b", type=click.Path(path_type=Path))
@click.option("--data", default=None,
              help="Compare predictions on this labelled data's test split (default: BUNDLE_A's golden set).")
@click.option("--json", "json_out", type=click.Path(path_type=Path), default=None,
              help="Write the change record as JSON.")
def diff(bundle_a: Path, bundle_b: Path, data: str | None, json_out: Path | None) -> None:
    """What changed from BUNDLE_A to BUNDLE_B and what it does to predictions on the same images."""
    from rich.table import Table

    from ..bundler.reports import write_json
    from ..report.diff import diff_bundles

    record = diff_bundles(bundle_a, bundle_b, data=data, log=log)
    if json_out:
        write_json(json_out, record)
    changed = Table("changed", "A", "B", title=f"{bundle_a} → {bundle_b}")
    for c in (c for c in record["changes"] if c["changed"]):
        changed.add_row(c["what"], readable(c["a"]) or "—", readable(c["b"]) or "—")
    console.print(changed if changed.row_count else "no recorded change")
    effect = record["impact"]
    console.print(f"{effect['changed']} of {effect['n']} predictions changed on the {record['evaluated_on']}",
                  highlight=False)
    rows = effect["flips_per_class"]
    if rows:
        flips = Table(*(k.replace("_", " ") for k in rows[0]), title="per class")
        for row in rows:
            flips.add_row(*(str(v) for v in row.values()))
        console.print(flips)
    for name, m in (effect.get("metrics") or {}).items():
        phrases(f"{name.replace('_', ' ')}: {pct(m['a'])} → {pct(m['b'])}", f"Δ {pct(m['delta'])}",
                f"95% CI [{pct(m['ci95'][0])}, {pct(m['ci95'][1])}]")
