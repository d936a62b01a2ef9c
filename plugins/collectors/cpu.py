"""The ``cpu`` metric collector: host RAM and the inference server's RAM during a measurement window (psutil).

Enabled only when ``collect_cpu_metrics`` is set (as in Model Analyzer, where CPU metrics are opt-in). While
enabled it samples every ``monitoring_interval`` s in a thread, plus once at ``start`` and once at ``stop``
(the window is run by ``sampling.SamplingCollector``):

- ``cpu_used_ram`` (MB = bytes / 1e6, max over samples): USS of the server process ``Endpoints.server_pid`` and
  all its descendants (RSS when USS is not readable). Without a server PID but with ``Endpoints.container_id``
  (a server in a container) it is the container's memory as ``docker stats`` shows it (usage minus inactive file
  cache, see ``docker_support.container_memory_bytes``). With neither (a server on another host) it is not
  reported; a debug line says why.
- ``cpu_available_ram`` (MB, aggregated as the metric registry says): ``psutil.virtual_memory().available``.

If the server process is gone when sampling starts, or exits during the window, the collector logs one warning,
keeps what it already sampled and never raises.
"""

from __future__ import annotations

from typing import Any, ClassVar

import psutil

from modelyzer.kernel.hookspecs import hookimpl
from modelyzer.kernel.models import Endpoints
from modelyzer.plugins.collectors.sampling import SampleKey, SamplingCollector

MB = 1e6


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


class CpuCollector(SamplingCollector):
    """Samples host and server-process memory around a window; see the module docstring."""

    tags = ("cpu_used_ram", "cpu_available_ram")
    thread_name: ClassVar[str] = "modelyzer-cpu-collector"

    _pid: int | None = None
    _container: str | None = None

    def enabled(self) -> bool:
        return self.config.collect_cpu_metrics

    def open(self, endpoints: Endpoints) -> bool:
        self._pid = endpoints.server_pid
        self._container = endpoints.container_id if self._pid is None else None
        if self._pid is None and self._container is None:
            self.context.log.debug(
                "cpu collector: no server PID (remote server?); cpu_used_ram is not collected"
            )
        return True

    def sample(self) -> None:
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
                    self.count("cpu_used_ram"),
                )
                self._pid = None
        elif self._container is not None:
            used = self._container_sample()
        self.add("cpu_available_ram", available)
        if used is not None:
            self.add("cpu_used_ram", used)

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
                self.count("cpu_used_ram"),
            )
            self._container = None
            return None

    def order(self, key: SampleKey) -> Any:
        """``cpu_used_ram`` first, as the tags are declared."""
        return self.tags.index(key[1]) if key[1] in self.tags else len(self.tags)


@hookimpl
def register_metric_collectors(register: Any) -> None:
    register("cpu", CpuCollector)
