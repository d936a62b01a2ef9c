"""The brute search strategy, driven with synthetic measurements (throughput/latency curve functions): manual mode and parallel proposals."""

from __future__ import annotations

from typing import Any

import pytest

from modelyzer.kernel.models import (
    Measurement,
    Metric,
    ModelSpec,
    Result,
    RunConfig,
)
from tests.plugins.search.brute_support import (
    BASE,
    LATENCY_47,
    flat,
    latency_bound,
    no_duplicates_and_no_zero_load,
    point,
    rising,
    run,
    search,
)

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

