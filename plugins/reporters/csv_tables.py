"""The `csv` reporter: Model Analyzer's three CSV tables under `<export_path>/results/`.

`metrics-model-inference.csv` (one row per measurement), `metrics-model-gpu.csv` (one row per GPU per
measurement, each GPU with its own values; not for CPU-only models unless `always_report_gpu_metrics`) and
`metrics-server-only.csv` (the server with no model loaded: model `triton-server`, one row per GPU), with Model
Analyzer's default fields and headers, the `*_output_fields` options, numbers rounded to one decimal, and
rows ordered per model from the best config to the worst (passing measurements first). Empty tables are not
written. Models profiled concurrently are one model of the table, in Model Analyzer's form (`groups`: per-model
settings comma-joined, metric cells `"<combined>, [<a>,<b>]"`).
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from modelyzer.kernel import metrics, ranking
from modelyzer.kernel.config import ProfileConfig
from modelyzer.kernel.config_fields import GPU_FIELDS, INFERENCE_FIELDS, LLM_FIELDS, SERVER_FIELDS
from modelyzer.kernel.hookspecs import hookimpl
from modelyzer.kernel.interfaces import RankedConfig, Reporter, RunContext
from modelyzer.kernel.models import ConfigVariant, ModelSpec, Result
from modelyzer.kernel.store import Store
from modelyzer.plugins.reporters.data import instance_group_text
from modelyzer.plugins.reporters.groups import (
    csv_list_cell,
    csv_metric_cell,
    member_loads,
    member_spec,
    report_specs,
)

log = logging.getLogger("modelyzer")

SERVER_MODEL = "triton-server"  # Model Analyzer's literal model name of the server-only rows

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


def server_only_values(store: Store, run_id: int, host: bool = False) -> dict[str, dict[str, float]]:
    """`{gpu_uuid: {tag: value}}` of the run's server-only metrics, GPUs in the order they were stored; with
    `host`, the server's host metrics too, under "" (no GPU)."""
    per_gpu: dict[str, dict[str, float]] = {}
    for metric in store.server_only(run_id):
        if metric.gpu_uuid or host:
            per_gpu.setdefault(metric.gpu_uuid or "", {})[metric.tag] = metric.value
    return per_gpu


def server_only_fields(configured: list[str], user_set: bool, values: dict[str, dict[str, float]]) -> list[str]:
    """The server-only CSV's columns: the configured ones; by default, with host rows (a CPU server's idle RAM
    and CPU), their metrics are added and the GPU columns kept only when a GPU was sampled."""
    if user_set or "" not in values:
        return configured
    gpus = any(uuid for uuid in values)
    fields = [f for f in configured if gpus or not _gpu_metric(f)]
    return fields + [t for t in dict.fromkeys(t for v in values.values() for t in v) if t not in fields]


def _gpu_metric(tag: str) -> bool:
    info = metrics.get(tag)
    return bool(info and info.gpu)


def _is_imported_ma_run(store: Store, run_id: int) -> bool:
    """Whether `run_id` is a Model Analyzer checkpoint imported by `modelyzer import-ma-checkpoint`."""
    run = store.run(run_id)
    return run is not None and run.status == "imported"


def instance_group_cell(variant: ConfigVariant, spec: ModelSpec) -> str:
    """`<count>:<KIND>` groups; a config without instance groups runs one instance, on CPU for CPU-only models.
    An ensemble's or BLS model's are its composing models', comma-joined (Model Analyzer's form)."""
    if variant.composing:
        return ",".join(instance_group_text(c, spec.cpu_only) for c in variant.composing)
    return instance_group_text(variant, spec.cpu_only)


def config_path_cell(variant: ConfigVariant) -> str:
    """The variant's name; with composing models `<name>: <composing>, <composing>` (Model Analyzer's form)."""
    if variant.composing:
        return f"{variant.name}: {', '.join(c.name for c in variant.composing)}"
    return variant.name


