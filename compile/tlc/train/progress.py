"""Training progress on the console (rich) and the loss / balanced-accuracy plot."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

PLOT_NAME = "training.png"
LINE_EVERY_S = 30.0
"""When stderr is not a terminal (a log file, a pipe, CI), a plain progress line at most this often
within an epoch, so a long epoch is not silent; epochs shorter than this print none."""


class Reporter:
    """Progress within each epoch and one summary line per epoch; silent when ``enabled`` is False.

    Within an epoch: a rich progress bar on a terminal, else a plain line every ``LINE_EVERY_S`` seconds.
    """

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._console = None
        if enabled:
            from rich.console import Console

            self._console = Console(stderr=True)

    def log(self, message: str) -> None:
        if self._console is not None:
            self._console.print(message, highlight=False, soft_wrap=True)

    @contextmanager
    def epoch_bar(self, epoch: int, epochs: int, total: int) -> Iterator[Callable[[int], None]]:
        """Yields ``advance(n_images)``."""
        if self._console is None:
            yield lambda n: None
            return
        if not self._console.is_terminal:
            yield self._periodic_lines(epoch, epochs, total)
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(TextColumn(f"epoch {epoch}/{epochs}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=self._console, transient=True) as bar:
            task = bar.add_task("train", total=total)
            yield lambda n: bar.advance(task, n)

    def _periodic_lines(self, epoch: int, epochs: int, total: int) -> Callable[[int], None]:
        """``advance(n_images)`` that logs images done, time elapsed and left every LINE_EVERY_S seconds."""
        started = last = time.monotonic()
        done = 0

        def advance(n: int) -> None:
            nonlocal done, last
            done += n
            now = time.monotonic()
            if now - last < LINE_EVERY_S or done >= total:
                return
            last = now
            left = (now - started) / done * (total - done)
            self.log(f"epoch {epoch}/{epochs}  {done}/{total} images  {_clock(now - started)} elapsed, "
                     f"about {_clock(left)} left")

        return advance

    def epoch_line(self, record: dict[str, Any], epochs: int, best: bool) -> None:
        self.log(f"epoch {record['epoch']:>3}/{epochs}  train loss {record['train_loss']:.4f}  "
                 f"val loss {_fmt(record['val_loss'])}  val bal-acc {_fmt(record['val_balanced_accuracy'])}  "
                 f"val AUC {_fmt(record['val_auc'])}  lr {record['lr']:.2e}  {record['seconds']:.1f}s"
                 + (f"  spectral {record['spectral_penalty']:.4f}" if "spectral_penalty" in record else "")
                 + ("  *best*" if best else ""))


def _clock(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}:{secs:02d}"


def _fmt(value: float | None) -> str:
    return "  n/a " if value is None else f"{value:.4f}"


def write_plot(path: Path, epochs: Sequence[dict[str, Any]]) -> None:
    """Loss (train, val) and validation balanced accuracy per epoch, as a PNG (matplotlib Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    xs = [e["epoch"] for e in epochs]
    fig = Figure(figsize=(9, 3.5))
    ax_loss, ax_acc = fig.subplots(1, 2)
    ax_loss.plot(xs, [e["train_loss"] for e in epochs], marker="o", label="train")
    ax_loss.plot(xs, [_nan(e["val_loss"]) for e in epochs], marker="o", label="val")
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_loss.legend()
    ax_acc.plot(xs, [_nan(e["val_balanced_accuracy"]) for e in epochs], marker="o", color="tab:green")
    ax_acc.set(xlabel="epoch", ylabel="balanced accuracy", title="validation balanced accuracy", ylim=(0, 1.02))
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def _nan(value: float | None) -> float:
    return float("nan") if value is None else value
