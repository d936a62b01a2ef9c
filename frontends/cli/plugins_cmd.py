"""`modelyzer plugins [--json]`: every plugin with its kind(s), registered names, capabilities, version and hooks.

The capabilities are the class attributes the kernel chooses by (`Launcher.serves_metrics`,
`LoadGenerator.model_types`, …), read from each registered factory, so a user sees why a plugin was or was not
chosen; commands are listed by the names a plugin adds.
"""

from __future__ import annotations

import json
from typing import Any, cast

import click
from rich.console import Console
from rich.table import Table

from modelyzer.kernel import registry
from modelyzer.kernel.hookspecs import hookimpl
from modelyzer.kernel.interfaces import Launcher, LoadGenerator, MetricCollector, ModelConfigCodec, Reporter
from modelyzer.kernel.plugins import load_plugins, plugin_version

#: the interface of each kind: its ClassVar capabilities are what `capabilities()` reports
INTERFACES: dict[str, type] = {
    "launchers": Launcher, "load_generators": LoadGenerator, "metric_collectors": MetricCollector,
    "reporters": Reporter, "model_config_codecs": ModelConfigCodec,
}


def _jsonable(value: Any) -> Any:
    if isinstance(value, frozenset | set | tuple | list):
        return sorted(str(v) for v in value)
    return value if isinstance(value, bool | int | float | str) or value is None else str(value)


def capabilities(kind: str, factory: Any) -> dict[str, Any]:
    """The capability values a registered factory declares (its class's, inherited ones included)."""
    base = INTERFACES.get(kind)
    if base is None or not isinstance(factory, type) or not issubclass(factory, base):
        return {}
    names = [n for n, v in vars(base).items() if not n.startswith("_") and not callable(v)
             and isinstance(v, bool | int | float | str | frozenset | tuple) and n not in ("server_starts", "model_loads")]
    return {n: _jsonable(getattr(factory, n)) for n in names}


def commands_of(plugin: Any) -> list[str]:
    """The command names one plugin adds (its `register_commands` run against a scratch group)."""
    hook = getattr(plugin, "register_commands", None)
    if hook is None:
        return []
    scratch = click.Group()
    hook(cli=scratch)
    return sorted(scratch.commands)


def plugin_rows() -> list[dict[str, object]]:
    pm = load_plugins()
    provided: dict[str, list[str]] = {}
    kinds: dict[str, set[str]] = {}
    declared: dict[str, dict[str, dict[str, Any]]] = {}
    for kind in registry.KINDS:
        for entry in registry.registry(kind).values():
            label = f"{registry.KIND_LABELS[kind]}:{entry.name}"
            provided.setdefault(entry.plugin_name, []).append(label)
            kinds.setdefault(entry.plugin_name, set()).add(registry.KIND_LABELS[kind])
            caps = capabilities(kind, entry.factory)
            if caps:
                declared.setdefault(entry.plugin_name, {})[label] = caps
    rows: list[dict[str, object]] = []
    for name, plugin in sorted(pm.list_name_plugin()):
        hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])
        if "register_commands" in hooks:
            kinds.setdefault(name, set()).add("commands")
            provided.setdefault(name, []).extend(f"command:{c}" for c in commands_of(plugin))
        rows.append(
            {
                "name": name,
                "kind": sorted(kinds.get(name, {"events"})),
                "provides": provided.get(name, []),
                "capabilities": declared.get(name, {}),
                "version": plugin_version(plugin),
                "hooks": hooks,
            }
        )
    return rows


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def plugins(as_json: bool) -> None:
    """List installed plugins: kind, name, version and hooks."""
    rows = plugin_rows()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(box=None, pad_edge=False)
    for header in ("plugin", "version", "kind", "provides"):
        table.add_column(header, no_wrap=header != "provides", overflow="fold")
    for row in rows:
        kinds, provides = cast(list[str], row["kind"]), cast(list[str], row["provides"])
        table.add_row(str(row["name"]), str(row["version"]), ", ".join(kinds), ", ".join(provides) or "-")
    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=200)  # a pipe or a file: no terminal width to fit
    console.print(table)


@hookimpl
def register_commands(cli: Any) -> None:
    cli.add_command(plugins)
