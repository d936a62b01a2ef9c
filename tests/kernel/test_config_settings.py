"""Plugin-declared config keys (kernel/config_settings.py): typed, defaulted once, one-line errors, no clashes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import pytest

from modelyzer.kernel.config import config_from_dict
from modelyzer.kernel.errors import ConfigError, PluginError
from modelyzer.kernel.hookspecs import hookimpl
from modelyzer.plugins.agents.slots import agent_config, wire_config


@attrs.frozen
class ToolSettings:
    tool_path: Path | None = attrs.field(default=None, metadata={"help": "The tool's binary."})
    tool_retries: int = attrs.field(default=3, metadata={"help": "Retries."})
    tool_tags: list[str] = attrs.field(factory=list, metadata={"help": "Tags."})
    tool_fast: bool = False


def settings_plugin(register_plugin: Any, name: str, cls: type) -> None:
    class Plugin:
        @hookimpl
        def register_settings(self, register: Any) -> None:
            register(name, cls)

    register_plugin(Plugin(), f"settings-{name}")


def load(**values: Any) -> Any:
    return config_from_dict({"profile_models": "m", **values}, check_paths=False)


def test_declared_keys_parse_typed_and_default_once(register_plugin: Any) -> None:
    settings_plugin(register_plugin, "tool", ToolSettings)
    assert load().settings(ToolSettings) == ToolSettings()
    config = load(tool_path="/opt/tool", tool_retries="5", tool_tags="a,b", tool_fast="yes")
    assert config.settings(ToolSettings) == ToolSettings(Path("/opt/tool"), 5, ["a", "b"], True)
    assert config.to_dict()["tool_retries"] == 5 and "tool_retries" in config.user_set


def test_a_bad_value_is_a_one_line_error_naming_the_key(register_plugin: Any) -> None:
    settings_plugin(register_plugin, "tool", ToolSettings)
    with pytest.raises(ConfigError, match=r"^tool_retries: must be an integer, got 'many'"):
        load(tool_retries="many")
    with pytest.raises(ConfigError, match=r"^tool_retrys: unknown key; did you mean 'tool_retries'"):
        load(tool_retrys=1)


def test_plugin_keys_travel_to_agents(register_plugin: Any) -> None:
    settings_plugin(register_plugin, "tool", ToolSettings)
    wired = wire_config(load(tool_retries=7))
    assert wired["tool_retries"] == 7
    assert agent_config(wired).settings(ToolSettings).tool_retries == 7


def test_a_key_of_modelyzer_or_of_another_plugin_is_refused(register_plugin: Any) -> None:
    @attrs.frozen
    class Clash:
        client_max_retries: int = 1

    settings_plugin(register_plugin, "clash", Clash)
    with pytest.raises(PluginError, match="declares 'client_max_retries', a key of modelyzer itself"):
        load()


def test_two_plugins_declaring_one_key_are_named(register_plugin: Any) -> None:
    @attrs.frozen
    class Other:
        tool_retries: int = 9

    settings_plugin(register_plugin, "tool", ToolSettings)
    settings_plugin(register_plugin, "other", Other)
    with pytest.raises(PluginError, match="'tool_retries' is declared by settings 'other' and by settings 'tool'"):
        load()


def test_an_unsupported_type_is_refused(register_plugin: Any) -> None:
    @attrs.frozen
    class Odd:
        odd_mapping: dict[str, int] = attrs.field(factory=dict)

    settings_plugin(register_plugin, "odd", Odd)
    with pytest.raises(PluginError, match=r"Odd.odd_mapping: type .* is not a config type"):
        load()


@attrs.frozen
class BoundedSettings:
    bounded_slots: int = attrs.field(default=0, metadata={"help": "Slots.", "minimum": 0})
    bounded_share: float = attrs.field(default=0.5, metadata={"help": "Share.", "minimum": 0, "maximum": 1})


def test_declared_bounds_refuse_negative_counts(register_plugin: Any) -> None:
    settings_plugin(register_plugin, "bounded", BoundedSettings)
    assert load(bounded_slots=0, bounded_share=0).settings(BoundedSettings) == BoundedSettings(0, 0.0)
    with pytest.raises(ConfigError, match=r"^bounded_slots: must be a non-negative integer, got -1"):
        load(bounded_slots=-1)
    with pytest.raises(ConfigError, match=r"^bounded_share: must be a number <= 1, got 2"):
        load(bounded_share=2)
