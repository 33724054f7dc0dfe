"""The parts of a multi-output model judged on their own beside its main output (``logits``): each
extra task of a multi-task model (its ``task_<name>`` output) and each member of an ensemble (its
slice of ``member_logits``; a member may flip predictions the mean does not).

:func:`compare_outputs` puts their comparisons in ``Comparison.parts`` by scope; ``budget.judge``
judges every part against the same budget, so the INT8 fallback, the build's final check and
``tlc verify`` refuse a candidate when ANY part is over budget, and the verdict names the part.
A task's agreement and |Δprob| count every image; its balanced-accuracy drop counts the images
labelled for that task (-1: no label), and is not judged when no image is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from tlc_runtime.manifest import LOGITS, TaskSpec

from ..errors import ConfigError
from ..targets import Tolerance
from .budget import judge, undecidable
from .compare import Comparison, compare_logits

UNLABELLED = ("n", "agreement", "flip_rate", "max_abs_prob_delta", "mean_abs_prob_delta", "max_abs_logit_delta")


@dataclass(frozen=True)
class Parts:
    """What is judged beside ``logits``: the extra tasks (the first task is ``logits``) and the
    ensemble members (run id, arch), each member's slice ``num_classes`` wide."""

    tasks: tuple[TaskSpec, ...] = ()
    members: tuple[tuple[str, str], ...] = ()
    num_classes: int = 0

    @classmethod
    def of_run(cls, run: Any) -> Parts:
        """The parts of a ``RunInfo``: its tasks after the first, its members."""
        return cls(tasks=tuple(run.tasks or ())[1:], members=tuple((m.run_id, m.arch) for m in run.members),
                   num_classes=len(run.class_names))


def task_label_columns(dataset: Any, splits: Sequence[str], parts: Parts) -> dict[str, np.ndarray]:
    """Each extra task's labels over ``splits`` of a multi-task ``Dataset``, in the task's class order
    (-1: no label); a task the data do not label is absent (judged on agreement alone)."""
    by_name = {task.name: i for i, task in enumerate(dataset.tasks)}
    out = {}
    for spec in parts.tasks:
        if spec.name not in by_name:
            continue
        column = by_name[spec.name]
        names = dataset.tasks[column].class_names
        unknown = sorted(set(names) - set(spec.class_names))
        if unknown:
            raise ConfigError(f"data classes {unknown} of task {spec.name!r} are not among the model's "
                              f"{list(spec.class_names)}")
        remap = np.array([list(spec.class_names).index(c) for c in names] + [-1])  # -1 indexes the last
        out[spec.name] = np.concatenate([remap[dataset.splits[s].task_labels[:, column]] for s in splits])
    return out


def task_scope(name: str) -> str:
    return f"task {name}"


def member_scope(index: int, run_id: str, arch: str) -> str:
    return f"member {index + 1} ({run_id}, {arch})"


def compare_outputs(reference: Mapping[str, np.ndarray], candidate: Mapping[str, np.ndarray],
                    labels: np.ndarray | None, num_classes: int, parts: Parts = Parts(),
                    task_labels: Mapping[str, np.ndarray] | None = None, bootstrap: int = 1000) -> Comparison:
    """``logits`` compared as ``compare_logits`` does, with every part present in both outputs."""
    main = compare_logits(reference[LOGITS], candidate[LOGITS], labels, num_classes, bootstrap=bootstrap)
    found: dict[str, Comparison] = {}
    for task in parts.tasks:
        if task.output in reference and task.output in candidate:
            found[task_scope(task.name)] = compare_masked(reference[task.output], candidate[task.output],
                                                          (task_labels or {}).get(task.name), len(task.class_names))
    if parts.members:
        from ..models.ensemble import MEMBER_LOGITS  # torch: only for an ensemble being compared

        k = parts.num_classes
        if MEMBER_LOGITS in reference and MEMBER_LOGITS in candidate:
            for i, (run_id, arch) in enumerate(parts.members):
                cut = slice(i * k, (i + 1) * k)
                found[member_scope(i, run_id, arch)] = compare_logits(
                    reference[MEMBER_LOGITS][:, cut], candidate[MEMBER_LOGITS][:, cut], labels, k, bootstrap=0)
    return replace(main, parts=found) if found else main


