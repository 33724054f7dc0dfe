"""``--weights``: where a model's initial weights come from, resolved and loaded offline.

- "none": random initialisation (scratch).
- a torchvision weights name ("ResNet18_Weights.IMAGENET1K_V1", "IMAGENET1K_V1" or "DEFAULT"):
  read from torchvision's cache, ``torch.hub.get_dir()/checkpoints/<file name of the URL>``
  (TORCH_HOME moves it). tlc never downloads: a missing file is a WeightsError naming the path.
- a local file (.safetensors preferred; .pth/.pt read with ``torch.load(weights_only=True)``):
  a torchvision state_dict or a tlc Classifier state_dict.
- a tlc run directory (has run.json): its best checkpoint's backbone (same-domain transfer).

Torchvision classifier keys (``fc.*`` / ``classifier.*``) are dropped: the head starts fresh. A tlc
head is kept only when it has the same classes (a run dir: same class names).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

import torch

from ..errors import WeightsError
from ..runs import RUN_INFO_NAME, RunInfo, read_run_info
from .classifier import Classifier
from .registry import get_arch

WeightsKind = Literal["none", "torchvision", "file", "run"]
TORCH_SUFFIXES = (".pth", ".pt", ".bin")


@dataclass(frozen=True)
class WeightsSource:
    """A resolved ``--weights`` value. ``path`` is the file to read (None for scratch)."""

    kind: WeightsKind
    spec: str
    path: Path | None = None
    run: RunInfo | None = None

    @property
    def pretrained(self) -> bool:
        return self.kind != "none"

    def describe(self) -> str:
        """Recorded as RunInfo.weights_init."""
        if self.kind == "none":
            return "none"
        if self.kind == "torchvision":
            return f"torchvision:{self.spec}"
        return f"{self.kind}:{self.path}"

    def apply(self, model: Classifier, class_names: tuple[str, ...] | None = None) -> None:
        """Load these weights into ``model`` (see module docstring for what is kept)."""
        if self.path is None:
            return
        state = read_state_dict(self.path)
        same_classes = self.run.class_names == tuple(class_names) if self.run and class_names else None
        load_state_dict_into(model, state, self.path, keep_head=same_classes)


def resolve_weights(spec: str, arch: str) -> WeightsSource:
    """Turn a ``--weights`` value into a :class:`WeightsSource` for ``arch``; WeightsError if unusable."""
    spec = spec.strip()
    if spec.lower() in ("none", "scratch", ""):
        return WeightsSource("none", "none")
    path = Path(spec).expanduser()
    if path.is_dir():
        return _run_source(path, arch)
    if path.is_file():
        return WeightsSource("file", spec, path)
    if path.suffix in (".safetensors", *TORCH_SUFFIXES) or os.sep in spec:
        raise WeightsError(f"weights file not found: {path}")
    return _torchvision_source(spec, arch)


def run_arch(spec: str) -> str | None:
    """The architecture of a run directory given as ``--weights`` (None when spec is not a run)."""
    path = Path(spec).expanduser()
    if path.is_dir() and (path / RUN_INFO_NAME).is_file():
        info = read_run_info(path)
        if info.is_ensemble:
            raise WeightsError(f"{path} is an ensemble run; start from one of its members "
                               f"({path / info.members[0].path}, ...)")
        return info.arch
    return None


def _run_source(path: Path, arch: str) -> WeightsSource:
    if not (path / RUN_INFO_NAME).is_file():
        raise WeightsError(f"{path} is a directory but not a tlc run (no {RUN_INFO_NAME}); "
                           "pass a run directory, a weights file or a torchvision weights name")
    info = read_run_info(path)
    if info.arch != arch:
        raise WeightsError(f"run {path} is a {info.arch}, not a {arch}; use --arch {info.arch} "
                           "(or leave --arch out to inherit it)")
    checkpoint = path / info.checkpoint
    if not checkpoint.is_file():
        raise WeightsError(f"run {path} has no checkpoint {info.checkpoint}")
    return WeightsSource("run", str(path), checkpoint, info)


def _torchvision_source(spec: str, arch: str) -> WeightsSource:
    from torchvision.models import get_model_weights, get_weight

    enum = get_model_weights(get_arch(arch).torchvision_name)
    valid = ", ".join(["DEFAULT", *(f"{enum.__name__}.{w.name}" for w in enum)])
    try:
        weights = get_weight(spec) if "." in spec else enum[spec]
    except (KeyError, ValueError, AttributeError):
        raise WeightsError(f"--weights {spec!r} is not a file, a run directory or a torchvision "
                           f"weights name for {arch} (valid: {valid})") from None
    if not isinstance(weights, enum):
        raise WeightsError(f"weights {spec} are not for {arch}; valid: {valid}")
    filename = os.path.basename(urlparse(weights.url).path)
    path = Path(torch.hub.get_dir()) / "checkpoints" / filename
    if not path.is_file():
        raise WeightsError(f"weights {enum.__name__}.{weights.name} are not cached and tlc works offline: "
                           f"download {weights.url} and put it at {path}")
    return WeightsSource("torchvision", f"{enum.__name__}.{weights.name}", path)


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a .safetensors or torch (.pth/.pt) state_dict file; never unpickles objects."""
    if path.suffix == ".safetensors":
        from .checkpoint import read_safetensors

        return read_safetensors(path)[0]
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError...
        raise WeightsError(f"{path}: not a readable state_dict ({type(exc).__name__}); "
                           "save weights with safetensors or torch.save(model.state_dict())") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{path}: expected a state_dict (name → tensor), got {type(state).__name__}")
    return state


def load_state_dict_into(model: Classifier, state: dict[str, torch.Tensor], where: Path,
                         keep_head: bool | None = None) -> None:
    """Load a torchvision or tlc state_dict into ``model``'s backbone (and head when it fits).

    ``keep_head``: None → keep a tlc head when its shape matches the model's.
    """
    is_tlc = any(k.startswith("backbone.") for k in state)
    if is_tlc:
        backbone = {k[len("backbone."):]: v for k, v in state.items() if k.startswith("backbone.")}
        head = {k[len("head."):]: v for k, v in state.items() if k.startswith("head.")}
        adapter = {k[len("adapter."):]: v for k, v in state.items() if k.startswith("adapter.")}
        other = [k for k in state if not k.startswith(("backbone.", "head.", "adapter."))]
    else:
        prefix = model.spec.head_prefix + "."
        backbone = {k: v for k, v in state.items() if not k.startswith(prefix)}
        head, adapter, other = {}, {}, []
    missing, unexpected = model.load_backbone_state(backbone)
    unexpected = other + unexpected
    if missing or unexpected:
        detail = "; ".join(part for part in (
            f"missing {', '.join(missing[:4])}" + (" ..." if len(missing) > 4 else "") if missing else "",
            f"unexpected {', '.join(unexpected[:4])}" + (" ..." if len(unexpected) > 4 else "") if unexpected else "",
        ) if part)
        raise WeightsError(f"{where} does not fit {model.arch}: {detail} (weights for another architecture?)")
    own_head = model.head.state_dict()
    fits = head.keys() == own_head.keys() and all(head[k].shape == own_head[k].shape for k in head)
    if head and fits and keep_head is not False:
        model.head.load_state_dict(head)
    if adapter and model.adapter is not None:  # a parent run's learned adapter carries over
        model.adapter.load_state_dict(adapter)
