"""The ``cpu`` metric collector: host RAM and the inference server's RAM during a measurement window (psutil).

Enabled only when ``collect_cpu_metrics`` is set (as in Model Analyzer, where CPU metrics are opt-in). While
enabled it samples every ``monitoring_interval`` s in a thread, plus once at ``start`` and once at ``stop``:

- ``cpu_used_ram`` (MB = bytes / 1e6, max over samples): USS of the server process ``Endpoints.server_pid`` and
  all its descendants (RSS when USS is not readable). Without a server PID but with ``Endpoints.container_id``
  (the ``docker`` launcher) it is the container's memory as ``docker stats`` shows it (usage minus inactive file
  cache, see ``docker_support.container_memory_bytes``). With neither (``remote``) it is not reported; a debug
  line says why.
- ``cpu_available_ram`` (MB, aggregated as the metric registry says): ``psutil.virtual_memory().available``.

If the server process is gone when sampling starts, or exits during the window, the collector logs one warning,
keeps what it already sampled and never raises.
"""

from __future__ import annotations

import threading
from typing import Any

import psutil

from modelyzer.kernel.hookspecs import hookimpl
from modelyzer.kernel.interfaces import MetricCollector, RunContext
from modelyzer.kernel.metrics import aggregate_samples
from modelyzer.kernel.models import Endpoints, Metric

MB = 1e6


def _cfg(config: Any, name: str, default: Any = None) -> Any:
    value = getattr(config, name, default)
    return default if value is None else value


def process_tree_memory(pid: int) -> int:
    """Bytes of USS (RSS as fallback) of ``pid`` and its descendants; raises psutil.NoSuchProcess if pid is gone."""
    root = psutil.Process(pid)
    procs = [root]
    try:
        procs += root.children(recursive=True)
    except psutil.Error:
        pass
    total = 0
    for i, proc in enumerate(procs):
        try:
            try:
                total += int(proc.memory_full_info().uss)
            except psutil.AccessDenied:
                total += int(proc.memory_info().rss)
        except psutil.NoSuchProcess:
            if i == 0:
                raise
    return total


class CpuCollector(MetricCollector):
    """Samples host and server-process memory around a window; see the module docstring."""

    tags = ("cpu_used_ram", "cpu_available_ram")

    def __init__(self, config: Any, context: RunContext) -> None:
        self.config = config
        self.context = context
        self.interval = max(0.01, float(_cfg(config, "monitoring_interval", 1.0)))
        self._used: list[float] = []
        self._available: list[float] = []
        self._pid: int | None = None
        self._container: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def enabled(self) -> bool:
        return bool(_cfg(self.config, "collect_cpu_metrics", False))

    def _sample(self) -> None:
        available = psutil.virtual_memory().available / MB
        used: float | None = None
        if self._pid is not None:
            try:
                used = process_tree_memory(self._pid) / MB
            except psutil.Error as exc:
                self.context.log.warning(
                    "server process %s is gone (%s); cpu_used_ram keeps the %d earlier sample(s)",
                    self._pid,
                    exc.__class__.__name__,
                    len(self._used),
                )
                self._pid = None
        elif self._container is not None:
            used = self._container_sample()
        with self._lock:
            self._available.append(available)
            if used is not None:
                self._used.append(used)

    def _container_sample(self) -> float | None:
        """MB used by the server container, or None (one warning, no more container samples) if unreadable."""
        from modelyzer.plugins.launchers.docker_support import container_memory_bytes

        assert self._container is not None
        try:
            return container_memory_bytes(self._container) / MB
        except Exception as exc:  # noqa: BLE001 - container gone, engine unreachable
            self.context.log.warning(
                "cannot read the memory of server container %s (%s); cpu_used_ram keeps the %d earlier sample(s)",
                self._container[:12],
                " ".join(str(exc).split()) or exc.__class__.__name__,
                len(self._used),
            )
            self._container = None
            return None

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def start(self, endpoints: Endpoints) -> None:
        self.stop_thread()
        self._used, self._available = [], []
        self._pid = endpoints.server_pid
        self._container = endpoints.container_id if self._pid is None else None
        if self._pid is None and self._container is None:
            self.context.log.debug(
                "cpu collector: no server PID (remote server?); cpu_used_ram is not collected"
            )
        self._stop.clear()
        self._sample()
        self._thread = threading.Thread(target=self._loop, name="modelyzer-cpu-collector", daemon=True)
        self._thread.start()

    def stop_thread(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=max(5.0, 2 * self.interval))
            self._thread = None

    def stop(self) -> list[Metric]:
        if self._thread is None:
            return []
        self.stop_thread()
        self._sample()
        with self._lock:
            used, available = list(self._used), list(self._available)
        metrics: list[Metric] = []
        if used:
            metrics.append(Metric("cpu_used_ram", aggregate_samples("cpu_used_ram", used)))
        if available:
            metrics.append(Metric("cpu_available_ram", aggregate_samples("cpu_available_ram", available)))
        return metrics


@hookimpl
def register_metric_collectors(register: Any) -> None:
    register("cpu", CpuCollector)
