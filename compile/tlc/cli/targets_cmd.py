"""``tlc targets`` — list the known targets, or show one, in words (``--json`` for the raw fields)."""

from __future__ import annotations

import click
from rich.table import Table

from .output import console, phrases, print_json, readable

WIDE = 120  # narrower consoles (and pipes, 80 columns) get the table without descriptions


@click.command()
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True)
def targets(name: str | None, as_json: bool) -> None:
    """List built-in targets, or show NAME (a target name, alias or TOML path) in full."""
    from tlc_runtime.schema import to_dict

    from ..targets import builtin_targets, load_target

    if name:
        target = load_target(name)
        if as_json:
            print_json(to_dict(target))
        else:
            _show(target)
        return
    all_targets = builtin_targets()
    if as_json:
        print_json({n: to_dict(t) for n, t in all_targets.items()})
        return
    wide = console.width >= WIDE
    table = Table("target", "backend", "device", "precisions", "aliases", *(["description"] if wide else []),
                  box=None, pad_edge=False)
    for t in all_targets.values():
        precisions = ", ".join(f"{p}*" if p == t.precision else p for p in t.precisions)
        table.add_row(t.name, t.backend, t.device, precisions, ", ".join(t.aliases) or "—",
                      *([t.description] if wide else []))
    for column in table.columns[:5]:
        column.no_wrap = True
    console.print(table)
    console.print("* default precision. " + ("" if wide else "Descriptions: ") + "tlc targets NAME shows one in full.",
                  highlight=False)


def _show(target) -> None:
    """One target in words: what it runs on, its precisions, calibration and budgets."""
    rows = [("description", target.description),
            ("runs on", f"{target.backend}, device {target.device}, {target.arch}"),
            ("precisions", ", ".join(f"{p} (default)" if p == target.precision else p for p in target.precisions)
             + (f"; falls back to {', '.join(target.fallback)}" if target.fallback else "")),
            ("aliases", ", ".join(target.aliases) or "none"),
            ("alias of", target.alias_of),
            ("INT8 calibration", readable(target.calibration))]
    rows += [(f"budget {p}", _budget(target.tolerance(p))) for p in target.precisions]
    rows += [(backend, readable(getattr(target, backend))) for backend in ("onnxruntime", "openvino", "tensorrt")
             if backend == target.backend]
    console.print(f"[bold]{target.name}[/bold]", highlight=False)
    width = max(len(key) for key, _ in rows) + 2
    for key, value in rows:
        if value:  # commas separate phrases; a line breaks only between them
            parts = [p + "," for p in value.split(", ")]
            parts[-1] = parts[-1][:-1]
            phrases(f"[bold]{key.ljust(width)}[/bold]{parts[0]}", *parts[1:], sep=" ", indent=width)


def _budget(tol) -> str:
    """``agreement ≥ 99%, balanced-accuracy drop ≤ 1 pt, at 95% confidence``."""
    parts = [f"agreement ≥ {100 * tol.min_agreement:g}%",
             f"balanced-accuracy drop ≤ {100 * tol.max_balanced_accuracy_drop:g} pts"]
    if tol.max_abs_prob_delta is not None:
        parts.append(f"max |Δprob| ≤ {tol.max_abs_prob_delta:g}")
    how = f"at {100 * tol.confidence:g}% confidence" if tol.confidence else "observed values"
    return ", ".join(parts) + f" ({how})"
