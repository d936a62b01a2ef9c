"""Exactly-once records, failed measurements as rows, reading results back."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from modelyzer.kernel.models import ConfigVariant, LoadSpec, Measurement, Metric, RunConfig
from modelyzer.kernel.store import Store


def _rc(store: Store, mbs: int, conc: int, default: bool = False) -> RunConfig:
    store.upsert_model("m", {"max_batch_size": 8}, {})
    v = store.name_variant(ConfigVariant("m", {"max_batch_size": mbs}, is_default=default))
    return RunConfig("m", v, LoadSpec(concurrency=conc))


def test_record_is_exactly_once_and_reads_back(tmp_path: Path) -> None:
    store = Store(tmp_path / "r.db")
    run = store.start_run({"x": 1})
    rc = _rc(store, 4, 2)
    m = Measurement(rc.key, metrics=(Metric("perf_throughput", 10.0), Metric("gpu_used_memory", 5.0, "GPU-1")))
    assert store.record(run, rc, m) is True
    assert store.record(run, rc, Measurement(rc.key, metrics=(Metric("perf_throughput", 99.0),))) is False
    # another connection sees the committed row immediately
    conn = sqlite3.connect(tmp_path / "r.db")
    assert conn.execute("select count(*) from measurements").fetchone()[0] == 1
    assert conn.execute("select count(*) from metric_values").fetchone()[0] == 2
    [res] = store.results("m")
    assert res.run_config == rc
    assert res.measurement.values() == {"perf_throughput": 10.0}
    assert res.measurement.gpu_values() == {"GPU-1": {"gpu_used_memory": 5.0}}
    assert store.has(rc.key)


def test_failed_measurement_is_a_row_with_its_error() -> None:
    store = Store(":memory:")
    run = store.start_run({})
    rc = _rc(store, 4, 1)
    store.record(run, rc, Measurement(rc.key, status="failed", error="perf_analyzer: boom"))
    stored = store.measurement(rc.key)
    assert stored is not None and stored.status == "failed" and stored.error == "perf_analyzer: boom"


@pytest.mark.parametrize(("status", "replaced"), [("failed", True), ("timeout", True), ("not_recorded", False),
                                                   ("ok", False)])
def test_replace_failed_swaps_a_failed_row_in_one_transaction(status: str, replaced: bool) -> None:
    """retry_failed: a failed (or any retryable) stored measurement is replaced, its metric values too; the key
    keeps exactly one row; ok and not_recorded rows are never replaced."""
    store = Store(":memory:")
    first, second = store.start_run({}), store.start_run({})
    rc = _rc(store, 4, 1)
    store.record(first, rc, Measurement(rc.key, status=status, error="boom", metrics=(Metric("stale", 1.0),)))
    new = Measurement(rc.key, metrics=(Metric("perf_throughput", 5.0),))
    assert store.record(second, rc, new) is False  # without replace_failed: exactly once, as ever
    assert store.record(second, rc, new, replace_failed=True) is replaced
    assert store.counts()["measurements"] == 1
    [res] = store.results()
    if replaced:
        assert res.measurement.ok and res.measurement.values() == {"perf_throughput": 5.0}
        assert [r.run_config.key for r in store.results(run_id=second)] == [rc.key]
        assert store.counts()["metric_values"] == 1 and store.failed_keys() == set()
    else:
        assert res.measurement.status == status and res.measurement.values() == {"stale": 1.0}
        assert store.failed_keys() == set()


def test_failed_keys_are_the_retryable_ones() -> None:
    store = Store(":memory:")
    run = store.start_run({})
    a, b, c = _rc(store, 4, 1), _rc(store, 4, 2), _rc(store, 4, 3)
    store.record(run, a, Measurement(a.key, status="failed"))
    store.record(run, b, Measurement(b.key, status="not_recorded"))
    store.record(run, c, Measurement(c.key))
    assert store.failed_keys() == {a.key}


def test_run_config_key_ignores_variant_name() -> None:
    v = ConfigVariant("m", {"max_batch_size": 2})
    assert RunConfig("m", v, LoadSpec(concurrency=1)).key == RunConfig("m", v.named("x"), LoadSpec(concurrency=1)).key
    assert RunConfig("m", v, LoadSpec(concurrency=1)).key != RunConfig("m", v, LoadSpec(concurrency=2)).key


def test_results_by_run_and_counts() -> None:
    store = Store(":memory:")
    first, second = store.start_run({}), store.start_run({})
    a, b = _rc(store, 4, 1), _rc(store, 4, 2)
    store.record(first, a, Measurement(a.key))
    store.record(second, b, Measurement(b.key, metrics=(Metric("perf_throughput", 1.0),)))
    assert [r.run_config.key for r in store.results(run_id=second)] == [b.key]
    assert [r.run_config.key for r in store.results()] == [a.key, b.key]
    assert store.results("other") == []
    assert store.counts() == {"runs": 2, "variants": 1, "run_configs": 2, "measurements": 2, "metric_values": 1}


def test_record_needs_a_named_variant() -> None:
    store = Store(":memory:")
    rc = RunConfig("m", ConfigVariant("m", {}), LoadSpec(concurrency=1))
    with pytest.raises(ValueError, match="named variant"):
        store.record(store.start_run({}), rc, Measurement(rc.key))


def test_concurrent_group_is_named_stored_and_read_back(tmp_path: Path) -> None:
    store = Store(tmp_path / "g.db")
    run_id = store.start_run({})
    a = RunConfig("a", ConfigVariant("a", {"max_batch_size": 2}), LoadSpec(concurrency=4))
    b = RunConfig("b", ConfigVariant("b", {}, is_default=True), LoadSpec(concurrency=8))
    group = store.name_run_config(RunConfig.group((a, b)))
    assert group.variant.name == "a_config_0,b_config_default"
    assert [m.variant.name for m in group.members] == ["a_config_0", "b_config_default"]
    assert store.find_variant(name="a_config_0") is not None  # each model's own series
    metrics = (Metric("perf_throughput", 30.0), Metric("perf_throughput@a", 10.0), Metric("perf_throughput@b", 20.0))
    assert store.record(run_id, group, Measurement(group.key, metrics=metrics))
    (result,) = store.results("a,b")
    assert result.run_config == group and result.run_config.key == group.key
    assert result.measurement.values() == {"perf_throughput": 30.0, "perf_throughput@a": 10.0, "perf_throughput@b": 20.0}
    # the same combination again keeps its names; another one of the same models gets the next ones
    assert store.name_run_config(RunConfig.group((a, b))).variant.name == group.variant.name
    c = RunConfig("a", ConfigVariant("a", {"max_batch_size": 4}), LoadSpec(concurrency=4))
    assert store.name_run_config(RunConfig.group((c, b))).variant.name == "a_config_1,b_config_default"
