"""The precision of a measurement: perf_analyzer's per-window lines, confidence intervals, the stopping rule."""

from __future__ import annotations

import math
import statistics

import pytest

from modelyzer.kernel import metrics
from modelyzer.kernel.models import Metric
from modelyzer.plugins.loadgen.precision import (
    PRECISION_TARGET_MET,
    THROUGHPUT_CI,
    WINDOWS,
    Precision,
    Window,
    half_width,
    mean_metrics,
    parse_windows,
    t95,
)

#: perf_analyzer 2.51's -v output (real lines; --percentile=99 and without)
P99_OUTPUT = """Request concurrency: 2
  Pass [1] throughput: 4286.15 infer/sec. p99 latency: 952 usec
  Pass [2] throughput: 3924.65 infer/sec. p99 latency: 1578 usec
  Pass [3] throughput: 3194.27 infer/sec. p99 latency: 1635 usec
  Client:
    Request count: 14001
"""
AVG_OUTPUT = "  Pass [1] throughput: 100 infer/sec. Avg latency: 2000 usec (standard deviation 40 usec)\n"


def test_windows_are_read_from_the_verbose_output() -> None:
    windows, tag = parse_windows(P99_OUTPUT)
    assert tag == "perf_latency_p99"
    assert windows == [Window(4286.15, 0.952), Window(3924.65, 1.578), Window(3194.27, 1.635)]
    assert parse_windows(AVG_OUTPUT) == ([Window(100.0, 2.0)], "perf_latency_avg")
    assert parse_windows("no passes here") == ([], "perf_latency_avg")


def test_the_half_width_is_students_t_over_root_n_relative_to_the_mean() -> None:
    values = [100.0, 110.0, 90.0, 105.0]
    expected = 100 * 3.182 * statistics.stdev(values) / math.sqrt(4) / statistics.fmean(values)
    assert half_width(values) == pytest.approx(expected)
    assert half_width([5.0]) is None and half_width([0.0, 0.0]) is None
    assert t95(1) == 12.706 and t95(30) == 2.042 and t95(500) == 1.96


def test_the_stopping_rule_needs_both_intervals_within_the_target() -> None:
    steady = Precision(tuple(Window(1000.0 + i % 2, 1.0 + (i % 2) / 1000) for i in range(6)))
    assert steady.met(5.0) and steady.throughput_ci is not None and steady.throughput_ci < 1
    noisy_latency = Precision(tuple(Window(1000.0, 1.0 + i) for i in range(6)))
    assert noisy_latency.throughput_ci == 0.0 and not noisy_latency.met(5.0)
    assert not Precision((Window(1.0, 1.0),)).met(50.0)  # one window: no interval
    assert "6 windows, throughput ±0.0%, p99 ±" in noisy_latency.describe(5) and "(target ±5%)" in noisy_latency.describe(5)


def test_what_is_stored_with_a_measurement() -> None:
    stored = {m.tag: m.value for m in Precision(tuple(Window(100.0 + i, 2.0) for i in range(3))).metrics(5.0)}
    assert stored[WINDOWS] == 3 and stored[THROUGHPUT_CI] > 0 and stored["perf_latency_p99_ci"] == 0.0
    assert stored["perf_throughput_cv"] == pytest.approx(100 / 101) and stored[PRECISION_TARGET_MET] == 1.0
    assert PRECISION_TARGET_MET not in {m.tag for m in Precision((Window(1.0, 1.0),)).metrics(None)}
    assert metrics.ci_tag("perf_throughput") == THROUGHPUT_CI and metrics.get(THROUGHPUT_CI) is not None
    assert metrics.ci_tag("perf_throughput@a") == "perf_throughput_ci@a"


def test_runs_are_averaged_tag_by_tag_and_gpu_by_gpu() -> None:
    runs = [[Metric("perf_throughput", 100.0), Metric("gpu_utilization", 10.0, "GPU-a")],
            [Metric("perf_throughput", 200.0), Metric("gpu_utilization", 30.0, "GPU-a"), Metric("x", 1.0)]]
    assert mean_metrics(runs) == [Metric("perf_throughput", 150.0), Metric("gpu_utilization", 20.0, "GPU-a"),
                                  Metric("x", 1.0)]


def test_from_three_runs_on_the_runs_means_widen_the_interval() -> None:
    """Steady windows inside each run, but the runs disagree (1000, 1100, 900): the windows alone would claim
    about ±4%; the runs' means give the honest, wider interval."""
    windows = tuple(Window(base + d, 1.0) for base in (1000.0, 1100.0, 900.0) for d in (-1.0, 0.0, 1.0))
    pooled = Precision(windows)
    runs = Precision(windows, run_sizes=(3, 3, 3))
    assert pooled.throughput_ci is not None and runs.throughput_ci is not None
    assert runs.throughput_ci == pytest.approx(half_width([1000.0, 1100.0, 900.0]))
    assert runs.throughput_ci > pooled.throughput_ci and not runs.met(10.0)
    two = Precision(windows[:6], run_sizes=(3, 3))  # two runs: the windows' interval only
    assert two.throughput_ci == half_width([w.throughput for w in windows[:6]])
