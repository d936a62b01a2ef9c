"""The ``triton_cpu`` collector: the host's CPU use as Triton itself reports it on ``/metrics``.

Triton 2.x exports ``nv_cpu_utilization`` (the whole host, 0–1) and ``nv_cpu_memory_used_bytes`` (the host's RAM
in use). They are the server's view of its machine — the only CPU figures there are for a remote server, which the
``cpu`` collector (psutil on this host) cannot see. This plugin registers its own metric tags:

=============================  =========================  ====================
Triton gauge                   metric                     conversion
=============================  =========================  ====================
``nv_cpu_utilization``         ``host_cpu_utilization``   fraction × 100 → %
``nv_cpu_memory_used_bytes``   ``host_used_ram``          bytes / 1e6 → MB
=============================  =========================  ====================

It runs for servers whose endpoints say they serve Triton's metrics (``Endpoints.triton_metrics``); an unreachable
endpoint or a server without these gauges gives no metrics, never an exception.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from modelyzer.kernel import metrics
from modelyzer.kernel.hookspecs import hookimpl
from modelyzer.kernel.models import Endpoints
from modelyzer.plugins.collectors.sampling import SamplingCollector
from modelyzer.plugins.collectors.triton_metrics import SCRAPE_TIMEOUT, parse_prometheus, scrape

GAUGES = {  # Triton gauge → (modelyzer tag, scale)
    "nv_cpu_utilization": ("host_cpu_utilization", 100.0),
    "nv_cpu_memory_used_bytes": ("host_used_ram", 1e-6),
}
metrics.register_metric(metrics.MetricInfo("host_cpu_utilization", "Host CPU Utilization (%)", "%", metrics.LOWER,
                                           "mean", "mean", False))
metrics.register_metric(metrics.MetricInfo("host_used_ram", "Host RAM Usage (MB)", "MB", metrics.LOWER, "max",
                                           "mean", False))


def cpu_values(text: str) -> dict[str, float]:
    """modelyzer values of Triton's CPU gauges in one scrape (see the module table)."""
    out: dict[str, float] = {}
    for name, _labels, value in parse_prometheus(text):
        if name in GAUGES and not math.isnan(value):
            tag, scale = GAUGES[name]
            out[tag] = value * scale
    return out


class TritonCpuCollector(SamplingCollector):
    """Polls Triton's CPU gauges during a window; see the module docstring."""

    tags = ("host_cpu_utilization", "host_used_ram")
    needs_server_metrics: ClassVar[bool] = True
    thread_name: ClassVar[str] = "modelyzer-triton-cpu"
    _url = ""

    def open(self, endpoints: Endpoints) -> bool:
        self._url = endpoints.metrics_url if endpoints.triton_metrics else ""
        return bool(self._url)

    def sample(self) -> None:
        try:
            values = cpu_values(scrape(self._url, min(SCRAPE_TIMEOUT, max(1.0, self.interval))))
        except Exception as exc:  # noqa: BLE001 - never fail a measurement for a metric
            self.context.log.debug("triton_cpu: cannot scrape %s: %s", self._url, exc)
            return
        for tag, value in values.items():
            self.add(tag, value)

    def join_timeout(self) -> float:
        return SCRAPE_TIMEOUT + 2 * self.interval


@hookimpl
def register_metric_collectors(register: Any) -> None:
    register("triton_cpu", TritonCpuCollector)
