"""`modelyzer check`: validate a profile's config, paths, binaries and plugins without measuring, and print the plan.

The same code runs for `modelyzer profile --dry-run` (`run_check`). Exit 0 when everything is fine, 2 with one line
naming the problem otherwise; nothing is measured, no server started, no directory created, no results DB written.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click

from modelyzer.frontends.cli.options import collect_cli_overrides, profile_options
from modelyzer.kernel.config import load_profile_config
from modelyzer.kernel.dry_run import dry_run, plan_text
from modelyzer.kernel.hookspecs import hookimpl


def run_check(config_file: Any, kwargs: Mapping[str, Any]) -> None:
    """Load the config as `profile` would, dry-run it and print the plan (errors: one line, exit 2)."""
    config = load_profile_config(config_file, collect_cli_overrides(kwargs))
    for line in plan_text(dry_run(config)):
        click.echo(line)


@click.command()
@profile_options
def check(**kwargs: Any) -> None:
    """Check a profile without measuring: config, model repository, binaries, plugins, search space; print the plan."""
    run_check(kwargs.pop("config_file", None), kwargs)


@hookimpl
def register_commands(cli: Any) -> None:
    cli.add_command(check)
