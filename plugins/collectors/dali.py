"""The ``dali`` collector: what moving preprocessing (DALI) into the served model costs and saves, per measurement.

A model fed decoded tensors by the client (``classifier``: FP32 [3, 64, 64], 48 kB per image) and the same model
behind a DALI step that decodes JPEG bytes on the server (``ensemble_dali_classifier``: a few kB per image) trade
bytes on the wire for server time. For each measurement this collector reports:

=======================  ========================================================================================
``request_bytes``        input bytes on the wire per request: the mean over every perf_analyzer ``input-data`` JSON file's
                         entries of their tensors' sizes (``b64`` bytes; ``content`` elements × the model input's
                         datatype size, read from the server's model metadata), bytes
``preprocess_share``     the preprocessing steps' part of the pipeline's server time, %: the ``step_share/<step>``
                         that the ``triton_composing`` collector computes (its code, reused here) summed over the
                         steps that decode (``backend: "dali"``, or a step taking an encoded input — TYPE_STRING or
                         variable-length TYPE_UINT8 — and producing none); 0 for a model with no such step (the
                         client preprocesses)
=======================  ========================================================================================

It runs, like ``triton_composing``, for servers that serve Triton's API (``Endpoints.triton_metrics``), and only
in profiles that give perf_analyzer real input data (an ``input-data`` JSON file in ``perf_analyzer_flags``): the
bytes a client sends are only known for real data. Both metrics are registered ``shown``: the CSV, the detailed report and the
summary's top-configs table show them when collected, and profiling ``classifier,ensemble_dali_classifier`` one after
the other puts the two models side by side in each summary ("Models side by side"). An
unreachable server or an unreadable data file gives no metrics, never an exception.
"""

from __future__ import annotations

import base64
import binascii
import json
import urllib.error
from pathlib import Path
from typing import Any, ClassVar

from modelyzer.kernel import metrics
from modelyzer.kernel.config import ProfileConfig
from modelyzer.kernel.hookspecs import hookimpl
from modelyzer.kernel.interfaces import RunContext
from modelyzer.kernel.models import Endpoints, Metric, ModelSpec
from modelyzer.plugins.collectors.triton_composing import SHARE, TritonComposingCollector, _get

REQUEST_BYTES = "request_bytes"
PREPROCESS_SHARE = "preprocess_share"
metrics.register_metric(metrics.MetricInfo(REQUEST_BYTES, "Request Bytes (B)", "B", metrics.LOWER, shown=True))
metrics.register_metric(metrics.MetricInfo(PREPROCESS_SHARE, "Preprocessing Share (%)", "%", metrics.LOWER,
                                           shown=True))

DTYPE_BYTES = {"BOOL": 1, "INT8": 1, "UINT8": 1, "INT16": 2, "UINT16": 2, "FP16": 2, "BF16": 2, "INT32": 4,
               "UINT32": 4, "FP32": 4, "INT64": 8, "UINT64": 8, "FP64": 8}
ENCODED = ("TYPE_STRING", "TYPE_UINT8")


def data_files(flags: dict[str, Any], base: Path) -> list[Path]:
    """The JSON files of perf_analyzer's ``input-data`` flag (one value or a list; ``random``/``zero`` are none)."""
    raw = flags.get("input-data")
    values = raw if isinstance(raw, (list, tuple)) else [raw] if raw else []
    out = []
    for value in values:
        path = Path(str(value)).expanduser()
        path = path if path.is_absolute() or path.exists() else base / path
        if path.suffix == ".json" and path.is_file():
            out.append(path)
    return out


def _count(content: Any) -> int:
    if isinstance(content, list):
        return sum(_count(c) for c in content)
    return 1


def tensor_bytes(value: Any, datatype: str) -> int:
    """Bytes of one input tensor of an ``input-data`` entry (BYTES elements: their length + 4-byte prefix)."""
    if isinstance(value, dict) and "b64" in value:
        return len(base64.b64decode(value["b64"]))
    content = value.get("content", []) if isinstance(value, dict) else value
    if datatype == "BYTES":
        flat: list[Any] = []
        stack = [content]
        while stack:
            item = stack.pop()
            stack.extend(item) if isinstance(item, list) else flat.append(item)
        return sum(len(str(s).encode()) + 4 for s in flat)
    return _count(content) * DTYPE_BYTES.get(datatype, 4)