def max_batch_size_cell(variant: ConfigVariant) -> str | int:
    """The variant's max batch size; with composing models theirs, comma-joined (Model Analyzer's form)."""
    if variant.composing:
        return ",".join(str(c.max_batch_size) for c in variant.composing)
    return variant.max_batch_size


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
    """Writes Model Analyzer's CSV tables at the end of a profile and for `export` (`report` writes none)."""

    commands: ClassVar[frozenset[str]] = frozenset({"profile", "export"})
    order: ClassVar[int] = 10  # the tables first

    def __init__(self, config: ProfileConfig, context: RunContext) -> None:
        self.config = config
        self.context = context
        #: Model Analyzer's file layout (a blank line after the table), used for imported MA checkpoints
        self.ma_layout = False

    def _fields(self, key: str, configured: list[str], default: list[str], request_rate: bool,
                llm: bool = False) -> list[str]:
        """The columns of one table: the configured ones; unless the user set them, with request_rate for
        concurrency when the results were measured at request rates, and the LLM metrics for LLMs."""
        fields = list(configured or default)
        if key not in self.config.user_set:
            if request_rate:
                fields = ["request_rate" if f == "concurrency" else f for f in fields]
            if llm:
                fields += [f for f in LLM_FIELDS if f not in fields]
        return fields

    def _ordered(self, ranking_: dict[str, list[RankedConfig]], store: Store) -> list[tuple[ModelSpec, Result, bool]]:
        rows: list[tuple[ModelSpec, Result, bool]] = []
        for spec in report_specs(store, self.config):
            ranked = ranking.rank(store.results(spec.name), spec.objectives, spec.constraints)
            for rc in ranked:
                for r in ranking.sorted_measurements(rc.results, spec.objectives, spec.constraints):
                    if r.measurement.ok:
                        ok = ranking.passes(spec.constraints, ranking.measurement_values(r.measurement))
                        rows.append((spec, r, ok))
        return rows

    @classmethod
    def _cell(cls, field: str, spec: ModelSpec, r: Result, ok: bool, values: dict[str, float]) -> Any:
        rc = r.run_config
        if rc.members:
            return cls._group_cell(field, spec, r, ok, values)
        getters: dict[str, Callable[[], Any]] = {
            "model_name": lambda: rc.model,
            "batch_size": lambda: rc.load.batch_size,
            "concurrency": lambda: rc.load.concurrency,
            "request_rate": lambda: rc.load.request_rate,
            "model_config_path": lambda: config_path_cell(rc.variant),
            "instance_group": lambda: instance_group_cell(rc.variant, spec),
            "max_batch_size": lambda: max_batch_size_cell(rc.variant),
            "satisfies_constraints": lambda: "Yes" if ok else "No",
        }
        if field in getters:
            return getters[field]()
        if field.startswith("backend_parameter/"):
            param = rc.variant.config.get("parameters", {}).get(field.split("/", 1)[1], {})
            return param.get("string_value") if isinstance(param, dict) else None
        return values.get(field)

    @classmethod
    def _group_cell(cls, field: str, spec: ModelSpec, r: Result, ok: bool, values: dict[str, float]) -> Any:
        """A cell of a concurrent group's row: each model's setting comma-joined, metrics as `<combined>, [<a>,<b>]`
        (see `groups`)."""
        rc = r.run_config
        if field in ("model_name", "satisfies_constraints"):
            return rc.model if field == "model_name" else "Yes" if ok else "No"
        if field in HEADERS or field.startswith("backend_parameter/"):
            return csv_list_cell(rc, lambda m: cls._cell(field, member_spec(spec, m.model), Result(m, r.measurement),
                                                          ok, {}))
        return csv_metric_cell(values, field, [m.model for m in rc.members])

    @classmethod
    def _gpu_cell(
        cls, field: str, uuid: str, gvals: dict[str, float], spec: ModelSpec, r: Result, ok: bool,
        values: dict[str, float],
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

    def write(self, store: Store, run_id: int, config: ProfileConfig,
              ranking_: dict[str, list[RankedConfig]]) -> list[Path]:
        results_dir = Path(config.export_path) / "results"
        self.ma_layout = _is_imported_ma_run(store, run_id)
        ordered = self._ordered(ranking_, store)
        request_rate = any(load.request_rate is not None for _, r, _ in ordered for load in member_loads(r.run_config))
        llm = config.model_type.lower() == "llm"
        inf_fields = self._fields("inference_output_fields", config.inference_output_fields, INFERENCE_FIELDS,
                                  request_rate, llm)
        gpu_fields = self._fields("gpu_output_fields", config.gpu_output_fields, GPU_FIELDS, request_rate)
        srv_values = server_only_values(store, run_id, host=True)
        srv_fields = server_only_fields(list(config.server_output_fields or SERVER_FIELDS),
                                        "server_output_fields" in config.user_set, srv_values)
        collected = {m.tag for _, r, _ in ordered for m in r.measurement.metrics}
        if "inference_output_fields" not in config.user_set:  # plugins' `shown` metrics, when collected
            inf_fields += [f for f in metrics.shown_tags() if f in collected and f not in inf_fields]
        known_non_metric = set(HEADERS)
        for f in inf_fields + gpu_fields:
            if f not in known_non_metric and not f.startswith("backend_parameter/") and f not in collected:
                if f in config.user_set:
                    log.warning("CSV field %r was not collected; its cells are empty", f)
        inf_rows, gpu_rows = [], []
        for spec, r, ok in ordered:
            values = ranking.measurement_values(r.measurement)
            inf_rows.append([self._cell(f, spec, r, ok, values) for f in inf_fields])
            if not spec.cpu_only or config.always_report_gpu_metrics:
                for uuid, gvals in sorted(r.measurement.gpu_values().items()):
                    gpu_rows.append([self._gpu_cell(f, uuid, gvals, spec, r, ok, values) for f in gpu_fields])
        srv_rows = [
            [SERVER_MODEL if f == "model_name" else uuid if f == "gpu_uuid" else gvals.get(f) for f in srv_fields]
            for uuid, gvals in srv_values.items()
        ]
        written = [
            self._write(results_dir / config.filename_server_only, srv_fields, srv_rows),
            self._write(results_dir / config.filename_model_inference, inf_fields, inf_rows),
            self._write(results_dir / config.filename_model_gpu, gpu_fields, gpu_rows),
        ]
        return [p for p in written if p is not None]


@hookimpl
def register_reporters(register: Any) -> None:
    register("csv", CsvReporter)
