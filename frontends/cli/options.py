"""Shared click options, generated from the config field table (`kernel/config_fields.py`).

`profile_options` / `report_options` add one option per non-YAML-only key of that command: the kebab-case
key as the long flag plus Model Analyzer's short flags, the field's help text with its default, and
`default=None` so a value the user did not give is absent from `collect_cli_overrides()`. Boolean keys are
`--key/--no-key` flags, so the command line can also switch off what a YAML file switched on. Values reach
the kernel as click delivers them (strings); the kernel parses them, so errors name the key the same way
for YAML and CLI.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import click

from modelyzer.kernel.config import ProfileConfig, load_profile_config
from modelyzer.kernel.config_fields import FIELDS, FIELDS_LIST, Field
from modelyzer.kernel.config_settings import plugin_fields

F = TypeVar("F", bound=Callable[..., Any])

METAVARS = {
    "int": "INTEGER", "float": "NUMBER", "str": "TEXT", "path": "PATH", "int_list": "LIST",
    "str_list": "LIST", "models": "MODELS", "plugin": "NAME", "tree": "LIST",
}


def option_for(field: Field) -> Callable[[F], F]:
    """The click option of one field."""
    help_text = f"{field.help} [default: {field.default_text()}]"
    if field.kind == "bool":
        flags = f"{field.flag}/--no-{field.flag[2:]}"
        decls = (field.short, flags) if field.short else (flags,)
        return click.option(*decls, field.name, default=None, show_default=True, help=help_text)
    metavar = "[" + "|".join(field.choices) + "]" if field.kind == "choice" else METAVARS.get(field.kind, "TEXT")
    return click.option(*field.flags, field.name, default=None, show_default=True, metavar=metavar,
                        help=help_text)


def options_for(command: str) -> Callable[[F], F]:
    """A decorator adding every CLI option of `command` ("profile" or "report"), in table order, then the keys
    installed plugins declare (`register_settings`)."""
    fields = [f for f in (*FIELDS_LIST, *plugin_fields().values()) if f.cli and command in f.commands]

    def decorate(func: F) -> F:
        for field in reversed(fields):
            func = option_for(field)(func)
        return func

    return decorate


def profile_options(func: F) -> F:
    """Add every `profile` option (one per non-YAML-only key)."""
    return options_for("profile")(func)


def report_options(func: F) -> F:
    """Add every `report` option."""
    return options_for("report")(func)


def collect_cli_overrides(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The config values the user set on the command line (field name → raw value); others dropped."""
    known = FIELDS.keys() | plugin_fields().keys()
    return {key: value for key, value in kwargs.items() if key in known and value is not None}


def config_from_cli(kwargs: Mapping[str, Any], *, check_paths: bool = True, command: str = "profile") -> ProfileConfig:
    """Load the config for a command from its click kwargs (`-f` names the YAML file)."""
    overrides = collect_cli_overrides(kwargs)
    return load_profile_config(overrides.pop("config_file", None), overrides, check_paths=check_paths,
                               command=command)


__all__ = ["collect_cli_overrides", "config_from_cli", "option_for", "options_for", "profile_options",
           "report_options"]
