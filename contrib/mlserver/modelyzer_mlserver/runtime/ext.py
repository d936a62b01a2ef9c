"""In-process extension of MLServer 1.7.1 that lets the real perf_analyzer (and Triton clients) drive it.

`install()` patches MLServer before its servers are built (the launcher starts MLServer through
`python -m modelyzer_rt start <repo>`, see `__main__.py`):

- gRPC: `inference.GRPCInferenceService/ModelConfig` and `/ModelStatistics`, which MLServer lacks, are served
  by an extra generic handler working on raw bytes (`wire`), so no Triton proto enters this process.
- REST: `GET /v2/models[/<m>[/versions/<v>]]/stats` and `GET /v2/models/<m>[/versions/<v>]/config`, routed
  before MLServer's own `/v2/models/{name}` (which would otherwise swallow `/v2/models/stats`), and
  `GET /v2/models/<m>/accelerator`: the CPU accelerator the model runs on and its compiled properties
  (`{"accelerator": "openvino", "properties": {...}}`, read from the report file the runtime wrote at load;
  `{"accelerator": "none"}` for onnxruntime).
- `/v2` (server metadata, both protocols) lists the `statistics` and `model_configuration` extensions, which is
  what makes perf_analyzer ask for server-side statistics.
- every inference is timed (protocol handler entry → response ready) and recorded with the runtime's own
  compute timing in `stats.StatsRegistry`; the runtime's timing parameter is stripped from the response.

The Triton config a model is served with comes from its model-settings (`parameters.extra.triton_config`
as JSON for REST, `triton_config_pb` as base64 ModelConfig bytes for gRPC), written by the launcher.
"""

from __future__ import annotations

import base64
import contextvars
import functools
import json
import logging
import time
from typing import Any

import grpc
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from mlserver.grpc.server import GRPCServer
from mlserver.grpc.servicers import InferenceServicer
from mlserver.handlers.dataplane import DataPlane
from mlserver.rest import server as rest_server
from mlserver.rest.endpoints import Endpoints
from mlserver.types import InferenceRequest, InferenceResponse, Parameters

from . import wire
from .stats import TIMING_KEY, StatsRegistry, Timing

EXTENSIONS = ("model_repository", "model_configuration", "statistics")
STATS = StatsRegistry()
log = logging.getLogger("mlserver.modelyzer")


class _Request:
    """Timing of one inference request as it passes the protocol handler and the data plane."""

    __slots__ = ("model", "start", "dp_start", "dp_end", "inferences", "timing", "version")

    def __init__(self, model: str, start: int) -> None:
        self.model = model
        self.start = start
        self.dp_start = start
        self.dp_end: int | None = None
        self.inferences = 1
        self.timing: Timing | None = None
        self.version = ""


_current: contextvars.ContextVar[_Request | None] = contextvars.ContextVar("modelyzer_request", default=None)


def _account(req: _Request, end: int) -> None:
    stats = STATS.get(req.model, req.version)
    if req.dp_end is None:
        stats.record_failure(end - req.start)
        return
    stats.record_success(
        end - req.start,
        req.inferences,
        req.timing,
        decode_ns=req.dp_start - req.start,
        encode_ns=end - req.dp_end,
    )


def _pop_timing(response: InferenceResponse) -> Timing | None:
    if response.parameters is None:
        return None
    params = response.parameters.model_dump(exclude_none=True)
    raw = params.pop(TIMING_KEY, None)
    response.parameters = Parameters(**params) if params else None
    return Timing.decode(raw) if raw else None


def _extra(model: Any) -> dict[str, Any]:
    parameters = model.settings.parameters
    return dict(parameters.extra or {}) if parameters is not None else {}


# --- inference timing ---------------------------------------------------------------------------------
_orig_dp_infer = DataPlane.infer
_orig_dp_metadata = DataPlane.metadata
_orig_grpc_infer = InferenceServicer.ModelInfer
_orig_rest_infer = Endpoints.infer


@functools.wraps(_orig_dp_infer)
async def _dp_infer(
    self: DataPlane, payload: InferenceRequest, name: str, version: str | None = None
) -> InferenceResponse:
    req = _current.get()
    outer = req is not None
    if req is None:
        req = _Request(name, time.perf_counter_ns())
    req.model = name
    req.dp_start = time.perf_counter_ns()
    try:
        response = await _orig_dp_infer(self, payload, name, version)
        req.dp_end = time.perf_counter_ns()
        req.timing = _pop_timing(response)
        extra = _extra(await self._model_registry.get_model(name, version))
        req.version = str(extra.get("triton_version", "1"))
        config = extra.get("triton_config") or {}
        if int(config.get("max_batch_size", 0) or 0) > 0 and payload.inputs and payload.inputs[0].shape:
            req.inferences = int(payload.inputs[0].shape[0])
        return response
    finally:
        if not outer:
            _account(req, req.dp_end or time.perf_counter_ns())


async def _dp_metadata(self: DataPlane) -> Any:
    metadata = await _orig_dp_metadata(self)
    metadata.extensions = sorted(set(metadata.extensions or []) | set(EXTENSIONS))
    return metadata


