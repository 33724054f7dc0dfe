"""Data-parallel training (DistributedDataParallel): the ``DistContext`` the training loop is given.

One process is ``LOCAL`` (world size 1): every method is the identity, so the loop has one code path.
With N ranks (started by ``tlc.launch``), every rank draws the same seeded permutation of the
training set and takes its contiguous share of each *global* batch (what a seeded
``DistributedSampler`` does, per batch), so the data order and the augmentation draws are those of
one process with the same batch size, whatever N is; gradients are averaged by DDP's bucketed
all-reduce. BatchNorm is synchronised (global batch statistics, see ``sync_batchnorm``); evaluation
is sharded and the logits gathered, so the metrics are those of the whole split.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class DistContext:
    """This process's place in the run; collectives are no-ops when ``world_size`` is 1."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the only rank that writes the run directory and reports progress."""
        return self.rank == 0

    @classmethod
    def start(cls, device: torch.device) -> DistContext:
        """Join the process group torchrun's environment describes: nccl on CUDA, gloo on CPU."""
        import torch.distributed as dist

        ctx = cls(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ["LOCAL_RANK"]))
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        return ctx

    def close(self) -> None:
        import torch.distributed as dist

        if self.active and dist.is_initialized():
            dist.destroy_process_group()

    def shard(self, items: torch.Tensor) -> torch.Tensor:
        """This rank's contiguous share of ``items`` (shares differ by at most one; one may be empty)."""
        return items.tensor_split(self.world_size)[self.rank] if self.active else items

    def wrap(self, module: nn.Module) -> nn.Module:
        """``module`` under DDP (wrap again whenever the set of trainable parameters changes)."""
        if not self.active:
            return module
        from torch.nn.parallel import DistributedDataParallel

        device = next(module.parameters()).device
        return DistributedDataParallel(module, device_ids=[device] if device.type == "cuda" else None)

    def sum(self, value: float) -> float:
        """``value`` summed over ranks."""
        if not self.active:
            return value
        import torch.distributed as dist

        total = torch.tensor([value], dtype=torch.float64, device=self._device())
        dist.all_reduce(total)
        return float(total.item())

    def gather(self, rows: np.ndarray) -> np.ndarray:
        """Every rank's ``rows`` (its shard, see ``shard``) concatenated in rank order: the whole split."""
        if not self.active:
            return rows
        import torch.distributed as dist

        parts: list[Any] = [None] * self.world_size
        dist.all_gather_object(parts, rows)
        return np.concatenate(parts)

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank (CPU tensors inside are fine)."""
        if not self.active:
            return obj
        import torch.distributed as dist

        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def sync_batchnorm(self, module: nn.Module) -> None:
        """Replace every BatchNorm in ``module`` by one that normalises with the global batch statistics:
        ``nn.SyncBatchNorm`` on CUDA, ``CpuSyncBatchNorm`` on CPU (PyTorch's supports only GPUs)."""
        if not self.active:
            return
        cuda = next(module.parameters()).device.type == "cuda"
        for parent in list(module.modules()):
            for name, child in parent.named_children():
                if isinstance(child, nn.modules.batchnorm._BatchNorm):
                    setattr(parent, name, nn.SyncBatchNorm.convert_sync_batchnorm(child) if cuda
                            else CpuSyncBatchNorm.from_batchnorm(child))

    def _device(self) -> torch.device:
        import torch.distributed as dist

        return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" \
            else torch.device("cpu")


LOCAL = DistContext()


class CpuSyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose training statistics are those of the global batch (sum, sum of squares and count
    all-reduced, differentiably); in eval mode, or in one process, plain BatchNorm."""

    @classmethod
    def from_batchnorm(cls, bn: nn.modules.batchnorm._BatchNorm) -> CpuSyncBatchNorm:
        sync = cls(bn.num_features, bn.eps, bn.momentum, bn.affine, bn.track_running_stats)
        if bn.affine:
            sync.weight, sync.bias = bn.weight, bn.bias
        sync.running_mean, sync.running_var = bn.running_mean, bn.running_var
        sync.num_batches_tracked = bn.num_batches_tracked
        sync.train(bn.training)
        return sync

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2-D input, got {x.dim()}-D")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist

        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        dims = [d for d in range(x.dim()) if d != 1]
        count = torch.full((1,), x.numel() / max(x.shape[1], 1), dtype=x.dtype, device=x.device)
        stats = _AllReduceSum.apply(torch.cat([x.sum(dims), (x * x).sum(dims), count]))
        c, n = self.num_features, stats[-1]
        mean = stats[:c] / n
        var = (stats[c:2 * c] / n - mean * mean).clamp_min(0)
        self._update_running(mean.detach(), var.detach() * n / (n - 1).clamp_min(1))
        shape = [1, c] + [1] * (x.dim() - 2)
        y = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        return y * self.weight.view(shape) + self.bias.view(shape) if self.affine else y

    @torch.no_grad()
    def _update_running(self, mean: torch.Tensor, unbiased_var: torch.Tensor) -> None:
        if not self.track_running_stats:
            return
        self.num_batches_tracked += 1
        factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        self.running_mean.mul_(1 - factor).add_(mean, alpha=factor)
        self.running_var.mul_(1 - factor).add_(unbiased_var, alpha=factor)


class _AllReduceSum(torch.autograd.Function):
    """Differentiable sum over ranks: the gradient of a sum is the sum of the ranks' gradients."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist

        out = x.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist

        grad = grad.clone()
        dist.all_reduce(grad)
        return grad
