"""Tasks and ensemble members are judged against the budget beside the main output, each on its own,
and a verdict over budget names the part that broke it (build, INT8 fallback and ``tlc verify`` alike)."""

from __future__ import annotations

import numpy as np
from tlc.quantize.fallback import make_step
from tlc.targets import Tolerance
from tlc.verify.budget import judge
from tlc.verify.parts import Parts, compare_outputs, parts_undecidable, task_results
from tlc_runtime.manifest import TaskSpec

EXACT = Tolerance(min_agreement=1.0, max_balanced_accuracy_drop=0.0, max_abs_prob_delta=None, confidence=0)
TASKS = (TaskSpec("finding", ("a", "b"), "logits"), TaskSpec("view", ("front", "side", "top"), "task_view"))


def _outputs(rng, n=40):
    return {"logits": rng.normal(size=(n, 2)).astype(np.float32),
            "task_view": rng.normal(size=(n, 3)).astype(np.float32)}


def test_a_task_over_budget_fails_the_verdict_and_is_named():
    rng = np.random.default_rng(0)
    reference = _outputs(rng)
    candidate = {**reference, "task_view": reference["task_view"][:, ::-1].copy()}  # the view head flips
    labels = reference["logits"].argmax(1)
    cmp = compare_outputs(reference, candidate, labels, 2, Parts(tasks=TASKS[1:]), bootstrap=0)
    verdict = judge(cmp, EXACT)
    assert cmp.agreement == 1.0 and not verdict.passed
    assert verdict.problems() and all(p.startswith("task view: ") for p in verdict.problems())
    assert [c.case for c in verdict.checks if not c.passed] == ["task view: top1_agreement"]
    step = make_step((), cmp, EXACT)  # the INT8 fallback treats the candidate as over budget
    assert not step.passed and step.violations[0].startswith("task view: ")
    results = task_results(cmp, TASKS, EXACT)
    assert results["finding"]["passed"] and not results["view"]["passed"]
    assert results["view"]["budget"]["min_agreement"] == 1.0 and results["view"]["output"] == "task_view"


def test_a_task_drop_counts_only_its_labelled_images():
    rng = np.random.default_rng(1)
    reference = _outputs(rng)
    view = reference["task_view"].argmax(1)
    task_labels = np.where(np.arange(40) % 4 == 0, -1, view)  # every fourth image has no view label
    candidate = {**reference, "task_view": reference["task_view"].copy()}
    flipped = np.flatnonzero(task_labels == -1)[:3]  # flips on unlabelled images only
    candidate["task_view"][flipped] = reference["task_view"][flipped][:, ::-1]
    cmp = compare_outputs(reference, candidate, reference["logits"].argmax(1), 2, Parts(tasks=TASKS[1:]),
                          {"view": task_labels}, bootstrap=0)
    part = cmp.parts["task view"]
    assert part.n == 40 and part.agreement < 1.0          # agreement counts every image
    assert sum(part.class_counts) == 30                    # the drop only the labelled ones
    assert part.balanced_accuracy_drop == 0.0
    unlabelled = compare_outputs(reference, candidate, None, 2, Parts(tasks=TASKS[1:]), bootstrap=0)
    assert unlabelled.parts["task view"].balanced_accuracy_drop is None  # no labels: not judged


def test_each_member_slice_is_judged():
    pytest = __import__("pytest")
    pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    members = rng.normal(size=(30, 4)).astype(np.float32)  # two members of two classes
    mean = members.reshape(30, 2, 2).mean(1)
    reference = {"logits": mean, "member_logits": members}
    candidate = {"logits": mean, "member_logits": np.concatenate([members[:, :2], members[:, 3:1:-1]], 1)}
    parts = Parts(members=(("r1", "resnet18"), ("r2", "mobilenet_v3_small")), num_classes=2)
    cmp = compare_outputs(reference, candidate, mean.argmax(1), 2, parts, bootstrap=0)
    verdict = judge(cmp, EXACT)
    assert list(cmp.parts) == ["member 1 (r1, resnet18)", "member 2 (r2, mobilenet_v3_small)"]
    assert not verdict.passed
    assert {p.split(":")[0] for p in verdict.problems()} == {"member 2 (r2, mobilenet_v3_small)"}


def test_a_task_with_too_few_labels_for_the_budget_is_refused():
    tol = Tolerance(min_agreement=0.0, max_balanced_accuracy_drop=0.01, max_abs_prob_delta=None, confidence=0.95)
    labels = np.array([0, 1, 2, -1, -1] * 4)
    why = parts_undecidable(Parts(tasks=TASKS[1:]), {"view": labels}, 20, tol)
    assert why.startswith("task view (12 of 20 images labelled): ")
