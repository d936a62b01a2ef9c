"""Runs read back as `Run` values, with their config parsed."""

from __future__ import annotations

from modelyzer.kernel.store import Run, Store


def test_runs_are_values_with_their_config() -> None:
    store = Store(":memory:")
    assert store.runs() == [] and store.latest_run() is None and store.run(1) is None
    first = store.start_run({"num_configs_per_model": 5, "run_config_search_mode": "brute"})
    store.update_run(first, status="finished", finished_at=2.0, measured=3, wall_seconds=1.5)
    second = store.start_run({"ma_checkpoint": {"sha256": "abc"}})
    run = store.run(first)
    assert isinstance(run, Run)
    assert (run.id, run.status, run.finished_at, run.measured, run.skipped, run.wall_seconds) == (
        first, "finished", 2.0, 3, 0, 1.5)
    assert run.config == {"num_configs_per_model": 5, "run_config_search_mode": "brute"}
    assert run.num_configs_per_model == 5
    assert [r.id for r in store.runs()] == [first, second]
    latest = store.latest_run()
    assert latest is not None and latest.id == second and latest.status == "running" and latest.finished_at is None
    assert latest.num_configs_per_model is None


def test_find_runs_by_a_config_value() -> None:
    store = Store(":memory:")
    a = store.start_run({"ma_checkpoint": {"sha256": "abc"}})
    store.start_run({"ma_checkpoint": {"sha256": "def"}})
    b = store.start_run({"ma_checkpoint": {"sha256": "abc"}})
    assert [r.id for r in store.find_runs("ma_checkpoint.sha256", "abc")] == [a, b]
    assert store.find_runs("ma_checkpoint.sha256", "zzz") == []


def test_a_run_config_that_is_not_a_mapping_reads_as_empty() -> None:
    store = Store(":memory:")
    run_id = store.start_run({})
    store.update_run(run_id, config="not json")
    other = store.start_run({})
    store.update_run(other, config="[1, 2]", status=None)
    assert [r.config for r in store.runs()] == [{}, {}]
    assert store.runs()[1].status == ""
    assert Run(1, config={"num_configs_per_model": 0}).num_configs_per_model is None
