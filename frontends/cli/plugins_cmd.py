"""`modelyzer plugins [--json]`: every plugin with its kind(s), registered names, version and hooks."""

from __future__ import annotations

import json

import click

from modelyzer.kernel import registry
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
    for row in rows:
        provides = ", ".join(row["provides"]) or "-"  # type: ignore[arg-type]
        click.echo(f"{row['name']}  {row['version']}  [{', '.join(row['kind'])}]  {provides}")  # type: ignore[arg-type]
