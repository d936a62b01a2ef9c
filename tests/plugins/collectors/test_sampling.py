"""The sampling collector base with a throw-away collector: one thread per window, samples at start, every
interval and at stop, aggregation by the metric registry, nothing sampled when `open()` declines, a failing
sample that does not end the window."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from modelyzer.kernel.config import config_from_dict
from modelyzer.kernel.interfaces import RunContext
from modelyzer.kernel.models import Endpoints, Metric
from modelyzer.plugins.collectors.sampling import SamplingCollector


class Counting(SamplingCollector):
    """Samples 1, 2, 3, … as gpu_utilization (mean) and gpu_used_memory (max) of GPU-a; `fail` raises instead."""

    tags = ("gpu_used_memory", "gpu_utilization")
    thread_name = "test-counting"

    def __init__(self, tmp_path: Path, interval: float, *, ready: bool = True) -> None:
        config = config_from_dict({"profile_models": "m", "monitoring_interval": interval}, check_paths=False)
        super().__init__(config, RunContext(export_path=tmp_path, output_model_repository=tmp_path))
        self.ready, self.reads, self.fail, self.opened, self.closed = ready, 0, False, 0, 0

    def open(self, endpoints: Endpoints) -> bool:
        self.opened += 1
        return self.ready

    def close(self) -> None:
        self.closed += 1

    def sample(self) -> None:
        if self.fail:
            raise RuntimeError("device went away")
        self.reads += 1
        self.add("gpu_utilization", float(self.reads), "GPU-a")
        self.add("gpu_used_memory", float(self.reads), "GPU-a")


def sampler_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name == "test-counting"]


def test_one_thread_samples_every_interval_and_stop_aggregates(tmp_path: Path) -> None:
    col = Counting(tmp_path, 0.02)
    col.start(Endpoints())
    assert col.reads == 1 and sampler_threads() == ["test-counting"]
    time.sleep(0.2)
    metrics = col.stop()
    n = col.reads
    assert n >= 5 and sampler_threads() == []
    assert metrics == [Metric("gpu_used_memory", float(n), "GPU-a"), Metric("gpu_utilization", (n + 1) / 2, "GPU-a")]
    time.sleep(0.05)
    assert col.reads == n  # no sampling after stop
    assert col.stop() == [] and col.closed >= 2


def test_minimum_interval_and_a_fresh_window_each_start(tmp_path: Path) -> None:
    col = Counting(tmp_path, 0.001)
    assert col.interval == 0.01
    col = Counting(tmp_path, 60.0)
    col.start(Endpoints())
    assert col.stop() == [Metric("gpu_used_memory", 2.0, "GPU-a"), Metric("gpu_utilization", 1.5, "GPU-a")]
    col.start(Endpoints())
    assert col.stop() == [Metric("gpu_used_memory", 4.0, "GPU-a"), Metric("gpu_utilization", 3.5, "GPU-a")]


def test_nothing_to_sample_starts_no_thread(tmp_path: Path) -> None:
    col = Counting(tmp_path, 0.01, ready=False)
    col.start(Endpoints())
    assert sampler_threads() == [] and col.reads == 0
    assert col.stop() == [] and col.opened == 1


def test_a_failing_sample_does_not_end_the_window(tmp_path: Path) -> None:
    col = Counting(tmp_path, 0.01)
    col.start(Endpoints())
    col.fail = True
    time.sleep(0.05)
    col.fail = False
    time.sleep(0.05)
    assert col.reads > 1
    assert [m.tag for m in col.stop()] == ["gpu_used_memory", "gpu_utilization"]
