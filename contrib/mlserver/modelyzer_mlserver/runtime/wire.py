"""Protobuf wire encoding of the few Triton gRPC messages the MLServer extension serves, by hand.

Why by hand: the MLServer process already holds KServe's `inference.*` protos in the default descriptor pool,
and importing tritonclient's copies there fails ("duplicate symbol 'inference.ServerLiveRequest'"). The
messages needed are tiny, so this module writes/reads their wire format with the standard library only:

- `ModelConfigRequest` / `ModelStatisticsRequest` {string name = 1; string version = 2;}
- `ModelConfigResponse` {ModelConfig config = 1;} — the ModelConfig bytes are made by the launcher (with
  tritonclient's real `model_config.proto`, in the project's venv) and passed through untouched.
- `ModelStatisticsResponse` and everything below it (field numbers of Triton's grpc_service.proto).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

_VARINT = 0
_LEN = 2


def _varint(value: int) -> bytes:
    if value < 0:  # negative int64 as protobuf does: 10-byte two's complement
        value += 1 << 64
    out = bytearray()
    while True:
        bits = value & 0x7F
        value >>= 7
        if value:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


def _key(field: int, wire_type: int) -> bytes:
    return _varint((field << 3) | wire_type)


def uint_field(field: int, value: int) -> bytes:
    """A varint field; proto3 omits zero values."""
    return _key(field, _VARINT) + _varint(int(value)) if value else b""


def bytes_field(field: int, value: bytes, keep_empty: bool = False) -> bytes:
    """A length-delimited field (string, bytes or embedded message)."""
    if not value and not keep_empty:
        return b""
    return _key(field, _LEN) + _varint(len(value)) + value


def string_field(field: int, value: str) -> bytes:
    return bytes_field(field, value.encode())


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def parse_fields(data: bytes) -> dict[int, list[Any]]:
    """Decode one message level: field number → list of values (ints for varints, bytes otherwise)."""
    fields: dict[int, list[Any]] = {}
    pos = 0
    while pos < len(data):
        key, pos = _read_varint(data, pos)
        number, wire_type = key >> 3, key & 7
        value: Any
        if wire_type == _VARINT:
            value, pos = _read_varint(data, pos)
        elif wire_type == _LEN:
            length, pos = _read_varint(data, pos)
            value, pos = data[pos : pos + length], pos + length
        elif wire_type == 1:
            value, pos = data[pos : pos + 8], pos + 8
        elif wire_type == 5:
            value, pos = data[pos : pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported wire type {wire_type}")
        fields.setdefault(number, []).append(value)
    return fields


def decode_name_version(data: bytes) -> tuple[str, str]:
    """(name, version) of a ModelConfigRequest or ModelStatisticsRequest."""
    fields = parse_fields(data)
    name = fields.get(1, [b""])[-1]
    version = fields.get(2, [b""])[-1]
    return bytes(name).decode(), bytes(version).decode()


def encode_model_config_response(model_config: bytes) -> bytes:
    """ModelConfigResponse around already-serialized ModelConfig bytes."""
    return bytes_field(1, model_config, keep_empty=True)


def _duration(value: Mapping[str, int]) -> bytes:
    return uint_field(1, value.get("count", 0)) + uint_field(2, value.get("ns", 0))


_INFER_STAT_FIELDS = (
    ("success", 1),
    ("fail", 2),
    ("queue", 3),
    ("compute_input", 4),
    ("compute_infer", 5),
    ("compute_output", 6),
    ("cache_hit", 7),
    ("cache_miss", 8),
)
_BATCH_STAT_FIELDS = (("compute_input", 2), ("compute_infer", 3), ("compute_output", 4))


def encode_model_statistics(stats: Mapping[str, Any]) -> bytes:
    """One ModelStatistics from its Triton-JSON form (as `stats.ModelStats.to_json` returns it)."""
    infer = stats.get("inference_stats", {})
    infer_bytes = b"".join(
        bytes_field(number, _duration(infer.get(name, {}))) for name, number in _INFER_STAT_FIELDS
    )
    batch_bytes = b""
    for batch in stats.get("batch_stats", []):
        body = uint_field(1, batch.get("batch_size", 0)) + b"".join(
            bytes_field(number, _duration(batch.get(name, {}))) for name, number in _BATCH_STAT_FIELDS
        )
        batch_bytes += bytes_field(7, body, keep_empty=True)
    return (
        string_field(1, str(stats.get("name", "")))
        + string_field(2, str(stats.get("version", "")))
        + uint_field(3, stats.get("last_inference", 0))
        + uint_field(4, stats.get("inference_count", 0))
        + uint_field(5, stats.get("execution_count", 0))
        + bytes_field(6, infer_bytes, keep_empty=True)
        + batch_bytes
    )


def encode_statistics_response(model_stats: Iterable[Mapping[str, Any]]) -> bytes:
    """ModelStatisticsResponse {repeated ModelStatistics model_stats = 1;}."""
    return b"".join(bytes_field(1, encode_model_statistics(s), keep_empty=True) for s in model_stats)
