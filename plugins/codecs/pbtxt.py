"""The `pbtxt` model-config codec: Triton's `config.pbtxt` (protobuf text format) <-> a snake_case dict.

The schema is Triton's own `inference.ModelConfig` protobuf as shipped by `tritonclient`
(`tritonclient.grpc.model_config_pb2`), so every field Triton knows round-trips and a misspelt field is an
error naming the file and line.

Dict form: `json_format.MessageToDict(preserving_proto_field_name=True)` (snake_case keys, enums as their
names, fields at their default value omitted), with one change: 64-bit integer fields (`dims`,
`max_queue_delay_microseconds`, `preferred_batch_size`, …), which protobuf's JSON mapping turns into
strings, are converted back to Python ints, so sweeps, merges and hashes see `16`, never `"16"`. Map keys
stay strings (JSON object keys). `normalize()` brings any accepted dict (camelCase, int64-as-string, as in
Model Analyzer's checkpoints) into this canonical form. Top-level keys starting with `_` are private
annotations of modelyzer and are never written to the file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from google.protobuf import json_format, text_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from tritonclient.grpc import model_config_pb2

from modelyzer.kernel.errors import ConfigError
from modelyzer.kernel.hookspecs import hookimpl
from modelyzer.kernel.interfaces import ModelConfigCodec
from modelyzer.plugins.codecs.pbtxt_check import check_parameters

_INT64_TYPES = frozenset(
    {
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_UINT64,
        FieldDescriptor.TYPE_SINT64,
        FieldDescriptor.TYPE_FIXED64,
        FieldDescriptor.TYPE_SFIXED64,
    }
)
_POSITION = re.compile(r"^\d+:\d+ : ")


def _is_map(field: FieldDescriptor) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


def _convert(value: Any, field: FieldDescriptor) -> Any:
    if field.message_type is not None and isinstance(value, dict):
        return _ints(value, field.message_type)
    if field.type in _INT64_TYPES and isinstance(value, str):
        return int(value)
    return value


def _ints(data: dict[str, Any], descriptor: Descriptor) -> dict[str, Any]:
    """Turn the JSON mapping's int64 strings back into ints, guided by the message descriptor."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        field = descriptor.fields_by_name.get(key)
        if field is None:
            out[key] = value
        elif _is_map(field):
            value_field = field.message_type.fields_by_name["value"]
            out[key] = {k: _convert(v, value_field) for k, v in value.items()}
        elif isinstance(value, list):
            out[key] = [_convert(v, field) for v in value]
        else:
            out[key] = _convert(value, field)
    return out


def to_dict(message: model_config_pb2.ModelConfig) -> dict[str, Any]:
    """The canonical dict of a ModelConfig message (see the module docstring)."""
    raw = json_format.MessageToDict(message, preserving_proto_field_name=True)
    return _ints(raw, model_config_pb2.ModelConfig.DESCRIPTOR)


def to_message(config: dict[str, Any]) -> model_config_pb2.ModelConfig:
    """Parse a config dict (snake_case or camelCase; ints or int64 strings) into a ModelConfig message."""
    public = {k: v for k, v in config.items() if not str(k).startswith("_")}
    message = model_config_pb2.ModelConfig()
    try:
        json_format.ParseDict(public, message)
    except (json_format.ParseError, TypeError, ValueError) as err:
        name = config.get("name") or "?"
        raise ConfigError(f"invalid model config for model {name!r}: {_one_line(str(err))}") from err
    return message


def normalize(config: dict[str, Any]) -> dict[str, Any]:
    """The canonical form of a config dict (what `read()` would return after `write()`)."""
    return to_dict(to_message(config))


def _one_line(text: str) -> str:
    return " ".join(_POSITION.sub("", text).split())


class PbtxtCodec(ModelConfigCodec):
    """Reads and writes Triton `config.pbtxt` files through the `inference.ModelConfig` protobuf."""

    filename = "config.pbtxt"
    preference = 10  # Triton's format: the one reports and imports write when no model directory tells

    def read(self, path: Path) -> dict[str, Any]:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise ConfigError(f"{path}: cannot read model config: {err}") from err
        return self.loads(text, source=str(path))

    def loads(self, text: str, source: str = "<string>") -> dict[str, Any]:
        """Parse config.pbtxt text; `source` names the file in error messages."""
        message = model_config_pb2.ModelConfig()
        try:
            text_format.Parse(text, message)
        except text_format.ParseError as err:
            line = err.GetLine()
            where = f"{source}:{line}" if line is not None else source
            raise ConfigError(f"{where}: invalid model config: {_one_line(str(err))}") from err
        return to_dict(message)

    def dumps(self, config: dict[str, Any]) -> str:
        return str(text_format.MessageToString(to_message(config)))

    def write(self, config: dict[str, Any], path: Path) -> None:
        text = self.dumps(config)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)

    def normalize(self, config: dict[str, Any]) -> dict[str, Any]:
        return normalize(config)

    def check_parameters(self, params: Mapping[str, Any]) -> tuple[str, str] | None:
        return check_parameters(params)


@hookimpl
def register_model_config_codecs(register: Any) -> None:
    register("pbtxt", PbtxtCodec)
