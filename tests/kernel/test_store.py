"""The results store: schema from migrations, naming, exactly-once records, WAL, reading back."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from modelyzer.kernel.models import ConfigVariant, LoadSpec, Measurement, Metric, RunConfig
from modelyzer.kernel.store import Store

EXPECTED_TABLES = {
    "_sqlite_migrations",
    "runs",
    "models",
    "variants",
    "run_configs",
    "measurements",
    "metric_values",
    "server_only_metrics",
    "gpus",
}


def test_empty_db_migrates_to_expected_schema(tmp_path: Path) -> None:
    store = Store(tmp_path / "r.db")
    assert set(store.db.table_names()) == EXPECTED_TABLES
    assert store.db["measurements"].columns_dict == {
        "id": int, "run_config_key": str, "run_id": int, "status": str, "error": str, "started_at": float,
        "finished_at": float, "window_seconds": float, "host": str, "agent": str, "gpu": str,
    }
    assert store.db["metric_values"].columns_dict == {"measurement_id": int, "tag": str, "value": float, "gpu_uuid": str}
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.close()
    # re-opening applies nothing twice
    again = Store(tmp_path / "r.db")
    assert again.db["_sqlite_migrations"].count == 1


def _rc(store: Store, mbs: int, conc: int, default: bool = False) -> RunConfig:
    store.upsert_model("m", {"max_batch_size": 8}, {})
    v = store.name_variant(ConfigVariant("m", {"max_batch_size": mbs}, is_default=default))
    return RunConfig("m", v, LoadSpec(concurrency=conc))


def test_variant_names_are_stable_and_in_creation_order() -> None:
    store = Store(":memory:")
    store.upsert_model("m", {}, {})
    d = store.name_variant(ConfigVariant("m", {"max_batch_size": 8}, is_default=True))
    a = store.name_variant(ConfigVariant("m", {"max_batch_size": 1}))
    b = store.name_variant(ConfigVariant("m", {"max_batch_size": 2}))
    a2 = store.name_variant(ConfigVariant("m", {"max_batch_size": 1}))
    assert (d.name, a.name, b.name, a2.name) == ("m_config_default", "m_config_0", "m_config_1", "m_config_0")
    assert [v.name for v in store.variants("m")] == ["m_config_default", "m_config_0", "m_config_1"]


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


def test_run_config_key_ignores_variant_name() -> None:
    v = ConfigVariant("m", {"max_batch_size": 2})
    assert RunConfig("m", v, LoadSpec(concurrency=1)).key == RunConfig("m", v.named("x"), LoadSpec(concurrency=1)).key
    assert RunConfig("m", v, LoadSpec(concurrency=1)).key != RunConfig("m", v, LoadSpec(concurrency=2)).key
