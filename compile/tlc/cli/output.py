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
    return "—" if value is None else f"{100 * value:.2f}%"
