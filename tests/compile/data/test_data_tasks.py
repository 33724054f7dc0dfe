"""Multi-task CSV manifests: one label column per task, the first (primary) required, others may be empty."""

from __future__ import annotations

import pytest
from tlc.data import load_dataset
from tlc.errors import DataError

TASKS = ("finding", "view", "quality")


def _write(tmp_path, write_image, rand_image, rows, header="path,finding,view,quality,split"):
    lines = [header]
    for n, row in enumerate(rows):
        write_image(tmp_path / f"{n}.png", rand_image(n))
        lines.append(",".join([f"{n}.png", *row]))
    path = tmp_path / "tasks.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


ROWS = [("normal", "ap", "good", "train"), ("pneumonia", "pa", "", "train"), ("normal", "", "poor", "train"),
        ("pneumonia", "ap", "good", "val"), ("normal", "pa", "poor", "test")]


def test_every_task_gets_its_classes_and_missing_cells_are_minus_one(tmp_path, write_image, rand_image):
    ds = load_dataset(_write(tmp_path, write_image, rand_image, ROWS), tasks=TASKS)
    assert [(t.name, t.class_names) for t in ds.tasks] == [
        ("finding", ("normal", "pneumonia")), ("view", ("ap", "pa")), ("quality", ("good", "poor"))]
    assert ds.class_names == ds.tasks[0].class_names
    train = ds.splits["train"]
    assert train.task_labels.tolist() == [[0, 0, 0], [1, 1, -1], [0, -1, 1]]
    assert train.task_labels[:, 0].tolist() == train.labels.tolist()
    assert ds.splits["test"].task_labels.tolist() == [[0, 1, 1]]
    assert ds.summary()["tasks"]["view"] == ["ap", "pa"]


def test_a_single_task_load_of_the_same_file_has_no_tasks(tmp_path, write_image, rand_image):
    rows = [(f, s) for f, _, _, s in ROWS]
    ds = load_dataset(_write(tmp_path, write_image, rand_image, rows, "path,label,split"))
    assert ds.tasks == () and ds.splits["train"].task_labels is None


def test_a_changed_secondary_label_changes_the_content_hash(tmp_path, write_image, rand_image):
    first = load_dataset(_write(tmp_path, write_image, rand_image, ROWS), tasks=TASKS).content_hash
    changed = [ROWS[0][:1] + ("pa",) + ROWS[0][2:], *ROWS[1:]]
    assert load_dataset(_write(tmp_path, write_image, rand_image, changed), tasks=TASKS).content_hash != first


@pytest.mark.parametrize(("rows", "tasks", "message"), [
    ([("", "ap", "good", "train"), *ROWS[1:]], TASKS, r"tasks.csv:2: empty 'finding' value"),
    (ROWS, ("finding", "side"), "missing column.*side"),
    (ROWS, ("finding",), "at least two distinct label columns"),
    (ROWS, ("finding", "split"), "at least two distinct label columns"),
    ([r[:2] + ("good",) + r[3:] for r in ROWS], TASKS, r"quality \(1\) hold fewer than two classes"),
])
def test_bad_task_manifests_are_data_errors(tmp_path, write_image, rand_image, rows, tasks, message):
    with pytest.raises(DataError, match=message):
        load_dataset(_write(tmp_path, write_image, rand_image, rows), tasks=tasks)


def test_tasks_need_a_csv(tmp_path):
    with pytest.raises(DataError, match="several tasks need a CSV manifest"):
        load_dataset(tmp_path, tasks=TASKS)
