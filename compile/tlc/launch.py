"""Running one function on N processes (and nodes) with PyTorch's elastic launcher (``torchrun``).

``launch(spec, fn, args)`` starts ``spec.nproc`` workers on this node, each calling ``fn(*args)``
with torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR...). One node: a private
rendezvous on localhost (``torchrun --standalone``). Several nodes: the same command on every node
with ``nnodes``, ``node_rank`` and ``rdzv_endpoint`` (host:port of node 0), i.e. torchrun's static
rendezvous, so global rank 0 always runs on node 0.

A worker that fails ends the whole group (no restarts: a rank lost mid-epoch cannot rejoin), and
``launch`` raises one ``TlcError`` with the first failing rank's own message: a ``TlcError`` keeps
its message and exit code; anything else (a crash, a kill) exits 3, as it would in one process.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError, TlcError

ERROR_DIR_ENV = "TLC_LAUNCH_ERRORS"


class WorkerFailed(TlcError):
    """A distributed worker failed; the message names the rank and its error."""


@dataclass(frozen=True)
class LaunchSpec:
    """Where the workers run. None means default: ``node_rank`` None → 0 (one node only)."""

    nproc: int
    nnodes: int = 1
    node_rank: int | None = None
    rdzv_endpoint: str | None = None

    def __post_init__(self) -> None:
        if self.nproc < 1 or self.nnodes < 1:
            raise ConfigError(f"--nproc and --nnodes must be at least 1, got {self.nproc} and {self.nnodes}")
        if self.nnodes > 1 and (self.node_rank is None or not self.rdzv_endpoint):
            raise ConfigError("several nodes need --node-rank (0 on the first node) and --rdzv-endpoint HOST:PORT "
                              "(the first node's address), the same on every node")
        if self.node_rank is not None and not 0 <= self.node_rank < self.nnodes:
            raise ConfigError(f"--node-rank must be in 0..{self.nnodes - 1}, got {self.node_rank}")

    @property
    def distributed(self) -> bool:
        return self.nproc * self.nnodes > 1

    @property
    def world_size(self) -> int:
        return self.nproc * self.nnodes

    @property
    def is_main_node(self) -> bool:
        """Node 0 holds global rank 0: the node that writes outputs."""
        return not self.node_rank


def launch(spec: LaunchSpec, fn: Callable[..., Any], args: tuple[Any, ...]) -> dict[int, Any]:
    """Run ``fn(*args)`` on every local worker; return {local rank: return value}; raise WorkerFailed."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    multi = spec.nnodes > 1
    config = LaunchConfig(min_nodes=spec.nnodes, max_nodes=spec.nnodes, nproc_per_node=spec.nproc,
                          run_id=f"tlc-{uuid.uuid4().hex[:8]}" if not multi else "tlc",
                          rdzv_backend="static" if multi else "c10d",
                          rdzv_endpoint=spec.rdzv_endpoint if multi else "localhost:0",
                          rdzv_configs={"rank": spec.node_rank} if multi else {},
                          max_restarts=0, monitor_interval=0.1, start_method="spawn")
    with tempfile.TemporaryDirectory(prefix="tlc-launch-") as errors, _quiet_elastic():
        try:
            results = elastic_launch(config, _worker)(fn, args, errors)
        except ChildFailedError as exc:
            raise _failure(exc, Path(errors)) from None
    return {int(rank): value for rank, value in results.items()}


def _worker(fn: Callable[..., Any], args: tuple[Any, ...], errors: str) -> Any:
    """One worker: ``fn(*args)``; an exception is recorded for the launcher and ends the process quietly
    (no traceback: the launcher prints the one-line error)."""
    try:
        return fn(*args)
    except BaseException as exc:  # noqa: BLE001 - every failure must reach the launcher
        code = exc.exit_code if isinstance(exc, TlcError) else 3
        record = {"rank": int(os.environ.get("RANK", "0")), "time": time.time(), "exit_code": code,
                  "message": str(exc) if isinstance(exc, TlcError) else f"{type(exc).__name__}: {exc}"}
        Path(errors, f"rank-{record['rank']}.json").write_text(json.dumps(record), encoding="utf-8")
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)  # skip interpreter teardown: other ranks may be blocked in a collective


def _failure(exc: Any, errors: Path) -> WorkerFailed:
    """The root cause: the earliest error a worker recorded, else the first process failure."""
    records = [json.loads(p.read_text(encoding="utf-8")) for p in errors.glob("rank-*.json")]
    if records:
        first = min(records, key=lambda r: r["time"])
        failed = WorkerFailed(f"rank {first['rank']} of the distributed run failed: {first['message']}")
        failed.exit_code = first["exit_code"]
        return failed
    rank, failure = exc.get_first_failure()
    how = f"was killed by {failure.signal_name()}" if failure.exitcode < 0 else f"exited with code {failure.exitcode}"
    failed = WorkerFailed(f"rank {rank} of the distributed run {how}; the other ranks were stopped")
    failed.exit_code = 3
    return failed


@contextmanager
def _quiet_elastic() -> Iterator[None]:
    """torchelastic logs every start, stop and failure; tlc reports the outcome itself in one line."""
    loggers = [logging.getLogger(name) for name in ("torch.distributed.elastic", "torch.multiprocessing")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
