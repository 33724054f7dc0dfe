"""One backbone, one head per task, each head attending over the shared spatial feature map.

``MultiTaskClassifier.forward`` returns the deploy contract's dict (``tlc.models.outputs``): the
primary task's logits as ``logits``, then ``task_<name>`` (N×K_t logits) for every other task.

Task attention (``--task-attention``):

- "static": each task owns a learned query vector q_t (C); attention weights over the H×W
  positions are ``softmax(q_t · f_hw / sqrt(C))`` and the task reads the weighted sum of the f_hw.
- "dynamic": the query is generated from the pooled features by the task's own linear layer.
- "none": every task reads the globally average-pooled features.

Queries start at zero, so every task starts from average pooling and learns where to look.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Literal

import torch
from tlc_runtime.manifest import LOGITS, TASK_OUTPUT_PREFIX
from torch import nn

from ..errors import ConfigError
from .classifier import Classifier, make_head

if TYPE_CHECKING:
    from .registry import ArchSpec

TaskAttention = Literal["static", "dynamic", "none"]
TASK_ATTENTIONS = ("static", "dynamic", "none")


class TaskHead(nn.Module):
    """One task's attention over the spatial map (N×C×H×W) and its classification head."""

    def __init__(self, num_features: int, num_classes: int, attention: TaskAttention, dropout: float) -> None:
        super().__init__()
        self.attention = attention
        if attention == "static":
            self.query = nn.Parameter(torch.zeros(num_features))
        elif attention == "dynamic":
            self.query = nn.Linear(num_features, num_features)
            nn.init.zeros_(self.query.weight)
            nn.init.zeros_(self.query.bias)
        self.scale = 1.0 / math.sqrt(num_features)
        self.head = make_head(num_features, num_classes, dropout)

    def attend(self, spatial: torch.Tensor, pooled: torch.Tensor) -> torch.Tensor:
        """The task's N×C feature vector: attention-weighted positions, or ``pooled`` for "none"."""
        if self.attention == "none":
            return pooled
        query = self.query.expand_as(pooled) if self.attention == "static" else self.query(pooled)
        scores = (spatial * query[:, :, None, None]).sum(dim=1, keepdim=True) * self.scale  # N×1×H×W
        exp = (scores - scores.amax(dim=(2, 3), keepdim=True)).exp()
        weights = exp / exp.sum(dim=(2, 3), keepdim=True)  # softmax over the H×W positions
        # keepdim + flatten, as torchvision pools: the exporter then knows the channel count
        return (spatial * weights).sum(dim=(2, 3), keepdim=True).flatten(1)

    def forward(self, spatial: torch.Tensor, pooled: torch.Tensor) -> torch.Tensor:
        return self.head(self.attend(spatial, pooled))


class MultiTaskClassifier(Classifier):
    """A Classifier whose backbone feeds one :class:`TaskHead` per task (the first is the primary task).

    State dict keys: ``backbone.<torchvision key>`` (as a single-task Classifier, so backbone weights
    transfer both ways) and ``heads.<task>.*``. ``num_classes`` is the primary task's class count.
    """

    def __init__(self, spec: ArchSpec, backbone: nn.Module, num_features: int,
                 tasks: Sequence[tuple[str, int]], attention: TaskAttention) -> None:
        nn.Module.__init__(self)
        check_tasks(tasks, attention)
        self.arch, self.spec, self.num_features = spec.name, spec, num_features
        self.tasks = tuple((name, int(k)) for name, k in tasks)
        self.num_classes = self.tasks[0][1]
        self.attention = attention
        self.backbone = backbone
        self.channel_adapter, self.adapter, self.mc_dropout = "replicate", None, None  # neither with tasks yet
        self.heads = nn.ModuleDict({name: TaskHead(num_features, k, attention, spec.dropout) for name, k in tasks})

    @property
    def head(self) -> nn.Module:
        """The primary task's head (``head.fc`` is its linear layer, as in a Classifier)."""
        return self.heads[self.tasks[0][0]].head

    def forward_spatial(self, x: torch.Tensor) -> torch.Tensor:
        """The backbone's last feature map (N×C×H×W): every stage in order, before the global pooling."""
        for stage in self.backbone_stages():
            x = stage(x)
        return x

    def forward_tasks(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every task's logits by task name (primary first)."""
        spatial = self.forward_spatial(x)
        pooled = spatial.mean(dim=(2, 3), keepdim=True).flatten(1)
        return {name: self.heads[name](spatial, pooled) for name, _ in self.tasks}

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return task_outputs(self.forward_tasks(x))

    def reset_classifier(self, num_classes: int) -> None:
        raise ConfigError("a multi-task model's heads are set by its tasks; build a new model instead")

    def head_parameters(self) -> Iterator[nn.Parameter]:
        return self.heads.parameters()


def task_outputs(by_task: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Deploy outputs from per-task logits: the first task's as ``logits``, the others as ``task_<name>``."""
    (_, primary), *others = by_task.items()
    return {LOGITS: primary, **{TASK_OUTPUT_PREFIX + name: logits for name, logits in others}}


def check_tasks(tasks: Sequence[tuple[str, int]], attention: str) -> None:
    """At least two uniquely named tasks (letters, digits, underscores), each of at least two classes."""
    names = [name for name, _ in tasks]
    if len(tasks) < 2:
        raise ConfigError(f"a multi-task model needs at least two tasks, got {names}")
    if len(set(names)) != len(names):
        raise ConfigError(f"task names must be unique, got {names}")
    bad = [n for n in names if not n or not n.replace("_", "").isalnum()]
    if bad:
        raise ConfigError(f"task names must be letters, digits and underscores: {bad}")
    few = [name for name, k in tasks if k < 2]
    if few:
        raise ConfigError(f"task(s) {few} have fewer than two classes")
    if attention not in TASK_ATTENTIONS:
        raise ConfigError(f"task attention must be one of {', '.join(TASK_ATTENTIONS)}, got {attention!r}")


def create_multitask_model(arch: str, tasks: Sequence[tuple[str, int]],
                           attention: TaskAttention = "static") -> MultiTaskClassifier:
    """A :class:`MultiTaskClassifier` for ``arch`` with one head per (task name, class count), random init."""
    from .registry import get_arch

    spec = get_arch(arch)
    backbone, num_features = spec.build_backbone()
    return MultiTaskClassifier(spec, backbone, num_features, tasks, attention)