def compare_masked(reference: np.ndarray, candidate: np.ndarray, labels: np.ndarray | None,
                   num_classes: int) -> Comparison:
    """Agreement and |Δprob| on every image; accuracies and their drop on the labelled ones (label ≥ 0)."""
    every = compare_logits(reference, candidate)
    mask = None if labels is None else np.asarray(labels).reshape(-1) >= 0
    if mask is None or not mask.any():
        return every
    labelled = compare_logits(reference[mask], candidate[mask], np.asarray(labels)[mask], num_classes, bootstrap=0)
    return replace(labelled, **{name: getattr(every, name) for name in UNLABELLED})


def parts_undecidable(parts: Parts, task_labels: Mapping[str, np.ndarray], n: int, tol: Tolerance) -> str | None:
    """Why a task's labelled images are too few to decide ``tol`` (None: every task's are enough)."""
    for task in parts.tasks:
        labels = np.asarray(task_labels.get(task.name, np.zeros(0, np.int64)))
        labelled = labels[labels >= 0]
        if not len(labelled):
            continue
        why = undecidable(labelled, len(task.class_names), tol, task.class_names)
        if why:
            return f"task {task.name} ({len(labelled)} of {n} images labelled): {why}"
    return None


def task_results(cmp: Comparison, tasks: tuple[TaskSpec, ...] | None, tol: Tolerance) -> dict[str, dict[str, Any]]:
    """Per task of a multi-task model (the first is ``cmp`` itself): its output, budget, what was
    measured and its verdict, for the manifest and reports; {} for a single-task model."""
    out = {}
    for i, task in enumerate(tasks or ()):
        part = replace(cmp, parts={}) if i == 0 else cmp.parts.get(task_scope(task.name))
        if part is not None:
            out[task.name] = {"output": task.output, "budget": tol.__dict__, **part_result(part, tol)}
    return out


def member_results(cmp: Comparison, parts: Parts, tol: Tolerance) -> list[dict[str, Any]]:
    """Per ensemble member: run id, arch, what was measured and its verdict; [] for no ensemble."""
    out = []
    for i, (run_id, arch) in enumerate(parts.members):
        part = cmp.parts.get(member_scope(i, run_id, arch))
        if part is not None:
            out.append({"run_id": run_id, "arch": arch, **part_result(part, tol)})
    return out


def part_result(part: Comparison, tol: Tolerance) -> dict[str, Any]:
    """What was measured on one part (``labelled``: images with a label for it) and its verdict."""
    verdict = judge(part, tol)
    return {"n": part.n, "agreement": part.agreement, "max_abs_prob_delta": part.max_abs_prob_delta,
            "labelled": sum(part.class_counts or ()),
            "balanced_accuracy_reference": part.balanced_accuracy_reference,
            "balanced_accuracy_candidate": part.balanced_accuracy_candidate,
            "balanced_accuracy_drop": part.balanced_accuracy_drop,
            "passed": verdict.passed, "checks": [c.describe() for c in verdict.checks]}


def parts_lines(cmp: Comparison) -> list[str]:
    """One line per part for logs: its agreement and, where labelled, its balanced-accuracy drop."""
    lines = []
    for scope, part in cmp.parts.items():
        drop = "" if part.balanced_accuracy_drop is None else \
            f", bal-acc drop {part.balanced_accuracy_drop * 100:+.2f} pts on {sum(part.class_counts or ())} labelled"
        lines.append(f"{scope}: agreement {part.agreement:.2%}, max |Δprob| {part.max_abs_prob_delta:.2g}{drop}")
    return lines
