"""The `openvino` metric collector: the compiled OpenVINO model's properties for each measurement.

A variant served through OpenVINO (the `openvino` CPU execution accelerator) is compiled by the runtime inside
the server, which reports the properties OpenVINO chose for this CPU at `GET /v2/models/<m>/accelerator` (the
MLServer extension; see `runtime/openvino_runtime.py`). This plugin reads them once per measurement window and
registers its own metric tags:

===============================  =================================  =========================================
OpenVINO property                metric                             value
===============================  =================================  =========================================
``NUM_STREAMS``                  ``openvino_streams``               parallel execution streams
``INFERENCE_NUM_THREADS``        ``openvino_threads``               CPU threads of the compiled model
``INFERENCE_PRECISION_HINT``     ``openvino_precision_bits``        32 (f32), 16 (bf16, f16), 8 (i8)
``OPTIMAL_NUMBER_OF_INFER_REQS`` ``openvino_infer_requests``        infer requests the runtime keeps
===============================  =================================  =========================================

and, per layer of the compiled model the runtime profiled at load (the slowest ones, see the runtime),
``layer_time/<layer> [<type>, <kernel>]``: its mean time per batch-1 inference in ms (the detailed report's
per-layer table of a config).

A model not served through OpenVINO, or a server without the endpoint (Triton), gives no metrics, never an
exception. It reads a server's endpoint, so it runs only where the launcher says its server `serves_metrics`.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any, ClassVar

from modelyzer.kernel import metrics
from modelyzer.kernel.config import ProfileConfig
from modelyzer.kernel.interfaces import MetricCollector, RunContext
from modelyzer.kernel.models import Endpoints, Metric

TIMEOUT_S = 5.0
#: the prefix of per-layer timing tags (a convention the detailed report reads, not specific to OpenVINO)
LAYER_PREFIX = "layer_time/"
PRECISION_BITS = {"f32": 32.0, "bf16": 16.0, "f16": 16.0, "i8": 8.0, "u8": 8.0}
_PROPERTIES = {  # OpenVINO property → modelyzer tag
    "NUM_STREAMS": "openvino_streams",
    "INFERENCE_NUM_THREADS": "openvino_threads",
    "OPTIMAL_NUMBER_OF_INFER_REQUESTS": "openvino_infer_requests",
}
for _tag, _header in (
    ("openvino_streams", "OpenVINO Streams"),
    ("openvino_threads", "OpenVINO Threads"),
    ("openvino_precision_bits", "OpenVINO Precision (bits)"),
    ("openvino_infer_requests", "OpenVINO Infer Requests"),
):
    metrics.register_metric(metrics.MetricInfo(_tag, _header, "", metrics.LOWER, "max", "max", False))


def openvino_values(report: dict[str, Any]) -> dict[str, float]:
    """modelyzer values of an accelerator report (`{"accelerator": "openvino", "properties": {...}}`)."""
    if report.get("accelerator") != "openvino":
        return {}
    properties = report.get("properties") or {}
    out: dict[str, float] = {}
    for key, tag in _PROPERTIES.items():
        try:
            out[tag] = float(properties[key])
        except (KeyError, TypeError, ValueError):
            continue
    bits = PRECISION_BITS.get(str(properties.get("INFERENCE_PRECISION_HINT", "")).lower())
    if bits is not None:
        out["openvino_precision_bits"] = bits
    for layer in report.get("layers") or []:
        try:
            tag = f"{LAYER_PREFIX}{layer['name']} [{layer['type']}, {layer['exec_type']}]"
            out[tag] = float(layer["ms"])
        except (KeyError, TypeError, ValueError):
            continue
        if metrics.get(tag) is None:
            metrics.register_metric(metrics.MetricInfo(tag, f"Layer {tag[len(LAYER_PREFIX):]} (ms)", "ms",
                                                       metrics.LOWER, "mean", "mean", False))
    return out


def accelerator_report(endpoints: Endpoints, timeout: float = TIMEOUT_S) -> dict[str, Any]:
    """The server's accelerator report of the served model; {} when the server has none."""
    if not endpoints.http or not endpoints.model_name:
        return {}
    url = f"http://{endpoints.http}/v2/models/{endpoints.model_name}/accelerator"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            body = json.load(resp)
    except (OSError, ValueError, urllib.error.URLError):
        return {}
    return body if isinstance(body, dict) else {}


class OpenVinoCollector(MetricCollector):
    """Reads the compiled model's properties at the start of a window; see the module docstring."""

    tags = tuple(["openvino_precision_bits", *_PROPERTIES.values()])
    needs_server_metrics: ClassVar[bool] = True

    def __init__(self, config: ProfileConfig, context: RunContext) -> None:
        self.config = config
        self.context = context
        self._values: dict[str, float] = {}

    def start(self, endpoints: Endpoints) -> None:
        self._values = openvino_values(accelerator_report(endpoints))

    def stop(self) -> list[Metric]:
        values, self._values = self._values, {}
        return [Metric(tag, value) for tag, value in sorted(values.items())]
