"""The MLServer inference runtime that serves an ONNX model with onnxruntime (runs inside MLServer's venv).

Model settings (written by the launcher, see `modelyzer_mlserver.convert`): `parameters.uri` is the
model.onnx path; `parameters.extra` carries the Triton config (`triton_config`), the ONNX Runtime thread
counts (`intra_op_thread_count`, `inter_op_thread_count`, the Triton onnxruntime backend's parameter names)
and the served Triton version. Each `predict` measures its compute input / infer / output time and returns it
in the response parameters (`stats.TIMING_KEY`) for the extension's statistics; the extension strips it
before the response leaves the server.
"""

from __future__ import annotations

import itertools
import os
import time
import uuid
from typing import Any

import numpy as np
import onnxruntime as ort
from mlserver import MLModel
from mlserver.errors import InferenceError, MLServerError
from mlserver.types import (
    InferenceRequest,
    InferenceResponse,
    MetadataTensor,
    Parameters,
    ResponseOutput,
)

from .stats import TIMING_KEY, Timing

_ORT_TO_V2 = {
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(float16)": "FP16",
    "tensor(int8)": "INT8",
    "tensor(int16)": "INT16",
    "tensor(int32)": "INT32",
    "tensor(int64)": "INT64",
    "tensor(uint8)": "UINT8",
    "tensor(uint16)": "UINT16",
    "tensor(uint32)": "UINT32",
    "tensor(uint64)": "UINT64",
    "tensor(bool)": "BOOL",
    "tensor(string)": "BYTES",
}
_V2_TO_NUMPY = {
    "FP32": np.float32,
    "FP64": np.float64,
    "FP16": np.float16,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "BOOL": np.bool_,
    "BYTES": np.object_,
}
_NUMPY_TO_V2 = {np.dtype(t).name: v2 for v2, t in _V2_TO_NUMPY.items()}


def _dims(shape: list[Any]) -> list[int]:
    return [d if isinstance(d, int) and d >= 0 else -1 for d in shape]


def _thread_count(extra: dict[str, Any], key: str) -> int:
    try:
        return max(0, int(extra.get(key, 0) or 0))
    except (TypeError, ValueError):
        return 0


class OnnxRuntime(MLModel):
    """Runs `parameters.uri` (an ONNX file) with onnxruntime on CPU.

    Subclasses run it with another engine by overriding `_open` (build it, say its tensors) and `_run`.
    """

    async def load(self) -> bool:
        extra: dict[str, Any] = dict(self.settings.parameters.extra or {}) if self.settings.parameters else {}
        uri = self.settings.parameters.uri if self.settings.parameters else None
        if not uri:
            raise InferenceError(
                f"model '{self.name}': no model file (parameters.uri) in model-settings.json"
            )
        # the engine is built here, in the process that serves it (a worker with parallel_workers > 0);
        # an MLServerError carries the reason to the repository API's answer (others become a bare HTTP 500)
        inputs, outputs = self._open(uri, extra)
        self._input_types = {t.name: t.datatype for t in inputs}
        self._output_names = [t.name for t in outputs]
        # batch ids must stay unique across reloads (MLServer may re-import this module in a worker)
        self._batch_prefix = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._batch_ids = itertools.count(1)
        # (the type ignores: mlserver is not installed where mypy runs)
        if not self.inputs:  # type: ignore[has-type]
            self.inputs = inputs
        if not self.outputs:  # type: ignore[has-type]
            self.outputs = outputs
        return True

    def _open(self, uri: str, extra: dict[str, Any]) -> tuple[list[MetadataTensor], list[MetadataTensor]]:
        """Build the engine for `uri`; return its (inputs, outputs)."""
        options = ort.SessionOptions()
        options.intra_op_num_threads = _thread_count(extra, "intra_op_thread_count")
        options.inter_op_num_threads = _thread_count(extra, "inter_op_thread_count")
        try:
            self._session = ort.InferenceSession(
                uri, sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as err:
            raise MLServerError(f"onnxruntime cannot load {uri}: {err}") from err
        return (
            [
                MetadataTensor(name=i.name, datatype=_ORT_TO_V2.get(i.type, "FP32"), shape=_dims(i.shape))
                for i in self._session.get_inputs()
            ],
            [
                MetadataTensor(name=o.name, datatype=_ORT_TO_V2.get(o.type, "FP32"), shape=_dims(o.shape))
                for o in self._session.get_outputs()
            ],
        )

    async def _run(self, names: list[str], feeds: dict[str, np.ndarray]) -> list[Any]:
        """The outputs `names` of one execution on `feeds`."""
        try:
            return list(self._session.run(names, feeds))
        except Exception as err:  # onnxruntime raises its own exception types
            raise InferenceError(f"model '{self.name}': onnxruntime: {err}") from err

    def _feeds(self, payload: InferenceRequest) -> dict[str, np.ndarray]:
        feeds: dict[str, np.ndarray] = {}
        for request_input in payload.inputs:
            if request_input.name not in self._input_types:
                raise InferenceError(
                    f"model '{self.name}': unexpected input '{request_input.name}', "
                    f"expected {sorted(self._input_types)}"
                )
            data = getattr(request_input.data, "root", request_input.data)
            dtype = _V2_TO_NUMPY.get(request_input.datatype, np.float32)
            feeds[request_input.name] = np.asarray(data, dtype=dtype).reshape(request_input.shape)
        return feeds

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        t0 = time.perf_counter_ns()
        feeds = self._feeds(payload)
        names = [o.name for o in payload.outputs] if payload.outputs else self._output_names
        t1 = time.perf_counter_ns()
        results = await self._run(names, feeds)
        t2 = time.perf_counter_ns()
        outputs = []
        for name, value in zip(names, results, strict=True):
            array = np.asarray(value)
            outputs.append(
                ResponseOutput(
                    name=name,
                    shape=list(array.shape),
                    datatype=_NUMPY_TO_V2.get(array.dtype.name, "BYTES"),
                    data=array.ravel().tolist(),
                )
            )
        t3 = time.perf_counter_ns()
        batch_size = int(payload.inputs[0].shape[0]) if payload.inputs and payload.inputs[0].shape else 1
        timing = Timing(
            t1 - t0, t2 - t1, t3 - t2, f"{self._batch_prefix}-{next(self._batch_ids)}", batch_size
        )
        return InferenceResponse(
            model_name=self.name,
            model_version=self.version,
            outputs=outputs,
            parameters=Parameters(**{TIMING_KEY: timing.encode()}),
        )
