"""The `csv` reporter: Model Analyzer's three CSV tables under `<export_path>/results/`.

`metrics-model-inference.csv` (one row per measurement), `metrics-model-gpu.csv` (one row per GPU per
measurement, each GPU with its own values; not for CPU-only models unless `always_report_gpu_metrics`) and
`metrics-server-only.csv` (the server with no model loaded: model `triton-server`, one row per GPU), with Model
Analyzer's default fields and headers, the `*_output_fields` options, numbers rounded to one decimal, and
rows ordered per model from the best config to the worst (passing measurements first). Empty tables are not
written.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from modelyzer.kernel import metrics, ranking
from modelyzer.kernel.hookspecs import hookimpl
from modelyzer.kernel.interfaces import RankedConfig, Reporter, RunContext
from modelyzer.kernel.models import Result

log = logging.getLogger("modelyzer")

DEFAULT_INFERENCE = ["model_name", "batch_size", "concurrency", "model_config_path", "instance_group",
                     "max_batch_size", "satisfies_constraints", "perf_throughput", "perf_latency_p99"]
DEFAULT_GPU = ["model_name", "gpu_uuid", "batch_size", "concurrency", "model_config_path", "instance_group",
               "satisfies_constraints", "gpu_used_memory", "gpu_utilization", "gpu_power_usage"]
DEFAULT_SERVER = ["model_name", "gpu_uuid", "gpu_used_memory", "gpu_utilization", "gpu_power_usage"]
SERVER_MODEL = "triton-server"  # Model Analyzer's literal model name of the server-only rows
LLM_EXTRA = ["inter_token_latency_p99", "time_to_first_token_p99", "output_token_throughput"]

HEADERS = {
    "model_name": "Model",
    "batch_size": "Batch",
    "concurrency": "Concurrency",
    "request_rate": "Request Rate",
    "model_config_path": "Model Config Path",
    "instance_group": "Instance Group",
    "max_batch_size": "Max Batch Size",
    "satisfies_constraints": "Satisfies Constraints",
    "gpu_uuid": "GPU UUID",
    "gpu_used_memory": "GPU Memory Usage (MB)",
    "gpu_utilization": "GPU Utilization (%)",
    "gpu_power_usage": "GPU Power Usage (W)",
}


def server_only_values(store: Any, run_id: int) -> dict[str, dict[str, float]]:
    """`{gpu_uuid: {tag: value}}` of the run's server-only metrics, GPUs in the order they were stored."""
    per_gpu: dict[str, dict[str, float]] = {}
    for metric in store.server_only(run_id):
        if metric.gpu_uuid:
            per_gpu.setdefault(metric.gpu_uuid, {})[metric.tag] = metric.value
    return per_gpu


def _is_imported_ma_run(store: Any, run_id: int) -> bool:
    """Whether `run_id` is a Model Analyzer checkpoint imported by `modelyzer import-ma-checkpoint`."""
    run = store.run(run_id)
    return run is not None and run.status == "imported"


def instance_group_cell(variant: Any, spec: Any) -> str:
    """`<count>:<KIND>` groups; a config without instance groups runs one instance, on CPU for CPU-only models."""
    if not variant.config.get("instance_group") and getattr(spec, "cpu_only", False):
        return "1:CPU"
    return str(variant.instance_group_str())


def fmt(value: Any) -> str:
    if isinstance(value, float):
        return str(round(value, 1))
    return "" if value is None else str(value)


def header(field: str) -> str:
    if field in HEADERS:
        return HEADERS[field]
    if field.startswith("backend_parameter/"):
        return field
    info = metrics.get(field)
    return info.header if info else field


