"""Shared console output: rich tables on stdout, logs on stderr."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console

console = Console()
err_console = Console(stderr=True)


def log(message: str) -> None:
    err_console.print(f"[dim]•[/dim] {message}", highlight=False)


def print_json(data: Any) -> None:
    from ..bundler.reports import _clean

    print(json.dumps(_clean(data), indent=2))


def pct(value: float | None) -> str:
    """``0.1234`` → ``12.34%``; a value that rounds to zero never shows as ``-0.00%``."""
    if value is None:
        return "—"
    shown = f"{100 * value:.2f}"
    return f"{'0.00' if shown == '-0.00' else shown}%"


def readable(value: Any) -> str:
    """A value in words, not Python: dataclasses and dicts as ``key value, ...`` (None fields left out),
    sequences comma-joined, floats in their shortest form; None is the empty string."""
    import dataclasses

    if value is None:
        return ""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        shown = ((str(k).replace("_", " "), readable(v)) for k, v in value.items())
        return ", ".join(f"{k} {v}" for k, v in shown if v != "")
    if isinstance(value, list | tuple):
        return ", ".join(readable(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def phrases(*parts: str, sep: str = "  ", indent: int = 0) -> None:
    """Print ``parts`` (rich markup allowed) on as few lines as fit the console, breaking only between
    parts: "bal-acc drop=0.00%" is never split across lines, piped or at 80 columns. Continuation
    lines start with ``indent`` spaces."""
    from rich.text import Text

    width = max(console.width, 20)
    lines: list[list[str]] = [[]]
    used = 0
    for part in (p for p in parts if p):
        size = Text.from_markup(part).cell_len
        if lines[-1] and used + len(sep) + size > width:
            lines.append([" " * (indent - len(sep))] if indent > len(sep) else [])
            used = max(indent - len(sep), 0)
        used += (len(sep) if lines[-1] else 0) + size
        lines[-1].append(part)
    for line in lines:
        console.print(sep.join(line), soft_wrap=True, highlight=False)
