"""load_digits: sklearn's bundled digits as a small real dataset with few-label training splits."""

from __future__ import annotations

import numpy as np
import pytest
from tlc.data import load_digits
from tlc.errors import ConfigError

sklearn_datasets = pytest.importorskip("sklearn.datasets")


def test_digits_subset_split_and_pixels():
    ds = load_digits([3, 8], seed=0)
    bunch = sklearn_datasets.load_digits()
    wanted = np.isin(bunch.target, [3, 8])
    assert ds.kind == "digits" and ds.class_names == ("digit-3", "digit-8")
    sizes = {k: len(v) for k, v in ds.splits.items()}
    assert sum(sizes.values()) == int(wanted.sum())
    assert sizes["train"] == pytest.approx(0.6 * wanted.sum(), abs=3)
    assert (ds.channels, ds.bit_depth, ds.value_range) == (1, 8, (0.0, 255.0))
    for split in ds.splits.values():
        assert set(split.labels.tolist()) == {0, 1}
        for image_id, label, image in zip(split.ids, split.labels, split.images, strict=True):
            n = int(image_id.split(":")[1])
            assert bunch.target[n] == (3, 8)[label]
            assert image.dtype == np.uint8 and image.shape == (8, 8)
            np.testing.assert_array_equal(image, np.rint(bunch.images[n] * 255 / 16))


def test_per_class_train_keeps_val_and_test():
    full = load_digits([1, 7, 4], seed=1)
    few = load_digits([1, 7, 4], per_class_train=5, seed=1)
    assert few.class_names == ("digit-1", "digit-7", "digit-4")
    assert np.bincount(few.splits["train"].labels).tolist() == [5, 5, 5]
    assert set(few.splits["train"].ids) <= set(full.splits["train"].ids)
    for name in ("val", "test"):
        assert few.splits[name].ids == full.splits[name].ids
    assert few.content_hash != full.content_hash
    assert load_digits([1, 7, 4], per_class_train=5, seed=1).splits["train"].ids == few.splits["train"].ids
    assert load_digits([1, 7, 4], per_class_train=5, seed=2).splits["train"].ids != few.splits["train"].ids


@pytest.mark.parametrize("classes", [[3], [3, 3], [2, 11], ["a", "b"]])
def test_bad_classes(classes):
    with pytest.raises(ConfigError, match="at least 2 distinct digits"):
        load_digits(classes)


def test_bad_per_class_train():
    with pytest.raises(ConfigError, match="per_class_train"):
        load_digits([0, 1], per_class_train=0)


def test_cluttered_digits_keep_each_digit_on_a_larger_canvas():
    import numpy as np
    from sklearn.datasets import load_digits as sklearn_digits
    from tlc.data.digits import cluttered

    pixels = np.rint(sklearn_digits().images[:50] * 255 / 16).astype(np.uint8)
    a = cluttered(pixels, np.random.default_rng(0))
    b = cluttered(pixels, np.random.default_rng(0))
    assert a.shape == (50, 16, 16) and np.array_equal(a, b)
    # every digit's brightest pixel survives (fragments are dim and combined by maximum)
    assert (a.reshape(50, -1).max(1) >= pixels.reshape(50, -1).max(1)).all()
    ds = load_digits((3, 4), clutter=True, per_class_train=5)
    assert ds.splits["train"].images[0].shape == (16, 16) and len(ds.splits["train"]) == 10
    assert ds.content_hash != load_digits((3, 4), per_class_train=5).content_hash
