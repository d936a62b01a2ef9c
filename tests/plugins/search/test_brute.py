"""The brute search strategy, driven with synthetic measurements (throughput/latency curve functions): helpers and automatic mode."""

from __future__ import annotations

from typing import Any

from modelyzer.kernel.models import (
    ModelSpec,
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
from tests.plugins.search.brute_support import (
    BASE,
    NON_BATCHING,
    flat,
    no_duplicates_and_no_zero_load,
    point,
    rising,
    run,
    search,
)


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




def test_a_server_without_instance_groups_or_batching_is_searched_over_load_only() -> None:
    """A launcher declaring `tuned_fields = ()` (one server process, e.g. an LLM server): the automatic search
    has no model-config field to vary, so only the default config's load sweep runs."""
    strategy = search(ModelSpec("m", tuned_fields=()), run_config_search_max_concurrency=4)
    run_configs = flat(run(strategy, rising))
    assert run_configs and all(rc.variant.is_default for rc in run_configs)
    batching_only = search(ModelSpec("m", tuned_fields=("max_batch_size",)))
    variants = [w.variants for w in batching_only._walks[1:]]
    assert len(variants) == 1 and all("instance_group" not in v.params for v in variants[0])
    assert [v.max_batch_size for v in variants[0]][:2] == [1, 2]


ENSEMBLE = {"name": "e", "platform": "ensemble", "max_batch_size": 8,
            "ensemble_scheduling": {"step": [{"model_name": "a", "model_version": -1}]}}


def test_an_ensemble_varies_its_batch_size_only_and_keeps_its_scheduling() -> None:
    """An ensemble has no instances of its own and one scheduling choice (ensemble_scheduling): no instance
    groups, no dynamic batching added (Triton refuses two scheduling choices)."""
    strategy = search(base=ENSEMBLE)
    variants = [v for w in strategy._walks[1:] for v in w.variants]
    assert variants and [v.max_batch_size for v in variants][:2] == [1, 2]
    for v in variants:
        assert "instance_group" not in v.config and "dynamic_batching" not in v.config
        assert v.config["ensemble_scheduling"] == ENSEMBLE["ensemble_scheduling"]
