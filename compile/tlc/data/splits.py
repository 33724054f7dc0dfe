"""Deterministic, stratified, group-aware automatic train/val/test split.

Images are first joined into *units* that must stay together: all images of one group
(patient/site) and all copies of an identical image. Units are stratified by their majority class:
per class they are shuffled with ``seed`` (from a canonical order by pixel content, so file names
and listing order do not matter) and placed, largest first, into the split furthest below its target
share. Finally a split left without the class takes one unit: train from any split, val and test
only from a split that has two or more.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import ConfigError
from .records import Item

ORDER = ("train", "val", "test")


def check_fractions(val_fraction: float, test_fraction: float) -> None:
    """Both fractions in (0, 1) and together below 1, else ConfigError."""
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 < value < 1.0:
            raise ConfigError(f"{name} must be between 0 and 1 (exclusive), got {value}")
    if val_fraction + test_fraction >= 1.0:
        raise ConfigError(f"val_fraction + test_fraction must be below 1, got {val_fraction + test_fraction}")


def auto_split(items: Sequence[Item], n_classes: int, *, seed: int, val_fraction: float,
               test_fraction: float) -> list[str]:
    """Split name ("train"/"val"/"test") for each item; no group or identical image straddles splits."""
    check_fractions(val_fraction, test_fraction)
    shares = {"train": 1.0 - val_fraction - test_fraction, "val": val_fraction, "test": test_fraction}
    units = _units(items)
    rng = np.random.default_rng(seed)
    majority = [_majority(items, u, n_classes) for u in units]
    assignment: dict[int, str] = {}
    for cls in range(n_classes):
        members = [u for u, m in zip(units, majority, strict=True) if m == cls]
        if not members:
            continue
        shuffled = [members[i] for i in rng.permutation(len(members))]
        shuffled.sort(key=len, reverse=True)  # stable: equal sizes keep the shuffled order
        placed = _place(shuffled, shares)
        _fill_empty(placed)
        for split, split_units in placed.items():
            for unit in split_units:
                for index in unit:
                    assignment[index] = split
    return [assignment[i] for i in range(len(items))]


def _units(items: Sequence[Item]) -> list[list[int]]:
    """Connected components of 'same group' or 'same pixels', in canonical order (by content, so
    renaming or re-listing files does not change the split)."""
    parent = list(range(len(items)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first_seen: dict[object, int] = {}
    for i, item in enumerate(items):
        keys: list[object] = [("pixels", item.digest)]
        if item.group is not None:
            keys.append(("group", item.group))
        for key in keys:
            j = first_seen.setdefault(key, i)
            parent[find(i)] = find(j)
    components: dict[int, list[int]] = {}
    for i in range(len(items)):
        components.setdefault(find(i), []).append(i)

    def key(i: int) -> tuple[bytes, int, str, int]:
        return items[i].digest, items[i].label, items[i].id, i

    units = [sorted(c, key=key) for c in components.values()]
    return sorted(units, key=lambda u: key(u[0]))


def _majority(items: Sequence[Item], unit: list[int], n_classes: int) -> int:
    return int(np.bincount([items[i].label for i in unit], minlength=n_classes).argmax())


def _place(units: list[list[int]], shares: dict[str, float]) -> dict[str, list[list[int]]]:
    total = sum(len(u) for u in units)
    filled = dict.fromkeys(ORDER, 0)
    placed: dict[str, list[list[int]]] = {s: [] for s in ORDER}
    for unit in units:
        split = max(ORDER, key=lambda s: shares[s] * total - filled[s])  # first of ties: train, val, test
        placed[split].append(unit)
        filled[split] += len(unit)
    return placed


def _fill_empty(placed: dict[str, list[list[int]]]) -> None:
    """Give every split at least one unit of this class: train takes one from any split, val and
    test only from a split that has two or more."""
    for split in ORDER:
        if placed[split]:
            continue
        donor = max(ORDER, key=lambda s: len(placed[s]))
        if len(placed[donor]) < (1 if split == "train" else 2):
            continue
        smallest = min(range(len(placed[donor])), key=lambda k: len(placed[donor][k]))
        placed[split].append(placed[donor].pop(smallest))
