"""What the search strategies share (search_common, load_sweep), and the harness their tests use.

Strategies are driven like the engine drives them, with measurements from the SYNTHETIC surfaces of
`bench/surfaces/synthetic.py` (analytic functions of max_batch_size, instances, client batch and concurrency).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from bench.surfaces.synthetic import SURFACES, Surface
from modelyzer.kernel.config import ProfileConfig, config_from_dict
from modelyzer.kernel.interfaces import SearchStrategy
from modelyzer.kernel.models import (
    STATUS_FAILED,
    STATUS_NOT_RECORDED,
    ConfigVariant,
    Constraint,
    LoadSpec,
    Measurement,
    Metric,
    ModelSpec,
    Result,
    RunConfig,
)
from modelyzer.kernel.store import Store
from modelyzer.plugins.search import brute as brute_search
from modelyzer.plugins.search import common as search_common
from modelyzer.plugins.search.brute import BruteSearch
from modelyzer.plugins.search.common import (
    Judge,
    SearchState,
    bisection_load,
    formula_load,
    load_plan,
    make_run_config,
)
from modelyzer.plugins.search.load_sweep import Sweep, WalkDriver, top_variants
from modelyzer.plugins.search.space import config_space

Answer = Callable[[RunConfig], "dict[str, float] | None"]
LATENCY = "perf_latency_p99"


# --- harness --------------------------------------------------------------------------------------------------
def make_config(**overrides: Any) -> ProfileConfig:
    """The profile config of model `m` with `overrides` set as YAML keys (so they are in `user_set`); every
    other key has its default."""
    return config_from_dict({"profile_models": "m", **overrides}, check_paths=False)


def measurement(rc: RunConfig, values: dict[str, float] | None) -> Measurement:
    if values is None:
        return Measurement(rc.key, status=STATUS_FAILED, error="perf_analyzer failed")
    return Measurement(rc.key, metrics=tuple(Metric(k, v) for k, v in values.items()))


def drive(strategy: SearchStrategy, answer: Answer, slots: int = 1, limit: int = 5000) -> list[list[RunConfig]]:
    """Propose/observe until done, like the engine; returns the batches. Checks batches are independent."""
    batches: list[list[RunConfig]] = []
    seen: set[str] = set()
    while True:
        batch = strategy.propose(slots)
        if not batch:
            return batches
        keys = [rc.key for rc in batch]
        assert len(set(keys)) == len(keys) and not seen & set(keys), "a RunConfig was proposed twice"
        seen |= set(keys)
        batches.append(batch)
        strategy.observe([Result(rc, measurement(rc, answer(rc))) for rc in batch])
        assert len(seen) < limit


def flat(batches: list[list[RunConfig]]) -> list[RunConfig]:
    return [rc for batch in batches for rc in batch]


def surface_spec(surface: Surface, constrained: bool) -> ModelSpec:
    constraints = (Constraint(LATENCY, max=surface.latency_budget),) if constrained else ()
    return ModelSpec(surface.name, constraints=constraints)


def best_passing(spec: ModelSpec, surface: Surface, run_configs: list[RunConfig]) -> tuple[float, RunConfig | None]:
    """The best throughput among passing measurements, and its RunConfig."""
    judge = Judge(spec)
    best: tuple[float, RunConfig | None] = (0.0, None)
    for rc in run_configs:
        m = measurement(rc, surface.metrics(rc))
        if judge.passes(m) and surface.metrics(rc)["perf_throughput"] > best[0]:
            best = (surface.metrics(rc)["perf_throughput"], rc)
    return best


_brute_cache: dict[tuple[str, bool], tuple[int, float]] = {}


def brute_reference(surface: Surface, constrained: bool) -> tuple[int, float]:
    """(measurements, optimum throughput) of brute force on a surface."""
    key = (surface.name, constrained)
    if key not in _brute_cache:
        spec = surface_spec(surface, constrained)
        run_configs = flat(drive(BruteSearch(spec, surface.base_config(), make_config()), surface.metrics))
        _brute_cache[key] = (len(run_configs), best_passing(spec, surface, run_configs)[0])
    return _brute_cache[key]


SURFACE_CASES = [pytest.param(s, c, id=f"{s.name}-{'latency' if c else 'free'}") for s in SURFACES for c in (False, True)]


# --- helpers moved out of brute ---------------------------------------------------------------------------------
def test_brute_uses_the_shared_helpers() -> None:
    for name in ("generate_combinations", "deep_merge", "doubled_list", "gain_valid", "boundary", "throughput"):
        assert getattr(brute_search, name) is getattr(search_common, name)


# --- load plan --------------------------------------------------------------------------------------------------
def test_load_plan_modes() -> None:
    plan = load_plan(ModelSpec("m"), make_config())
    assert plan.mode == "concurrency" and plan.values[0] == 1 and plan.values[-1] == 1024 and plan.searched
    assert plan.early_exit and plan.binary_steps == 0  # no constraint, nothing to bisect
    constrained = ModelSpec("m", constraints=(Constraint(LATENCY, max=10.0),))
    assert load_plan(constrained, make_config()).binary_steps == 5
    user = load_plan(ModelSpec("m", concurrency=(8, 2, 0)), make_config())
    assert user.values == (2, 8) and not user.searched and not user.early_exit
    rate = load_plan(ModelSpec("m"), make_config(request_rate_search_enable=True))
    assert rate.mode == "request_rate" and rate.values[0] == 16 and rate.values[-1] == 8192
    intervals = load_plan(ModelSpec("m", perf_analyzer_flags={"request-intervals": "f.txt"}), make_config())
    assert intervals.mode == "request_intervals" and intervals.values == ("f.txt",) and intervals.numeric == ()


def test_run_configs_never_have_load_zero() -> None:
    variant = ConfigVariant("m", {"max_batch_size": 8})
    assert make_run_config(ModelSpec("m"), variant, "concurrency", 1, 0).load.concurrency == 1
    assert make_run_config(ModelSpec("m"), variant, "request_rate", 1, 0).load.request_rate == 1


# --- config space -----------------------------------------------------------------------------------------------
BASE: dict[str, Any] = {"name": "m", "platform": "onnxruntime_onnx", "max_batch_size": 8}


def test_default_space_is_max_batch_size_by_instances() -> None:
    space = config_space(ModelSpec("m"), BASE, make_config())
    assert [(d.name, d.labels) for d in space.dimensions] == [
        ("max_batch_size", (1, 2, 4, 8, 16, 32, 64, 128)),
        ("instance_count", (1, 2, 3, 4, 5)),
    ]
    assert space.size == 40
    variant = space.variant((3, 1))
    assert variant.config == {
        **BASE, "max_batch_size": 8, "instance_group": [{"count": 2, "kind": "KIND_GPU"}], "dynamic_batching": {},
    }
    assert space.default_variant().is_default and space.default_variant().config == BASE
    cpu = config_space(ModelSpec("m", cpu_only=True), BASE, make_config(run_config_search_max_instance_count=2))
    assert cpu.variant((0, 1)).config["instance_group"] == [{"count": 2, "kind": "KIND_CPU"}]


def test_space_of_non_batching_and_sequence_models() -> None:
    space = config_space(ModelSpec("m"), {**BASE, "max_batch_size": 0}, make_config())
    assert [d.name for d in space.dimensions] == ["instance_count"]
    assert "dynamic_batching" not in space.variant((0,)).config
    sequence = config_space(ModelSpec("m"), {**BASE, "sequence_batching": {}}, make_config())
    assert "dynamic_batching" not in sequence.variant((0, 0)).config


def test_model_config_parameters_become_dimensions() -> None:
    params = {
        "dynamic_batching": {"max_queue_delay_microseconds": [400, 100, 200], "preferred_batch_size": [[4], [8]]},
        "parameters": {"threads": {"string_value": ["1", "2"]}},
        "instance_group": [{"kind": "KIND_CPU", "count": [4, 1, 2]}],
        "optimization": {"priority": "PRIORITY_MAX"},
    }
    space = config_space(ModelSpec("m", model_config_parameters=params), BASE, make_config())
    dims = {d.name: d for d in space.dimensions}
    assert list(dims) == [
        "max_batch_size",
        "instance_count",
        "dynamic_batching.max_queue_delay_microseconds",
        "dynamic_batching.preferred_batch_size",
        "parameters.threads.string_value",
    ]
    assert dims["instance_count"].labels == (1, 2, 4) and dims["instance_count"].load_increasing
    delay = dims["dynamic_batching.max_queue_delay_microseconds"]
    assert delay.labels == (100, 200, 400) and delay.ordered and delay.load_increasing
    assert not dims["parameters.threads.string_value"].ordered
    assert space.fixed["optimization"] == {"priority": "PRIORITY_MAX"}
    config = space.variant((0, 2, 1, 1, 1)).config
    assert config["instance_group"] == [{"kind": "KIND_CPU", "count": 4}]
    assert config["dynamic_batching"] == {"max_queue_delay_microseconds": 200, "preferred_batch_size": [8]}
    assert config["parameters"] == {"threads": {"string_value": "2"}}
    listed = config_space(ModelSpec("m", model_config_parameters={"max_batch_size": [16, 4]}), BASE, make_config())
    assert listed.dimensions[0].name == "max_batch_size" and listed.dimensions[0].labels == (4, 16)


def test_formula_load_snaps_and_respects_both_bounds() -> None:
    plan = load_plan(ModelSpec("m"), make_config())
    variant = ConfigVariant("m", {"max_batch_size": 8, "instance_group": [{"count": 3}]})
    assert formula_load(variant, plan) == 64  # 2 × 8 × 3 = 48 → nearest power of two
    small = load_plan(ModelSpec("m"), make_config(run_config_search_max_concurrency=16))
    assert formula_load(variant, small) == 16  # Model Analyzer's bug 9.2.3 ignored this maximum
    high = load_plan(ModelSpec("m"), make_config(run_config_search_min_concurrency=128))
    assert formula_load(variant, high) == 128
    rate = load_plan(ModelSpec("m"), make_config(request_rate_search_enable=True))
    assert formula_load(variant, rate) == 256  # the middle of 16..8192


# --- judging ----------------------------------------------------------------------------------------------------
def m(**values: float) -> Measurement:
    return Measurement("k", metrics=tuple(Metric(k, v) for k, v in values.items()))


def test_judge_orders_failed_failing_and_passing() -> None:
    judge = Judge(ModelSpec("m", constraints=(Constraint(LATENCY, max=10.0), Constraint("perf_throughput", min=50.0))))
    failed = Measurement("k", status=STATUS_FAILED)
    slow, slower = m(perf_throughput=500, perf_latency_p99=15), m(perf_throughput=900, perf_latency_p99=40)
    good, better = m(perf_throughput=100, perf_latency_p99=5), m(perf_throughput=200, perf_latency_p99=9)
    assert judge.better(slow, failed) and not judge.better(failed, slow)
    assert judge.better(good, slow) and judge.better(slow, slower) and judge.better(better, good)
    assert judge.best([failed, slower, good, better, slow]) is better
    assert judge.load_failure(m(perf_throughput=10, perf_latency_p99=5)) == 0  # a min constraint is not "load"
    assert not judge.deep_failing(slower.__class__("k", metrics=(Metric(LATENCY, 20.0),)))
    assert judge.deep_failing(slower)  # 40 ms against 10 ms: more than 2× the budget


# --- state kept across resumes ---------------------------------------------------------------------------------
def test_search_state_persists_in_the_results_db(tmp_path: Path) -> None:
    db = tmp_path / "results.db"
    store = Store(db)
    state = SearchState(db)
    assert state.get("optuna/m", "seed") is None
    state.set("optuna/m", "seed", 42)
    state.set("optuna/m", "seed", 43)
    state.close()
    assert SearchState.for_config(make_config(results_db=db)).get("optuna/m", "seed") == 43
    assert "search_state" in store.db.table_names()
    memory = SearchState(None)
    memory.set("s", "n", [1, 2])
    assert memory.get("s", "n") == [1, 2] and SearchState(None).get("s", "n") is None


# --- the load sweep ---------------------------------------------------------------------------------------------
def sweep_values(sweep: Sweep, answer: Answer) -> list[int | str | None]:
    driver = WalkDriver({})
    driver.add(sweep.walk())
    strategy = SimpleNamespace(propose=driver.propose, observe=driver.observe)
    return [rc.load.value for rc in flat(drive(strategy, answer))]  # type: ignore[arg-type]


def saturating(rc: RunConfig) -> dict[str, float]:
    c = float(rc.load.concurrency or 1)
    return {"perf_throughput": 1000 * c / (c + 20), LATENCY: c / 2}


def test_sweep_climbs_from_the_lowest_load_to_the_knee() -> None:
    spec = ModelSpec("m")
    sweep = Sweep(spec, load_plan(spec, make_config()), Judge(spec), ConfigVariant("m", {"max_batch_size": 8}))
    assert sweep_values(sweep, saturating) == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]  # gains >1% to the top
    flat_top = Sweep(spec, load_plan(spec, make_config()), Judge(spec), ConfigVariant("m", {}))
    assert sweep_values(flat_top, lambda rc: {"perf_throughput": 100.0}) == [1, 2, 4]  # the knee: two flat steps


def test_sweep_finds_a_peak_below_where_the_search_first_measured() -> None:
    """Throughput collapses at high load (peak 213/s at concurrency 2, 87/s at 256, the search's load): the sweep
    climbs from 1, finds the peak and stops at the knee above it — never reporting the config at 87/s."""
    spec = ModelSpec("m")
    variant = ConfigVariant("m", {})
    sweep = Sweep(spec, load_plan(spec, make_config()), Judge(spec), variant)
    known = make_run_config(spec, variant, "concurrency", 1, 256)
    sweep.points[(1, 256)] = measurement(known, {"perf_throughput": 87.0})
    collapse = {1: 150.0, 2: 213.0, 4: 190.0, 8: 160.0}
    assert sweep_values(sweep, lambda rc: {"perf_throughput": collapse.get(rc.load.concurrency or 1, 90.0)}) == [1, 2, 4, 8]
    best = Judge(spec).best(list(sweep.points.values()))
    assert best is not None and Judge(spec).values(best)["perf_throughput"] == 213.0


def test_sweep_climbs_on_past_a_flat_stretch_to_a_better_known_load() -> None:
    spec = ModelSpec("m")
    variant = ConfigVariant("m", {})
    sweep = Sweep(spec, load_plan(spec, make_config()), Judge(spec), variant)
    sweep.points[(1, 64)] = measurement(make_run_config(spec, variant, "concurrency", 1, 64), {"perf_throughput": 200.0})
    step = lambda rc: {"perf_throughput": 200.0 if (rc.load.concurrency or 1) >= 64 else 100.0}  # noqa: E731
    assert sweep_values(sweep, step) == [1, 2, 4, 8, 16, 32, 128, 256]  # 64 was known: reused, not asked


def test_sweep_bisects_the_latency_boundary_on_the_way_up() -> None:
    spec = ModelSpec("m", constraints=(Constraint(LATENCY, max=20.0),))
    plan = load_plan(spec, make_config())
    values = sweep_values(Sweep(spec, plan, Judge(spec), ConfigVariant("m", {})), saturating)
    assert values == [1, 2, 4, 8, 16, 32, 64, 48, 40]  # c/2 ≤ 20 ↔ c ≤ 40: at 40 nothing is left to win above it
    steep = Sweep(spec, plan, Judge(spec), ConfigVariant("m", {}))
    values = sweep_values(steep, lambda rc: {"perf_throughput": float(rc.load.concurrency or 1), LATENCY: 15.0
                                             if (rc.load.concurrency or 1) <= 41 else 25.0})
    assert values == [1, 2, 4, 8, 16, 32, 64, 48, 40, 44, 42, 41]  # a step in latency: bisected to the last passing
    assert all(isinstance(v, int) and v >= 1 for v in values)
    never_passing = Sweep(spec, plan, Judge(spec), ConfigVariant("m", {}))
    assert sweep_values(never_passing, lambda rc: {"perf_throughput": 1.0, LATENCY: 99.0}) == [1]


def test_sweep_bisects_onto_recorded_loads() -> None:
    spec = ModelSpec("m", constraints=(Constraint(LATENCY, max=20.0),))
    plan = load_plan(spec, make_config())
    recorded = (1, 2, 4, 8, 16, 32, 36, 56, 64, 128, 256)
    sweep = Sweep(spec, plan, Judge(spec), ConfigVariant("m", {}), recorded_loads=lambda rc: recorded)
    values = sweep_values(sweep, saturating)
    assert values == [1, 2, 4, 8, 16, 32, 64, 56, 36]  # 48 and 40 were never recorded: the nearest recorded loads
    assert bisection_load(32, 64) == 48 and bisection_load(32, 64, recorded) == 56
    assert bisection_load(32, 64, (1, 32, 64)) is None and bisection_load(1, 2) is None
    assert bisection_load(32, 64, (40, 56)) == 40  # equally near the middle: the lower


def test_sweep_measures_a_user_list_in_full_and_skips_missing_points() -> None:
    spec = ModelSpec("m", concurrency=(1, 2, 4, 8))
    sweep = Sweep(spec, load_plan(spec, make_config()), Judge(spec), ConfigVariant("m", {}))
    assert sweep_values(sweep, lambda rc: {"perf_throughput": 5.0}) == [1, 2, 4, 8]
    spec = ModelSpec("m")
    sweep = Sweep(spec, load_plan(spec, make_config()), Judge(spec), ConfigVariant("m", {}))
    driver = WalkDriver({})
    driver.add(sweep.walk())
    asked: list[int | str | None] = []
    while batch := driver.propose(1):
        rc = batch[0]
        asked.append(rc.load.value)
        missing = rc.load.concurrency == 8
        m_ = Measurement(rc.key, status=STATUS_NOT_RECORDED) if missing else measurement(rc, saturating(rc))
        driver.observe([Result(rc, m_)])
    assert asked[:5] == [1, 2, 4, 8, 16]  # 8 was not recorded: skipped, the climb goes on


def test_walk_driver_reuses_measured_keys_and_runs_walks_side_by_side() -> None:
    spec = ModelSpec("m", concurrency=(1, 2))
    plan = load_plan(spec, make_config())
    variants = [ConfigVariant("m", {"max_batch_size": b}) for b in (1, 2)]
    known = make_run_config(spec, variants[0], "concurrency", 1, 1)
    driver = WalkDriver({known.key: measurement(known, {"perf_throughput": 1.0})})
    for v in variants:
        driver.add(Sweep(spec, plan, Judge(spec), v).walk())
    first = driver.propose(5)
    assert [(rc.variant.max_batch_size, rc.load.concurrency) for rc in first] == [(1, 2), (2, 1)]
    assert driver.propose(5) == []  # both walks wait for their results
    driver.observe([Result(rc, measurement(rc, {"perf_throughput": 1.0})) for rc in first])
    assert [(rc.variant.max_batch_size, rc.load.concurrency) for rc in driver.propose(5)] == [(2, 2)]


def test_top_variants_rank_by_boundary_value_and_add_the_default() -> None:
    spec = ModelSpec("m", constraints=(Constraint(LATENCY, max=10.0),))
    judge = Judge(spec)

    def result(mbs: int, c: int, tput: float, lat: float, default: bool = False) -> Result:
        rc = RunConfig("m", ConfigVariant("m", {"max_batch_size": mbs}, is_default=default), LoadSpec(concurrency=c))
        return Result(rc, measurement(rc, {"perf_throughput": tput, LATENCY: lat}))

    results = [
        result(8, 1, 10, 1, default=True),
        result(1, 32, 100, 9), result(1, 64, 101, 30),  # a flat line: nothing to win above 32
        result(2, 32, 98, 5), result(2, 64, 180, 15),  # crosses the budget halfway to 64 with 80% more
        result(4, 32, 50, 2),
        result(16, 32, 500, 50),  # fails
    ]
    top = top_variants(results, judge, 2)
    assert [r.run_config.variant.config["max_batch_size"] for r in top] == [2, 1, 8]


@pytest.mark.parametrize(("surface", "constrained"), SURFACE_CASES)
def test_brute_reference_is_stable(surface: Surface, constrained: bool) -> None:
    measured, optimum = brute_reference(surface, constrained)
    assert measured > 200 and optimum > 0
