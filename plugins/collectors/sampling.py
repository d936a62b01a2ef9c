"""`SamplingCollector`: the base of collectors that sample in a thread during a measurement window.

It owns the window's life cycle, so a collector only says how to read one sample:

- ``start(endpoints)`` stops a window still running, releases what it held (``close()``), clears the samples
  and asks ``open(endpoints)`` whether there is anything to read this window (False: nothing, ``stop()`` returns
  ``[]``). It then takes one sample and starts one daemon thread that calls ``sample()`` every
  ``monitoring_interval`` s (at least 10 ms).
- ``sample()`` reads once and records values with ``add(tag, value, gpu_uuid)``; it must not raise (an
  exception is logged at debug level and the window goes on).
- ``stop()`` joins the thread, takes a last sample, calls ``close()`` and returns ``metrics()``: one Metric per
  (GPU, tag) with at least one sample, reduced as the metric registry says (``kernel.metrics.aggregate_samples``),
  in ``order()``.
"""

from __future__ import annotations

import abc
import threading
from typing import Any, ClassVar

from modelyzer.kernel.config import ProfileConfig
from modelyzer.kernel.interfaces import MetricCollector, RunContext
from modelyzer.kernel.metrics import aggregate_samples
from modelyzer.kernel.models import Endpoints, Metric

MIN_INTERVAL = 0.01
SampleKey = tuple[str | None, str]  # (GPU UUID or None, metric tag)


class SamplingCollector(MetricCollector):
    """Samples every ``monitoring_interval`` s between ``start`` and ``stop``; see the module docstring."""

    #: the sampler thread's name (shown by debuggers and thread dumps)
    thread_name: ClassVar[str] = "modelyzer-collector"

    def __init__(self, config: ProfileConfig, context: RunContext) -> None:
        self.config = config
        self.context = context
        self.interval = max(MIN_INTERVAL, float(config.monitoring_interval))
        self._samples: dict[SampleKey, list[float]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- what a collector says ---------------------------------------------------------------------------------
    def open(self, endpoints: Endpoints) -> bool:
        """Get ready to sample this window; False when there is nothing to sample (no thread is started)."""
        return True

    @abc.abstractmethod
    def sample(self) -> None:
        """Read once and ``add()`` the values (called from ``start``, the sampler thread and ``stop``)."""

    def close(self) -> None:
        """Release what ``open()`` acquired (called at ``stop`` and before the next window; idempotent)."""

    def join_timeout(self) -> float:
        """Seconds ``stop()`` waits for a sample in flight."""
        return max(5.0, 2 * self.interval)

    def order(self, key: SampleKey) -> Any:
        """Sort key of the returned metrics: by GPU UUID, then tag."""
        return (key[0] or "", key[1])

    def metrics(self, samples: dict[SampleKey, list[float]]) -> list[Metric]:
        """The window's metrics from its samples (override to report an empty window, or to drop some)."""
        return [
            Metric(tag, aggregate_samples(tag, values), gpu_uuid=uuid)
            for (uuid, tag), values in sorted(samples.items(), key=lambda kv: self.order(kv[0]))
        ]

    # --- helpers for sample() ----------------------------------------------------------------------------------
    def add(self, tag: str, value: float, gpu_uuid: str | None = None) -> None:
        """Record one sampled value (thread-safe)."""
        with self._lock:
            self._samples.setdefault((gpu_uuid, tag), []).append(value)

    def count(self, tag: str, gpu_uuid: str | None = None) -> int:
        """How many values of `tag` this window has so far."""
        with self._lock:
            return len(self._samples.get((gpu_uuid, tag), ()))

    # --- the window --------------------------------------------------------------------------------------------
    def _sample_safely(self) -> None:
        try:
            self.sample()
        except Exception as err:  # noqa: BLE001 - a sample must never break a measurement
            self.context.log.debug("%s: sample failed: %s", type(self).__name__, err)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample_safely()

    def _halt(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.join_timeout())
            self._thread = None

    def start(self, endpoints: Endpoints) -> None:
        self._halt()
        self.close()
        with self._lock:
            self._samples = {}
        if not self.open(endpoints):
            return
        self._stop.clear()
        self._sample_safely()
        self._thread = threading.Thread(target=self._loop, name=self.thread_name, daemon=True)
        self._thread.start()

    def stop(self) -> list[Metric]:
        if self._thread is None:
            self.close()
            return []
        self._halt()
        self._sample_safely()
        self.close()
        with self._lock:
            samples = {key: list(values) for key, values in self._samples.items()}
        return self.metrics(samples)
