"""The quick strategy (hill climbing + load sweep), driven with the SYNTHETIC surfaces of bench/surfaces."""

from __future__ import annotations

from typing import Any

import pytest

from bench.surfaces.synthetic import SURFACES, Surface, by_name
from modelyzer.kernel.models import Constraint, Measurement, ModelSpec, Result, RunConfig
from modelyzer.plugins.search import quick as quick_search
from modelyzer.plugins.search.common import Judge, load_plan
from modelyzer.plugins.search.quick import HillClimb, QuickSearch, lower_load
from modelyzer.plugins.search.space import config_space
from tests.plugins.search.test_common import (
    LATENCY,
    SURFACE_CASES,
    best_passing,
    brute_reference,
    drive,
    flat,
    make_config,
    measurement,
    surface_spec,
)


def quick(spec: ModelSpec, surface: Surface, **config: Any) -> QuickSearch:
    return QuickSearch(spec, surface.base_config(), make_config(**config))


def test_registers_as_quick() -> None:
    registered: dict[str, Any] = {}
    quick_search.register_search_strategies(register=lambda name, factory: registered.setdefault(name, factory))
    assert registered == {"quick": QuickSearch}


@pytest.mark.parametrize(("surface", "constrained"), SURFACE_CASES)
def test_reaches_the_brute_force_optimum_with_few_measurements(surface: Surface, constrained: bool) -> None:
    spec = surface_spec(surface, constrained)
    run_configs = flat(drive(quick(spec, surface), surface.metrics))
    brute_measured, optimum = brute_reference(surface, constrained)
    found, best = best_passing(spec, surface, run_configs)
    assert found >= 0.98 * optimum
    assert len(run_configs) <= 0.23 * brute_measured  # the sweeps climb from load 1 (every peak found from below)
    assert best is not None and not best.variant.is_default


@pytest.mark.parametrize("slots", [2, 4])
@pytest.mark.parametrize("surface", SURFACES, ids=[s.name for s in SURFACES])
def test_parallel_batches_are_independent_and_still_good(surface: Surface, slots: int) -> None:
    spec = surface_spec(surface, True)
    batches = drive(quick(spec, surface), surface.metrics, slots=slots)  # drive() checks keys never repeat
    assert max(len(b) for b in batches) == slots
    assert len(batches) < len(flat(batches))
    for batch in batches:
        assert len({rc.variant.config_hash for rc in batch}) == len(batch)  # one per line of search
    brute_measured, optimum = brute_reference(surface, True)
    assert best_passing(spec, surface, flat(batches))[0] >= 0.95 * optimum
    assert len(flat(batches)) <= 0.20 * brute_measured  # parallel lines of search know less per step


def test_never_returns_a_failing_config_when_one_passes() -> None:
    surface = by_name("synthetic-batch-friendly")
    spec = ModelSpec(surface.name, constraints=(Constraint(LATENCY, max=6.0),))  # 55 of 451 grid points pass
    run_configs = flat(drive(quick(spec, surface), surface.metrics))
    judge = Judge(spec)
    results = [measurement(rc, surface.metrics(rc)) for rc in run_configs]
    best = judge.best(results)
    assert best is not None and judge.passes(best)
    deep = [m for m in results if judge.deep_failing(m)]
    assert len(deep) <= 4  # it does not wander into the region that fails by more than 2×


def test_respects_every_bound_and_never_proposes_concurrency_zero() -> None:
    surface = by_name("synthetic-sweet-spot")
    bounds = {
        "run_config_search_min_model_batch_size": 2,
        "run_config_search_max_model_batch_size": 16,
        "run_config_search_max_instance_count": 3,
        "run_config_search_max_concurrency": 64,
    }
    for constrained in (False, True):
        run_configs = flat(drive(quick(surface_spec(surface, constrained), surface, **bounds), surface.metrics))
        for rc in run_configs:
            assert rc.load.concurrency is not None and 1 <= rc.load.concurrency <= 64
            if not rc.variant.is_default:
                assert 2 <= rc.variant.max_batch_size <= 16 and 1 <= rc.variant.instance_count <= 3


def test_the_sweep_reuses_measured_loads_and_climbs_from_the_lowest() -> None:
    """Model Analyzer's sweeper never saw a measurement (bug 9.2.1): here the search's load is reused, not measured
    again, while the sweep climbs from load 1 to find the peak from below."""
    surface = by_name("synthetic-batch-friendly")
    strategy = quick(surface_spec(surface, False), surface)
    run_configs = flat(drive(strategy, surface.metrics))
    best = max(run_configs, key=lambda rc: surface.metrics(rc)["perf_throughput"])
    loads = [rc.load.concurrency for rc in run_configs if rc.variant.config == best.variant.config]
    assert loads[0] >= 256 and 1 in loads and len(loads) == len(set(loads))
    disabled = flat(drive(quick(surface_spec(surface, False), surface, concurrency_sweep_disable=True), surface.metrics))
    assert len(disabled) < len(run_configs)
    assert {rc.variant.config_hash for rc in disabled} >= {rc.variant.config_hash for rc in run_configs}


def test_a_failing_formula_load_is_lowered_by_the_violation() -> None:
    spec = ModelSpec("m", constraints=(Constraint(LATENCY, max=10.0),))
    plan = load_plan(spec, make_config())
    judge = Judge(spec)
    failing = Measurement("k", metrics=measurement(RunConfigStub, {LATENCY: 45.0}).metrics)  # 4.5× the budget
    assert lower_load(plan, 256, judge, failing) == 32  # 256 / 4.5 = 57 → 32
    assert lower_load(plan, 2, judge, failing) == 1
    assert lower_load(plan, 1, judge, failing) is None


