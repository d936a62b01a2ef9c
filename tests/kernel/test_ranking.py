"""Weighted objectives, constraints and top-N — MA's formula, without MA's bugs (facts §5, §9.2)."""

from __future__ import annotations

import pytest

from modelyzer.kernel import ranking
from modelyzer.kernel.models import (
    ConfigVariant,
    Constraint,
    LoadSpec,
    Measurement,
    Metric,
    Objective,
    Result,
    RunConfig,
)

THR = (Objective("perf_throughput", 10),)


def res(variant: str, conc: int, status: str = "ok", default: bool = False, **values: float) -> Result:
    v = ConfigVariant("m", {"max_batch_size": hash(variant) % 100}, is_default=default, name=variant)
    rc = RunConfig("m", v, LoadSpec(concurrency=conc))
    metrics = []
    for tag, val in values.items():
        if tag.startswith("gpu_"):
            metrics += [Metric(tag, val / 2, "GPU-0"), Metric(tag, val / 2, "GPU-1")]
        else:
            metrics.append(Metric(tag, val))
    return Result(rc, Measurement(rc.key, status=status, metrics=tuple(metrics)))


def test_score_matches_model_analyzer_formula() -> None:
    a = {"perf_throughput": 300.0, "perf_latency_p99": 10.0}
    b = {"perf_throughput": 100.0, "perf_latency_p99": 30.0}
    objs = (Objective("perf_throughput", 3), Objective("perf_latency_p99", 1))
    # 0.75 * (300-100)/200 + 0.25 * (30-10)/20
    assert ranking.score(a, b, objs) == pytest.approx(0.75 * 1.0 + 0.25 * 1.0)
    assert ranking.score(b, a, objs) == pytest.approx(-1.0)


def test_gpu_objectives_count_and_are_aggregated_across_gpus() -> None:
    small = res("a", 1, gpu_used_memory=100.0, perf_throughput=10.0)
    big = res("b", 1, gpu_used_memory=400.0, perf_throughput=10.0)
    objs = (Objective("gpu_used_memory", 10),)
    assert ranking.measurement_values(small.measurement)["gpu_used_memory"] == 100.0  # summed over 2 GPUs
    ranked = ranking.rank([big, small], objs, ())
    assert [r.variant_name for r in ranked] == ["a", "b"]


def test_objective_missing_on_both_sides_does_not_discard_others() -> None:
    objs = (Objective("perf_latency_p99", 10), Objective("perf_throughput", 10))
    assert ranking.score({"perf_throughput": 20.0}, {"perf_throughput": 10.0}, objs) > 0


def test_constraint_failure_percentages() -> None:
    cons = (Constraint("perf_latency_p99", max=10), Constraint("perf_throughput", min=100))
    assert ranking.failures(cons, {"perf_latency_p99": 15.0, "perf_throughput": 50.0}) == pytest.approx(0.5 + 0.5)
    assert ranking.passes(cons, {"perf_latency_p99": 10.0, "perf_throughput": 100.0})


def test_rank_prefers_passing_and_includes_default() -> None:
    cons = (Constraint("perf_latency_p99", max=10),)
    results = [
        res("m_config_default", 1, default=True, perf_throughput=50.0, perf_latency_p99=5.0),
        res("fast_but_slow", 1, perf_throughput=500.0, perf_latency_p99=50.0),
        res("good", 1, perf_throughput=100.0, perf_latency_p99=8.0),
        res("good", 2, perf_throughput=150.0, perf_latency_p99=12.0),
        res("ok", 1, perf_throughput=80.0, perf_latency_p99=9.0),
        res("broken", 1, status="failed"),
    ]
    ranked = ranking.rank(results, THR, cons, top_n=1)
    assert [r.variant_name for r in ranked] == ["good", "m_config_default"]
    assert ranked[0].best.run_config.load.concurrency == 1  # best *passing* measurement
    everything = ranking.rank(results, THR, cons)
    assert [r.variant_name for r in everything] == ["good", "ok", "m_config_default", "fast_but_slow"]
    assert "broken" not in [r.variant_name for r in everything]


def test_rank_all_failing_returns_best_failing() -> None:
    cons = (Constraint("perf_latency_p99", max=1),)
    results = [res("a", 1, perf_throughput=10.0, perf_latency_p99=5.0), res("b", 1, perf_throughput=20.0, perf_latency_p99=5.0)]
    ranked = ranking.rank(results, THR, cons, top_n=1, include_default=False)
    assert [r.variant_name for r in ranked] == ["b"] and not ranked[0].passing


def test_sorted_measurements_passing_first() -> None:
    cons = (Constraint("perf_latency_p99", max=10),)
    rs = [
        res("a", 1, perf_throughput=10.0, perf_latency_p99=1.0),
        res("a", 2, perf_throughput=30.0, perf_latency_p99=20.0),
        res("a", 3, perf_throughput=20.0, perf_latency_p99=2.0),
    ]
    order = [r.run_config.load.concurrency for r in ranking.sorted_measurements(rs, THR, cons)]
    assert order == [3, 1, 2]


def test_gain_percent() -> None:
    assert ranking.gain_percent({"perf_throughput": 150.0}, {"perf_throughput": 100.0}, THR) == pytest.approx(50.0)
    lat = (Objective("perf_latency_p99", 1),)
    assert ranking.gain_percent({"perf_latency_p99": 5.0}, {"perf_latency_p99": 10.0}, lat) == pytest.approx(100.0)
