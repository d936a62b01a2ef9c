"""The `modelyzer` click group: global options, error handling, and the built-in command modules.

Errors derived from ModelyzerError become one line on stderr with their exit code (2 for bad input, 1 for run
failures), and so do click's usage errors (exit code 2); nothing prints a traceback unless `--log-level debug`. Plugins add commands via `register_commands`.
"""

from __future__ import annotations

import importlib
import logging
import sys
from typing import Any

import click

from modelyzer.kernel import __version__, hooks, plugins
from modelyzer.kernel.config_values import one_line
from modelyzer.kernel.errors import ModelyzerError

MAX_ERROR = 1000  # characters of an error line: a 5000-character value is not echoed whole


def shorten(text: str, limit: int = MAX_ERROR) -> str:
    """`text` with its middle elided when longer than `limit`: the key (start) and the fix (end) stay."""
    if len(text) <= limit:
        return text
    tail = limit // 3
    return f"{text[:limit - tail - 3]} … {text[-tail:]}"


class OneLineUsageError(click.UsageError):
    """click's usage error (unknown option, bad choice, missing value) as one line naming the fix; exit code 2."""

    def show(self, file: Any = None) -> None:
        where = self.ctx.command_path if self.ctx is not None else "modelyzer"
        message = shorten(one_line(" ".join(self.format_message().split())), 400)
        click.echo(f"error: {message} (see '{where} -h')", err=True)


def _one_line(err: click.UsageError, ctx: click.Context | None = None) -> OneLineUsageError:
    if isinstance(err, OneLineUsageError):
        return err
    if err.ctx is None or err.ctx is ctx:  # a subcommand's option: its help is the one to read
        group = ctx.command if ctx is not None else None
        sub = (group.get_command(ctx, ctx.invoked_subcommand)
               if isinstance(group, click.Group) and ctx is not None and ctx.invoked_subcommand else None)
        if ctx is not None and sub is not None:
            return OneLineUsageError(err.format_message(), click.Context(sub, info_name=ctx.invoked_subcommand,
                                                                         parent=ctx))
    return OneLineUsageError(err.format_message(), err.ctx or ctx)


class ModelyzerGroup(click.Group):
    """A group that turns ModelyzerError and click's usage errors into one line and the right exit code."""

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as err:
            raise _one_line(err) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as err:
            raise _one_line(err, ctx) from None
        except ModelyzerError as err:
            if logging.getLogger("modelyzer").isEnabledFor(logging.DEBUG):
                logging.getLogger("modelyzer").exception("error")
            click.echo(f"error: {shorten(one_line(str(err)))}", err=True)
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
COMMAND_MODULES = tuple(f"{__package__}.{name}" for name in
                        ("profile_cmd", "check_cmd", "report_cmd", "export_cmd", "plugins_cmd")) + (
    "modelyzer.frontends.web.command",  # `ui`: the web frontend's command (its server is imported when it runs)
)


def _register_frontend_commands() -> None:
    for name in COMMAND_MODULES:
        module = importlib.import_module(name)
        if not plugins.pm.is_registered(module):
            plugins.register_plugin(module, name)


_register_frontend_commands()
hooks.register_commands(cli)  # every command comes through the hook: the frontend's, built-ins', third parties'


def main() -> None:
    cli(prog_name="modelyzer")
