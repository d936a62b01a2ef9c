"""Triton model config → MLServer settings: the pure mapping, no processes (unit-tested on its own).

| Triton (variant config)                             | MLServer                                                 |
|-----------------------------------------------------|----------------------------------------------------------|
| `dynamic_batching` + `max_batch_size` > 0           | adaptive batching: `max_batch_size` = requests per batch |
|   `max_queue_delay_microseconds`                    |   `max_batch_time` in seconds (0 → 1 µs: MLServer turns  |
|                                                     |   batching off at 0; 1 µs batches what is queued, as     |
|                                                     |   Triton does with no delay)                             |
|   `preferred_batch_size`                            |   no equivalent (ignored)                                |
| no `dynamic_batching`                               | no adaptive batching                                     |
| `instance_group` count N (summed over groups)       | server-wide `parallel_workers`: 1 → 0 (in-process), N    |
| `parameters.intra_op_thread_count`/`inter_op_…`     | onnxruntime session threads (default 1 / 0: measured     |
|                                                     |   ~540 vs ~390 infer/s against ORT's default of one      |
|                                                     |   thread per core, which competes with the client)       |
| `optimization.execution_accelerators`               | `openvino` (Triton's ORT OpenVINO accelerator field):    |
|   `.cpu_execution_accelerator [{name: "openvino",   |   the OpenVINO runtime (`runtime/openvino_runtime.py`),  |
|   parameters {...}}]`                               |   its parameters passed to `compile_model`; no entry:    |
|                                                     |   onnxruntime; any other name is refused                 |
| `input`/`output` (dims, data_type)                  | model-settings `inputs`/`outputs` metadata               |
| the rest of the config                              | served verbatim by the extension (ModelConfig RPC, JSON) |

MLServer batches *requests*, Triton batches *samples*: with client batch size b the request limit is
`max_batch_size // b` (batching is off when that is 1 or less).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelyzer.kernel.errors import ModelLoadError

RUNTIME_PACKAGE = "modelyzer_rt"
IMPLEMENTATION = f"{RUNTIME_PACKAGE}.onnx_runtime.OnnxRuntime"
OPENVINO_IMPLEMENTATION = f"{RUNTIME_PACKAGE}.openvino_runtime.OpenVinoRuntime"
#: the CPU execution accelerators the runtime serves (the launcher's `cpu_accelerators` capability)
CPU_ACCELERATORS = ("openvino",)
#: the model-settings extra key naming the file where an accelerated runtime writes its compiled properties
ACCELERATOR_REPORT = "openvino_report"
EXTENSIONS = ["model_repository", "model_configuration", "statistics"]
DEFAULT_INTRA_OP_THREADS = 1
MIN_BATCH_TIME_S = 1e-6

_TRITON_TO_V2 = {
    "TYPE_BOOL": "BOOL",
    "TYPE_UINT8": "UINT8",
    "TYPE_UINT16": "UINT16",
    "TYPE_UINT32": "UINT32",
    "TYPE_UINT64": "UINT64",
    "TYPE_INT8": "INT8",
    "TYPE_INT16": "INT16",
    "TYPE_INT32": "INT32",
    "TYPE_INT64": "INT64",
    "TYPE_FP16": "FP16",
    "TYPE_FP32": "FP32",
    "TYPE_FP64": "FP64",
    "TYPE_STRING": "BYTES",
}
_ONNX_PLATFORMS = {"onnxruntime_onnx"}
_ONNX_BACKENDS = {"onnxruntime"}


@dataclass(frozen=True)
class Batching:
    """MLServer adaptive batching settings of one model."""

    max_batch_size: int
    max_batch_time: float


def adaptive_batching(config: dict[str, Any], client_batch_size: int = 1) -> Batching | None:
    """The adaptive batching that matches the variant's dynamic batching, or None (no batching)."""
    max_batch = int(config.get("max_batch_size", 0) or 0)
    dynamic = config.get("dynamic_batching")
    if dynamic is None or max_batch <= 0:
        return None
    requests = max_batch // max(1, int(client_batch_size or 1))
    if requests <= 1:
        return None
    delay_us = int((dynamic or {}).get("max_queue_delay_microseconds", 0) or 0)
    return Batching(max_batch_size=requests, max_batch_time=max(delay_us / 1e6, MIN_BATCH_TIME_S))


