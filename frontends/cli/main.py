"""The `modelyzer` click group: global options, error handling, and the built-in command modules.

Errors derived from ModelyzerError become one line on stderr with their exit code (2 for bad input, 1 for run
failures); nothing prints a traceback unless `--log-level debug`. Plugins add commands via `register_commands`.
"""

from __future__ import annotations

import importlib
import logging
import sys
from typing import Any

import click

from modelyzer.kernel import __version__, hooks, plugins
from modelyzer.kernel.errors import ModelyzerError


class ModelyzerGroup(click.Group):
    """A group that turns ModelyzerError into a one-line message and the right exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ModelyzerError as err:
            if logging.getLogger("modelyzer").isEnabledFor(logging.DEBUG):
                logging.getLogger("modelyzer").exception("error")
            click.echo(f"error: {err}", err=True)
            ctx.exit(err.exit_code)


@click.group(cls=ModelyzerGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="modelyzer")
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
    help="Logging verbosity.",
)
def cli(log_level: str) -> None:
    """modelyzer: find the best way to deploy a model on an inference server."""
    logging.basicConfig(level=getattr(logging, log_level.upper()), format="%(levelname)s: %(message)s", stream=sys.stderr)


#: the frontend's own command modules: plugins like any other (`register_commands`), registered by the frontend
COMMAND_MODULES = ("profile_cmd", "check_cmd", "report_cmd", "export_cmd", "plugins_cmd")


def _register_frontend_commands() -> None:
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"{__package__}.{name}")
        if not plugins.pm.is_registered(module):
            plugins.register_plugin(module, f"{__package__}.{name}")


_register_frontend_commands()
hooks.register_commands(cli)  # every command comes through the hook: the frontend's, built-ins', third parties'


def main() -> None:
    cli(prog_name="modelyzer")
