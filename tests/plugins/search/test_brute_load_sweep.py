"""The brute search strategy, driven with synthetic measurements (throughput/latency curve functions): the load sweep and the binary search at constraint boundaries."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from modelyzer.kernel.models import (
    Constraint,
    ModelSpec,
    RunConfig,
)
from modelyzer.plugins.search.brute import (
    BruteSearch,
)
from tests.plugins.search.brute_support import (
    BASE,
    LATENCY_47,
    NON_BATCHING,
    flat,
    latency_bound,
    no_duplicates_and_no_zero_load,
    point,
    rising,
    run,
    search,
)
from tests.plugins.search.test_common import make_config


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




def test_binary_search_snaps_to_the_loads_a_recording_answers() -> None:
    """Under replay (`recorded_loads`), the bisection measures only recorded loads between the boundary's two."""
    spec = ModelSpec("m", constraints=LATENCY_47)
    strategy = search(spec, base=NON_BATCHING, run_config_search_max_instance_count=1,
                      run_config_search_max_binary_search_steps=5)
    asked: list[RunConfig] = []

    def recorded(rc: RunConfig) -> tuple[int, ...]:
        asked.append(rc)
        return (1, 2, 4, 8, 16, 32, 40, 45, 50, 64, 128, 256, 512, 1024)

    strategy.recorded_loads = recorded
    run_configs = flat(run(strategy, latency_bound))
    sweep = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]
    # 32..64: 50 (recorded, nearest 48); 32..50: 40 (nearest 41); 40..50: 45; 45..50: nothing recorded between
    assert [rc.load.concurrency for rc in run_configs if rc.variant.is_default] == sweep + [50, 40, 45]
    assert asked and all(rc.load.concurrency == 32 for rc in asked)


def test_binary_search_stops_when_no_recorded_load_lies_between() -> None:
    spec = ModelSpec("m", constraints=LATENCY_47)
    strategy = search(spec, base=NON_BATCHING, run_config_search_max_instance_count=1)
    strategy.recorded_loads = lambda rc: (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
    sweep = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]
    assert [rc.load.concurrency for rc in flat(run(strategy, latency_bound))] == sweep * 2
