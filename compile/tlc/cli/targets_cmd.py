"""``tlc targets`` — list the known targets, or show one."""

from __future__ import annotations

import click
from rich.table import Table

from .output import console, print_json


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
            return
        for key, value in to_dict(target).items():
            console.print(f"[bold]{key}[/bold]: {value}", highlight=False)
        return
    all_targets = builtin_targets()
    if as_json:
        print_json({n: to_dict(t) for n, t in all_targets.items()})
        return
    table = Table("target", "backend", "device", "default", "precisions", "aliases", "description")
    for t in all_targets.values():
        table.add_row(t.name, t.backend, t.device, t.precision, ", ".join(t.precisions),
                      ", ".join(t.aliases), t.description)
    console.print(table)
