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
line per window, never an exception. It ``needs_server_metrics``: it runs only when the launcher's server
exposes them, and a window without ``Endpoints.metrics_url`` samples nothing. The text format is parsed by
``prometheus_client.parser``; when a scrape holds a malformed line, it is parsed line by line and the bad lines
are skipped. The window (thread, interval, aggregation) is run by ``sampling.SamplingCollector``.
"""

from __future__ import annotations

import math
import urllib.request
from typing import Any, ClassVar

from prometheus_client.parser import text_string_to_metric_families

from modelyzer.kernel.config import ProfileConfig
from modelyzer.kernel.hookspecs import hookimpl
from modelyzer.kernel.interfaces import RunContext
from modelyzer.kernel.models import Endpoints, Metric
from modelyzer.plugins.collectors.sampling import SampleKey, SamplingCollector

GPU_LABEL = "gpu_uuid"
SCRAPE_TIMEOUT = 3.0
Sample = tuple[str, dict[str, str], float]


def _samples(text: str) -> list[Sample]:
    return [
        (sample.name, dict(sample.labels), float(sample.value))
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]


def parse_prometheus(text: str) -> list[Sample]:
    """``(name, labels, value)`` for every sample line of the Prometheus text format; bad lines are skipped."""
    try:
        return _samples(text)
    except ValueError:  # one malformed line fails the whole text: keep every line that parses
        samples: list[Sample] = []
        for line in text.splitlines():
            try:
                samples += _samples(line)
            except ValueError:
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


class TritonMetricsCollector(SamplingCollector):
    """Polls Triton's Prometheus metrics during a window; see the module docstring."""

    tags = ("gpu_used_memory", "gpu_free_memory", "gpu_utilization", "gpu_power_usage")
    needs_server_metrics: ClassVar[bool] = True
    thread_name: ClassVar[str] = "modelyzer-triton-metrics"

    def __init__(self, config: ProfileConfig, context: RunContext) -> None:
        super().__init__(config, context)
        self._url = ""
        self._problem = ""

    def open(self, endpoints: Endpoints) -> bool:
        self._url, self._problem = endpoints.metrics_url, ""
        return bool(self._url)

    def sample(self) -> None:
        try:
            per_gpu = gpu_values(
                parse_prometheus(scrape(self._url, min(SCRAPE_TIMEOUT, max(1.0, self.interval))))
            )
        except Exception as exc:  # noqa: BLE001 - URLError, timeouts, bad encodings: never fail a measurement
            self._problem = self._problem or f"cannot scrape {self._url}: {exc}"
            return
        for uuid, values in per_gpu.items():
            for tag, value in values.items():
                self.add(tag, value, uuid)

    def join_timeout(self) -> float:
        return SCRAPE_TIMEOUT + 2 * self.interval

    def metrics(self, samples: dict[SampleKey, list[float]]) -> list[Metric]:
        if not samples:
            self.context.log.debug(
                "triton_metrics: no nv_gpu_* metrics from %s%s", self._url, f" ({self._problem})" if self._problem else ""
            )
            return []
        return super().metrics(samples)


@hookimpl
def register_metric_collectors(register: Any) -> None:
    register("triton_metrics", TritonMetricsCollector)