def instance_count(config: dict[str, Any]) -> int:
    groups = config.get("instance_group") or []
    return sum(int(g.get("count", 1) or 1) for g in groups) if groups else 1


def parallel_workers(config: dict[str, Any]) -> int:
    """Server-wide worker processes for the variant: 0 (inference in the server process) for one instance.

    Measured with perf_analyzer (gRPC, concurrency 2, quick-start model, 2 shared cores): 0 workers ~540
    infer/s, 1 worker ~300-350 infer/s with ~3 ms of extra server queue time (each request crosses a process
    boundary twice). In-process inference also keeps every statistic in one process, so one instance maps to 0.
    """
    count = instance_count(config)
    return 0 if count <= 1 else count


def _parameter(config: dict[str, Any], key: str) -> str | None:
    value = (config.get("parameters") or {}).get(key)
    if isinstance(value, dict):
        value = value.get("string_value")
    return None if value is None else str(value)


def thread_counts(config: dict[str, Any]) -> dict[str, int]:
    """onnxruntime session threads from the Triton onnxruntime backend's config parameters."""
    out = {"intra_op_thread_count": DEFAULT_INTRA_OP_THREADS, "inter_op_thread_count": 0}
    for key in out:
        raw = _parameter(config, key)
        if raw is not None:
            try:
                out[key] = max(0, int(raw))
            except ValueError as err:
                raise ModelLoadError(f"config parameter {key} must be an integer, got {raw!r}") from err
    return out


def cpu_accelerator(config: dict[str, Any]) -> tuple[str, dict[str, str]] | None:
    """(name, parameters) of the variant's CPU execution accelerator, or None (plain onnxruntime)."""
    optimization = config.get("optimization") or {}
    entries = (optimization.get("execution_accelerators") or {}).get("cpu_execution_accelerator") or []
    if not entries:
        return None
    if len(entries) > 1:
        raise ModelLoadError(
            f"the mlserver launcher runs one CPU execution accelerator per model, the config lists {len(entries)}"
        )
    entry = entries[0] if isinstance(entries[0], dict) else {}
    name = str(entry.get("name", ""))
    if name not in CPU_ACCELERATORS:
        raise ModelLoadError(
            f"cpu_execution_accelerator {name!r} is not run by the mlserver launcher "
            f"(it runs: {', '.join(CPU_ACCELERATORS)})"
        )
    return name, {str(k): str(v) for k, v in (entry.get("parameters") or {}).items()}


def find_model_file(variant_dir: Path, config: dict[str, Any]) -> tuple[Path, str]:
    """(model file, version) of a Triton-layout model folder: the highest numeric version that has the file."""
    platform = str(config.get("platform", "") or "")
    backend = str(config.get("backend", "") or "")
    if (platform and platform not in _ONNX_PLATFORMS) or (backend and backend not in _ONNX_BACKENDS):
        raise ModelLoadError(
            f"the mlserver launcher serves ONNX models only (platform 'onnxruntime_onnx' or backend "
            f"'onnxruntime'); {variant_dir.name} has platform={platform!r} backend={backend!r}"
        )
    filename = str(config.get("default_model_filename") or "model.onnx")
    versions = (
        sorted(
            (
                int(p.name)
                for p in variant_dir.iterdir()
                if p.is_dir() and p.name.isdigit() and (p / filename).exists()
            ),
            reverse=True,
        )
        if variant_dir.is_dir()
        else []
    )
    if not versions:
        raise ModelLoadError(
            f"no <version>/{filename} in {variant_dir} (expected e.g. {variant_dir}/1/{filename})"
        )
    return (variant_dir / str(versions[0]) / filename).resolve(), str(versions[0])


def _tensor_metadata(tensors: list[dict[str, Any]], batched: bool) -> list[dict[str, Any]]:
    out = []
    for tensor in tensors:
        dims = [int(d) for d in tensor.get("dims", [])]
        out.append(
            {
                "name": str(tensor["name"]),
                "datatype": _TRITON_TO_V2.get(str(tensor.get("data_type", "TYPE_FP32")), "FP32"),
                "shape": ([-1] if batched else []) + dims,
            }
        )
    return out


