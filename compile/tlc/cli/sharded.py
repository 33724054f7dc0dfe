"""Scoring many files on N processes (and nodes): ``tlc predict ... --csv OUT --nproc N``.

The files are split into one contiguous shard per rank (``tlc.launch``, torchrun's launcher); each
rank writes ``.OUT.shards/shard-RANK-of-WORLD.csv`` atomically; the launching process on node 0
merges the shards in rank order, i.e. in the input order, into OUT and removes the shard folder.
Shards are independent, so a rank whose shard fails records why and ends normally (the others
finish theirs); then the command fails with no OUT, the finished shards stay, and ``--resume``
skips them (the folder records the bundle, file list and process count it was made for). Several
nodes need OUT's folder on a filesystem they all share. A future ``tlc select`` reuses
``score_sharded`` with its own ``write_shard``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from ..errors import ConfigError, TlcError
from ..launch import LaunchSpec, WorkerFailed, launch

PLAN = "plan.json"

# write_shard(rank, paths, tmp_csv) -> number of files that could not be read
ShardWriter = Callable[[int, list[str], Path], int]


def shard_dir(out: Path) -> Path:
    return out.parent / f".{out.name}.shards"


def score_sharded(spec: LaunchSpec, paths: list[Path], out: Path, write_shard: ShardWriter, fingerprint: str,
                  resume: bool) -> int:
    """Score ``paths`` into ``out`` on ``spec``'s processes; return how many files could not be read
    (their rows carry the error). ``fingerprint`` identifies what is scored (e.g. the bundle)."""
    folder = shard_dir(out)
    plan = {"fingerprint": fingerprint, "world_size": spec.world_size,
            "files": hashlib.sha256("\n".join(map(str, paths)).encode()).hexdigest()}
    if spec.is_main_node:
        _prepare(folder, plan, resume)
    keep = f"no {out.name} written, the finished shards are kept in {folder}: rerun with --resume to score the rest"
    try:
        failed = launch(spec, _score_shard, (write_shard, [str(p) for p in paths], str(folder)))
    except WorkerFailed as exc:
        exc.args = (f"{exc}; {keep}",)
        raise
    if not spec.is_main_node:
        return sum(failed.values())
    _check_shards(folder, spec.world_size, keep)
    _merge(folder, spec.world_size, out)
    return _count_failed(out)


def _prepare(folder: Path, plan: dict, resume: bool) -> None:
    """A fresh shard folder, or with ``resume`` the existing one if it was made for the same job."""
    if resume and folder.is_dir():
        try:
            stored = json.loads((folder / PLAN).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            stored = None
        if stored != plan:
            raise ConfigError(f"{folder} holds shards of another job (bundle, files or --nproc differ); "
                              "rerun without --resume to start again")
        return
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    (folder / PLAN).write_text(json.dumps(plan), encoding="utf-8")


def _shard_name(rank: int, world: int) -> str:
    return f"shard-{rank:05d}-of-{world:05d}.csv"


def _score_shard(write_shard: ShardWriter, paths: list[str], folder: str) -> int:
    """One rank: score its contiguous share of ``paths`` unless its shard is already there."""
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    target = Path(folder, _shard_name(rank, world))
    if target.is_file():
        return 0
    per, extra = divmod(len(paths), world)
    start = rank * per + min(rank, extra)
    mine = paths[start:start + per + (1 if rank < extra else 0)]
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        failed = write_shard(rank, mine, tmp)
        os.replace(tmp, target)
    except Exception as exc:  # noqa: BLE001 - recorded for the launcher; the other shards go on
        record = {"message": str(exc), "exit_code": exc.exit_code} if isinstance(exc, TlcError) \
            else {"message": f"{type(exc).__name__}: {exc}", "exit_code": 3}
        target.with_suffix(".error").write_text(json.dumps(record), encoding="utf-8")
        return 0
    finally:
        tmp.unlink(missing_ok=True)
    return failed


def _check_shards(folder: Path, world: int, keep: str) -> None:
    """Every shard is there, else WorkerFailed with the first recorded reason."""
    missing = [rank for rank in range(world) if not (folder / _shard_name(rank, world)).is_file()]
    if not missing:
        return
    error = folder / _shard_name(missing[0], world)
    record = json.loads(error.with_suffix(".error").read_text(encoding="utf-8")) \
        if error.with_suffix(".error").is_file() else {"message": "no shard written", "exit_code": 3}
    for path in folder.glob("*.error"):
        path.unlink()
    failed = WorkerFailed(f"shard {missing[0]} of {world} failed (rank {missing[0]}): {record['message']}"
                          + (f" ({len(missing)} shards missing)" if len(missing) > 1 else "") + f"; {keep}")
    failed.exit_code = record["exit_code"]
    raise failed


def _merge(folder: Path, world: int, out: Path) -> None:
    """Shards in rank order → ``out`` (atomically, one header), then the shard folder is removed."""
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", newline="", encoding="utf-8") as dst:
            for rank in range(world):
                with open(folder / _shard_name(rank, world), newline="", encoding="utf-8") as src:
                    header = src.readline()
                    if rank == 0:
                        dst.write(header)
                    shutil.copyfileobj(src, dst)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    shutil.rmtree(folder, ignore_errors=True)


def _count_failed(out: Path) -> int:
    with open(out, newline="", encoding="utf-8") as fp:
        return sum(1 for row in csv.DictReader(fp) if row["error"])
