"""``tlc select`` — which unlabelled images to label next (active learning)."""

from __future__ import annotations

import warnings
from pathlib import Path

import click

from .output import console

STRATEGIES = ("entropy", "margin", "mc-dropout", "coreset", "hybrid")  # tlc.select.STRATEGIES (a test keeps them equal)


@click.command()
@click.argument("run_dir", metavar="RUN", type=click.Path(path_type=Path))
@click.argument("pool", type=click.Path(path_type=Path))
@click.option("--budget", required=True, type=click.IntRange(min=1), help="How many images to label next.")
@click.option("--strategy", type=click.Choice(STRATEGIES), default="entropy", show_default=True,
              help="entropy | margin (1 − (p1 − p2)) | mc-dropout (mutual information of dropout passes) | "
                   "coreset (k-center greedy on the model's features) | hybrid (the 5·N highest entropies, "
                   "then N of them by k-center greedy).")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path, dir_okay=False),
              help="CSV to write: path (or id for an .npz pool), score, rank, predicted, probability.")
@click.option("--split", type=click.Choice(["train", "val", "test"]), default=None,
              help="The split of an .npz pool in the MedMNIST layout to use (its labels are ignored).")
@click.option("--exclude", "exclude", multiple=True, type=click.Path(path_type=Path, dir_okay=False),
              help="CSV (path or id column) of images labelled already, e.g. earlier selections; repeatable.")
@click.option("--mc-samples", default=16, show_default=True, type=click.IntRange(min=2),
              help="Dropout passes for --strategy mc-dropout.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the MC-dropout masks.")
def select(run_dir: Path, pool: Path, budget: int, strategy: str, out: Path, split: str | None,
           exclude: tuple[Path, ...], mc_samples: int, seed: int) -> int:
    """Rank the unlabelled images of POOL with the trained RUN and write the BUDGET to label next.

    POOL is a folder of images (flat or nested), a CSV with a path column, or an .npz (an images
    array, or the MedMNIST layout with --split). Images of the run's own data (matched by pixels)
    and rows of --exclude CSVs are never selected.
    """
    from ..data.checks import DataWarning
    from ..errors import ConfigError
    from ..select import select as run_select
    from ..select import write_selection

    for path in exclude:
        if not path.is_file():
            raise ConfigError(f"--exclude {path}: file not found")
    with warnings.catch_warnings():
        warnings.simplefilter("always", DataWarning)
        selection = run_select(run_dir, pool, budget, strategy, split=split, exclude=exclude,
                               samples=mc_samples, seed=seed)
    write_selection(selection, out)
    if selection.note:
        click.echo(f"Note: {selection.note}", err=True)
    console.print(f"{len(selection.ids)} of {selection.pool_size - selection.excluded} unlabelled images selected "
                  f"by {strategy} ({selection.excluded} labelled already) → {out}", highlight=False)
    return 0
