"""Batched augmentation: seeded, range-preserving, flips only when asked."""

from __future__ import annotations

import torch
from tlc.train.augment import AugmentConfig, augment_batch


def _batch() -> torch.Tensor:
    x = torch.zeros(6, 1, 16, 16)
    x[:, :, 4:12, 2:6] = 0.8  # a bar on the left side
    return x


def test_same_generator_seed_gives_the_same_batch_and_values_stay_in_range():
    x = _batch()
    a = augment_batch(x, torch.Generator().manual_seed(3))
    b = augment_batch(x, torch.Generator().manual_seed(3))
    c = augment_batch(x, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == x.shape and float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    assert not torch.equal(a, x)


def test_identity_settings_leave_the_image_unchanged():
    x = _batch()
    cfg = AugmentConfig(min_scale=1.0, max_shift=0.0, brightness=0.0, contrast=0.0)
    torch.testing.assert_close(augment_batch(x, torch.Generator().manual_seed(0), cfg), x, atol=1e-5, rtol=0)


def test_horizontal_flip_is_off_by_default():
    x = _batch()
    no_jitter = dict(min_scale=1.0, max_shift=0.0, brightness=0.0, contrast=0.0)
    kept = augment_batch(x, torch.Generator().manual_seed(0), AugmentConfig(**no_jitter))
    assert (kept[..., :8].sum((1, 2, 3)) > kept[..., 8:].sum((1, 2, 3))).all()
    flipped = augment_batch(x, torch.Generator().manual_seed(0), AugmentConfig(hflip=True, **no_jitter))
    right_heavy = flipped[..., 8:].sum((1, 2, 3)) > flipped[..., :8].sum((1, 2, 3))
    assert right_heavy.any() and not right_heavy.all()
    torch.testing.assert_close(flipped[right_heavy], x[right_heavy].flip(-1), atol=1e-5, rtol=0)
