"""`model_config_parameters` checked against Triton's `inference.ModelConfig` schema when the config is loaded.

The walk follows the list semantics variants are expanded with (`plugins/search/common.py`): a list under a
singular field is a list of choices, a list under a repeated field (`instance_group`, `preferred_batch_size`) is
the field's value (a list of lists: choices of whole values), map values are singular. Every field name is looked
up in its message (snake_case or camelCase, as `json_format` accepts), every enum value in its enum, every scalar
checked against its type; counts and sizes must not be negative. `check_parameters()` returns the first problem as
(dotted key below `model_config_parameters`, one-line problem with the fix), so the kernel names the whole key
and the file; nothing here is 500 characters of protobuf.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from typing import Any

from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from tritonclient.grpc import model_config_pb2

Problem = tuple[str, str]

_INT_TYPES = {
    FieldDescriptor.CPPTYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.CPPTYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.CPPTYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.CPPTYPE_UINT64: (0, 2**64 - 1),
}
_FLOAT_TYPES = {FieldDescriptor.CPPTYPE_FLOAT, FieldDescriptor.CPPTYPE_DOUBLE}
#: counts and sizes among the signed fields: negative values mean nothing to Triton
NON_NEGATIVE = frozenset({"max_batch_size", "count", "preferred_batch_size", "max_queue_size",
                          "default_timeout_microseconds", "priority_levels", "default_priority_level",
                          "max_sequence_idle_microseconds", "max_candidate_sequences"})


class _Bad(Exception):
    def __init__(self, path: str, problem: str) -> None:
        super().__init__(path, problem)
        self.path, self.problem = path, problem


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _is_map(field: FieldDescriptor) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


def _field(descriptor: Descriptor, key: Any) -> FieldDescriptor | None:
    name = str(key)
    return descriptor.fields_by_name.get(name) or descriptor.fields_by_camelcase_name.get(name)


def _message(value: Any, descriptor: Descriptor, path: str) -> None:
    if value is None:
        return
    if not isinstance(value, Mapping):
        raise _Bad(path, f"must be a mapping of {descriptor.name} fields, got {_show(value)}")
    for key, item in value.items():
        at = _join(path, key)
        if not path and str(key).startswith("_"):
            continue  # modelyzer's private annotations, never written
        field = _field(descriptor, key)
        if field is None:
            names = [f.name for f in descriptor.fields]
            match = difflib.get_close_matches(str(key), names, n=1, cutoff=0.6)
            hint = f"did you mean {match[0]!r}?" if match else f"see Triton's {descriptor.name} message for its fields"
            owner = "Triton's model config" if not path else f"{path} ({descriptor.name})"
            raise _Bad(at, f"is not a field of {owner}; {hint}")
        _value(item, field, at)


def _value(value: Any, field: FieldDescriptor, path: str) -> None:
    if value is None:
        return
    if _is_map(field):
        if not isinstance(value, Mapping):
            raise _Bad(path, f"must be a mapping (key → {field.message_type.name} value), got {_show(value)}")
        value_field = field.message_type.fields_by_name["value"]
        for key, item in value.items():
            _singular(item, value_field, _join(path, key))
    elif field.is_repeated:
        if isinstance(value, list) and value and all(isinstance(v, list) for v in value):
            alternatives = value
        else:
            alternatives = [value if isinstance(value, list) else [value]]
        for alternative in alternatives:
            for element in alternative:
                _element(element, field, path)
    else:
        _singular(value, field, path)


def _singular(value: Any, field: FieldDescriptor, path: str) -> None:
    if isinstance(value, list):
        if not value:
            raise _Bad(path, "is an empty list of choices; give at least one value")
        for choice in value:
            _element(choice, field, path)
    else:
        _element(value, field, path)


def _element(value: Any, field: FieldDescriptor, path: str) -> None:
    if value is None:
        return
    if field.message_type is not None:
        _message(value, field.message_type, path)
    elif field.enum_type is not None:
        _enum(value, field.enum_type, path)
    elif field.cpp_type == FieldDescriptor.CPPTYPE_BOOL:
        if not isinstance(value, bool):
            raise _Bad(path, f"must be true or false, got {_show(value)}")
    elif field.cpp_type in _INT_TYPES:
        _integer(value, field, path)
    elif field.cpp_type in _FLOAT_TYPES:
        number = _number(value)
        if number is None or not math.isfinite(number):
            raise _Bad(path, f"must be a number, got {_show(value)}")
    elif not isinstance(value, str):
        raise _Bad(path, f"must be a string, got {_show(value)}; quote it (e.g. \"{value}\")")


def _enum(value: Any, enum: EnumDescriptor, path: str) -> None:
    names = [v.name for v in enum.values]
    if isinstance(value, str) and value in enum.values_by_name:
        return
    if isinstance(value, int) and not isinstance(value, bool) and value in enum.values_by_number:
        return
    match = difflib.get_close_matches(str(value).upper(), names, n=1, cutoff=0.6)
    hint = f"did you mean {match[0]!r}?" if match else "use one of them"
    raise _Bad(path, f"{_show(value)} is not one of {', '.join(names)}; {hint}")


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def _integer(value: Any, field: FieldDescriptor, path: str) -> None:
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str):
        try:
            number = int(value.strip())
        except ValueError:
            number = None
    if number is None:
        raise _Bad(path, f"must be an integer, got {_show(value)}")
    low, high = _INT_TYPES[field.cpp_type]
    if field.name in NON_NEGATIVE:
        low = max(low, 0)
    if number < low:
        raise _Bad(path, f"must not be negative, got {number}" if low == 0 else f"must be ≥ {low}, got {number}")
    if number > high:
        raise _Bad(path, f"must be ≤ {high}, got {number}")


def check_parameters(params: Mapping[str, Any]) -> Problem | None:
    """The first problem of a `model_config_parameters` tree, or None (see the module docstring)."""
    try:
        _message(params, model_config_pb2.ModelConfig.DESCRIPTOR, "")
    except _Bad as bad:
        return bad.path, bad.problem
    return None
