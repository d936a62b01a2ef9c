"""The `toy_clock` metric collector: how long each measurement window lasted, as a new metric tag.

A new tag needs no migration: it is registered with the metric registry (unit, direction) and stored as is.
It reads no server, so it runs with any launcher (`needs_server_metrics` stays False).
"""

from __future__ import annotations

import time
from typing import Any

from modelyzer.kernel import metrics
from modelyzer.kernel.config import ProfileConfig
from modelyzer.kernel.hookspecs import hookimpl
from modelyzer.kernel.interfaces import MetricCollector, RunContext
from modelyzer.kernel.models import Endpoints, Metric

TAG = "toy_window_ms"
metrics.register_metric(metrics.MetricInfo(TAG, "Window (ms)", "ms", metrics.LOWER))


class ClockCollector(MetricCollector):
    tags = (TAG,)

    def __init__(self, config: ProfileConfig, context: RunContext) -> None:
        self.config = config
        self._t0 = 0.0

    def start(self, endpoints: Endpoints) -> None:
        self._t0 = time.perf_counter()

    def stop(self) -> list[Metric]:
        return [Metric(TAG, (time.perf_counter() - self._t0) * 1000.0)]


@hookimpl
def register_metric_collectors(register: Any) -> None:
    register("toy_clock", ClockCollector)
