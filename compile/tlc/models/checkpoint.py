"""Model files (safetensors only): saving a Classifier and loading a trained run back.

RUN_DIR/model.safetensors   best Classifier state_dict (metadata: arch, num_classes)

Training's resume state (optimiser, loop state) lives in :mod:`tlc.train.checkpoint`; this module
needs nothing from training, so models, export and the bundler load runs without importing it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ..errors import ConfigError, WeightsError
from ..runs import McDropout, RunInfo, read_run_info
from .classifier import Classifier
from .deploy import DeployModel

if TYPE_CHECKING:
    from .ensemble import EnsembleModel
from .registry import create_model

FORMAT_TAG = "tlc-classifier"

def save_model(model: Classifier, path: Path) -> None:
    """Classifier state_dict as safetensors, written atomically, tagged with arch and class count."""
    from safetensors.torch import save_file

    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta = {"format": FORMAT_TAG, "arch": model.arch, "num_classes": str(model.num_classes),
            "channel_adapter": model.channel_adapter}
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

def load_model_file(path: Path, arch: str, num_classes: int, channel_adapter: str = "replicate",
                    mc_dropout: McDropout | None = None) -> Classifier:
    """A Classifier restored from a checkpoint written by :func:`save_model` (``mc_dropout``: the
    dropout it was trained with, which the file does not hold)."""
    model = create_model(arch, num_classes, channel_adapter=channel_adapter, mc_dropout=mc_dropout)
    return load_state_into(model, path)


def load_state_into(model: Classifier, path: Path) -> Classifier:
    """``model`` (a Classifier or a multi-task one) with the checkpoint at ``path`` loaded; WeightsError
    when its keys do not match the model's."""
    state, _ = read_safetensors(path)
    result = model.load_state_dict(state, strict=False)
    bad = [k for k in result.missing_keys if not k.endswith("num_batches_tracked")] + result.unexpected_keys
    if bad:
        raise WeightsError(f"{path} does not match {model.arch} with {model.num_classes} classes "
                           f"(keys: {', '.join(bad[:5])}); was the run dir edited?")
    return model

def load_run_model(run_dir: str | Path) -> tuple[Classifier, RunInfo]:
    """The run's best checkpoint as a Classifier (eval mode, CPU) and its RunInfo."""
    run_dir = Path(run_dir)
    info = read_run_info(run_dir)
    if info.is_ensemble:
        raise ConfigError(f"{run_dir} is an ensemble of {len(info.members)} runs, not one model; "
                          f"use one of its members ({run_dir / info.members[0].path}, ...)")
    path = run_dir / info.checkpoint
    if not path.is_file():
        raise ConfigError(f"{run_dir} has no checkpoint {info.checkpoint} (the run never finished an epoch)")
    if info.tasks is None:
        return load_model_file(path, info.arch, len(info.class_names), info.channel_adapter,
                               info.mc_dropout).eval(), info
    from .multitask import create_multitask_model

    model = create_multitask_model(info.arch, [(t.name, len(t.class_names)) for t in info.tasks],
                                   info.config.get("task_attention", "static"))
    load_state_into(model, path)
    return model.eval(), info

def load_deploy_model(run_dir: str | Path) -> tuple[DeployModel | EnsembleModel, RunInfo]:
    """The run's best checkpoint wrapped with its preprocessing: raw NHWC pixels in, logits out.

    An ensemble run gives its :class:`EnsembleModel` (members checked against their hashes).
    """
    info = read_run_info(run_dir)
    if info.is_ensemble:
        from .ensemble import load_ensemble

        return load_ensemble(run_dir, info), info
    model, info = load_run_model(run_dir)
    return DeployModel(model, info.preprocessing, info.input_channels).eval(), info


__all__ = ["FORMAT_TAG", "load_deploy_model", "load_model_file", "load_state_into", "load_run_model", "read_safetensors", "save_model"]
