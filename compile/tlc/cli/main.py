"""Entry point: a lazily-loaded click group and the one place errors become exit codes.

Exit codes: 0 success, 1 verification failed (``tlc verify``, or a ``tlc build`` whose artifact breaks
its accuracy budget), 2 user error (bad path, data, target, option...), 3 internal error, 130 interrupted.
User errors print one line ``Error: ...`` on stderr.
"""

from __future__ import annotations

import importlib
import os
import sys
import warnings

import click

from .. import __version__

COMMANDS: dict[str, str] = {
    "train": "tlc.cli.train_cmd:train",
    "ensemble": "tlc.cli.ensemble_cmd:ensemble",
    "build": "tlc.cli.build_cmd:build",
    "verify": "tlc.cli.verify_cmd:verify",
    "predict": "tlc.cli.predict_cmd:predict",
    "select": "tlc.cli.select_cmd:select",
    "compare": "tlc.cli.compare_cmd:compare",
    "inspect": "tlc.cli.inspect_cmd:inspect",
    "bench": "tlc.cli.bench_cmd:bench",
    "targets": "tlc.cli.targets_cmd:targets",
    "demo": "tlc.cli.demo_cmd:demo",
    "keygen": "tlc.cli.signing_cmd:keygen",
    "sign": "tlc.cli.signing_cmd:sign",
    "report": "tlc.cli.report_cmd:report",
    "diff": "tlc.cli.report_cmd:diff",
}


class LazyGroup(click.Group):
    """Imports a command's module only when that command (or the command list) is needed."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attr = COMMANDS[name].split(":")
        return getattr(importlib.import_module(module), attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tlc")
def cli() -> None:
    """tlc — train, compile, verify and benchmark transfer-learned image classifiers for edge devices.

    \b
    Typical path:
      tlc train DATA --arch resnet18 --weights RUN_OR_WEIGHTS --out runs/a
      tlc build runs/a --target x86-cpu --out bundles/a
      tlc verify bundles/a --data DATA

    \b
    Exit codes: 0 success, 1 verification failed (tlc verify, or a build that breaks its
    accuracy budget), 2 user error, 3 internal error, 130 interrupted.
    """


def main(argv: list[str] | None = None) -> None:
    sys.exit(run(argv))


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings print as one line, without source locations."""
    click.echo(f"Warning: {message}", err=True)


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (used by main and by tests)."""
    from tlc_runtime.errors import TlcRuntimeError

    from ..errors import TlcError

    warnings.showwarning = _show_warning
    try:
        result = cli.main(args=argv, prog_name="tlc", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except (click.Abort, KeyboardInterrupt) as exc:
        if isinstance(exc.__cause__, EOFError):  # click turns any EOFError into Abort: a bug, not ^C
            return _internal_error(exc.__cause__)
        click.echo("Interrupted.", err=True)
        return 130
    except (TlcError, TlcRuntimeError) as exc:
        click.echo(f"Error: {exc}", err=True)
        return getattr(exc, "exit_code", 2)
    except OSError as exc:
        click.echo(f"Error: {exc.strerror or exc}{f': {exc.filename}' if exc.filename else ''}", err=True)
        return 2
    except Exception as exc:  # a bug in tlc: one line unless asked for the traceback
        return _internal_error(exc)
    return result if isinstance(result, int) else 0


def _internal_error(exc: BaseException) -> int:
    """A bug in tlc: one line and exit 3, or the traceback when TLC_DEBUG is set."""
    if os.environ.get("TLC_DEBUG"):
        raise exc
    click.echo(f"Internal error: {type(exc).__name__}: {exc} (set TLC_DEBUG=1 for the traceback)", err=True)
    return 3
