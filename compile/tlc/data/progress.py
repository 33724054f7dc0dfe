"""A progress bar for loading many files, shown only when stderr is a terminal."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")

MIN_ITEMS_FOR_BAR = 200


def track(items: Sequence[T], description: str) -> Iterator[T]:
    """Iterate ``items``; with a rich progress bar on stderr when it is a tty and the list is long."""
    if len(items) < MIN_ITEMS_FOR_BAR or not _stderr_is_tty():
        yield from items
        return
    from rich.console import Console
    from rich.progress import track as rich_track

    iterable: Iterable[T] = rich_track(items, description=description, total=len(items),
                                       console=Console(stderr=True), transient=True)
    yield from iterable


def _stderr_is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False
