"""Where RunConfigs execute. The Executor interface, and the in-process executor used by a local profile.

An executor owns the concrete plugins of one place (a launcher, a load generator, collectors, the codec that
writes variant directories) and turns a RunConfig into a Measurement — never raising for a measurement that
failed (it becomes a `failed` Measurement with the tool's own error). The ZeroMQ executor lives elsewhere.
"""

from __future__ import annotations

import abc
import socket
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from .errors import LaunchError, LoadGeneratorError, ModelLoadError
from .interfaces import Launcher, LoadGenerator, MetricCollector, ModelConfigCodec, RunContext
from .models import STATUS_FAILED, STATUS_OK, Measurement, Metric, RunConfig
from .repository import write_variant


class Executor(abc.ABC):
    """Runs batches of RunConfigs; `slots` is how many it can run at once."""

    slots: int = 1

    @abc.abstractmethod
    def execute(self, run_configs: Sequence[RunConfig]) -> Iterator[tuple[RunConfig, Measurement]]:
        """Yield each RunConfig with its Measurement as soon as it finishes (any order)."""

    def start(self) -> None:  # noqa: B027 - optional hook
        """Prepare (e.g. start servers); called once before the first batch."""

    def stop(self) -> None:  # noqa: B027 - optional hook
        """Release everything started; idempotent, called from `finally`."""

    def counters(self) -> dict[str, int]:
        return {"server_starts": 0, "model_loads": 0}


class InProcessExecutor(Executor):
    """One slot on this host: launcher.ensure → collectors.start → loadgen.measure → collectors.stop."""

    slots = 1

    def __init__(
        self,
        config: Any,
        context: RunContext,
        launcher: Launcher,
        load_generator: LoadGenerator,
        collectors: Sequence[MetricCollector],
        codec: ModelConfigCodec,
    ) -> None:
        self.config = config
        self.context = context
        self.launcher = launcher
        self.load_generator = load_generator
        self.collectors = list(collectors)
        self.codec = codec
        self._started = False
        self.host = socket.gethostname()

    def start(self) -> None:
        if not self._started:
            self._started = True
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
        started = time.time()
        base: dict[str, Any] = {"run_config_key": rc.key, "started_at": started, "host": self.host}
        try:
            endpoints = self.launcher.ensure(rc.variant, self.variant_dir(rc), rc)
        except ModelLoadError as err:
            return Measurement(status=STATUS_FAILED, error=f"model load failed: {err}", finished_at=time.time(), **base)
        except LaunchError:
            raise
        running: list[MetricCollector] = []
        metrics: list[Metric] = []
        n_loadgen = 0
        t0 = time.monotonic()
        try:
            for c in self.collectors:
                c.start(endpoints)
                running.append(c)
            metrics.extend(self.load_generator.measure(rc, endpoints))
            n_loadgen = len(metrics)
        except LoadGeneratorError as err:
            return Measurement(status=err.status or STATUS_FAILED, error=str(err), finished_at=time.time(), **base)
        finally:
            for c in running:
                try:
                    collected = c.stop()
                except Exception as err:  # a collector must never lose a measurement
                    self.context.log.warning("collector %s failed: %s", type(c).__name__, err)
                    collected = []
                metrics.extend(collected)
        metrics = prefer_load_generator(metrics, n_loadgen)
        window = getattr(self.load_generator, "last_window_seconds", None) or (time.monotonic() - t0)
        return Measurement(
            status=STATUS_OK,
            metrics=tuple(metrics),
            finished_at=time.time(),
            window_seconds=float(window),
            **base,
        )


def prefer_load_generator(metrics: list[Metric], n_loadgen: int) -> list[Metric]:
    """Keep the load generator's value when a collector measured the same (tag, GPU) too.

    perf_analyzer reports GPU metrics itself when the server exposes them; the collectors are the fallback
    (Model Analyzer's rule), so the same GPU's memory is never counted twice.
    """
    seen = {(m.tag, m.gpu_uuid) for m in metrics[:n_loadgen]}
    return metrics[:n_loadgen] + [m for m in metrics[n_loadgen:] if (m.tag, m.gpu_uuid) not in seen]
