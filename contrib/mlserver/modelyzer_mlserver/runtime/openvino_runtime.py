"""The MLServer inference runtime that serves an ONNX model through OpenVINO on the CPU (inside MLServer's venv).

Chosen by the launcher for a variant whose Triton config names the `openvino` CPU execution accelerator
(`optimization.execution_accelerators.cpu_execution_accelerator`). Model settings: `parameters.extra.openvino`
holds the accelerator's parameters, passed to `openvino.Core().compile_model(uri, "CPU", ...)`:

- `PERFORMANCE_HINT` LATENCY / THROUGHPUT, `NUM_STREAMS`, `INFERENCE_NUM_THREADS`, any other CPU property;
- `INFERENCE_PRECISION_HINT` (f32, bf16, f16) only where the CPU supports it (`OPTIMIZATION_CAPABILITIES`);
  otherwise the load fails with that reason.

Execution: a pool of `OPTIMAL_NUMBER_OF_INFER_REQUESTS` infer requests; each `predict` (one request, or a batch
merged by MLServer's adaptive batcher) takes an idle one, starts it asynchronously and awaits its callback, so
concurrent requests run in OpenVINO's parallel streams while the event loop stays free.

The compiled model's properties (hint, streams, threads, precision, infer requests) are written as JSON to
`parameters.extra.openvino_report` at load (every worker writes the same); the extension serves that file at
`GET /v2/models/<m>/accelerator` for the `openvino` collector. With it goes the per-layer timing: at load a second
copy is compiled with `PERF_COUNT` on (the served one runs without, so measurements pay nothing for it) and run
`PROFILE_RUNS` times on random inputs of batch 1; the `PROFILE_LAYERS` slowest executed layers' mean time per
inference (ms), with their type and the kernel OpenVINO chose (e.g. `brgconv_avx512_amx_bf16`), go in the report.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov
from mlserver.errors import InferenceError, MLServerError
from mlserver.types import MetadataTensor

from .onnx_runtime import OnnxRuntime

ACCELERATOR = "openvino"
PROFILE_WARMUP = 2
PROFILE_RUNS = 10
PROFILE_LAYERS = 15
REPORTED = (
    "PERFORMANCE_HINT",
    "NUM_STREAMS",
    "INFERENCE_NUM_THREADS",
    "INFERENCE_PRECISION_HINT",
    "OPTIMAL_NUMBER_OF_INFER_REQUESTS",
)
_OV_TO_V2 = {
    "f32": "FP32",
    "f64": "FP64",
    "f16": "FP16",
    "i8": "INT8",
    "i16": "INT16",
    "i32": "INT32",
    "i64": "INT64",
    "u8": "UINT8",
    "u16": "UINT16",
    "u32": "UINT32",
    "u64": "UINT64",
    "boolean": "BOOL",
    "string": "BYTES",
}
#: INFERENCE_PRECISION_HINT value → the OPTIMIZATION_CAPABILITIES entry the CPU must list
_PRECISION_CAPABILITY = {"f32": "FP32", "bf16": "BF16", "f16": "FP16"}


def compile_config(parameters: dict[str, Any], capabilities: list[str]) -> dict[str, str]:
    """The `compile_model` config of the accelerator's parameters; an unsupported precision raises ValueError."""
    config = {str(k).upper(): str(v) for k, v in parameters.items()}
    precision = config.get("INFERENCE_PRECISION_HINT")
    if precision is not None:
        value = precision.lower()
        value = {"fp32": "f32", "fp16": "f16", "float32": "f32", "bfloat16": "bf16", "float16": "f16"}.get(
            value, value
        )
        needed = _PRECISION_CAPABILITY.get(value)
        if needed is None or needed not in capabilities:
            raise ValueError(
                f"INFERENCE_PRECISION_HINT={precision} is not supported by this CPU "
                f"(OPTIMIZATION_CAPABILITIES: {', '.join(capabilities)})"
            )
        config["INFERENCE_PRECISION_HINT"] = value
    return config


def _property(compiled: Any, key: str) -> str:
    try:
        value = compiled.get_property(key)
    except Exception:  # a property this OpenVINO build does not report
        return ""
    if isinstance(value, ov.Type):
        return str(value.get_type_name())
    return str(getattr(value, "name", value))


def _dims(shape: Any) -> list[int]:
    return [d.get_length() if d.is_static else -1 for d in shape]


