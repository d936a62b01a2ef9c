"""Schema migrations of the results store (the `modelyzer.core` set); a plugin may own its own set."""

from __future__ import annotations

from typing import Any

from sqlite_utils import Migrations

migrations = Migrations("modelyzer.core")


@migrations()
def m001_initial(db: Any) -> None:
    db["runs"].create(
        {
            "id": int,
            "started_at": float,
            "finished_at": float,
            "status": str,
            "hostname": str,
            "version": str,
            "config": str,
            "server_starts": int,
            "model_loads": int,
            "measured": int,
            "skipped": int,
            "failed": int,
            "wall_seconds": float,
            "window_seconds": float,
        },
        pk="id",
    )
    db["models"].create({"name": str, "base_config": str, "spec": str}, pk="name")
    db["variants"].create(
        {
            "name": str,
            "model": str,
            "config_hash": str,
            "config": str,
            "params": str,
            "is_default": int,
            "seq": int,
        },
        pk="name",
        foreign_keys=[("model", "models", "name")],
    )
    db["variants"].create_index(["config_hash"], unique=True)
    db["run_configs"].create(
        {
            "key": str,
            "model": str,
            "variant": str,
            "load": str,
            "perf_analyzer_flags": str,
            "server_flags": str,
            "server_env": str,
        },
        pk="key",
        foreign_keys=[("variant", "variants", "name")],
    )
    db["measurements"].create(
        {
            "id": int,
            "run_config_key": str,
            "run_id": int,
            "status": str,
            "error": str,
            "started_at": float,
            "finished_at": float,
            "window_seconds": float,
            "host": str,
            "agent": str,
            "gpu": str,
        },
        pk="id",
        foreign_keys=[("run_config_key", "run_configs", "key"), ("run_id", "runs", "id")],
    )
    db["measurements"].create_index(["run_config_key"], unique=True)
    db["metric_values"].create(
        {"measurement_id": int, "tag": str, "value": float, "gpu_uuid": str},
        foreign_keys=[("measurement_id", "measurements", "id")],
    )
    db["metric_values"].create_index(["measurement_id"])
    db["server_only_metrics"].create({"run_id": int, "tag": str, "value": float, "gpu_uuid": str})
    db["gpus"].create({"uuid": str, "name": str, "total_memory": int}, pk="uuid")


@migrations()
def m002_group_members(db: Any) -> None:
    """A concurrent multi-model RunConfig's member RunConfigs (JSON; NULL for one model's)."""
    db["run_configs"].add_column("members", str)


@migrations()
def m003_retry_seconds(db: Any) -> None:
    """Time spent in load-generator runs whose windows no stored measurement kept (unstable attempts, failures):
    per measurement, and per run (the duty figure's "retries")."""
    db["measurements"].add_column("retry_seconds", float)
    db["runs"].add_column("retry_seconds", float)
