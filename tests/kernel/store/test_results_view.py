"""The `results` view: one row per measurement with the knobs, the load and the main metrics in plain columns,
so "throughput and p99 of every config at concurrency 4" is one SELECT — from any connection, sqlite3 included."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from modelyzer.kernel.models import ConfigVariant, LoadSpec, Measurement, Metric, RunConfig
from modelyzer.kernel.store import Store


def _record(store: Store, run: int, mbs: int, conc: int, *metrics: Metric, status: str = "ok") -> None:
    variant = store.name_variant(ConfigVariant(
        "m", {"max_batch_size": mbs, "instance_group": [{"count": 2, "kind": "KIND_CPU"}, {"kind": "KIND_CPU"}],
              "dynamic_batching": {}}))
    rc = RunConfig("m", variant, LoadSpec(concurrency=conc, batch_size=1))
    store.record(run, rc, Measurement(rc.key, status=status, metrics=metrics, error="boom" if status != "ok" else ""))


def test_one_select_gives_throughput_and_p99_of_every_config_at_a_load(tmp_path: Path) -> None:
    store = Store(tmp_path / "r.db")
    store.upsert_model("m", {"max_batch_size": 8}, {})
    run = store.start_run({})
    _record(store, run, 4, 4, Metric("perf_throughput", 100.0), Metric("perf_latency_p99", 9.5),
            Metric("perf_latency_p50", 4.0), Metric("cpu_used_ram", 300.0),
            Metric("gpu_used_memory", 1000.0, "GPU-a"), Metric("gpu_used_memory", 500.0, "GPU-b"))
    _record(store, run, 8, 4, Metric("perf_throughput", 180.0), Metric("perf_latency_p99", 12.0),
            Metric("gpu_used_memory", 700.0))
    _record(store, run, 8, 2, Metric("perf_throughput", 90.0))
    _record(store, run, 16, 4, status="failed")
    store.close()
    conn = sqlite3.connect(tmp_path / "r.db")  # any SQLite client, not only modelyzer
    try:
        rows = conn.execute("select max_batch_size, instances, dynamic_batching, throughput_infer_per_sec, "
                            "latency_p99_ms, latency_p50_ms, cpu_ram_mb, gpu_memory_mb, status, error "
                            "from results where concurrency = 4 order by max_batch_size").fetchall()
        columns = [d[0] for d in conn.execute("select * from results").description]
    finally:
        conn.close()
    assert rows == [
        (4, 3, 1, 100.0, 9.5, 4.0, 300.0, 1500.0, "ok", ""),  # GPU memory: the sum over its GPUs
        (8, 3, 1, 180.0, 12.0, None, None, 700.0, "ok", ""),  # the measurement's own value when it has one
        (16, 3, 1, None, None, None, None, None, "failed", "boom"),
    ]
    for column in ("model", "variant", "knobs", "batch_size", "concurrency", "request_rate_per_sec",
                   "latency_p90_ms", "latency_p95_ms", "run_id", "host"):
        assert column in columns
