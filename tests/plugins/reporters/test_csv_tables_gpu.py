"""The csv reporter's GPU tables from a store filled by hand: `metrics-model-gpu.csv` (one row per GPU per
measurement, each GPU with its own values) and `metrics-server-only.csv` (`triton-server`, one row per GPU)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from modelyzer.kernel.config import config_from_dict
from modelyzer.kernel.interfaces import RunContext
from modelyzer.kernel.models import ConfigVariant, LoadSpec, Measurement, Metric, ModelSpec, RunConfig
from modelyzer.kernel.store import Store
from modelyzer.plugins.reporters.csv_tables import CsvReporter, instance_group_cell

GPU_CONFIG = {"name": "m", "max_batch_size": 8, "instance_group": [{"count": 2, "kind": "KIND_GPU"}]}


def fill(store: Store, model: str, concurrency: int, gpu_metrics: list[Metric], throughput: float) -> None:
    variant = store.name_variant(ConfigVariant(model, dict(GPU_CONFIG, name=model), is_default=True))
    rc = RunConfig(model, variant, LoadSpec(concurrency=concurrency))
    metrics = (Metric("perf_throughput", throughput), Metric("perf_latency_p99", 2.0), *gpu_metrics)
    store.record(1, rc, Measurement(rc.key, metrics=metrics))


def gpu(uuid: str, used: float, util: float | None, power: float) -> list[Metric]:
    out = [Metric("gpu_used_memory", used, uuid), Metric("gpu_power_usage", power, uuid)]
    return out + ([Metric("gpu_utilization", util, uuid)] if util is not None else [])


def write(tmp_path: Path, store: Store, models: dict[str, Any], **config: Any) -> dict[str, list[dict[str, str]]]:
    """The tables written for `models` (profile_models: name → per-model settings) and the other `config` keys."""
    cfg = config_from_dict({"profile_models": models, "export_path": str(tmp_path), **config}, check_paths=False)
    reporter = CsvReporter(cfg, RunContext(export_path=tmp_path, output_model_repository=tmp_path / "omr"))
    out = {}
    for path in reporter.write(store, 1, cfg, {}):
        with path.open() as fh:
            out[path.name] = list(csv.DictReader(fh))
    return out


def store_with_runs() -> Store:
    store = Store(":memory:")
    store.start_run({})
    store.upsert_model("m", {}, {})
    store.upsert_model("cpu", {}, {})
    return store


def test_one_row_per_gpu_per_measurement_with_that_gpus_own_values(tmp_path: Path) -> None:
    store = store_with_runs()
    fill(store, "m", 1, gpu("GPU-a", 1000.04, 40.0, 100.0) + gpu("GPU-b", 3000.0, None, 200.0), 500.0)
    fill(store, "m", 2, gpu("GPU-a", 1100.0, 60.0, 110.0) + gpu("GPU-b", 3100.0, 70.0, 210.0), 900.0)
    tables = write(tmp_path, store, {"m": {}})
    rows = tables["metrics-model-gpu.csv"]
    assert list(rows[0]) == ["Model", "GPU UUID", "Batch", "Concurrency", "Model Config Path", "Instance Group",
                             "Satisfies Constraints", "GPU Memory Usage (MB)", "GPU Utilization (%)",
                             "GPU Power Usage (W)"]
    cells = [(r["GPU UUID"], r["Concurrency"], r["GPU Memory Usage (MB)"], r["GPU Utilization (%)"],
              r["GPU Power Usage (W)"]) for r in rows]
    assert cells == [  # best measurement first (throughput 900), then per GPU
        ("GPU-a", "2", "1100.0", "60.0", "110.0"),
        ("GPU-b", "2", "3100.0", "70.0", "210.0"),
        ("GPU-a", "1", "1000.0", "40.0", "100.0"),
        ("GPU-b", "1", "3000.0", "", "200.0"),  # missing on this GPU: empty, not the other GPU's value
    ]
    assert {r["Model"] for r in rows} == {"m"} and {r["Instance Group"] for r in rows} == {"2:GPU"}
    assert len(tables["metrics-model-inference.csv"]) == 2
    assert "metrics-server-only.csv" not in tables  # nothing measured without models: not written


def test_cpu_only_models_have_no_gpu_rows_unless_always_report(tmp_path: Path) -> None:
    store = store_with_runs()
    fill(store, "cpu", 1, gpu("GPU-a", 500.0, 1.0, 50.0), 100.0)
    spec = {"cpu": {"cpu_only": True}}
    assert "metrics-model-gpu.csv" not in write(tmp_path, store, spec)
    rows = write(tmp_path, store, spec, always_report_gpu_metrics=True)["metrics-model-gpu.csv"]
    assert [(r["Model"], r["GPU UUID"], r["GPU Memory Usage (MB)"]) for r in rows] == [("cpu", "GPU-a", "500.0")]


def test_server_only_rows_per_gpu_as_stored(tmp_path: Path) -> None:
    store = store_with_runs()
    fill(store, "m", 1, gpu("GPU-b", 1.0, 1.0, 1.0), 1.0)
    store.record_server_only(1, [*gpu("GPU-b", 812.34, 0.0, 55.55), *gpu("GPU-a", 700.0, None, 40.0),
                                 Metric("cpu_used_ram", 310.0)])  # the server's host: its own row
    store.record_server_only(2, gpu("GPU-z", 1.0, 1.0, 1.0))  # another run: not in this report
    rows = write(tmp_path, store, {"m": {}})["metrics-server-only.csv"]
    assert [list(r.items()) for r in rows] == [
        [("Model", "triton-server"), ("GPU UUID", "GPU-b"), ("GPU Memory Usage (MB)", "812.3"),
         ("GPU Utilization (%)", "0.0"), ("GPU Power Usage (W)", "55.5"), ("RAM Usage (MB)", "")],
        [("Model", "triton-server"), ("GPU UUID", "GPU-a"), ("GPU Memory Usage (MB)", "700.0"),
         ("GPU Utilization (%)", ""), ("GPU Power Usage (W)", "40.0"), ("RAM Usage (MB)", "")],
        [("Model", "triton-server"), ("GPU UUID", ""), ("GPU Memory Usage (MB)", ""),
         ("GPU Utilization (%)", ""), ("GPU Power Usage (W)", ""), ("RAM Usage (MB)", "310.0")],
    ]
    custom = write(tmp_path, store, {"m": {}}, server_output_fields=["gpu_uuid", "gpu_free_memory"])
    assert [r["GPU UUID"] for r in custom["metrics-server-only.csv"]] == ["GPU-b", "GPU-a", ""]


def test_a_cpu_servers_idle_row_has_its_host_metrics_and_no_gpu_columns(tmp_path: Path) -> None:
    store = store_with_runs()
    fill(store, "m", 1, [], 1.0)
    store.record_server_only(1, [Metric("cpu_used_ram", 310.0), Metric("host_cpu_utilization", 3.5)])
    rows = write(tmp_path, store, {"m": {}})["metrics-server-only.csv"]
    assert list(rows[0]) == ["Model", "GPU UUID", "RAM Usage (MB)", "Host CPU Utilization (%)"]
    assert rows == [{"Model": "triton-server", "GPU UUID": "", "RAM Usage (MB)": "310.0",
                     "Host CPU Utilization (%)": "3.5"}]


def test_instance_group_of_a_config_without_groups_follows_cpu_only() -> None:
    bare = ConfigVariant("m", {"name": "m"})
    assert instance_group_cell(bare, ModelSpec("m", cpu_only=True)) == "1:CPU"
    assert instance_group_cell(bare, ModelSpec("m")) == "1:GPU"
    grouped = ConfigVariant("m", {"instance_group": [{"count": 3, "kind": "KIND_CPU"}]})
    assert instance_group_cell(grouped, ModelSpec("m")) == "3:CPU"
