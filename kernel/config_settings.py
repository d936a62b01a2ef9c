"""Plugin settings: config keys a plugin declares, parsed and documented like modelyzer's own.

A plugin registers an attrs class (`register_settings`): each attribute is one config key — its name the key
(unique across modelyzer's keys and every plugin's), its annotation the type (str, int, float, bool, Path,
list[str], list[int], optionally `| None`), its default the one default, `metadata={"help": …}` the help text,
`metadata={"minimum": 0}` (and `"maximum"`) the bounds of a number (a count or a timeout is never negative).
Users set the keys in the YAML file or as `--kebab-case` flags; the loader parses them with the same parsers and
one-line errors as every other key, and the plugin reads a typed view: `config.settings(MySettings)`.

A `dict[str, Any]` attribute is a mapping of extra command-line flags of the plugin's tool (like
`perf_analyzer_flags`): set only in the YAML file, its keys checked against `metadata={"flags": frozenset(...)}`
(any key when absent); `metadata={"tool": "aiperf"}` names the tool in the error.
"""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any

import attrs

from modelyzer.kernel import registry
from modelyzer.kernel.config_fields import FIELDS, Field
from modelyzer.kernel.config_values import Where, parse_flag_dict
from modelyzer.kernel.errors import PluginError

#: annotation → field kind (the parser of `config_fields.Field.parse`)
KINDS: dict[Any, str] = {str: "str", int: "int", float: "float", bool: "bool", Path: "path",
                         list[str]: "str_list", list[int]: "int_list", dict[str, Any]: "dict"}


@attrs.frozen
class FlagsField(Field):
    """A plugin's flag mapping (a `dict[str, Any]` setting): YAML only, keys checked against its whitelist."""

    allowed: frozenset[str] | None = None
    tool: str = ""

    def parse(self, value: Any, where: Where) -> Any:
        hint = f" of {self.tool} (kebab-case)" if self.tool else ""
        return parse_flag_dict(value, where, self.allowed, hint=hint)


def _kind(cls: type, attribute: attrs.Attribute[Any], hints: dict[str, Any]) -> str:
    hint = hints.get(attribute.name)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        hint = options[0] if len(options) == 1 else hint
    kind = KINDS.get(hint)
    if kind is None:
        raise PluginError(f"settings {cls.__name__}.{attribute.name}: type {hint!r} is not a config type; use one "
                          "of str, int, float, bool, Path, list[str], list[int], dict[str, Any]")
    return kind


def _default(attribute: attrs.Attribute[Any]) -> Any:
    default: Any = attribute.default
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        return default.factory()
    return None if default is attrs.NOTHING else default


def settings_fields(name: str, cls: type) -> list[Field]:
    """The config fields of one registered settings class (section "Plugin <name>")."""
    if not attrs.has(cls):
        raise PluginError(f"settings {name!r}: {cls!r} is not an attrs class; declare it with @attrs.frozen")
    hints = typing.get_type_hints(cls)
    out: list[Field] = []
    for a in attrs.fields(cls):
        kind, help_text = _kind(cls, a, hints), str(a.metadata.get("help", ""))
        common: dict[str, Any] = {"default": _default(a), "section": f"Plugin {name}", "commands": ("profile", "report")}
        if kind == "dict":
            flags = a.metadata.get("flags")
            out.append(FlagsField(a.name, kind, help_text, yaml_only=True, tool=str(a.metadata.get("tool", "")),
                                  allowed=frozenset(flags) if flags is not None else None, **common))
        else:
            low, high = (a.metadata.get(k) for k in ("minimum", "maximum"))
            out.append(Field(a.name, kind, help_text, zero_ok=True, minimum=None if low is None else float(low),
                             maximum=None if high is None else float(high), **common))
    return out


def plugin_fields() -> dict[str, Field]:
    """Every plugin-declared key; a key that modelyzer or another plugin already has is an error naming both."""
    out: dict[str, Field] = {}
    owner: dict[str, str] = {}
    for name, entry in sorted(registry.registry("settings").items()):
        for field in settings_fields(name, entry.factory):
            if field.name in FIELDS:
                raise PluginError(f"settings {name!r} (plugin {entry.plugin_name!r}) declares {field.name!r}, a key of "
                                  "modelyzer itself; rename it")
            if field.name in out:
                raise PluginError(f"config key {field.name!r} is declared by settings {owner[field.name]!r} and by "
                                  f"settings {name!r}; disable one plugin with MODELYZER_DISABLE_PLUGINS")
            out[field.name], owner[field.name] = field, name
    return out


T = typing.TypeVar("T")


def view(cls: type[T], values: typing.Mapping[str, Any]) -> T:
    """A settings object built from the resolved plugin values (defaults for keys not set)."""
    known = {a.name for a in attrs.fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in values.items() if k in known})
