"""Progress lines and the ETA: from the time measurements really take, not from the time since start."""

from __future__ import annotations

import io
import time

import pytest

from modelyzer.kernel import progress as progress_mod
from modelyzer.kernel.models import ConfigVariant, LoadSpec, Measurement, Metric, RunConfig
from modelyzer.kernel.progress import Progress, format_duration

RC = RunConfig("m", ConfigVariant("m", {}, name="m_config_default"), LoadSpec(concurrency=1))


def ok(started: float = 0.0, finished: float = 0.0) -> Measurement:
    return Measurement(RC.key, metrics=(Metric("perf_throughput", 10.0),), started_at=started, finished_at=finished)


def test_the_eta_ignores_the_time_before_the_first_measurement(monkeypatch: pytest.MonkeyPatch) -> None:
    """30 s of server start-up, then measurements every 2 s: the ETA is 2 s × what is left, not 32 s × …"""
    clock = iter([30.0, 32.0, 34.0])
    monkeypatch.setattr(progress_mod.time, "monotonic", lambda: next(clock))
    p = Progress(stream=io.StringIO())
    p.expect(10)
    assert p.eta() == "?"
    p.measured(RC, ok(1000.0, 1002.0))  # its own duration until a second one finishes
    assert p.seconds_per_measurement() == 2.0 and p.eta() == "18s"
    p.measured(RC, ok())
    p.measured(RC, ok())
    assert p.seconds_per_measurement() == 2.0 and p.remaining == 7 and p.eta() == "14s"


def test_the_rate_follows_the_recent_measurements(monkeypatch: pytest.MonkeyPatch) -> None:
    times = [float(t) for t in range(0, 10)] + [9.0 + 10 * k for k in range(1, 9)]
    clock = iter(times)
    monkeypatch.setattr(progress_mod.time, "monotonic", lambda: next(clock))
    p = Progress(stream=io.StringIO())
    for _ in range(len(times)):
        p.measured(RC, ok())
    assert p.seconds_per_measurement() == 10.0  # the last 8 intervals: the pace slowed from 1 s to 10 s


def test_each_line_has_count_result_and_eta() -> None:
    out = io.StringIO()
    p = Progress(stream=out)
    p.expect(3)
    now = time.time()
    p.measured(RC, ok(now - 4, now))
    assert out.getvalue().strip() == f"[1/~3] {RC.describe()}: 10.0 infer/s  (ETA {format_duration(8)})"
