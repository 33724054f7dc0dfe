"""What each source loader hands to the assembler: images with labels, optional split and group."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SPLIT_NAMES = ("train", "val", "test")


@dataclass(frozen=True)
class Item:
    """One image of a source. ``label`` indexes ``RawData.class_names``; ``split`` is None when the
    source gives no split; ``digest`` is the pixel hash (``images.pixel_digest``); ``task_labels``: one
    label per extra task of ``RawData.tasks`` (indexing that task's class names, -1 when missing)."""

    id: str
    image: np.ndarray
    label: int
    split: str | None
    group: str | None
    digest: bytes
    task_labels: tuple[int, ...] = ()


@dataclass(frozen=True)
class Task:
    """One task of a multi-task dataset: its name (a label column) and its class names."""

    name: str
    class_names: tuple[str, ...]


@dataclass(frozen=True)
class RawData:
    """A source's content before validation, splitting and channel/bit-depth rules."""

    kind: str
    source: str
    class_names: tuple[str, ...]
    items: tuple[Item, ...]
    has_groups: bool = False
    tasks: tuple[Task, ...] = ()  # multi-task: every task, the primary (``class_names``, ``label``) first


def sort_class_names(names: set[str] | list[str]) -> tuple[str, ...]:
    """Sorted class names; numerically when every name is an integer ("2" before "10")."""
    unique = set(names)
    if unique and all(_is_int(n) for n in unique):
        return tuple(sorted(unique, key=lambda n: (int(n), n)))
    return tuple(sorted(unique))


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True