class OpenVinoRuntime(OnnxRuntime):
    """Runs `parameters.uri` (an ONNX file) compiled by OpenVINO for the CPU; see the module docstring."""

    def _open(self, uri: str, extra: dict[str, Any]) -> tuple[list[MetadataTensor], list[MetadataTensor]]:
        core = ov.Core()
        try:
            capabilities = [str(c) for c in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")]
            config = compile_config(dict(extra.get(ACCELERATOR) or {}), capabilities)
            self._compiled = core.compile_model(uri, "CPU", config)
        except Exception as err:
            raise MLServerError(f"openvino cannot compile {uri} for the CPU: {err}") from err
        jobs = max(1, int(_property(self._compiled, "OPTIMAL_NUMBER_OF_INFER_REQUESTS") or 1))
        self._requests = [self._compiled.create_infer_request() for _ in range(jobs)]
        self._idle: asyncio.Queue[Any] | None = None
        self.properties = {key: _property(self._compiled, key) for key in REPORTED}
        self.properties["capabilities"] = ",".join(capabilities)
        report = extra.get("openvino_report")
        if report:
            self._write_report(Path(str(report)), config, self._layer_profile(core, uri, config))
        return (
            [self._tensor(port) for port in self._compiled.inputs],
            [self._tensor(port) for port in self._compiled.outputs],
        )

    @staticmethod
    def _tensor(port: Any) -> MetadataTensor:
        datatype = _OV_TO_V2.get(port.get_element_type().get_type_name(), "FP32")
        return MetadataTensor(name=port.get_any_name(), datatype=datatype, shape=_dims(port.get_partial_shape()))

    def _layer_profile(self, core: Any, uri: str, config: dict[str, str]) -> list[dict[str, Any]]:
        """The slowest executed layers of a PERF_COUNT copy of the model on random batch-1 inputs ([] if it fails)."""
        try:
            compiled = core.compile_model(uri, "CPU", {**config, "PERF_COUNT": "YES"})
            request = compiled.create_infer_request()
            rng = np.random.default_rng(0)
            feeds = {}
            for port in compiled.inputs:
                shape = [d.get_length() if d.is_static else 1 for d in port.get_partial_shape()]
                feeds[port.get_any_name()] = rng.random(shape).astype(port.get_element_type().to_dtype())
            totals: dict[str, list[Any]] = {}
            for run in range(PROFILE_WARMUP + PROFILE_RUNS):
                request.infer(feeds)
                if run < PROFILE_WARMUP:
                    continue
                for info in request.profiling_info:
                    if info.status != info.Status.EXECUTED:
                        continue
                    entry = totals.setdefault(info.node_name, [info.node_type, info.exec_type, 0.0])
                    entry[2] += info.real_time.total_seconds() * 1e3
        except Exception:  # the profile is extra information: serving goes on without it
            return []
        layers = [{"name": name, "type": kind, "exec_type": kernel, "ms": total / PROFILE_RUNS}
                  for name, (kind, kernel, total) in totals.items()]
        return sorted(layers, key=lambda layer: -float(layer["ms"]))[:PROFILE_LAYERS]

    def _write_report(self, path: Path, config: dict[str, str], layers: list[dict[str, Any]]) -> None:
        body = {"accelerator": ACCELERATOR, "requested": config, "properties": self.properties, "layers": layers,
                "pid": os.getpid()}
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        try:
            tmp.write_text(json.dumps(body))
            os.replace(tmp, path)
        except OSError:  # the report is for the collector; serving goes on without it
            pass

    async def _run(self, names: list[str], feeds: dict[str, np.ndarray]) -> list[Any]:
        if self._idle is None:  # made in the loop that serves (a worker's own loop with parallel_workers)
            self._idle = asyncio.Queue()
            for request in self._requests:
                self._idle.put_nowait(request)
        loop = asyncio.get_running_loop()
        request = await self._idle.get()
        try:
            done: asyncio.Future[None] = loop.create_future()

            def settle() -> None:
                if not done.done():
                    done.set_result(None)

            def finished(_userdata: Any) -> None:  # runs in an OpenVINO thread
                loop.call_soon_threadsafe(settle)

            request.set_callback(finished, None)
            try:
                request.start_async(feeds)
                await done
                request.wait()  # re-raises a failed inference
                return [np.array(request.get_tensor(name).data, copy=True) for name in names]
            except Exception as err:  # openvino raises RuntimeError with its own message
                raise InferenceError(f"model '{self.name}': openvino: {err}") from err
        finally:
            self._idle.put_nowait(request)