class CsvReporter(Reporter):
    def __init__(self, config: Any, context: RunContext) -> None:
        self.config = config
        self.context = context
        #: Model Analyzer's file layout (a blank line after the table), used for imported MA checkpoints
        self.ma_layout = False

    def _fields(self, key: str, default: list[str], request_rate: bool, llm: bool = False) -> list[str]:
        fields = list(getattr(self.config, key, None) or default)
        if getattr(self.config, key, None) is None or key not in getattr(self.config, "user_set", ()):
            if request_rate:
                fields = ["request_rate" if f == "concurrency" else f for f in fields]
            if llm:
                fields += [f for f in LLM_EXTRA if f not in fields]
        return fields

    def _ordered(self, ranking_: dict[str, list[RankedConfig]], store: Any) -> list[tuple[Any, Result, bool]]:
        rows: list[tuple[Any, Result, bool]] = []
        for spec in self.config.models:
            ranked = ranking.rank(store.results(spec.name), spec.objectives, spec.constraints)
            for rc in ranked:
                for r in ranking.sorted_measurements(rc.results, spec.objectives, spec.constraints):
                    if r.measurement.ok:
                        ok = ranking.passes(spec.constraints, ranking.measurement_values(r.measurement))
                        rows.append((spec, r, ok))
        return rows

    @staticmethod
    def _cell(field: str, spec: Any, r: Result, ok: bool, values: dict[str, float]) -> Any:
        rc = r.run_config
        getters: dict[str, Callable[[], Any]] = {
            "model_name": lambda: rc.model,
            "batch_size": lambda: rc.load.batch_size,
            "concurrency": lambda: rc.load.concurrency,
            "request_rate": lambda: rc.load.request_rate,
            "model_config_path": lambda: rc.variant.name,
            "instance_group": lambda: instance_group_cell(rc.variant, spec),
            "max_batch_size": lambda: rc.variant.max_batch_size,
            "satisfies_constraints": lambda: "Yes" if ok else "No",
        }
        if field in getters:
            return getters[field]()
        if field.startswith("backend_parameter/"):
            param = rc.variant.config.get("parameters", {}).get(field.split("/", 1)[1], {})
            return param.get("string_value") if isinstance(param, dict) else None
        return values.get(field)

    @classmethod
    def _gpu_cell(
        cls, field: str, uuid: str, gvals: dict[str, float], spec: Any, r: Result, ok: bool, values: dict[str, float]
    ) -> Any:
        """A cell of one GPU's row: that GPU's own value for GPU metrics (empty when it is missing there)."""
        if field == "gpu_uuid":
            return uuid
        info = metrics.get(field)
        if info is not None and info.gpu:
            return gvals.get(field)
        return cls._cell(field, spec, r, ok, values)

    def _write(self, path: Path, fields: list[str], rows: list[list[Any]]) -> Path | None:
        if not rows:
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow([header(f) for f in fields])
            for row in rows:
                writer.writerow([fmt(v) for v in row])
            if self.ma_layout:
                fh.write("\n")
        return path

    def write(self, store: Any, run_id: int, config: Any, ranking_: dict[str, list[RankedConfig]]) -> list[Path]:
        results_dir = Path(config.export_path) / "results"
        self.ma_layout = _is_imported_ma_run(store, run_id)
        ordered = self._ordered(ranking_, store)
        request_rate = any(r.run_config.load.request_rate is not None for _, r, _ in ordered)
        llm = str(getattr(config, "model_type", "generic")).lower() == "llm"
        inf_fields = self._fields("inference_output_fields", DEFAULT_INFERENCE, request_rate, llm)
        gpu_fields = self._fields("gpu_output_fields", DEFAULT_GPU, request_rate)
        srv_fields = list(getattr(config, "server_output_fields", None) or DEFAULT_SERVER)
        collected = {m.tag for _, r, _ in ordered for m in r.measurement.metrics}
        known_non_metric = set(HEADERS)
        for f in inf_fields + gpu_fields:
            if f not in known_non_metric and not f.startswith("backend_parameter/") and f not in collected:
                if f in (getattr(config, "user_set", ()) or ()):
                    log.warning("CSV field %r was not collected; its cells are empty", f)
        inf_rows, gpu_rows = [], []
        for spec, r, ok in ordered:
            values = ranking.measurement_values(r.measurement)
            inf_rows.append([self._cell(f, spec, r, ok, values) for f in inf_fields])
            if not spec.cpu_only or getattr(config, "always_report_gpu_metrics", False):
                for uuid, gvals in sorted(r.measurement.gpu_values().items()):
                    gpu_rows.append([self._gpu_cell(f, uuid, gvals, spec, r, ok, values) for f in gpu_fields])
        srv_rows = [
            [SERVER_MODEL if f == "model_name" else uuid if f == "gpu_uuid" else gvals.get(f) for f in srv_fields]
            for uuid, gvals in server_only_values(store, run_id).items()
        ]
        written = [
            self._write(results_dir / getattr(config, "filename_server_only", "metrics-server-only.csv"), srv_fields, srv_rows),
            self._write(results_dir / getattr(config, "filename_model_inference", "metrics-model-inference.csv"), inf_fields, inf_rows),
            self._write(results_dir / getattr(config, "filename_model_gpu", "metrics-model-gpu.csv"), gpu_fields, gpu_rows),
        ]
        return [p for p in written if p is not None]


@hookimpl
def register_reporters(register: Any) -> None:
    register("csv", CsvReporter)
