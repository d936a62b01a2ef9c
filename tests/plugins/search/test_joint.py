"""Searching models profiled concurrently: the joint space, brute over a small product, quick's climb and optuna's
trials over it, on a synthetic pair of models sharing one device."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from modelyzer.kernel.models import MEMBERS_KEY, Constraint, ModelSpec, RunConfig, group_spec
from modelyzer.plugins.search.brute import BruteSearch
from modelyzer.plugins.search.common import SearchState
from modelyzer.plugins.search.joint import BRUTE_PRODUCT_LIMIT, joint_space
from modelyzer.plugins.search.optuna import OptunaSearch
from modelyzer.plugins.search.quick import JointBruteSearch, QuickSearch
from tests.plugins.search.brute_support import BASE, flat, run
from tests.plugins.search.test_common import make_config

GROUP = group_spec((ModelSpec("a"), ModelSpec("b", weighting=3,
                                                constraints=(Constraint("perf_latency_p99", max=40.0),))))
BASE_CONFIG = {MEMBERS_KEY: [{"model": "a", "config": {**BASE, "name": "a"}},
                             {"model": "b", "config": {**BASE, "name": "b"}}]}
SMALL = {"run_config_search_max_instance_count": 2, "run_config_search_max_model_batch_size": 2,
         "run_config_search_max_concurrency": 16}


def shared_device(rc: RunConfig) -> dict[str, float]:
    """Two models on one device of 100 units/s: each one's demand grows with its instances × batch × load; the
    device shares itself in proportion; latency is load ÷ throughput (Little's law)."""
    demand = {m.model: m.variant.instance_count * max(m.variant.max_batch_size, 1) * (m.load.concurrency or 1) * 10.0
              for m in rc.members}
    total = sum(demand.values())
    out: dict[str, float] = {}
    for m in rc.members:
        throughput = min(demand[m.model], 100.0 * demand[m.model] / total)
        out[f"perf_throughput@{m.model}"] = throughput
        out[f"perf_latency_p99@{m.model}"] = 1000.0 * (m.load.concurrency or 1) / throughput
    out["perf_throughput"] = sum(v for k, v in out.items() if k.startswith("perf_throughput@"))
    return out


def test_the_joint_space_is_each_models_space_side_by_side() -> None:
    space = joint_space(GROUP, BASE_CONFIG, make_config(**SMALL))
    assert [d.name for d in space.dimensions] == ["a.max_batch_size", "a.instance_count", "b.max_batch_size",
                                                  "b.instance_count"]
    assert space.size == 16
    v = space.variant((1, 0, 0, 1))
    assert v.model == "a,b" and [m.model for m in v.members] == ["a", "b"]
    assert [(m.max_batch_size, m.instance_count) for m in v.members] == [(2, 1), (1, 2)]
    assert space.default_variant().is_default and all(m.is_default for m in space.default_variant().members)


def test_brute_measures_every_combination_of_a_small_product_then_sweeps_the_best() -> None:
    strategy = BruteSearch(GROUP, BASE_CONFIG, make_config(**SMALL))
    assert isinstance(strategy, JointBruteSearch)
    run_configs = flat(run(strategy, shared_device))
    assert all(rc.members and rc.model == "a,b" for rc in run_configs)
    combos = {tuple((m.variant.max_batch_size, m.variant.instance_count, m.variant.is_default) for m in rc.members)
              for rc in run_configs}
    every = set(itertools.product([(1, 1, False), (1, 2, False), (2, 1, False), (2, 2, False)], repeat=2))
    assert every <= combos and len(combos) == 17  # and the default pair
    first = run_configs[0]  # the default pair first, each model at its own formula load (2 × 8 × 1)
    assert first.variant.is_default and [m.load.concurrency for m in first.members] == [16, 16]
    # b over its latency budget at its formula load: measured again with its own load lowered (a's unchanged)
    assert any(rc.members[1].load.concurrency < 16 == rc.members[0].load.concurrency for rc in run_configs)
    swept = run_configs[-3:]  # the sweep ends the search: one common load for both
    assert all(len({m.load.concurrency for m in rc.members}) == 1 for rc in swept)


def test_brute_over_a_big_product_climbs_with_quick_instead(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="modelyzer")
    strategy = BruteSearch(GROUP, BASE_CONFIG, make_config())
    assert type(strategy) is QuickSearch
    assert f"= 1600 combinations (brute measures at most {BRUTE_PRODUCT_LIMIT})" in caplog.text


@pytest.mark.parametrize("make", [
    lambda config: QuickSearch(GROUP, BASE_CONFIG, config),
    lambda config: OptunaSearch(GROUP, BASE_CONFIG, config, seed=3, state=SearchState(None)),
], ids=["quick", "optuna"])
def test_quick_and_optuna_search_the_joint_space_with_fewer_measurements_than_brute(make: Any) -> None:
    config = make_config(run_config_search_max_instance_count=3, run_config_search_max_model_batch_size=4,
                         run_config_search_max_concurrency=16)
    run_configs = flat(run(make(config), shared_device))
    assert run_configs and all(rc.members for rc in run_configs)
    assert len({rc.key for rc in run_configs}) == len(run_configs)
    size = joint_space(GROUP, BASE_CONFIG, config).size  # 9 × 9 = 81 combinations, brute would measure them all
    assert size == 81 and len({rc.variant.config_hash for rc in run_configs}) < size
    assert any(not rc.variant.is_default for rc in run_configs)
