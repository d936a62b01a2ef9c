"""Typed errors the frontends turn into one-line messages and exit codes (usage → 2, run failure → 1)."""

from __future__ import annotations


class ModelyzerError(Exception):
    """Base class: `str(err)` is a complete one-line message for the user."""

    exit_code = 1


class ConfigError(ModelyzerError):
    """Bad user input: names the key or path and how to fix it. Exit code 2."""

    exit_code = 2


class PluginError(ModelyzerError):
    """A plugin is missing, duplicated or misbehaving."""

    exit_code = 2


class LaunchError(ModelyzerError):
    """The inference server could not be started, reached or made to load a model."""


class ModelLoadError(LaunchError):
    """The server refused to load a variant; the message carries the server's own reason."""


class LoadGeneratorError(ModelyzerError):
    """The load generator failed; `command` and `output` are kept for perf_analyzer_error.log.

    `status` is the status of the Measurement the executor records for it (`failed`; a replay's "no recorded
    measurement" is `not_recorded`).
    """

    status = "failed"

    def __init__(self, message: str, command: str = "", output: str = "") -> None:
        super().__init__(message)
        self.command = command
        self.output = output


class ReportError(ModelyzerError):
    """A report or table could not be written (the measurements it reports are stored)."""
