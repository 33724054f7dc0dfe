"""Ensemble runs: finished runs combined (``tlc ensemble``) or trained together (``tlc train --members N``).

RUN_DIR/
  run.json                  RunInfo with arch "ensemble" and ``members`` (path, run id, arch, sha256 per file)
  members/<i>/run.json      each member's own run.json and best checkpoint, copied: the ensemble run
  members/<i>/model.safetensors   needs nothing outside itself and is checked on every load

Members must share the class names, the input (size, channels, dtype) and everything the runtime does
before the graph (resize, value range, channel rule, DICOM policy, ROI); architectures, channel adapters
and the in-graph standardisation may differ. The ensemble's own run.json takes its data, split
options and seed from the first member (``tlc build`` verifies on that member's test split).
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tlc_runtime.integrity import sha256_file

from ..data import Dataset
from ..errors import ConfigError
from ..models.ensemble import ENSEMBLE_ARCH
from ..outdir import sibling
from ..runs import RUN_INFO_NAME, MemberInfo, RunInfo, read_run_info, write_run_info
from .config import TrainConfig
from .rundir import RunDirectory, check_out_dir, new_run_id, versions

MEMBERS_DIR = "members"


def combine_runs(run_dirs: Sequence[str | Path], out_dir: str | Path, overwrite: bool = False) -> RunInfo:
    """Copy finished runs into the ensemble run ``out_dir`` (written atomically); its RunInfo.

    ConfigError (one line) when there are fewer than 2 runs or they do not fit together.
    """
    run_dirs, out_dir = [Path(d) for d in run_dirs], Path(out_dir)
    if len(run_dirs) < 2:
        raise ConfigError(f"an ensemble needs at least 2 runs, got {len(run_dirs)}")
    infos = [read_run_info(d) for d in run_dirs]
    for directory, info in zip(run_dirs, infos, strict=True):
        _check_member(directory, info, run_dirs[0], infos[0])
    check_out_dir(out_dir, resume=False, overwrite=overwrite)
    with RunDirectory(out_dir, resume=False, overwrite=overwrite) as work:
        members = tuple(_copy_member(d, info, work, i) for i, (d, info) in enumerate(zip(run_dirs, infos, strict=True)))
        info = ensemble_info(infos, members)
        write_run_info(work, info)
    return info


def _runtime_side(info: RunInfo) -> tuple[Any, ...]:
    """What the members must share: the input and the preprocessing outside the graph."""
    prep = dataclasses.replace(info.preprocessing, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    return info.img_size, info.input_channels, info.input_dtype, prep


def _check_member(directory: Path, info: RunInfo, first_dir: Path, first: RunInfo) -> None:
    if info.is_ensemble:
        raise ConfigError(f"{directory} is itself an ensemble; list its members instead")
    if not (directory / info.checkpoint).is_file():
        raise ConfigError(f"{directory} has no checkpoint {info.checkpoint} (the run never finished an epoch)")
    if info.class_names != first.class_names:
        raise ConfigError(f"{directory} has class names {list(info.class_names)} but {first_dir} has "
                          f"{list(first.class_names)}; ensemble members must share them, in order")
    if _runtime_side(info) != _runtime_side(first):
        raise ConfigError(f"{directory} takes input {info.img_size}px × {info.input_channels} {info.input_dtype} "
                          f"({info.preprocessing.resize}, values {list(info.preprocessing.value_range)}) but "
                          f"{first_dir} takes {first.img_size}px × {first.input_channels} {first.input_dtype} "
                          f"({first.preprocessing.resize}, values {list(first.preprocessing.value_range)}); "
                          "ensemble members must share the input and the runtime's preprocessing")


def _copy_member(directory: Path, info: RunInfo, work: Path, index: int) -> MemberInfo:
    relative = f"{MEMBERS_DIR}/{index}"
    target = work / relative
    target.mkdir(parents=True)
    digests = {}
    for name in (RUN_INFO_NAME, info.checkpoint):
        shutil.copyfile(directory / name, target / name)
        digests[name] = sha256_file(target / name)
    return MemberInfo(path=relative, run_id=info.run_id, arch=info.arch, sha256=digests)


def ensemble_info(infos: Sequence[RunInfo], members: tuple[MemberInfo, ...]) -> RunInfo:
    """The ensemble's RunInfo: the first member's data, input and split options, no checkpoint of its own."""
    first = infos[0]
    return dataclasses.replace(
        first, run_id=new_run_id(ENSEMBLE_ARCH), arch=ENSEMBLE_ARCH, members=members,
        weights_init="ensemble:" + ",".join(i.run_id for i in infos), versions=versions(), epochs=(),
        best_epoch=-1, val_metrics={}, test_metrics={}, checkpoint="", channel_adapter="replicate")


def train_members(data: str | Path | Dataset, out_dir: str | Path, config: TrainConfig, count: int,
                  progress: bool = True, overwrite: bool = False) -> RunInfo:
    """Train ``count`` members (seeds ``config.seed + i``: their own initialisation, augmentation draws and
    batch order) on the data split once with ``config.seed``, and write them as one ensemble run."""
    from .trainer import load_training_data, train

    out_dir = Path(out_dir)
    if count < 2:
        raise ConfigError(f"--members must be at least 2 for an ensemble, got {count}")
    if config.resume:
        raise ConfigError("--resume does not apply to --members; train the members again")
    check_out_dir(out_dir, resume=False, overwrite=overwrite)
    dataset = load_training_data(data, config)
    scratch = sibling(out_dir, "members")
    try:
        dirs = []
        for i in range(count):
            dirs.append(scratch / str(i))
            train(dataset, dirs[-1], dataclasses.replace(config, seed=config.seed + i), progress=progress)
        return combine_runs(dirs, out_dir, overwrite=overwrite)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
