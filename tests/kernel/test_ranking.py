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


def tied_res(variant: str, instances: int, mbs: int, **values: float) -> Result:
    config = {"max_batch_size": mbs, "instance_group": [{"count": instances, "kind": "KIND_CPU"}]}
    rc = RunConfig("m", ConfigVariant("m", config, name=variant), LoadSpec(concurrency=4))
    return Result(rc, Measurement(rc.key, metrics=tuple(Metric(t, v) for t, v in values.items())))


def test_configs_within_their_noise_are_tied_and_the_cheapest_ranks_first() -> None:
    """a leads b by 3% but each is ±2%: tied, and b (1 instance) beats a (2 instances) by the tie-break rule; c
    is 20% behind: not tied. Without CIs nothing is tied and the score decides."""
    a = tied_res("a", 2, 8, perf_throughput=1030.0, perf_throughput_ci=2.0, perf_latency_p99=5.0)
    b = tied_res("b", 1, 8, perf_throughput=1000.0, perf_throughput_ci=2.0, perf_latency_p99=6.0)
    c = tied_res("c", 1, 1, perf_throughput=800.0, perf_throughput_ci=2.0, perf_latency_p99=6.0)
    ranked = ranking.rank([a, c, b], THR, ())
    assert [r.variant_name for r in ranked] == ["b", "a", "c"]
    found = ranking.tie(ranked, THR)
    assert found == ranking.Tie(("b", "a"), 2.0)
    precise = [tied_res(n, i, 8, perf_throughput=t, perf_throughput_ci=0.5) for n, i, t in (("a", 2, 1030.0),
                                                                                           ("b", 1, 1000.0))]
    assert [r.variant_name for r in ranking.rank(precise, THR, ())] == ["a", "b"] and ranking.tie(
        ranking.rank(precise, THR, ()), THR) is None
    no_ci = [tied_res("a", 2, 8, perf_throughput=1030.0), tied_res("b", 1, 8, perf_throughput=1000.0)]
    assert [r.variant_name for r in ranking.rank(no_ci, THR, ())] == ["a", "b"]
    assert ranking.tie(ranking.rank(no_ci, THR, ()), THR) is None


def test_the_tie_break_goes_instances_then_batch_then_memory_then_latency() -> None:
    same = {"perf_throughput": 1000.0, "perf_throughput_ci": 5.0}
    rs = [tied_res("big-batch", 1, 16, **same, cpu_used_ram=100.0), tied_res("two", 2, 1, **same),
          tied_res("more-ram", 1, 8, **same, cpu_used_ram=200.0, perf_latency_p99=1.0),
          tied_res("less-ram", 1, 8, **same, cpu_used_ram=100.0, perf_latency_p99=9.0)]
    assert [r.variant_name for r in ranking.rank(rs, THR, ())] == ["less-ram", "more-ram", "big-batch", "two"]


def test_a_config_failing_the_constraints_is_never_tied_with_a_passing_leader() -> None:
    cons = (Constraint("perf_latency_p99", max=10),)
    ok = tied_res("ok", 2, 8, perf_throughput=1000.0, perf_throughput_ci=5.0, perf_latency_p99=9.0)
    slow = tied_res("slow", 1, 8, perf_throughput=1010.0, perf_throughput_ci=5.0, perf_latency_p99=11.0)
    ranked = ranking.rank([slow, ok], THR, cons)
    assert [r.variant_name for r in ranked] == ["ok", "slow"] and ranking.tie(ranked, THR) is None


def test_weighted_objectives_add_their_noise() -> None:
    objs = (Objective("perf_throughput", 1), Objective("perf_latency_p99", 1))
    a = {"perf_throughput": 110.0, "perf_throughput_ci": 1.0, "perf_latency_p99": 10.0, "perf_latency_p99_ci": 10.0}
    b = {"perf_throughput": 100.0, "perf_throughput_ci": 1.0, "perf_latency_p99": 10.0, "perf_latency_p99_ci": 10.0}
    assert ranking.noise(a, b, objs) == pytest.approx(0.5 * 0.02 + 0.5 * 0.2)
    assert ranking.tied(a, b, objs)  # score ≈ 0.048 ≤ 0.11
    assert not ranking.tied(a, b, (Objective("perf_throughput", 1),))  # 9.5% apart, ±1% each


def test_two_measurements_pool_by_each_metrics_rule() -> None:
    from modelyzer.kernel import metrics

    first = [Metric("perf_throughput", 100.0), Metric("perf_throughput_ci", 6.0), Metric("gpu_used_memory", 10.0, "G"),
             Metric("confirmations", 1.0)]
    second = [Metric("perf_throughput", 110.0), Metric("perf_throughput_ci", 8.0), Metric("gpu_used_memory", 20.0, "G"),
              Metric("confirmations", 1.0), Metric("only_here", 3.0)]
    pooled = {(m.tag, m.gpu_uuid): m.value for m in metrics.pool(first, second)}
    assert pooled == {("perf_throughput", None): 105.0, ("perf_throughput_ci", None): 5.0,
                      ("gpu_used_memory", "G"): 15.0, ("confirmations", None): 2.0, ("only_here", None): 3.0}
