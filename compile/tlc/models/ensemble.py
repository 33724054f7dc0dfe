"""Ensembles compiled to one graph: members side by side on the same raw pixels.

Each member is a :class:`~tlc.models.deploy.DeployModel` with its own in-graph preprocessing (members
may differ in architecture and standardisation; they share the input size, channels and the runtime's
resize). The outputs, in this order:

- ``logits``: ``log(mean_m softmax(z_m))``, the log of the members' mean probabilities (N×K): softmax of
  it is the mean probability, so calibration, conformal sets and the golden set use it unchanged.
- ``disagreement``: the mutual information between the prediction and the member (N,), in nats:
  ``H(mean_m p_m) − mean_m H(p_m)``; 0 when every member gives the same probabilities, at most
  ``log(min(M, K))``. It is the epistemic part of the predictive entropy (as for MC-dropout).
- ``member_logits``: every member's logits side by side (N×M·K, member-major), so verification
  can compare each member with its PyTorch reference.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch
from tlc_runtime.integrity import sha256_file
from torch import nn

from ..errors import ConfigError
from ..runs import RunInfo
from .ops import logsumexp

ENSEMBLE_ARCH = "ensemble"
MEMBER_LOGITS = "member_logits"
OUTPUTS = ("logits", "disagreement", MEMBER_LOGITS)


class EnsembleModel(nn.Module):
    """Raw NHWC pixels → the outputs above (``extras``, a dict as ``tlc.models.outputs`` describes) or
    the ``logits`` tensor alone (for targets that run single-output graphs)."""

    def __init__(self, members: Sequence[nn.Module], extras: bool = True) -> None:
        super().__init__()
        if len(members) < 2:
            raise ConfigError(f"an ensemble needs at least 2 members, got {len(members)}")
        self.members = nn.ModuleList(members)
        self.extras = extras

    def forward(self, x: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor]:
        member_logits = [m(x) for m in self.members]
        log_probs = torch.stack([torch.log_softmax(z, dim=1) for z in member_logits])  # M×N×K
        logits = logsumexp(log_probs, dim=0) - math.log(len(member_logits))
        if not self.extras:
            return logits
        return {"logits": logits, "disagreement": mutual_information(log_probs, logits),
                MEMBER_LOGITS: torch.cat(member_logits, dim=1)}


def mutual_information(log_probs: torch.Tensor, log_mean: torch.Tensor) -> torch.Tensor:
    """``H(mean p) − mean H(p_m)`` per image from members' log-probabilities (M×N×K) and log mean (N×K);
    clamped at 0 against rounding."""
    total = -(log_mean.exp() * log_mean).sum(dim=1)
    expected = -(log_probs.exp() * log_probs).sum(dim=2).mean(dim=0)
    return (total - expected).clamp_min(0.0)


def check_member_files(run_dir: Path, info: RunInfo) -> list[Path]:
    """The members' directories, after checking each file against the hash recorded in run.json."""
    dirs = []
    for member in info.members:
        directory = run_dir / member.path
        for name, digest in member.sha256.items():
            path = directory / name
            if not path.is_file():
                raise ConfigError(f"{run_dir}: ensemble member file {member.path}/{name} is missing")
            if sha256_file(path) != digest:
                raise ConfigError(f"{run_dir}: ensemble member file {member.path}/{name} does not match "
                                  "its sha256 in run.json (edited after the ensemble was made?)")
        dirs.append(directory)
    return dirs


def load_ensemble(run_dir: str | Path, info: RunInfo, extras: bool = True) -> EnsembleModel:
    """The ensemble run's members (hash-checked), each with its own preprocessing, eval mode on CPU."""
    from .checkpoint import load_deploy_model

    members = [load_deploy_model(d)[0] for d in check_member_files(Path(run_dir), info)]
    return EnsembleModel(members, extras=extras).eval()
