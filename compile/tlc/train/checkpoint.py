"""Run-directory checkpoints (safetensors only) and loading a trained run back.

RUN_DIR/model.safetensors   best Classifier state_dict (metadata: arch, num_classes)
RUN_DIR/last.safetensors    latest epoch's Classifier state_dict
RUN_DIR/last_optim.safetensors + last_state.json   optimiser tensors and the loop state, for resume
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from ..errors import ConfigError, WeightsError
from ..models.classifier import Classifier
from ..models.deploy import DeployModel
from ..models.registry import create_model
from ..runs import BEST_CHECKPOINT, RunInfo, read_run_info

LAST_CHECKPOINT = "last.safetensors"
LAST_OPTIM = "last_optim.safetensors"
LAST_STATE = "last_state.json"
FORMAT_TAG = "tlc-classifier"


def save_model(model: Classifier, path: Path) -> None:
    """Classifier state_dict as safetensors, written atomically, tagged with arch and class count."""
    from safetensors.torch import save_file

    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta = {"format": FORMAT_TAG, "arch": model.arch, "num_classes": str(model.num_classes)}
    tmp = path.with_name(path.name + ".tmp")
    save_file(state, str(tmp), metadata=meta)
    tmp.replace(path)


def read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors, metadata) of a safetensors file; WeightsError when it cannot be read."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is no mapping)
            return tensors, dict(f.metadata() or {})
    except Exception as exc:  # safetensors raises its own error types (and OSError)
        raise WeightsError(f"{path}: not a readable safetensors file ({exc})") from None


def load_model_file(path: Path, arch: str, num_classes: int) -> Classifier:
    """A Classifier restored from a checkpoint written by :func:`save_model`."""
    state, _ = read_safetensors(path)
    model = create_model(arch, num_classes)
    result = model.load_state_dict(state, strict=False)
    bad = [k for k in result.missing_keys if not k.endswith("num_batches_tracked")] + result.unexpected_keys
    if bad:
        raise WeightsError(f"{path} does not match {arch} with {num_classes} classes "
                           f"(keys: {', '.join(bad[:5])}); was the run dir edited?")
    return model


def save_optimizer(optimizer: torch.optim.Optimizer, path: Path) -> list[dict[str, Any]]:
    """Optimiser tensors to safetensors; returns the JSON-ready param_groups (store them in state)."""
    from safetensors.torch import save_file

    sd = optimizer.state_dict()
    tensors = {f"{idx}.{name}": value.detach().cpu().contiguous()
               for idx, entry in sd["state"].items() for name, value in entry.items()
               if isinstance(value, torch.Tensor)}
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp))
    tmp.replace(path)
    return sd["param_groups"]


def load_optimizer(optimizer: torch.optim.Optimizer, path: Path, param_groups: list[dict[str, Any]]) -> None:
    tensors, _ = read_safetensors(path)
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = value
    try:
        optimizer.load_state_dict({"state": state, "param_groups": param_groups})
    except (ValueError, KeyError) as exc:
        raise ConfigError(f"{path}: optimiser state does not fit this model ({exc}); "
                          "train again without --resume") from None


def save_last(run_dir: Path, model: Classifier, optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """Latest epoch: weights, optimiser and ``state`` (epoch, history, best...) for resume."""
    save_model(model, run_dir / LAST_CHECKPOINT)
    groups = save_optimizer(optimizer, run_dir / LAST_OPTIM)
    tmp = run_dir / (LAST_STATE + ".tmp")
    tmp.write_text(json.dumps({**state, "optimizer_param_groups": groups}, indent=1), encoding="utf-8")
    tmp.replace(run_dir / LAST_STATE)


def read_last_state(run_dir: Path) -> dict[str, Any]:
    path = run_dir / LAST_STATE
    if not (path.is_file() and (run_dir / LAST_CHECKPOINT).is_file()):
        raise ConfigError(f"cannot resume: {run_dir} has no {LAST_STATE} and {LAST_CHECKPOINT} "
                          "(train without --resume first)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc}); train again without --resume") from None


def load_run_model(run_dir: str | Path) -> tuple[Classifier, RunInfo]:
    """The run's best checkpoint as a Classifier (eval mode, CPU) and its RunInfo."""
    run_dir = Path(run_dir)
    info = read_run_info(run_dir)
    path = run_dir / info.checkpoint
    if not path.is_file():
        raise ConfigError(f"{run_dir} has no checkpoint {info.checkpoint} (the run never finished an epoch)")
    model = load_model_file(path, info.arch, len(info.class_names))
    return model.eval(), info


def load_deploy_model(run_dir: str | Path) -> tuple[DeployModel, RunInfo]:
    """The run's best checkpoint wrapped with its preprocessing: raw NHWC pixels in, logits out."""
    model, info = load_run_model(run_dir)
    return DeployModel(model, info.preprocessing, info.input_channels).eval(), info


__all__ = ["BEST_CHECKPOINT", "LAST_CHECKPOINT", "load_deploy_model", "load_run_model", "save_model"]