class RunConfigStub:
    key = "k"


def test_climb_follows_model_analyzer_steps_on_a_ramp() -> None:
    surface = by_name("synthetic-batch-friendly")
    spec = ModelSpec(surface.name)
    space = config_space(spec, surface.base_config(), make_config())
    climb = HillClimb(space, Judge(spec))
    assert climb.home == (0, 0) and len(climb.neighborhood) == 11  # radius 3 in the positive quadrant
    measured: list[tuple[int, ...]] = []
    while not climb.done:
        coords = climb.wanted(1, set())
        if not coords:
            break
        for coord in coords:
            measured.append(coord)
            variant = space.variant(coord)
            mbs, n = variant.max_batch_size, variant.instance_count
            climb.record(coord, measurement(RunConfigStub, surface.point(mbs, n, 1, 2 * mbs * n, True)))  # type: ignore[arg-type]
    assert measured[:4] == [(0, 0), (1, 1), (2, 2), (0, 3)]  # home, then the most-covering neighbours
    assert climb.best() == (7, 4)  # the corner: biggest batches, most instances
    assert len(measured) <= 20


def test_model_config_parameters_are_climbed_too() -> None:
    surface = by_name("synthetic-sweet-spot")
    params = {"dynamic_batching": {"max_queue_delay_microseconds": [0, 100, 500, 2000]}}
    spec = ModelSpec(surface.name, model_config_parameters=params)
    run_configs = flat(drive(quick(spec, surface), surface.metrics))
    delays = {rc.variant.config["dynamic_batching"]["max_queue_delay_microseconds"]
              for rc in run_configs if not rc.variant.is_default}
    assert len(delays) >= 2


def test_non_batching_model_climbs_instances_only() -> None:
    surface = by_name("synthetic-core-bound")
    base = {**surface.base_config(), "max_batch_size": 0}
    strategy = QuickSearch(ModelSpec(surface.name), base, make_config())
    run_configs = flat(drive(strategy, surface.metrics))
    assert {rc.variant.max_batch_size for rc in run_configs} == {0}
    assert {rc.variant.instance_count for rc in run_configs if not rc.variant.is_default} <= {1, 2, 3, 4, 5}


def test_request_rate_and_client_batch_sizes() -> None:
    surface = by_name("synthetic-core-bound")
    spec = ModelSpec(surface.name, batch_sizes=(1, 4))
    run_configs = flat(drive(quick(spec, surface, request_rate_search_enable=True), surface.metrics))
    assert all(rc.load.mode == "request_rate" and 16 <= (rc.load.request_rate or 0) <= 8192 for rc in run_configs)
    assert {rc.load.batch_size for rc in run_configs} == {1, 4}
    assert all(not 0 < rc.variant.max_batch_size < rc.load.batch_size for rc in run_configs)


def test_propose_again_before_observe_repeats_nothing() -> None:
    surface = by_name("synthetic-core-bound")
    strategy = quick(ModelSpec(surface.name), surface)
    first, second = strategy.propose(1), strategy.propose(1)
    assert first and {rc.key for rc in first}.isdisjoint(rc.key for rc in second)


def test_total_estimate_bounds_what_remains() -> None:
    surface = by_name("synthetic-sweet-spot")
    strategy = quick(surface_spec(surface, True), surface)
    estimates: list[tuple[int, int]] = []
    proposed = 0
    while True:
        estimates.append((strategy.total_estimate(), proposed))
        batch = strategy.propose(2)
        if not batch:
            break
        proposed += len(batch)
        strategy.observe([Result(rc, measurement(rc, surface.metrics(rc))) for rc in batch])
    assert strategy.done
    assert all(estimate >= proposed - before for estimate, before in estimates)
    assert estimates[-1][0] == 0


def test_results_come_back_in_any_order(monkeypatch: pytest.MonkeyPatch) -> None:
    surface = by_name("synthetic-core-bound")
    strategy = quick(surface_spec(surface, True), surface)
    total = 0
    while batch := strategy.propose(3):
        total += len(batch)
        results = [Result(rc, measurement(rc, surface.metrics(rc))) for rc in batch]
        strategy.observe(list(reversed(results)))
    assert strategy.done and total > 5


def run_config_of(results: list[Result]) -> list[RunConfig]:
    return [r.run_config for r in results]


def test_the_space_has_only_the_fields_the_launcher_tunes() -> None:
    base = {"name": "m", "max_batch_size": 8}
    assert [d.name for d in config_space(ModelSpec("m"), base, make_config()).dimensions] == ["max_batch_size",
                                                                                      "instance_count"]
    assert config_space(ModelSpec("m", tuned_fields=()), base, make_config()).dimensions == ()
    listed = ModelSpec("m", tuned_fields=(), model_config_parameters={"parameters": {"k": {"string_value": ["a", "b"]}}})
    assert [d.name for d in config_space(listed, base, make_config()).dimensions] == ["parameters.k.string_value"]


def test_an_ensembles_space_is_its_batch_size() -> None:
    base = {"name": "e", "platform": "ensemble", "max_batch_size": 8, "ensemble_scheduling": {"step": []}}
    space = config_space(ModelSpec("e"), base, make_config())
    assert [d.name for d in space.dimensions] == ["max_batch_size"] and space.fixed == {}
