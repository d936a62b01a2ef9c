"""Named registries filled by the `register_*` hooks, with provenance and duplicate detection.

`registry("launchers")` calls `register_launchers(register)` on every plugin, stamping each name with the
plugin that registered it; a second plugin registering the same name is a PluginError naming both.
"""

from __future__ import annotations

from typing import Any

import attrs

from modelyzer.kernel.errors import PluginError
from modelyzer.kernel.plugins import load_plugins, pm

KINDS: dict[str, str] = {
    "launchers": "register_launchers",
    "search_strategies": "register_search_strategies",
    "load_generators": "register_load_generators",
    "metric_collectors": "register_metric_collectors",
    "rankers": "register_rankers",
    "reporters": "register_reporters",
    "model_config_codecs": "register_model_config_codecs",
    "executors": "register_executors",
    "settings": "register_settings",
}

KIND_LABELS: dict[str, str] = {
    "launchers": "launcher",
    "search_strategies": "search strategy",
    "load_generators": "load generator",
    "metric_collectors": "metric collector",
    "rankers": "ranker",
    "reporters": "reporter",
    "model_config_codecs": "model-config codec",
    "executors": "executor",
    "settings": "settings",
}


@attrs.frozen
class Entry:
    kind: str
    name: str
    factory: Any
    plugin_name: str


def registry(kind: str) -> dict[str, Entry]:
    """Return `{name: Entry}` for one plugin kind (freshly collected: plugins may have been added)."""
    if kind not in KINDS:
        raise KeyError(kind)
    load_plugins()
    entries: dict[str, Entry] = {}
    hookcaller = getattr(pm.hook, KINDS[kind])
    for impl in hookcaller.get_hookimpls():
        plugin_name = impl.plugin_name

        def register(name: str, factory: Any, _plugin: str = plugin_name) -> None:
            if name in entries:
                other = entries[name].plugin_name
                raise PluginError(
                    f"duplicate {KIND_LABELS[kind]} {name!r}: registered by plugin {other!r} and by plugin "
                    f"{_plugin!r}; disable one with MODELYZER_DISABLE_PLUGINS"
                )
            entries[name] = Entry(kind, name, factory, _plugin)

        impl.function(register=register)
    return entries


def get(kind: str, name: str) -> Entry:
    entries = registry(kind)
    if name not in entries:
        known = ", ".join(sorted(entries)) or "none"
        raise PluginError(f"unknown {KIND_LABELS[kind]} {name!r}; known: {known}")
    return entries[name]
