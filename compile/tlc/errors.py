"""One error hierarchy; the CLI turns each into a one-line ``Error: ...`` and a fixed exit code."""

from __future__ import annotations


class TlcError(Exception):
    """A user-facing failure: bad input, bad configuration, failed build. Exit code 2."""

    exit_code = 2


class DataError(TlcError):
    """A dataset cannot be read or fails validation (the message names the file)."""


class ConfigError(TlcError):
    """A target file, option or argument is invalid."""


class WeightsError(TlcError):
    """Pretrained weights cannot be found or do not fit the architecture."""


class BuildError(TlcError):
    """Export, quantization or artifact build failed; no bundle was written."""


class BudgetError(BuildError):
    """No precision mix met the accuracy budget; no bundle was written.

    A verification failure like ``tlc verify``'s: exit code 1, not a user error."""

    exit_code = 1


class VerificationFailed(TlcError):
    """The bundle broke its accuracy budget (``tlc verify`` exit code 1)."""

    exit_code = 1
