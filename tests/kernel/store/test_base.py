"""Opening a results DB: schema from migrations, WAL, nothing applied twice."""

from __future__ import annotations

from pathlib import Path

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
        "retry_seconds": float,  # m003
    }
    assert store.db["metric_values"].columns_dict == {"measurement_id": int, "tag": str, "value": float, "gpu_uuid": str}
    assert store.db["run_configs"].columns_dict["members"] is str  # m002: a concurrent group's member RunConfigs
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.close()
    # re-opening applies nothing twice
    again = Store(tmp_path / "r.db")
    assert again.db["_sqlite_migrations"].count == 4
    assert again.db["runs"].columns_dict["retry_seconds"] is float  # m003
    assert again.db.view_names() == ["results"]  # m004
