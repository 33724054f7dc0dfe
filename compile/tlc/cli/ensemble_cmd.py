"""``tlc ensemble``."""

from __future__ import annotations

from pathlib import Path

import click

from .output import console


@click.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", "out", required=True, type=click.Path(path_type=Path), help="Ensemble run directory to write.")
@click.option("--overwrite", is_flag=True, help="Replace an existing run in --out.")
def ensemble(runs: tuple[Path, ...], out: Path, overwrite: bool) -> None:
    """Combine finished RUNS (same classes and input; architectures may differ) into one ensemble run.

    The members' checkpoints are copied into --out with their run.json and hashes; `tlc build` of
    the ensemble run exports one graph: the mean of the members' probabilities.
    """
    from ..train.ensemble import combine_runs

    info = combine_runs(runs, out, overwrite=overwrite)
    console.print(f"[bold]ensemble[/bold] {out}: {len(info.members)} members "
                  f"({', '.join(f'{m.arch} {m.run_id}' for m in info.members)})")
