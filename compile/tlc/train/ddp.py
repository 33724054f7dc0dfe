"""``train_ddp()``: ``tlc train --nproc N``, the same run as ``train()`` on N data-parallel processes.

The launching process (on node 0 with several nodes) owns the run directory: it takes the lock,
creates the staging directory, starts the workers (``tlc.launch``) and commits the run only when every
rank has finished. Rank 0 alone writes into the staging directory; any failed or killed rank ends
the group and the staging directory is removed, so a failed run leaves nothing (``RunDirectory``).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..errors import ConfigError
from ..launch import LaunchSpec, launch
from ..models.registry import get_arch
from ..models.weights import resolve_weights, run_arch
from ..runs import RunInfo
from .config import TrainConfig
from .distributed import DistContext
from .progress import Reporter
from .rundir import RunDirectory, check_out_dir
from .trainer import DEFAULT_ARCH, _device, _run, load_training_data, log_result


def train_ddp(data: str | Path, out_dir: str | Path, config: TrainConfig, spec: LaunchSpec, progress: bool = True,
              overwrite: bool = False) -> RunInfo | None:
    """Train on ``spec``'s processes; return the RunInfo on node 0 (None on the other nodes, which
    write nothing). Refuses what one process refuses, before any worker starts."""
    out_dir = Path(out_dir)
    arch = config.arch or run_arch(config.weights) or DEFAULT_ARCH
    get_arch(arch)
    if _device(config.device).type == "cuda" and torch.cuda.device_count() < spec.nproc:
        raise ConfigError(f"--nproc {spec.nproc} on cuda needs {spec.nproc} GPUs on this node, "
                          f"found {torch.cuda.device_count()}")
    if config.tasks:
        raise ConfigError("multi-task training runs in one process for now; leave out --nproc")
    if config.batch_size < spec.world_size:
        raise ConfigError(f"--batch-size {config.batch_size} is smaller than the {spec.world_size} processes; "
                          "the batch size is the global batch, split between them")
    if not spec.is_main_node:
        launch(spec, _worker, (str(data), None, config, False))
        return None
    check_out_dir(out_dir, config.resume, overwrite)
    with RunDirectory(out_dir, config.resume, overwrite) as work_dir:
        info = launch(spec, _worker, (str(data), str(work_dir), config, progress))[0]
    log_result(Reporter(progress), info, out_dir)
    return info


def _worker(data: str, work_dir: str | None, config: TrainConfig, progress: bool) -> RunInfo | None:
    """One rank: join the group, load the data, run the loop; rank 0 returns the RunInfo."""
    local_rank = int(os.environ["LOCAL_RANK"])
    device = _device(config.device)
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
    torch.set_num_threads(config.cpu_threads(int(os.environ["LOCAL_WORLD_SIZE"])))
    dist = DistContext.start(device)
    try:
        arch = config.arch or run_arch(config.weights) or DEFAULT_ARCH
        source = resolve_weights(config.weights, arch)
        dataset = load_training_data(data, config)
        reporter = Reporter(progress and dist.is_main)
        if dist.is_main:
            reporter.log(f"data-parallel: {dist.world_size} processes ({device.type}, "
                         f"{'nccl' if device.type == 'cuda' else 'gloo'}), global batch {config.batch_size}")
        info = _run(dataset, Path(work_dir or "."), config, arch, source, device, reporter, dist)
        return info if dist.is_main else None
    finally:
        dist.close()
