"""The brute search strategy, driven with synthetic measurements (throughput/latency curve functions)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import pytest

from modelyzer.kernel.models import (
    STATUS_FAILED,
    Constraint,
    Measurement,
    Metric,
    ModelSpec,
    Result,
    RunConfig,
)
from modelyzer.plugins.search import brute as brute_search
from modelyzer.plugins.search.brute import (
    BruteSearch,
    boundary,
    deep_merge,
    doubled_list,
    gain_valid,
    generate_combinations,
)
from tests.plugins.search.test_common import make_config

BASE: dict[str, Any] = {
    "name": "m",
    "platform": "onnxruntime_onnx",
    "max_batch_size": 8,
    "input": [{"name": "x", "data_type": "TYPE_FP32", "dims": [16]}],
    "output": [{"name": "y", "data_type": "TYPE_FP32", "dims": [16]}],
}
NON_BATCHING = {**BASE, "max_batch_size": 0}

Curve = Callable[[RunConfig], "dict[str, float] | None"]


def rising(rc: RunConfig) -> dict[str, float]:
    """Throughput that keeps rising with load, instances and max batch size (no plateau anywhere)."""
    load = float(rc.load.concurrency or rc.load.request_rate or 1)
    return {"perf_throughput": load * rc.variant.instance_count * max(rc.variant.max_batch_size, 1)}


def run(strategy: BruteSearch, curve: Curve, slots: int = 1, limit: int = 5000) -> list[list[RunConfig]]:
    """Drive the strategy like the engine does; return the proposed batches."""
    batches: list[list[RunConfig]] = []
    while True:
        remaining = strategy.total_estimate()
        batch = strategy.propose(slots)
        if not batch:
            assert strategy.done
            return batches
        assert len(batch) <= slots
        assert remaining >= len(batch)
        batches.append(batch)
        results = []
        for rc in batch:
            values = curve(rc)
            if values is None:
                measurement = Measurement(rc.key, status=STATUS_FAILED, error="perf_analyzer failed")
            else:
                measurement = Measurement(rc.key, metrics=tuple(Metric(k, v) for k, v in values.items()))
            results.append(Result(rc, measurement))
        strategy.observe(results)
        assert sum(len(b) for b in batches) < limit


def flat(batches: list[list[RunConfig]]) -> list[RunConfig]:
    return [rc for batch in batches for rc in batch]


def point(rc: RunConfig) -> tuple[Any, ...]:
    v = rc.variant
    where: Any = "default" if v.is_default else (v.instance_count, v.max_batch_size)
    return (where, rc.load.batch_size, rc.load.value)


def search(
    spec: ModelSpec | None = None, *, base: dict[str, Any] | None = None, **config: Any
) -> BruteSearch:
    return BruteSearch(spec or ModelSpec("m"), BASE if base is None else base, make_config(**config))


def no_duplicates_and_no_zero_load(run_configs: list[RunConfig]) -> None:
    keys = [rc.key for rc in run_configs]
    assert len(keys) == len(set(keys))
    for rc in run_configs:
        assert rc.load.concurrency is None or rc.load.concurrency >= 1
        assert rc.load.request_rate is None or rc.load.request_rate >= 1


# --- helpers --------------------------------------------------------------------------------------------------
def test_registers_as_brute() -> None:
    registered: dict[str, Any] = {}
    brute_search.register_search_strategies(
        register=lambda name, factory: registered.setdefault(name, factory)
    )
    assert registered == {"brute": BruteSearch}


def test_doubled_list() -> None:
    assert doubled_list(1, 1024) == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]
    assert doubled_list(0, 4) == [1, 2, 4]
    assert doubled_list(16, 8192)[-1] == 8192 and len(doubled_list(16, 8192)) == 10
    assert doubled_list(3, 20) == [3, 6, 12]
    assert doubled_list(8, 4) == [8]


def test_gain_rule() -> None:
    assert gain_valid([100, 100, 100])  # fewer than 4 results
    assert not gain_valid([100, 101, 103, 105])  # +5% is not enough
    assert gain_valid([100, 101, 103, 105.1])
    assert not gain_valid([0, 0, 0, 0])


def test_boundary_is_the_last_pass_to_fail_step() -> None:
    assert boundary([(1, True), (2, True), (4, False), (8, True), (16, False)]) == (8, 16)
    assert boundary([(1, False), (2, False)]) is None
    assert boundary([(1, True), (2, True)]) is None


def test_deep_merge_merges_dicts_and_replaces_lists() -> None:
    base = {"dynamic_batching": {"preferred_batch_size": [4]}, "instance_group": [{"count": 1}, {"count": 2}]}
    merged = deep_merge(
        base, {"dynamic_batching": {"max_queue_delay_microseconds": 100}, "instance_group": [{"count": 3}]}
    )
    assert merged == {
        "dynamic_batching": {"preferred_batch_size": [4], "max_queue_delay_microseconds": 100},
        "instance_group": [{"count": 3}],
    }
    assert base["instance_group"] == [{"count": 1}, {"count": 2}]


def test_generate_combinations_follows_the_schema() -> None:
    combos = generate_combinations(
        {
            "instance_group": [{"kind": "KIND_GPU", "count": [1, 2]}],
            "dynamic_batching": {"max_queue_delay_microseconds": [100, 200], "preferred_batch_size": [4, 8]},
        }
    )
    assert combos == [
        {
            "instance_group": [{"kind": "KIND_GPU", "count": c}],
            "dynamic_batching": {"max_queue_delay_microseconds": d, "preferred_batch_size": [4, 8]},
        }
        for c in (1, 2)
        for d in (100, 200)
    ]
    # a list of lists sweeps whole values of a repeated field
    assert generate_combinations(
        {"instance_group": [[{"count": 1}], [{"count": 1}, {"count": 2, "kind": "KIND_CPU"}]]}
    ) == [
        {"instance_group": [{"count": 1}]},
        {"instance_group": [{"count": 1}, {"count": 2, "kind": "KIND_CPU"}]},
    ]
    assert generate_combinations({"dynamic_batching": {"preferred_batch_size": [[4], [4, 8]]}}) == [
        {"dynamic_batching": {"preferred_batch_size": [4]}},
        {"dynamic_batching": {"preferred_batch_size": [4, 8]}},
    ]
    # map fields: each key's value is a message whose fields may be swept
    assert generate_combinations({"parameters": {"threads": {"string_value": ["1", "2"]}}}) == [
        {"parameters": {"threads": {"string_value": "1"}}},
        {"parameters": {"threads": {"string_value": "2"}}},
    ]
    # a list of dicts for a singular message field is a list of choices
    assert (
        len(generate_combinations({"dynamic_batching": [{}, {"max_queue_delay_microseconds": [1, 2]}]})) == 3
    )


# --- automatic mode --------------------------------------------------------------------------------------------
def test_automatic_order_with_one_slot() -> None:
    strategy = search(
        run_config_search_max_instance_count=2,
        run_config_search_max_model_batch_size=4,
        run_config_search_max_concurrency=8,
    )
    assert strategy.total_estimate() == 7 * 4
    run_configs = flat(run(strategy, rising))
    loads = [1, 2, 4, 8]
    expected: list[tuple[Any, ...]] = [("default", 1, c) for c in loads]
    expected += [((i, mbs), 1, c) for i in (1, 2) for mbs in (1, 2, 4) for c in loads]
    assert [point(rc) for rc in run_configs] == expected
    assert strategy.total_estimate() == 0

    default = run_configs[0].variant
    assert default.is_default and default.config == BASE and default.params == {} and default.name == ""
    variant = run_configs[-1].variant
    assert not variant.is_default and variant.name == ""
    assert variant.config == {
        **BASE,
        "max_batch_size": 4,
        "instance_group": [{"count": 2, "kind": "KIND_GPU"}],
        "dynamic_batching": {},
    }
    assert variant.params == {
        "instance_group": [{"count": 2, "kind": "KIND_GPU"}],
        "max_batch_size": 4,
        "dynamic_batching": {},
    }
    assert run_configs[0].load.concurrency == 1 and run_configs[0].load.request_rate is None


def test_run_configs_carry_flags_and_environment() -> None:
    spec = ModelSpec(
        "m",
        perf_analyzer_flags={"percentile": 95},
        triton_server_flags={"log-verbose": 1},
        triton_server_environment={"A": "1"},
    )
    rc = search(spec).propose(1)[0]
    assert rc.model == "m"
    assert rc.perf_analyzer_flags == {"percentile": 95}
    assert rc.server_flags == {"log-verbose": 1}
    assert rc.server_env == {"A": "1"}


def test_concurrency_sweep_stops_on_plateau() -> None:
    def saturating(rc: RunConfig) -> dict[str, float]:
        return {"perf_throughput": 100.0 * min(rc.load.concurrency or 1, 8)}

    strategy = search(run_config_search_max_instance_count=1, run_config_search_max_model_batch_size=1)
    run_configs = flat(run(strategy, saturating))
    default = [rc.load.concurrency for rc in run_configs if rc.variant.is_default]
    assert default == [1, 2, 4, 8, 16, 32, 64]


def test_max_batch_size_walk_stops_when_throughput_stops_rising() -> None:
    def by_mbs(rc: RunConfig) -> dict[str, float]:
        return {"perf_throughput": 100.0 * min(rc.variant.max_batch_size, 4) * rc.variant.instance_count}

    strategy = search(run_config_search_max_instance_count=2)
    run_configs = flat(run(strategy, by_mbs))
    for count in (1, 2):
        walked = [
            rc.variant.max_batch_size
            for rc in run_configs
            if not rc.variant.is_default and rc.variant.instance_count == count
        ]
        assert sorted(set(walked)) == [1, 2, 4, 8]  # 8 is no better than 4: the walk stops there
        # flat throughput over concurrency: each variant stops after 4 loads
        assert walked.count(8) == 4


def test_non_batching_model_gets_one_config_per_instance_count() -> None:
    strategy = search(base=NON_BATCHING, run_config_search_max_concurrency=2)
    run_configs = flat(run(strategy, rising))
    variants = [rc.variant for rc in run_configs if not rc.variant.is_default]
    assert [v.instance_count for v in variants[::2]] == [1, 2, 3, 4, 5]
    for v in variants:
        assert v.config["max_batch_size"] == 0 and "dynamic_batching" not in v.config


def test_cpu_only_and_sequence_batching() -> None:
    base = {**BASE, "sequence_batching": {"max_sequence_idle_microseconds": 1000}}
    strategy = search(ModelSpec("m", cpu_only=True), base=base)
    variant = strategy.propose(1)[0].variant
    assert variant.is_default
    later = [w.variants[0] for w in strategy._walks[1:]]
    assert all(v.config["instance_group"][0]["kind"] == "KIND_CPU" for v in later)
    assert all("dynamic_batching" not in v.config for v in later)


def test_existing_dynamic_batching_is_kept() -> None:
    base = {**BASE, "dynamic_batching": {"max_queue_delay_microseconds": 100}}
    strategy = search(base=base)
    assert strategy._walks[1].variants[0].config["dynamic_batching"] == {"max_queue_delay_microseconds": 100}


def test_variant_equal_to_the_default_is_not_measured_twice() -> None:
    base = {
        **BASE,
        "max_batch_size": 1,
        "instance_group": [{"count": 1, "kind": "KIND_GPU"}],
        "dynamic_batching": {},
    }
    run_configs = flat(
        run(
            search(base=base, run_config_search_max_instance_count=1, run_config_search_max_concurrency=4),
            rising,
        )
    )
    no_duplicates_and_no_zero_load(run_configs)
    assert [rc.variant.max_batch_size for rc in run_configs if not rc.variant.is_default][0] == 2


# --- load sweep ------------------------------------------------------------------------------------------------
def test_user_concurrency_list_disables_early_exit_unless_enabled() -> None:
    def constant(rc: RunConfig) -> dict[str, float]:
        return {"perf_throughput": 100.0}

    spec = ModelSpec("m", concurrency=(32, 1, 2, 4, 8, 16))
    run_configs = flat(run(search(spec, run_config_search_disable=True), constant))
    assert [rc.load.concurrency for rc in run_configs] == [1, 2, 4, 8, 16, 32]
    run_configs = flat(run(search(spec, run_config_search_disable=True, early_exit_enable=True), constant))
    assert [rc.load.concurrency for rc in run_configs] == [1, 2, 4, 8]


def test_batch_sizes_outer_with_plateau_across_batch_sizes() -> None:
    def constant(rc: RunConfig) -> dict[str, float]:
        return {"perf_throughput": 100.0}

    spec = ModelSpec("m", batch_sizes=(32, 1, 2, 4, 8, 16))
    run_configs = flat(run(search(spec, run_config_search_disable=True, early_exit_enable=True), constant))
    assert [(rc.load.batch_size, rc.load.concurrency) for rc in run_configs] == [(b, 1) for b in (1, 2, 4, 8)]


def test_batch_sizes_above_max_batch_size_are_not_proposed() -> None:
    spec = ModelSpec("m", batch_sizes=(1, 4))
    strategy = search(
        spec,
        run_config_search_max_instance_count=1,
        run_config_search_max_model_batch_size=8,
        run_config_search_max_concurrency=1,
    )
    run_configs = flat(run(strategy, rising))
    assert [point(rc) for rc in run_configs] == [
        ("default", 1, 1),
        ("default", 4, 1),
        ((1, 1), 1, 1),
        ((1, 2), 1, 1),
        ((1, 4), 1, 1),
        ((1, 4), 4, 1),
        ((1, 8), 1, 1),
        ((1, 8), 4, 1),
    ]


def test_search_disabled_measures_the_default_at_concurrency_one() -> None:
    run_configs = flat(run(search(run_config_search_disable=True), rising))
    assert [point(rc) for rc in run_configs] == [("default", 1, 1)]


def test_request_rate_mode() -> None:
    def constant(rc: RunConfig) -> dict[str, float]:
        return {"perf_throughput": 100.0}

    config: dict[str, Any] = {
        "run_config_search_max_instance_count": 1,
        "run_config_search_max_model_batch_size": 1,
    }
    run_configs = flat(run(search(request_rate_search_enable=True, **config), constant))
    assert [rc.load.request_rate for rc in run_configs if rc.variant.is_default] == [16, 32, 64, 128]
    assert all(rc.load.concurrency is None and rc.load.mode == "request_rate" for rc in run_configs)

    # a request-rate bound set by the user (so in `user_set`) selects request rate
    run_configs = flat(run(search(run_config_search_max_request_rate=32, **config), rising))
    assert [rc.load.request_rate for rc in run_configs if rc.variant.is_default] == [16, 32]

    spec = ModelSpec("m", request_rate=(20, 10))
    run_configs = flat(run(search(spec, run_config_search_disable=True), rising))
    assert [rc.load.request_rate for rc in run_configs] == [10, 20]


def test_request_intervals_flag_is_the_single_load() -> None:
    spec = ModelSpec("m", perf_analyzer_flags={"request-intervals": "intervals.txt"})
    run_configs = flat(
        run(
            search(spec, run_config_search_max_instance_count=1, run_config_search_max_model_batch_size=1),
            rising,
        )
    )
    assert [rc.load.request_intervals for rc in run_configs] == ["intervals.txt"] * 2
    assert all(rc.load.mode == "request_intervals" for rc in run_configs)


def test_no_concurrency_zero_ever() -> None:
    def failing_latency(rc: RunConfig) -> dict[str, float]:
        return {"perf_throughput": float(rc.load.concurrency or 1), "perf_latency_p99": 1000.0}

    spec = ModelSpec("m", constraints=(Constraint("perf_latency_p99", max=10.0),))
    # the loader refuses 0; a config built in code may still hold it
    config = attrs.evolve(make_config(run_config_search_max_instance_count=2), run_config_search_min_concurrency=0)
    run_configs = flat(run(BruteSearch(spec, BASE, config), failing_latency))
    no_duplicates_and_no_zero_load(run_configs)
    assert [rc.load.concurrency for rc in run_configs if rc.variant.is_default] == [
        1,
        2,
        4,
        8,
        16,
        32,
        64,
        128,
        256,
        512,
        1024,
    ]

    spec = ModelSpec("m", concurrency=(0, 2))
    run_configs = flat(run(search(spec, run_config_search_disable=True), rising))
    assert [rc.load.concurrency for rc in run_configs] == [2]


def test_failed_measurement_stops_the_variant() -> None:
    def fails_at_4(rc: RunConfig) -> dict[str, float] | None:
        if rc.variant.is_default and (rc.load.concurrency or 0) >= 4:
            return None
        return rising(rc)

    spec = ModelSpec("m", batch_sizes=(1, 2))
    strategy = search(
        spec,
        run_config_search_max_instance_count=1,
        run_config_search_max_model_batch_size=2,
        run_config_search_max_concurrency=8,
    )
    run_configs = flat(run(strategy, fails_at_4))
    assert [point(rc) for rc in run_configs if rc.variant.is_default] == [
        ("default", 1, 1),
        ("default", 1, 2),
        ("default", 1, 4),
    ]
    # the other variants are not affected (max_batch_size 1 cannot take client batch size 2)
    assert len([rc for rc in run_configs if not rc.variant.is_default]) == 1 * 4 + 2 * 4


def test_variant_without_valid_measurement_ends_its_instance_walk() -> None:
    def first_config_broken(rc: RunConfig) -> dict[str, float] | None:
        if rc.variant.max_batch_size == 1 and rc.variant.instance_count == 1:
            return None
        return rising(rc)

    strategy = search(
        run_config_search_max_instance_count=2,
        run_config_search_max_model_batch_size=4,
        run_config_search_max_concurrency=2,
    )
    run_configs = flat(run(strategy, first_config_broken))
    walked = [
        (rc.variant.instance_count, rc.variant.max_batch_size)
        for rc in run_configs
        if not rc.variant.is_default
    ]
    assert sorted(set(walked)) == [(1, 1), (2, 1), (2, 2), (2, 4)]


# --- binary search ---------------------------------------------------------------------------------------------
def latency_bound(rc: RunConfig) -> dict[str, float]:
    c = float(rc.load.concurrency or 1)
    return {"perf_throughput": 10.0 * c, "perf_latency_p99": c}


LATENCY_47 = (Constraint("perf_latency_p99", max=47.0),)


@pytest.mark.parametrize(("steps", "extra"), [(5, [48, 40, 44, 46, 47]), (2, [48, 40]), (0, [])])
def test_binary_search_at_a_latency_boundary(steps: int, extra: list[int]) -> None:
    spec = ModelSpec("m", constraints=LATENCY_47)
    strategy = search(
        spec,
        base=NON_BATCHING,
        run_config_search_max_instance_count=1,
        run_config_search_max_binary_search_steps=steps,
    )
    run_configs = flat(run(strategy, latency_bound))
    sweep = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]
    assert [rc.load.concurrency for rc in run_configs if rc.variant.is_default] == sweep + extra
    assert [rc.load.concurrency for rc in run_configs if not rc.variant.is_default] == sweep + extra


def test_no_binary_search_with_user_concurrency_or_without_constraints() -> None:
    spec = ModelSpec("m", concurrency=(1, 32, 64), constraints=LATENCY_47)
    run_configs = flat(run(search(spec, run_config_search_disable=True), latency_bound))
    assert [rc.load.concurrency for rc in run_configs] == [1, 32, 64]
    strategy = search(ModelSpec("m"), base=NON_BATCHING, run_config_search_max_instance_count=1)
    assert len(flat(run(strategy, latency_bound))) == 22


def test_binary_search_between_neighbours_adds_nothing() -> None:
    def fails_from_2(rc: RunConfig) -> dict[str, float]:
        c = float(rc.load.concurrency or 1)
        return {"perf_throughput": 10.0 * c, "perf_latency_p99": 100.0 if c >= 2 else 1.0}

    spec = ModelSpec("m", constraints=LATENCY_47)
    strategy = search(
        spec, base=NON_BATCHING, run_config_search_max_instance_count=1, run_config_search_max_concurrency=8
    )
    assert [rc.load.concurrency for rc in flat(run(strategy, fails_from_2))] == [1, 2, 4, 8] * 2


# --- manual mode -----------------------------------------------------------------------------------------------
MANUAL = {
    "max_batch_size": [4, 8],
    "instance_group": [{"kind": "KIND_GPU", "count": [1, 2, 3]}],
    "dynamic_batching": {"max_queue_delay_microseconds": [100, 200]},
}


def test_manual_cross_product() -> None:
    base = {**BASE, "dynamic_batching": {"preferred_batch_size": [4]}}
    spec = ModelSpec("m", model_config_parameters=MANUAL)
    strategy = search(spec, base=base, run_config_search_max_concurrency=1)
    run_configs = flat(run(strategy, rising))
    assert run_configs[0].variant.is_default
    variants = [rc.variant for rc in run_configs[1:]]
    assert len(variants) == 3 * 2 * 2
    assert [
        (v.instance_count, v.config["dynamic_batching"]["max_queue_delay_microseconds"], v.max_batch_size)
        for v in variants
    ] == [(c, d, m) for c in (1, 2, 3) for d in (100, 200) for m in (4, 8)]
    assert all(v.config["dynamic_batching"]["preferred_batch_size"] == [4] for v in variants)
    assert variants[0].params == {
        "instance_group": [{"kind": "KIND_GPU", "count": 1}],
        "dynamic_batching": {"max_queue_delay_microseconds": 100},
        "max_batch_size": 4,
    }


def test_manual_mode_with_search_disabled_and_cpu_only() -> None:
    spec = ModelSpec("m", cpu_only=True, model_config_parameters={"instance_group": [{"count": [1, 2]}]})
    run_configs = flat(run(search(spec, run_config_search_disable=True), rising))
    assert [point(rc) for rc in run_configs] == [("default", 1, 1), ((1, 8), 1, 1), ((2, 8), 1, 1)]
    assert run_configs[1].variant.config["instance_group"] == [{"count": 1, "kind": "KIND_CPU"}]


def test_manual_max_batch_size_plateau_only_with_early_exit() -> None:
    def by_mbs(rc: RunConfig) -> dict[str, float]:
        return {"perf_throughput": 100.0 * min(rc.variant.max_batch_size, 2)}

    params = {"max_batch_size": [1, 2, 4, 8, 16]}
    spec = ModelSpec("m", model_config_parameters=params, concurrency=(1,))
    without = flat(run(search(spec), by_mbs))
    # max_batch_size 8 gives the default config itself: its measurement is reused, not repeated
    assert [rc.variant.max_batch_size for rc in without[1:]] == [1, 2, 4, 16]
    base = {**BASE, "max_batch_size": 64}
    with_exit = flat(run(search(spec, base=base, early_exit_enable=True), by_mbs))
    assert [rc.variant.max_batch_size for rc in with_exit[1:]] == [1, 2, 4]


# --- parallel proposals ----------------------------------------------------------------------------------------
def walk_of(rc: RunConfig) -> Any:
    return "default" if rc.variant.is_default else rc.variant.instance_count


@pytest.mark.parametrize("slots", [2, 3, 5])
def test_slots_spread_over_independent_walks(slots: int) -> None:
    def curve(rc: RunConfig) -> dict[str, float]:
        values = latency_bound(rc)
        values["perf_throughput"] *= min(rc.variant.max_batch_size, 8) * rc.variant.instance_count
        return values

    spec = ModelSpec("m", constraints=LATENCY_47, batch_sizes=(1, 2))
    limits: dict[str, Any] = {
        "run_config_search_max_instance_count": 3,
        "run_config_search_max_model_batch_size": 32,
    }
    sequential = flat(run(search(spec, **limits), curve))
    batches = run(search(spec, **limits), curve, slots=slots)
    for batch in batches:
        assert len({walk_of(rc) for rc in batch}) == len(batch)
    assert len(batches[0]) == min(slots, 4)
    parallel = flat(batches)
    # the same experiments, whatever the parallelism: every walk takes the same decisions
    assert sorted(rc.key for rc in parallel) == sorted(rc.key for rc in sequential)
    no_duplicates_and_no_zero_load(parallel)
    assert len(batches) < len(sequential)


def test_manual_variants_are_independent_walks() -> None:
    spec = ModelSpec("m", model_config_parameters=MANUAL)
    batches = run(search(spec, run_config_search_max_concurrency=2), rising, slots=20)
    assert [len(b) for b in batches] == [13, 13]


def test_propose_again_before_observe_does_not_repeat() -> None:
    strategy = search(run_config_search_max_instance_count=2)
    first = strategy.propose(1)
    second = strategy.propose(1)
    assert first[0].key != second[0].key
    assert walk_of(first[0]) != walk_of(second[0])


@pytest.mark.parametrize("slots", [1, 3])
@pytest.mark.parametrize(
    ("spec", "overrides"),
    [
        (
            ModelSpec("m", constraints=LATENCY_47, batch_sizes=(1, 2)),
            {"run_config_search_max_instance_count": 2},
        ),
        (ModelSpec("m", model_config_parameters=MANUAL), {"early_exit_enable": True}),
        (ModelSpec("m", request_rate=(10, 20, 40)), {}),
    ],
)
def test_total_estimate_is_an_upper_bound_of_what_remains(
    spec: ModelSpec, overrides: dict[str, Any], slots: int
) -> None:
    strategy = search(spec, **overrides)
    estimates: list[tuple[int, int]] = []  # (estimate, proposed so far)
    proposed = 0
    while True:
        estimates.append((strategy.total_estimate(), proposed))
        batch = strategy.propose(slots)
        if not batch:
            break
        proposed += len(batch)
        strategy.observe(
            [
                Result(
                    rc, Measurement(rc.key, metrics=tuple(Metric(k, v) for k, v in latency_bound(rc).items()))
                )
                for rc in batch
            ]
        )
    for estimate, before in estimates:
        assert estimate >= proposed - before
    assert estimates[-1][0] == 0
