"""`modelyzer plugins [--json]`: every plugin with its kind(s), registered names, version and hooks."""

from __future__ import annotations

import json
from typing import Any, cast

import click
from rich.console import Console
from rich.table import Table

from modelyzer.kernel import registry
from modelyzer.kernel.hookspecs import hookimpl
from modelyzer.kernel.plugins import load_plugins, plugin_version


def plugin_rows() -> list[dict[str, object]]:
    pm = load_plugins()
    provided: dict[str, list[str]] = {}
    kinds: dict[str, set[str]] = {}
    for kind in registry.KINDS:
        for entry in registry.registry(kind).values():
            provided.setdefault(entry.plugin_name, []).append(f"{registry.KIND_LABELS[kind]}:{entry.name}")
            kinds.setdefault(entry.plugin_name, set()).add(registry.KIND_LABELS[kind])
    rows: list[dict[str, object]] = []
    for name, plugin in sorted(pm.list_name_plugin()):
        hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])
        if "register_commands" in hooks:
            kinds.setdefault(name, set()).add("commands")
        rows.append(
            {
                "name": name,
                "kind": sorted(kinds.get(name, {"events"})),
                "provides": provided.get(name, []),
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
        table.add_column(header, overflow="fold")
    for row in rows:
        kinds, provides = cast(list[str], row["kind"]), cast(list[str], row["provides"])
        table.add_row(str(row["name"]), str(row["version"]), ", ".join(kinds), ", ".join(provides) or "-")
    Console(highlight=False, soft_wrap=False).print(table)


@hookimpl
def register_commands(cli: Any) -> None:
    cli.add_command(plugins)
