"""Automatic splits: deterministic per seed, stratified, every class on every side, copies together."""

from __future__ import annotations

import numpy as np
import pytest
from tlc.data import load_dataset
from tlc.data.images import pixel_digest
from tlc.data.records import Item
from tlc.data.splits import auto_split


def _membership(ds) -> dict[str, tuple[str, ...]]:
    return {name: tuple(sorted(s.ids)) for name, s in ds.splits.items()}


def test_same_seed_same_split_other_seed_other_split(make_folder):
    root = make_folder({"a": 20, "b": 14})
    first = load_dataset(root, seed=7)
    assert _membership(load_dataset(root, seed=7)) == _membership(first)
    assert first.content_hash == load_dataset(root, seed=7).content_hash
    other = load_dataset(root, seed=8)
    assert _membership(other) != _membership(first)
    assert other.content_hash != first.content_hash  # the hash covers split membership


def test_fractions_and_stratification(make_folder):
    ds = load_dataset(make_folder({"a": 60, "b": 40}), val_fraction=0.2, test_fraction=0.1)
    counts = {name: np.bincount(s.labels, minlength=2).tolist() for name, s in ds.splits.items()}
    assert counts == {"train": [42, 28], "val": [12, 8], "test": [6, 4]}


@pytest.mark.parametrize("seed", range(4))
def test_tiny_classes_still_reach_every_split(make_folder, seed):
    ds = load_dataset(make_folder({"a": 3, "b": 9, "c": 4}), seed=seed)
    for name, split in ds.splits.items():
        assert set(split.labels.tolist()) == {0, 1, 2}, name


@pytest.mark.parametrize("seed", range(4))
def test_identical_images_stay_on_one_side(make_folder, write_image, rand_image, seed):
    root = make_folder({"a": 10, "b": 10})
    for k in range(4):
        write_image(root / "a" / f"copy_{k}.png", rand_image(424242))
    ds = load_dataset(root, seed=seed)
    sides = {name for name, s in ds.splits.items() for i in s.ids if "copy_" in i}
    assert len(sides) == 1
    assert ds.duplicates == {}


def _items(n: int) -> list[Item]:
    rng = np.random.default_rng(0)
    items = []
    for i in range(n):
        image = rng.integers(0, 256, (3, 3)).astype(np.uint8)
        items.append(Item(f"f{i:03d}", image, i % 2, None, f"g{i // 3}", pixel_digest(image)))
    return items


def test_split_ignores_listing_order():
    items = _items(60)
    forward = dict(zip((it.id for it in items), auto_split(items, 2, seed=1, val_fraction=0.2, test_fraction=0.2), strict=True))
    shuffled = [items[i] for i in np.random.default_rng(5).permutation(len(items))]
    backward = dict(zip((it.id for it in shuffled),
                        auto_split(shuffled, 2, seed=1, val_fraction=0.2, test_fraction=0.2), strict=True))
    assert forward == backward
    by_group: dict[str, set[str]] = {}
    for it in items:
        by_group.setdefault(it.group, set()).add(forward[it.id])
    assert all(len(sides) == 1 for sides in by_group.values())


def test_train_gets_every_class_even_with_large_val_and_test(make_folder):
    ds = load_dataset(make_folder({"a": 2, "b": 8}), val_fraction=0.45, test_fraction=0.45)
    assert set(ds.splits["train"].labels.tolist()) == {0, 1}
