"""Many files at once: directories walked for image files, images prepared on worker threads, one
result per file in order, unreadable files as results with an error instead of an exception."""

from __future__ import annotations

import numpy as np
import pytest
from tlc_runtime.errors import InputError
from tlc_runtime.files import find_images, predict_files


def _write(image_files, n: int, prefix: str = "img") -> list:
    rng = np.random.default_rng(1)
    return [image_files.npy(f"{prefix}{i:02d}.npy", rng.integers(0, 256, (8 + i % 3, 8), np.uint8))
            for i in range(n)]


def test_find_images_walks_directories_for_readable_suffixes(image_files, tmp_path):
    (tmp_path / "sub").mkdir()
    inner = image_files.npy("sub/b.npy", np.zeros((8, 8), np.uint8))
    outer = image_files.npy("a.npy", np.zeros((8, 8), np.uint8))
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "sub" / "c.PNG").write_bytes(b"")
    given = tmp_path / "given.xyz"
    found = find_images([tmp_path, given])
    assert found == [outer, tmp_path / "sub" / "b.npy", tmp_path / "sub" / "c.PNG", given]
    assert inner in found


def test_find_images_refuses_a_directory_without_images(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"empty: no image files"):
        find_images([tmp_path / "empty"])


@pytest.mark.parametrize(("batch_size", "workers"), [(1, 1), (3, 2), (64, 4)])
def test_results_match_predict_batch_in_order(grey_clf, image_files, batch_size, workers):
    paths = _write(image_files, 10)
    results = list(predict_files(grey_clf, paths, batch_size=batch_size, workers=workers))
    assert [r.path for r in results] == paths
    expected = grey_clf.predict_batch(paths)
    for result, want in zip(results, expected, strict=True):
        assert result.error is None and result.prediction.label == want.label
        np.testing.assert_allclose(list(result.prediction.probabilities.values()),
                                   list(want.probabilities.values()), rtol=0, atol=1e-6)


def test_unreadable_files_become_error_results(grey_clf, image_files, hostile_file):
    good = _write(image_files, 3)
    paths = [good[0], hostile_file, good[1], image_files.root / "missing.png", good[2]]
    results = list(predict_files(grey_clf, paths, batch_size=2, workers=2))
    assert [r.path for r in results] == paths
    assert [r.error is None for r in results] == [True, False, True, False, True]
    assert hostile_file.name in results[1].error and "not found" in results[3].error
    assert results[1].prediction is None
    assert results[2].prediction.label == grey_clf.predict(good[1]).label


def test_images_are_prepared_on_worker_threads(grey_clf, image_files, monkeypatch):
    import threading

    names = []
    prepare = grey_clf.prepare

    def recording(path):
        names.append(threading.current_thread().name)
        return prepare(path)

    monkeypatch.setattr(grey_clf, "prepare", recording)
    assert len(list(predict_files(grey_clf, _write(image_files, 6), batch_size=2, workers=3))) == 6
    assert len(names) == 6 and all(name.startswith("tlc-prepare") for name in names)
