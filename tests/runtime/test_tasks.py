"""Multi-task bundles: the manifest's ``tasks`` section names each task's classes and output, and every
Prediction carries one result per task; a single-task bundle keeps today's API."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tlc_runtime
from tlc_runtime.results import softmax

pytest.importorskip("onnxruntime")

VIEWS = ("ap", "pa")


def _load(bundle):
    return tlc_runtime.load(bundle.path, backend="onnxruntime", device="cpu")


def test_each_task_gets_its_label_and_probabilities(make_bundle):
    bundle = make_bundle(view_classes=VIEWS)
    clf = _load(bundle)
    batch = bundle.golden_inputs[:6]
    preds = clf.predict_batch(list(batch))
    finding = softmax(bundle.reference_logits(batch))
    view = softmax(bundle.reference_task_logits(batch))
    for pred, f_row, v_row in zip(preds, finding, view, strict=True):
        assert list(pred.tasks) == ["finding", "view"]
        assert pred.tasks["finding"].label == pred.label == clf.class_names[int(f_row.argmax())]
        assert pred.tasks["view"].label == VIEWS[int(v_row.argmax())]
        assert list(pred.tasks["view"].probabilities) == list(VIEWS)
        np.testing.assert_allclose(list(pred.tasks["view"].probabilities.values()), v_row, atol=1e-4)
    assert clf.check().passed and set(clf.check().max_abs_output_delta) == {"task_view"}


def test_to_dict_shows_every_task_and_a_single_task_bundle_has_none(make_bundle):
    multi = _load(make_bundle("multi", view_classes=VIEWS)).predict_batch(list(make_bundle("x").golden_inputs[:2]))
    data = json.loads(json.dumps(multi[0].to_dict()))
    assert set(data["tasks"]) == {"finding", "view"} and set(data["tasks"]["view"]["probabilities"]) == set(VIEWS)
    single = _load(make_bundle("single")).predict(make_bundle("y").golden_inputs[0])
    assert single.tasks is None and "tasks" not in single.to_dict()


def _edit_tasks(bundle, change):
    path = bundle.path / "manifest.json"
    data = json.loads(path.read_text())
    change(data["tasks"])
    path.write_text(json.dumps(data))


@pytest.mark.parametrize(("change", "message"), [
    (lambda t: t.pop(), "fewer than two tasks"),
    (lambda t: t[1].update(output="task_side"), "not one of the extra outputs"),
    (lambda t: t[0].update(output="task_view"), "first task .* must read the 'logits' output"),
    (lambda t: t[0].update(class_names=["a", "b", "c"]), "first task .* class_names"),
    (lambda t: t[1].update(name="finding"), "task names are not unique"),
    (lambda t: t[1].update(class_names=["ap"]), "task 'view': class_names needs at least two"),
    (lambda t: t[1].update(name="bad name"), "letters, digits and underscores"),
])
def test_inconsistent_tasks_are_refused(make_bundle, change, message):
    bundle = make_bundle(view_classes=VIEWS)
    _edit_tasks(bundle, change)
    with pytest.raises(tlc_runtime.SchemaError, match=message):
        _load(bundle)


def test_a_task_output_of_the_wrong_width_is_refused(make_bundle):
    bundle = make_bundle(view_classes=VIEWS)
    _edit_tasks(bundle, lambda t: t[1].update(class_names=["ap", "pa", "lateral"]))
    clf = _load(bundle)
    with pytest.raises(tlc_runtime.InferenceError, match="task 'view' has 3 classes"):
        clf.predict(bundle.golden_inputs[0])
