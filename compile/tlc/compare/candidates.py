"""``--candidate NAME=SPEC``: SPEC is ``ARCH`` (from scratch), ``ARCH:RUN_DIR`` (transfer from a tlc run,
fine-tune everything) or ``ARCH:RUN_DIR:head`` (transfer, backbone frozen, head trained)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError
from ..models.registry import get_arch
from ..models.weights import resolve_weights

NAME = re.compile(r"[A-Za-z0-9_.-]+")
FORMAT = "NAME=ARCH, NAME=ARCH:RUN_DIR or NAME=ARCH:RUN_DIR:head"


@dataclass(frozen=True)
class Candidate:
    """One contender: ``arch`` trained from scratch (``run`` None) or from the run ``run``, with the
    backbone frozen when ``head_only``."""

    name: str
    spec: str
    arch: str
    run: Path | None = None
    head_only: bool = False

    @property
    def weights(self) -> str:
        return "none" if self.run is None else str(self.run)

    @property
    def freeze(self) -> str:
        return "head" if self.head_only else "none"


def parse_candidate(text: str) -> Candidate:
    """One ``NAME=SPEC`` (module docstring); ConfigError naming the fault, with the run checked to exist,
    be a tlc run and have ``ARCH``'s architecture."""
    name, sep, spec = text.partition("=")
    name, spec = name.strip(), spec.strip()
    if not sep or not name or not spec:
        raise ConfigError(f"--candidate {text!r}: expected {FORMAT}")
    if not NAME.fullmatch(name):
        raise ConfigError(f"--candidate {text!r}: a name may hold letters, digits, '_', '.' and '-' only")
    arch, _, rest = spec.partition(":")
    run, _, mode = rest.rpartition(":") if rest.endswith(":head") else (rest, "", "")
    if mode and not run:
        raise ConfigError(f"--candidate {text!r}: ':head' needs a run to transfer from ({FORMAT})")
    arch = get_arch(arch).name  # small-cnn → small_cnn, as runs record it
    if run:
        if not Path(run).expanduser().is_dir():
            raise ConfigError(f"--candidate {text!r}: run directory not found: {run}")
        resolve_weights(run, arch)  # WeightsError: not a tlc run, or a run of another architecture
    return Candidate(name=name, spec=spec, arch=arch, run=Path(run) if run else None, head_only=bool(mode))


def parse_candidates(texts: tuple[str, ...] | list[str]) -> list[Candidate]:
    """Every ``--candidate``, checked before anything trains: at least one, names unique."""
    if not texts:
        raise ConfigError(f"give at least one --candidate {FORMAT}")
    candidates = [parse_candidate(t) for t in texts]
    names = [c.name for c in candidates]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"candidate names must be unique; given more than once: {', '.join(twice)}")
    return candidates