def _int64_fixup(message: Any, data: dict[str, Any]) -> dict[str, Any]:
    """protobuf JSON prints 64-bit ints as strings; Triton's JSON config has numbers (perf_analyzer reads ints)."""
    from google.protobuf.descriptor import FieldDescriptor

    int64 = {
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_UINT64,
        FieldDescriptor.TYPE_SINT64,
        FieldDescriptor.TYPE_FIXED64,
        FieldDescriptor.TYPE_SFIXED64,
    }
    for field in message.DESCRIPTOR.fields:
        if field.name not in data:
            continue
        value = data[field.name]
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value_field = field.message_type.fields_by_name["value"]
            if value_field.message_type is not None:
                for key, item in value.items():
                    _int64_fixup(getattr(message, field.name)[key], item)
        elif field.message_type is not None:
            repeated = (
                field.is_repeated if hasattr(field, "is_repeated") else field.label == field.LABEL_REPEATED
            )
            if repeated:
                for sub, item in zip(getattr(message, field.name), value, strict=False):
                    _int64_fixup(sub, item)
            else:
                _int64_fixup(getattr(message, field.name), value)
        elif field.type in int64:
            data[field.name] = [int(v) for v in value] if isinstance(value, list) else int(value)
    return data


def triton_config_payload(config: dict[str, Any], served_name: str) -> tuple[dict[str, Any], str]:
    """(Triton JSON config, base64 ModelConfig bytes) as Triton would serve the variant under `served_name`.

    Uses tritonclient's `model_config.proto` (this runs in the project's venv, never inside MLServer).
    """
    from google.protobuf import json_format
    from tritonclient.grpc import model_config_pb2

    clean = {k: v for k, v in config.items() if not k.startswith("_")}
    clean["name"] = served_name
    message = model_config_pb2.ModelConfig()
    try:
        json_format.ParseDict(clean, message, ignore_unknown_fields=True)
    except json_format.ParseError as err:
        raise ModelLoadError(
            f"model config of {served_name} is not a valid Triton ModelConfig: {err}"
        ) from err
    as_json = json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    return _int64_fixup(message, as_json), base64.b64encode(message.SerializeToString()).decode()


def model_settings(
    served_name: str,
    config: dict[str, Any],
    model_file: Path,
    version: str,
    client_batch_size: int = 1,
) -> dict[str, Any]:
    """MLServer `model-settings.json` content for serving the variant `config` under `served_name`."""
    triton_json, triton_pb = triton_config_payload(config, served_name)
    batched = int(config.get("max_batch_size", 0) or 0) > 0
    accelerator = cpu_accelerator(config)
    extra: dict[str, Any] = {
        "triton_config": triton_json,
        "triton_config_pb": triton_pb,
        "triton_version": version,
        **thread_counts(config),
    }
    if accelerator is not None:
        extra[accelerator[0]] = accelerator[1]
    settings: dict[str, Any] = {
        "name": served_name,
        "implementation": IMPLEMENTATION if accelerator is None else OPENVINO_IMPLEMENTATION,
        "parameters": {"uri": str(model_file), "extra": extra},
    }
    if config.get("input"):
        settings["inputs"] = _tensor_metadata(config["input"], batched)
    if config.get("output"):
        settings["outputs"] = _tensor_metadata(config["output"], batched)
    batching = adaptive_batching(config, client_batch_size)
    if batching is not None:
        settings["max_batch_size"] = batching.max_batch_size
        settings["max_batch_time"] = batching.max_batch_time
    return settings


def server_settings(
    http_port: int, grpc_port: int, metrics_port: int, workers: int, work_dir: Path
) -> dict[str, Any]:
    """MLServer `settings.json`: loopback ports, no access logs, models loaded only through the repository API."""
    return {
        "debug": False,
        "host": "127.0.0.1",
        "http_port": http_port,
        "grpc_port": grpc_port,
        "metrics_port": metrics_port,
        "metrics_endpoint": "/metrics",
        "metrics_dir": str(work_dir / "metrics"),
        "environments_dir": str(work_dir / "envs"),
        "parallel_workers": workers,
        "load_models_at_startup": False,
        "extensions": EXTENSIONS,
        "server_name": "mlserver-modelyzer",
    }


def adaptive_batching_of(settings: dict[str, Any]) -> Batching | None:
    """The adaptive batching a `model_settings()` result asks for (None when off)."""
    if "max_batch_size" not in settings:
        return None
    return Batching(int(settings["max_batch_size"]), float(settings["max_batch_time"]))
