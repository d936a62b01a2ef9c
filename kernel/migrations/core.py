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


#: the `results` view's columns: (column, metric tag); the values are the measurement's own (no GPU UUID), GPU
#: memory falling back to the sum over its GPUs when only per-GPU values were stored
RESULT_METRICS = (
    ("throughput_infer_per_sec", "perf_throughput"),
    ("latency_avg_ms", "perf_latency_avg"),
    ("latency_p50_ms", "perf_latency_p50"),
    ("latency_p90_ms", "perf_latency_p90"),
    ("latency_p95_ms", "perf_latency_p95"),
    ("latency_p99_ms", "perf_latency_p99"),
    ("cpu_ram_mb", "cpu_used_ram"),
)


def results_view_sql() -> str:
    """One row per measurement, in plain columns with units in their names: what one SELECT needs."""
    metric_columns = ",\n    ".join(
        f"max(case when v.tag = '{tag}' and v.gpu_uuid is null then v.value end) as {column}"
        for column, tag in RESULT_METRICS)
    return f"""
select
    m.id as measurement_id,
    m.run_id as run_id,
    rc.model as model,
    rc.variant as variant,
    coalesce(var.is_default, 0) as is_default,
    coalesce(var.params, '{{}}') as knobs,
    (select sum(coalesce(json_extract(g.value, '$.count'), 1)) from json_each(var.config, '$.instance_group') g)
        as instances,
    json_extract(var.config, '$.max_batch_size') as max_batch_size,
    json_type(var.config, '$.dynamic_batching') is not null as dynamic_batching,
    json_extract(rc.load, '$.batch_size') as batch_size,
    json_extract(rc.load, '$.concurrency') as concurrency,
    json_extract(rc.load, '$.request_rate') as request_rate_per_sec,
    m.status as status,
    {metric_columns},
    coalesce(max(case when v.tag = 'gpu_used_memory' and v.gpu_uuid is null then v.value end),
             sum(case when v.tag = 'gpu_used_memory' and v.gpu_uuid is not null then v.value end)) as gpu_memory_mb,
    m.window_seconds as window_seconds,
    m.host as host,
    m.agent as agent,
    m.error as error,
    m.run_config_key as run_config_key
from measurements m
join run_configs rc on rc.key = m.run_config_key
left join variants var on var.name = rc.variant
left join metric_values v on v.measurement_id = m.id
group by m.id
"""


@migrations()
def m004_results_view(db: Any) -> None:
    """The `results` view: one row per measurement (model, variant, knobs, load, throughput, latencies, memory,
    status) with units in the column names, so "throughput and p99 of every config at concurrency 4" is one
    SELECT. A view: nothing is stored twice, and a DB that migrates gets it."""
    db.create_view("results", results_view_sql(), replace=True)
