"""The pluggy plugin manager: built-in plugins, entry-point plugins, allow/block lists.

Built-ins are ordinary plugins named in DEFAULT_PLUGINS; the kernel never imports them directly (only by
name, here). Third-party plugins come from the `modelyzer` entry-point group. Environment controls:
`MODELYZER_LOAD_PLUGINS=a,b` loads only those entry-point plugins (empty string: none);
`MODELYZER_DISABLE_PLUGINS=a,b` blocks plugins (built-in or external) by name.
"""

from __future__ import annotations

import importlib
import os
import sys
from importlib import metadata
from typing import Any

import pluggy

from modelyzer.kernel import hookspecs
from modelyzer.kernel.errors import PluginError

DEFAULT_PLUGINS: tuple[str, ...] = (
    "modelyzer.plugins.codecs.pbtxt",
    "modelyzer.plugins.search.brute",
    "modelyzer.plugins.search.quick",
    "modelyzer.plugins.search.optuna",
    "modelyzer.plugins.loadgen.perf_analyzer",
    "modelyzer.plugins.loadgen.llm_common",
    "modelyzer.plugins.loadgen.genai_perf",
    "modelyzer.plugins.loadgen.aiperf",
    "modelyzer.plugins.launchers.remote",
    "modelyzer.plugins.launchers.replay",
    "modelyzer.plugins.launchers.local",
    "modelyzer.plugins.launchers.docker",
    "modelyzer.plugins.launchers.c_api",
    "modelyzer.plugins.collectors.cpu",
    "modelyzer.plugins.collectors.nvml",
    "modelyzer.plugins.collectors.triton_metrics",
    "modelyzer.plugins.collectors.triton_cpu",
    "modelyzer.plugins.collectors.triton_composing",
    "modelyzer.plugins.collectors.dali",
    "modelyzer.plugins.rankers.weighted",
    "modelyzer.plugins.reporters.csv_tables",
    "modelyzer.plugins.reporters.summary",
    "modelyzer.plugins.reporters.detailed",
    "modelyzer.plugins.reporters.best_config",
    "modelyzer.plugins.executors.local",
    "modelyzer.plugins.agents.plugin",
    "modelyzer.plugins.ray.plugin",
    "modelyzer.plugins.importers.commands",
)

pm = pluggy.PluginManager("modelyzer")
pm.add_hookspecs(hookspecs)

_loaded = False


def _names(env: str) -> set[str] | None:
    value = os.environ.get(env)
    if value is None:
        return None
    return {v.strip() for v in value.split(",") if v.strip()}


def load_plugins() -> pluggy.PluginManager:
    """Register built-in and entry-point plugins once (idempotent) and check that every hook exists."""
    global _loaded
    if _loaded:
        return pm
    blocked = _names("MODELYZER_DISABLE_PLUGINS") or set()
    allowed = _names("MODELYZER_LOAD_PLUGINS")
    if not getattr(sys, "_modelyzer_skip_entrypoints", False):
        for dist in metadata.distributions():
            for ep in dist.entry_points:
                if ep.group != "modelyzer":
                    continue
                if ep.name in blocked or (allowed is not None and ep.name not in allowed):
                    continue
                if pm.get_plugin(ep.name) is not None or pm.is_blocked(ep.name):
                    continue
                try:
                    plugin = ep.load()
                except Exception as err:
                    raise PluginError(
                        f"plugin {ep.name!r} (from {dist.metadata['Name']}) failed to import: {err}; "
                        f"fix or uninstall it, or set MODELYZER_DISABLE_PLUGINS={ep.name}"
                    ) from err
                pm.register(plugin, name=ep.name)
                pm._plugin_distinfo.append((plugin, pluggy._manager.DistFacade(dist)))  # type: ignore[attr-defined,arg-type]
    for module_name in DEFAULT_PLUGINS:
        parts = module_name.split(".")
        if {module_name, parts[-1], ".".join(parts[-2:])} & blocked:
            continue
        if pm.get_plugin(module_name) is None:
            pm.register(importlib.import_module(module_name), name=module_name)
    pm.check_pending()
    _loaded = True
    return pm


def register_plugin(plugin: Any, name: str) -> None:
    """Register an extra plugin object (tests, embedding applications); `check_pending()` runs again."""
    load_plugins()
    pm.register(plugin, name=name)
    pm.check_pending()


def unregister_plugin(name: str) -> None:
    plugin = pm.get_plugin(name)
    if plugin is not None:
        pm.unregister(plugin)


def plugin_version(plugin: Any) -> str:
    for dist_plugin, dist in pm.list_plugin_distinfo():
        if dist_plugin is plugin:
            return str(dist.version)
    from modelyzer.kernel import __version__

    return __version__
