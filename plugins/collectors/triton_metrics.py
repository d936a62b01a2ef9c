"""The ``triton_metrics`` collector: GPU metrics scraped from the server's Prometheus endpoint (``/metrics``).

Scrapes ``Endpoints.metrics_url`` once at ``start``, every ``monitoring_interval`` s in a thread, and once at
``stop``, and maps Triton's per-GPU gauges (label ``gpu_uuid``) to modelyzer metrics:

=============================  ===================  ==================
Triton gauge                   metric               conversion
=============================  ===================  ==================
``nv_gpu_memory_used_bytes``   ``gpu_used_memory``  bytes / 1e6 → MB
``nv_gpu_memory_total_bytes``  ``gpu_free_memory``  (total − used) / 1e6
``nv_gpu_utilization``         ``gpu_utilization``  fraction × 100 → %
``nv_gpu_power_usage``         ``gpu_power_usage``  W
=============================  ===================  ==================

Samples are reduced per tag as the metric registry says (``kernel.metrics.aggregate_samples``). A server
without ``nv_gpu_*`` metrics (no GPU, MLServer) or an unreachable endpoint gives no metrics and a single debug
line per window, never an exception. Disabled in ``c_api`` mode (nothing serves ``/metrics``) and when the
launcher reports no metrics URL. The text format is parsed here (no prometheus_client dependency).
"""

from __future__ import annotations

import math
import threading
import urllib.request
from typing import Any

from modelyzer.kernel.hookspecs import hookimpl
from modelyzer.kernel.interfaces import MetricCollector, RunContext
from modelyzer.kernel.metrics import aggregate_samples
from modelyzer.kernel.models import Endpoints, Metric

GPU_LABEL = "gpu_uuid"
SCRAPE_TIMEOUT = 3.0
Sample = tuple[str, dict[str, str], float]

_ESCAPES = {"n": "\n", "\\": "\\", '"': '"'}


def _cfg(config: Any, name: str, default: Any = None) -> Any:
    value = getattr(config, name, default)
    return default if value is None else value


def _parse_labels(text: str, pos: int) -> tuple[dict[str, str], int]:
    """Parse ``{a="x",b="y"}`` starting at ``text[pos] == "{"``; return labels and the index after ``}``."""
    labels: dict[str, str] = {}
    i = pos + 1
    while i < len(text):
        while i < len(text) and text[i] in " ,":
            i += 1
        if i < len(text) and text[i] == "}":
            return labels, i + 1
        eq = text.index("=", i)
        name = text[i:eq].strip()
        i = eq + 1
        while text[i] == " ":
            i += 1
        if text[i] != '"':
            raise ValueError("label value must be quoted")
        i += 1
        value: list[str] = []
        while text[i] != '"':
            if text[i] == "\\" and i + 1 < len(text):
                value.append(_ESCAPES.get(text[i + 1], "\\" + text[i + 1]))
                i += 2
            else:
                value.append(text[i])
                i += 1
        labels[name] = "".join(value)
        i += 1
    raise ValueError("unterminated label set")


def parse_prometheus(text: str) -> list[Sample]:
    """``(name, labels, value)`` for every sample line of the Prometheus text format; bad lines are skipped."""
    samples: list[Sample] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            brace = line.find("{")
            if brace != -1 and not line[:brace].strip().count(" "):
                name = line[:brace].strip()
                labels, end = _parse_labels(line, brace)
                rest = line[end:].split()
            else:
                name, *rest = line.split()
                labels = {}
            samples.append((name, labels, float(rest[0])))
        except (ValueError, IndexError):
            continue
    return samples


def gpu_values(samples: list[Sample]) -> dict[str, dict[str, float]]:
    """Per GPU UUID: modelyzer GPU metric values of one scrape (see the module table)."""
    raw: dict[str, dict[str, float]] = {}
    for name, labels, value in samples:
        uuid = labels.get(GPU_LABEL)
        if uuid and name.startswith("nv_gpu_") and not math.isnan(value):
            raw.setdefault(uuid, {})[name] = value
    out: dict[str, dict[str, float]] = {}
    for uuid, gauges in raw.items():
        values: dict[str, float] = {}
        used = gauges.get("nv_gpu_memory_used_bytes")
        if used is not None:
            values["gpu_used_memory"] = used / 1e6
            total = gauges.get("nv_gpu_memory_total_bytes")
            if total is not None:
                values["gpu_free_memory"] = (total - used) / 1e6
        if "nv_gpu_utilization" in gauges:
            values["gpu_utilization"] = gauges["nv_gpu_utilization"] * 100.0
        if "nv_gpu_power_usage" in gauges:
            values["gpu_power_usage"] = gauges["nv_gpu_power_usage"]
        if values:
            out[uuid] = values
    return out


def scrape(url: str, timeout: float = SCRAPE_TIMEOUT) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - the user's metrics URL
        data: bytes = response.read()
    return data.decode("utf-8", errors="replace")


class TritonMetricsCollector(MetricCollector):
    """Polls Triton's Prometheus metrics during a window; see the module docstring."""

    tags = ("gpu_used_memory", "gpu_free_memory", "gpu_utilization", "gpu_power_usage")

    def __init__(self, config: Any, context: RunContext) -> None:
        self.config = config
        self.context = context
        self.interval = max(0.01, float(_cfg(config, "monitoring_interval", 1.0)))
        self._url = ""
        self._samples: dict[tuple[str, str], list[float]] = {}
        self._problem = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def enabled(self) -> bool:
        return _cfg(self.config, "triton_launch_mode", "local") != "c_api"

    def _sample(self) -> None:
        try:
            per_gpu = gpu_values(
                parse_prometheus(scrape(self._url, min(SCRAPE_TIMEOUT, max(1.0, self.interval))))
            )
        except Exception as exc:  # noqa: BLE001 - URLError, timeouts, bad encodings: never fail a measurement
            with self._lock:
                self._problem = self._problem or f"cannot scrape {self._url}: {exc}"
            return
        with self._lock:
            for uuid, values in per_gpu.items():
                for tag, value in values.items():
                    self._samples.setdefault((uuid, tag), []).append(value)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def start(self, endpoints: Endpoints) -> None:
        self._halt()
        self._samples, self._problem = {}, ""
        self._url = endpoints.metrics_url
        if not self._url:
            return
        self._stop.clear()
        self._sample()
        self._thread = threading.Thread(target=self._loop, name="modelyzer-triton-metrics", daemon=True)
        self._thread.start()

    def _halt(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=SCRAPE_TIMEOUT + 2 * self.interval)
            self._thread = None

    def stop(self) -> list[Metric]:
        if self._thread is None:
            return []
        self._halt()
        self._sample()
        with self._lock:
            samples, problem = dict(self._samples), self._problem
        if not samples:
            self.context.log.debug(
                "triton_metrics: no nv_gpu_* metrics from %s%s", self._url, f" ({problem})" if problem else ""
            )
            return []
        return [
            Metric(tag, aggregate_samples(tag, values), gpu_uuid=uuid)
            for (uuid, tag), values in sorted(samples.items())
        ]


@hookimpl
def register_metric_collectors(register: Any) -> None:
    register("triton_metrics", TritonMetricsCollector)
