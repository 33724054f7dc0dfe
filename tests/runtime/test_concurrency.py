"""One loaded model serves many threads at once with results identical to sequential calls."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import tlc_runtime

pytest.importorskip("onnxruntime")


def test_threads_match_sequential_results(grey_bundle):
    clf = tlc_runtime.load(grey_bundle.path, options={"intra_op_num_threads": 1})
    rng = np.random.default_rng(7)
    images = [rng.integers(0, 256, (int(rng.integers(6, 20)), int(rng.integers(6, 20))), dtype=np.uint8)
              for _ in range(40)]
    sequential = [clf.predict(img) for img in images]
    batches = [images[i:i + 4] for i in range(0, len(images), 4)]
    sequential_batches = [clf.predict_batch(b) for b in batches]

    def worker(seed: int) -> tuple[list[tuple[int, tlc_runtime.Prediction]], list[tuple[int, list]]]:
        order = np.random.default_rng(seed).permutation(len(images))
        singles = [(int(i), clf.predict(images[i])) for i in order]
        batched = [(j, clf.predict_batch(batches[j])) for j in np.random.default_rng(seed).permutation(len(batches))]
        return singles, batched

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(worker, range(8)))
    for singles, batched in results:
        assert len(singles) == len(images)
        for i, pred in singles:
            assert pred == sequential[i]
        for j, preds in batched:
            assert preds == sequential_batches[j]