@functools.wraps(_orig_grpc_infer)
async def _grpc_infer(self: InferenceServicer, request: Any, context: Any) -> Any:
    req = _Request(request.model_name, time.perf_counter_ns())
    token = _current.set(req)
    try:
        return await _orig_grpc_infer(self, request, context)
    finally:
        _current.reset(token)
        _account(req, time.perf_counter_ns())


@functools.wraps(_orig_rest_infer)
async def _rest_infer(self: Endpoints, *args: Any, **kwargs: Any) -> Any:
    req = _Request(str(kwargs.get("model_name", "")), time.perf_counter_ns())
    token = _current.set(req)
    try:
        return await _orig_rest_infer(self, *args, **kwargs)
    finally:
        _current.reset(token)
        _account(req, time.perf_counter_ns())


# --- Triton model config and statistics -------------------------------------------------------------
async def _model_stats(registry: Any, name: str) -> list[dict[str, Any]]:
    models = [await registry.get_model(name)] if name else await registry.get_models()
    out = []
    for model in models:
        stats = STATS.get(model.name, str(_extra(model).get("triton_version", "1")))
        out.append(stats.to_json())
    return out


def _grpc_handler(registry: Any) -> grpc.GenericRpcHandler:
    async def model_config(request: bytes, context: Any) -> bytes:
        name, _version = wire.decode_name_version(request)
        try:
            extra = _extra(await registry.get_model(name))
            config_pb = base64.b64decode(extra["triton_config_pb"])
        except Exception as err:  # MLServer's ModelNotFound, or a model not set up by the launcher
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no model config for '{name}': {err}")
        return wire.encode_model_config_response(config_pb)

    async def model_statistics(request: bytes, context: Any) -> bytes:
        name, _version = wire.decode_name_version(request)
        try:
            stats = await _model_stats(registry, name)
        except Exception as err:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no statistics for '{name}': {err}")
        return wire.encode_statistics_response(stats)

    return grpc.method_handlers_generic_handler(
        "inference.GRPCInferenceService",
        {
            "ModelConfig": grpc.unary_unary_rpc_method_handler(model_config),
            "ModelStatistics": grpc.unary_unary_rpc_method_handler(model_statistics),
        },
    )


_orig_create_server = GRPCServer._create_server


def _create_server(self: GRPCServer) -> Any:
    server = _orig_create_server(self)
    server.add_generic_rpc_handlers((_grpc_handler(self._data_plane._model_registry),))
    return server


def _rest_routes(registry: Any) -> list[APIRoute]:
    async def model_config(model_name: str, model_version: str | None = None) -> JSONResponse:
        try:
            extra = _extra(await registry.get_model(model_name))
            return JSONResponse(extra["triton_config"])
        except Exception as err:
            return JSONResponse({"error": f"no model config for '{model_name}': {err}"}, status_code=400)

    async def model_stats(model_name: str = "", model_version: str | None = None) -> JSONResponse:
        try:
            return JSONResponse({"model_stats": await _model_stats(registry, model_name)})
        except Exception as err:
            return JSONResponse({"error": f"no statistics for '{model_name}': {err}"}, status_code=400)

    async def model_accelerator(model_name: str) -> JSONResponse:
        try:
            report = _extra(await registry.get_model(model_name)).get("openvino_report")
        except Exception as err:
            return JSONResponse({"error": f"no model '{model_name}': {err}"}, status_code=400)
        if not report:
            return JSONResponse({"accelerator": "none"})
        try:
            with open(str(report)) as fh:
                return JSONResponse(json.load(fh))
        except (OSError, ValueError) as err:
            return JSONResponse({"error": f"no accelerator report for '{model_name}': {err}"}, status_code=404)

    return [
        APIRoute("/v2/models/{model_name}/accelerator", model_accelerator, methods=["GET"]),
        APIRoute("/v2/models/stats", model_stats, methods=["GET"]),
        APIRoute("/v2/models/{model_name}/stats", model_stats, methods=["GET"]),
        APIRoute("/v2/models/{model_name}/versions/{model_version}/stats", model_stats, methods=["GET"]),
        APIRoute("/v2/models/{model_name}/config", model_config, methods=["GET"]),
        APIRoute("/v2/models/{model_name}/versions/{model_version}/config", model_config, methods=["GET"]),
    ]


_orig_create_app = rest_server.create_app


def _create_app(settings: Any, data_plane: DataPlane, model_repository_handlers: Any) -> Any:
    app = _orig_create_app(
        settings, data_plane=data_plane, model_repository_handlers=model_repository_handlers
    )
    app.router.routes[0:0] = _rest_routes(data_plane._model_registry)
    return app


_installed = False


def install() -> None:
    """Patch MLServer (idempotent). Must run before MLServer builds its REST app and gRPC server."""
    global _installed
    if _installed:
        return
    DataPlane.infer = _dp_infer  # type: ignore[method-assign]
    DataPlane.metadata = _dp_metadata  # type: ignore[method-assign]
    InferenceServicer.ModelInfer = _grpc_infer  # type: ignore[method-assign]
    Endpoints.infer = _rest_infer  # type: ignore[method-assign]
    GRPCServer._create_server = _create_server  # type: ignore[method-assign]
    rest_server.create_app = _create_app
    _installed = True
