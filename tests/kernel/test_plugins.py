"""The plugin manager: built-ins, entry points, allow/block lists, duplicates, check_pending."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

import pluggy
import pytest

from modelyzer.kernel import registry
from modelyzer.kernel.errors import PluginError
from modelyzer.kernel.hookspecs import hookimpl
from modelyzer.kernel.plugins import DEFAULT_PLUGINS, load_plugins
from tests.conftest import modelyzer_cmd


def plugins_json(**env: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        [*modelyzer_cmd(), "plugins", "--json"], env={**os.environ, **env}, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def test_every_default_plugin_is_registered() -> None:
    pm = load_plugins()
    for name in DEFAULT_PLUGINS:
        assert pm.get_plugin(name) is not None, name


def test_plugins_json_lists_kind_name_version_hooks() -> None:
    rows = {r["name"]: r for r in plugins_json()}
    pbtxt = rows["modelyzer.plugins.codecs.pbtxt"]
    assert pbtxt["kind"] == ["model-config codec"] and pbtxt["hooks"] == ["register_model_config_codecs"]
    assert pbtxt["version"]
    assert "launcher:mlserver" in rows["mlserver"]["provides"]  # the contrib plugin, via its entry point


def test_env_allow_and_block_lists() -> None:
    names = {r["name"] for r in plugins_json(MODELYZER_LOAD_PLUGINS="")}
    assert "mlserver" not in names and "modelyzer.plugins.search.brute" in names
    names = {r["name"] for r in plugins_json(MODELYZER_DISABLE_PLUGINS="mlserver,csv_tables")}
    assert "mlserver" not in names and "modelyzer.plugins.reporters.csv_tables" not in names


class _Dup:
    @hookimpl
    def register_rankers(self, register: Any) -> None:
        register("weighted", object)


def test_duplicate_name_names_both_plugins(register_plugin: Any) -> None:
    register_plugin(_Dup(), "dup-ranker")
    with pytest.raises(PluginError, match=r"duplicate ranker 'weighted'.*rankers.weighted.*dup-ranker"):
        registry.registry("rankers")


class _Misspelt:
    @hookimpl
    def register_launcherz(self, register: Any) -> None:  # not a hook
        pass


def test_misspelt_hook_fails_loudly(register_plugin: Any) -> None:
    with pytest.raises(pluggy.PluginValidationError, match="register_launcherz"):
        register_plugin(_Misspelt(), "misspelt")


def test_unknown_name_lists_known_ones() -> None:
    with pytest.raises(PluginError, match="unknown launcher 'nope'; known: .*remote"):
        registry.get("launchers", "nope")
