"""``tlc demo`` — the README's main command."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from .output import console, log, pct


@click.command()
@click.option("--out", default="tlc-demo", show_default=True, type=click.Path(path_type=Path),
              help="Working directory for the runs, the bundle and sample images.")
@click.option("--labels-per-class", default=10, show_default=True, type=int,
              help="Labelled training images per class for the transfer task.")
@click.option("--seed", default=0, show_default=True, type=int)
def demo(out: Path, labels_per_class: int, seed: int) -> int:
    """Pretrain on digits 0–4, transfer to 5–9 with few labels, build, verify, predict (no download)."""
    from ..demo import run_demo

    r = run_demo(out, labels_per_class=labels_per_class, seed=seed, log=log)
    table = Table("step", "result", title="tlc demo — sklearn digits on a cluttered canvas (real data, no download)")
    table.add_row("scratch, same budget", f"test balanced accuracy {pct(r.scratch_balanced_accuracy)}")
    table.add_row("transfer from pretrain run", f"test balanced accuracy {pct(r.transfer_balanced_accuracy)} "
                  f"({100 * (r.transfer_balanced_accuracy - r.scratch_balanced_accuracy):+.1f} points)")
    table.add_row("bundle", str(r.bundle))
    table.add_row("verify vs PyTorch", f"{'PASS' if r.verify_passed else 'FAIL'}: agreement {pct(r.agreement)}, "
                  f"max|Δprob| {r.max_abs_prob_delta:.1e}")
    for p in r.predictions:
        table.add_row(f"predict {p['image']}", f"{p['predicted']} ({p['confidence']:.3f}), true {p['true']}")
    table.add_row("time", ", ".join(f"{k} {v:.0f}s" for k, v in r.seconds.items()))
    console.print(table)
    return 0 if r.verify_passed else 1
