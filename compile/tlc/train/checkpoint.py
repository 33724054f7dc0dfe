"""Training's resume state in the run directory (safetensors only).

RUN_DIR/last.safetensors    latest epoch's Classifier state_dict
RUN_DIR/last_optim.safetensors + last_state.json   optimiser tensors and the loop state, for resume

Model files themselves (save/load, a run's best checkpoint) are :mod:`tlc.models.checkpoint`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from ..errors import ConfigError
from ..models.checkpoint import read_safetensors, save_model
from ..models.classifier import Classifier

LAST_CHECKPOINT = "last.safetensors"
LAST_OPTIM = "last_optim.safetensors"
LAST_STATE = "last_state.json"


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
