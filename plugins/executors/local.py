"""The `local` executor: one slot on this host — launcher.ensure → collectors.start → loadgen.measure → collectors.stop.

Its parts (launcher, load generator, collectors, codec) are chosen by the kernel (`kernel.assembly`) from the
config and the plugins' capabilities; tests and agent slots may pass them in. The launcher is built with the
executor (building starts nothing), the rest when it starts, after the GPUs are known. Before the first model it
can sample the server's GPUs with no model loaded (Model Analyzer's server-only step) when its launcher declares
`server_only_window`.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs

from modelyzer.kernel import assembly, metrics
from modelyzer.kernel.config import ProfileConfig
from modelyzer.kernel.errors import ConfigError, LaunchError, LoadGeneratorError, ModelLoadError
from modelyzer.kernel.executor import Executor
from modelyzer.kernel.gpus import discover_gpus
from modelyzer.kernel.hookspecs import hookimpl
from modelyzer.kernel.interfaces import Launcher, LoadGenerator, MetricCollector, ModelConfigCodec, RunContext
from modelyzer.kernel.models import (
    STATUS_FAILED,
    STATUS_OK,
    Endpoints,
    GpuDevice,
    Measurement,
    Metric,
    RunConfig,
)
from modelyzer.kernel.repository import write_variant
from modelyzer.plugins.executors.group import measure_together


class InProcessExecutor(Executor):
    """One slot on this host; see the module docstring."""

    slots = 1
    sleep: Callable[[float], None] = staticmethod(time.sleep)

    def __init__(
        self,
        config: ProfileConfig,
        context: RunContext,
        launcher: Launcher | None = None,
        load_generator: LoadGenerator | None = None,
        collectors: Sequence[MetricCollector] | None = None,
        codec: ModelConfigCodec | None = None,
    ) -> None:
        self.config = config
        self.context = context
        self.launcher = launcher if launcher is not None else assembly.launcher(config, context)
        if load_generator is None and self.launcher.load_generator() is None:
            assembly.load_generator_entry(config)  # none serves the model type: say so now, before anything starts
        self._load_generator = load_generator
        self._collectors = list(collectors) if collectors is not None else None
        self._codec = codec
        self._group_loadgens: list[LoadGenerator] = []  # the other models' of a concurrent group
        self._started = False
        self.host = socket.gethostname()

    # --- parts, chosen when first needed (after GPU discovery) ---------------------------------------------
    @property
    def load_generator(self) -> LoadGenerator:
        if self._load_generator is None:
            self._load_generator = assembly.load_generator(self.config, self.context, self.launcher)
        return self._load_generator

    @property
    def collectors(self) -> list[MetricCollector]:
        if self._collectors is None:
            self._collectors = assembly.collectors(self.config, self.context, self.launcher)
        return self._collectors

    @property
    def codec(self) -> ModelConfigCodec:
        if self._codec is None:
            self._codec = assembly.codec(self.config)
        return self._codec

    # --- Executor ------------------------------------------------------------------------------------------
    def offered_gpus(self) -> list[GpuDevice]:
        return discover_gpus(self.config, self.context, self.launcher)

    def start(self) -> None:
        if not self._started:
            self._started = True
            _ = self.load_generator, self.collectors  # choose them before the server starts: fail fast
            self.load_generator.check()  # e.g. perf_analyzer_path: one line, no server started, nothing measured
            self.launcher.start()

    def stop(self) -> None:
        if self._started:
            self._started = False
            self.launcher.stop()

    def counters(self) -> dict[str, int]:
        return {"server_starts": self.launcher.server_starts, "model_loads": self.launcher.model_loads}

    def execute(self, run_configs: Sequence[RunConfig]) -> Iterator[tuple[RunConfig, Measurement]]:
        self.start()
        for rc in run_configs:
            yield rc, self.run_one(rc)

    # --- one RunConfig ---------------------------------------------------------------------------------------
    def variant_dir(self, rc: RunConfig) -> Path:
        source = Path(self.config.model_repository or ".") / rc.model
        return write_variant(
            self.codec,
            source,
            self.context.output_model_repository,
            rc.variant.name,
            self.launcher.variant_config(rc.variant),
            full_copy=self.launcher.writes_full_variant_dirs(),
        )

    def run_one(self, rc: RunConfig) -> Measurement:
        if rc.members:
            return self.run_group(rc)
        started = time.time()
        base: dict[str, Any] = {"run_config_key": rc.key, "started_at": started, "host": self.host}
        try:
            variant_dir = self.variant_dir(rc)
            composing_dirs = [self.variant_dir(attrs.evolve(rc, model=c.model, variant=c)) for c in rc.variant.composing]
        except ConfigError as err:  # a variant its codec cannot write is that variant's failure, not the profile's
            return Measurement(status=STATUS_FAILED, error=f"variant not written: {err}", finished_at=time.time(), **base)
        try:  # an ensemble's / BLS model's composing variants first (the launcher keeps them loaded), then it
            for composing, where in zip(rc.variant.composing, composing_dirs, strict=True):
                self.launcher.ensure(composing, where, rc)
            endpoints = self.launcher.ensure(rc.variant, variant_dir, rc)
        except ModelLoadError as err:
            return Measurement(status=STATUS_FAILED, error=f"model load failed: {err}", finished_at=time.time(), **base)
        except LaunchError:
            raise
        running: list[MetricCollector] = []
        measured: list[Metric] = []
        n_loadgen = 0
        t0 = time.monotonic()
        try:
            for c in self.collectors:
                c.start(endpoints)
                running.append(c)
            measured.extend(self.load_generator.measure(rc, endpoints))
            n_loadgen = len(measured)
        except LoadGeneratorError as err:  # its runs' time counts as retries (no window of it is kept)
            spent = float(self.load_generator.last_retry_seconds or 0.0) or (time.monotonic() - t0)
            return Measurement(status=err.status or STATUS_FAILED, error=str(err), finished_at=time.time(),
                               retry_seconds=spent, **base)
        finally:
            measured.extend(self._stop_collectors(running))
        measured = prefer_load_generator(measured, n_loadgen)
        window = self.load_generator.last_window_seconds or (time.monotonic() - t0)
        return Measurement(
            status=STATUS_OK,
            metrics=tuple(measured),
            finished_at=time.time(),
            window_seconds=float(window),
            retry_seconds=float(self.load_generator.last_retry_seconds or 0.0),
            **base,
        )

    def run_group(self, rc: RunConfig) -> Measurement:
        """A concurrent group: every model's variant loaded on the one server, then one load generator per model,
        all started at once with the same fixed windows (`LoadGenerator.together`); see `plugins.executors.group`."""
        started = time.time()
        base: dict[str, Any] = {"run_config_key": rc.key, "started_at": started, "host": self.host}
        endpoints: list[Endpoints] = []
        for member in rc.members:
            try:
                variant_dir = self.variant_dir(member)
            except ConfigError as err:
                return Measurement(status=STATUS_FAILED, error=f"{member.model}: variant not written: {err}",
                                   finished_at=time.time(), **base)
            try:  # the group's RunConfig: the launcher keeps the group's other models loaded
                endpoints.append(self.launcher.ensure(member.variant, variant_dir, rc))
            except ModelLoadError as err:
                return Measurement(status=STATUS_FAILED, error=f"model load failed: {member.model}: {err}",
                                   finished_at=time.time(), **base)
        while len(self._group_loadgens) < len(rc.members) - 1:
            self._group_loadgens.append(assembly.load_generator(self.config, self.context, self.launcher))
        generators = [self.load_generator, *self._group_loadgens]
        running: list[MetricCollector] = []
        collected: list[Metric] = []
        try:
            for c in self.collectors:
                c.start(endpoints[0])
                running.append(c)
            outcome = measure_together(generators, rc.members, endpoints)
        except LoadGeneratorError as err:
            return Measurement(status=err.status or STATUS_FAILED, error=str(err), finished_at=time.time(), **base)
        finally:
            collected = self._stop_collectors(running)
        measured = prefer_load_generator(outcome.metrics + collected, len(outcome.metrics))
        return Measurement(status=STATUS_OK, metrics=tuple(measured), finished_at=time.time(),
                           window_seconds=outcome.window_seconds, retry_seconds=outcome.retry_seconds, **base)

    def _stop_collectors(self, running: Sequence[MetricCollector]) -> list[Metric]:
        out: list[Metric] = []
        for c in running:
            try:
                out.extend(c.stop())
            except Exception as err:  # noqa: BLE001 - a collector must never lose a measurement
                self.context.log.warning("collector %s failed: %s", type(c).__name__, err)
        return out

    # --- server-only window ------------------------------------------------------------------------------------
    def server_only_gpus(self) -> list[str]:
        return self.context.gpu_uuids if self.launcher.server_only_window else []

    def server_only_host(self) -> bool:
        """With `collect_cpu_metrics`, the idle server's own RAM and its host's CPU gauges are sampled too."""
        return bool(self.config.collect_cpu_metrics and self.launcher.server_only_window
                    and self.launcher.server_endpoints() is not None)

    def server_only_metrics(self, duration: float) -> list[Metric]:
        """Sample the selected GPUs (and the server's host) for `duration` s with the server up and no model loaded."""
        wanted = set(self.server_only_gpus())
        host = self.server_only_host()
        endpoints = (self.launcher.server_endpoints() if host else None) or Endpoints()
        chosen = [c for c in self.collectors if host or any(_gpu_tag(t) for t in c.tags)]
        running: list[MetricCollector] = []
        try:
            for collector in chosen:
                collector.start(endpoints)
                running.append(collector)
            self.sleep(duration)
        finally:
            out = self._stop_collectors(running)
        return [m for m in out if m.gpu_uuid in wanted or (host and not m.gpu_uuid)]


def _gpu_tag(tag: str) -> bool:
    info = metrics.get(tag)
    return bool(info and info.gpu)


def prefer_load_generator(measured: list[Metric], n_loadgen: int) -> list[Metric]:
    """Keep the load generator's value when a collector measured the same (tag, GPU) too.

    perf_analyzer reports GPU metrics itself when the server exposes them; the collectors are the fallback
    (Model Analyzer's rule), so the same GPU's memory is never counted twice.
    """
    seen = {(m.tag, m.gpu_uuid) for m in measured[:n_loadgen]}
    return measured[:n_loadgen] + [m for m in measured[n_loadgen:] if (m.tag, m.gpu_uuid) not in seen]


@hookimpl
def register_executors(register: Any) -> None:
    register("local", InProcessExecutor)
