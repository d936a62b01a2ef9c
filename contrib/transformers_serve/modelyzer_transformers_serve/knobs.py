"""The server knobs of `transformers serve` a variant may set, and their command-line flags.

A variant's model config sets them in `parameters` (Triton's ModelConfig map, so they sweep with
`model_config_parameters` and survive the config.pbtxt codec), each value a plain scalar or Triton's
`{"string_value": "..."}`:

| parameter | flag | values |
|---|---|---|
| `continuous_batching` | `--[no-]continuous-batching` | true / false (paged attention; starts in ~45 s on 2 cores) |
| `attn_implementation` | `--attn-implementation` | `eager`, `sdpa`, ... |
| `dtype` | `--dtype` | `auto`, `float32`, `bfloat16`, `float16` |
| `compile` | `--[no-]compile` | true / false (torch.compile) |
| `max_model_len` | `--max-model-len` | tokens (prompt + answer) |
| `cb_block_size`, `cb_num_blocks`, `cb_max_batch_tokens` | `--cb-...` | continuous batching's KV cache |
| `api_server_count` | `--api-server-count` | HTTP worker processes |
| `default_seed` | `--default-seed` | torch seed |

Every other config field (instance_group, max_batch_size, dynamic_batching, ...) has no meaning for this server
and is ignored. An unknown parameter or a bad value is a LaunchError naming it. Knobs the variant does not set are
left to the server's defaults (not passed).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modelyzer.kernel.errors import LaunchError

BOOL, INT, STR = "bool", "int", "str"
KNOBS: dict[str, str] = {
    "continuous_batching": BOOL,
    "attn_implementation": STR,
    "dtype": STR,
    "compile": BOOL,
    "max_model_len": INT,
    "cb_block_size": INT,
    "cb_num_blocks": INT,
    "cb_max_batch_tokens": INT,
    "api_server_count": INT,
    "default_seed": INT,
}
TRUE, FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


def _scalar(value: Any) -> Any:
    if isinstance(value, Mapping):  # Triton's ModelParameter {"string_value": ...}
        if set(value) != {"string_value"}:
            raise ValueError(f"expected a value or {{string_value: ...}}, got {dict(value)!r}")
        return value["string_value"]
    return value


def _parse(kind: str, value: Any) -> bool | int | str:
    if kind == BOOL:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in TRUE or text in FALSE:
            return text in TRUE
        raise ValueError(f"expected true or false, got {value!r}")
    if kind == INT:
        if isinstance(value, bool) or not str(value).strip().lstrip("-").isdigit():
            raise ValueError(f"expected an integer, got {value!r}")
        return int(str(value).strip())
    text = str(value).strip()
    if not text:
        raise ValueError("expected a non-empty string")
    return text


def knobs_of(config: Mapping[str, Any], variant: str = "") -> dict[str, bool | int | str]:
    """The server knobs a variant's model config sets (`parameters`), parsed; LaunchError naming a bad one."""
    where = f" of {variant}" if variant else ""
    params = config.get("parameters") or {}
    if not isinstance(params, Mapping):
        raise LaunchError(f"transformers_serve: model config `parameters`{where} must be a mapping, got {params!r}")
    out: dict[str, bool | int | str] = {}
    for name, raw in sorted(params.items()):
        kind = KNOBS.get(str(name))
        if kind is None:
            raise LaunchError(
                f"transformers_serve: unknown server knob parameters.{name}{where}; known: {', '.join(KNOBS)}"
            )
        try:
            out[str(name)] = _parse(kind, _scalar(raw))
        except ValueError as err:
            raise LaunchError(f"transformers_serve: parameters.{name}{where}: {err}") from None
    return out


def flags_of(knobs: Mapping[str, bool | int | str]) -> list[str]:
    """`transformers serve` command-line flags for parsed knobs (in a stable order)."""
    argv: list[str] = []
    for name in sorted(knobs):
        value, flag = knobs[name], "--" + name.replace("_", "-")
        if isinstance(value, bool):
            argv.append(flag if value else f"--no-{name.replace('_', '-')}")
        else:
            argv += [flag, str(value)]
    return argv