def request_bytes(data: dict[str, Any], datatypes: dict[str, str]) -> float | None:
    """Mean input bytes per request over the entries of one ``input-data`` JSON document (None: no entries)."""
    entries = [e for e in data.get("data") or [] if isinstance(e, dict)]
    sizes = [sum(tensor_bytes(v, datatypes.get(name, "FP32")) for name, v in e.items()
                 if not name.startswith("__")) for e in entries]
    return sum(sizes) / len(sizes) if sizes else None


def decodes(config: dict[str, Any]) -> bool:
    """Whether a step model decodes: the DALI backend, or an encoded input (see the module table) and no encoded
    output."""
    def encoded(tensor: dict[str, Any]) -> bool:
        kind = tensor.get("data_type")
        return kind == "TYPE_STRING" or (kind == "TYPE_UINT8" and -1 in [int(d) for d in tensor.get("dims") or []])
    if config.get("backend") == "dali":
        return True
    return any(encoded(t) for t in config.get("input") or []) and not any(
        encoded(t) for t in config.get("output") or [])


class DaliCollector(TritonComposingCollector):
    """Request bytes and the preprocessing share of one window; see the module docstring."""

    tags = (REQUEST_BYTES, PREPROCESS_SHARE)
    needs_server_metrics: ClassVar[bool] = True

    def __init__(self, config: ProfileConfig, context: RunContext) -> None:
        super().__init__(config, context)
        self.config = config
        self.context = context
        self._bytes: dict[str, float | None] = {}
        self._decoding: dict[str, bool] = {}
        self._model = ""

    def _flags(self, model: str) -> dict[str, Any]:
        specs: list[ModelSpec] = [s for s in self.config.models
                                  if model == s.name or model.startswith(s.name + "_config")]
        return dict(specs[0].perf_analyzer_flags) if specs else dict(self.config.perf_analyzer_flags)

    def enabled(self) -> bool:
        specs = list(self.config.models) or []
        flags = [dict(s.perf_analyzer_flags) for s in specs] + [dict(self.config.perf_analyzer_flags)]
        return any(f.get("input-data") not in (None, "", "random", "zero") for f in flags)

    def _base_dir(self) -> Path:
        return Path(self.config.config_file).parent if self.config.config_file else Path.cwd()

    def _request_bytes(self, base: str, model: str) -> float | None:
        if model not in self._bytes:
            files = data_files(self._flags(model), self._base_dir())
            value = None
            if files:
                meta = _get(f"{base}/models/{model}")
                datatypes = {str(t.get("name")): str(t.get("datatype")) for t in meta.get("inputs") or []}
                entries = [e for f in files for e in json.loads(f.read_text()).get("data") or []]
                value = request_bytes({"data": entries}, datatypes)  # the mean over every file's entries
            self._bytes[model] = value
        return self._bytes[model]

    def _decoding_step(self, base: str, step: str) -> bool:
        if step not in self._decoding:
            self._decoding[step] = decodes(_get(f"{base}/models/{step}/config"))
        return self._decoding[step]

    def start(self, endpoints: Endpoints) -> None:
        self._model = ""
        if not (endpoints.triton_metrics and endpoints.http and endpoints.model_name):
            return
        try:
            self._request_bytes(f"http://{endpoints.http}/v2", endpoints.model_name)
            super().start(endpoints)
            for step in self._steps:
                self._decoding_step(f"http://{endpoints.http}/v2", step)
        except (OSError, ValueError, urllib.error.URLError, binascii.Error) as exc:
            self.context.log.debug("dali: no metrics for %s: %s", endpoints.model_name, exc)
            return
        self._model = endpoints.model_name

    def stop(self) -> list[Metric]:
        steps = list(self._steps) if self._base else []
        step_values = {m.tag: m.value for m in super().stop()}
        model, self._model = self._model, ""
        if not model:
            return []
        out: list[Metric] = []
        size = self._bytes.get(model)
        if size is not None:
            out.append(Metric(REQUEST_BYTES, size))
        decoding = [SHARE + s for s in steps if self._decoding.get(s)]
        if not steps:
            out.append(Metric(PREPROCESS_SHARE, 0.0))
        elif all(tag in step_values for tag in decoding):
            out.append(Metric(PREPROCESS_SHARE, sum(step_values[tag] for tag in decoding)))
        return out


@hookimpl
def register_metric_collectors(register: Any) -> None:
    register("dali", DaliCollector)
