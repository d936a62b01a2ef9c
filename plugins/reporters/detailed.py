"""The `detailed` reporter: one report per top config (or per config named in `report_model_configs`).

`<export_path>/reports/detailed/<variant>/detailed_report.{html,pdf}` with plots in
`<export_path>/plots/detailed/<variant>/`: the latency breakdown (stacked client send/recv, server queue,
compute input/infer/output and the rest of the average latency per load value, with throughput as a line),
the configured plots two per row (Model Analyzer's `plots` key, per config under `report_model_configs`),
the per-load table sorted by p99 latency, descending, a sentence describing the config, and — when a collector
measured them (`layer_time/<layer>` tags, e.g. the `openvino` collector's profile of the compiled model) — the
per-layer time of the config's highest-throughput measurement, slowest layer first.

This module computes the page's values (and writes its plots); `templates/detailed.html.j2` lays them out and
`pages.PageReporter` writes the HTML and PDF.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from modelyzer.kernel import metrics
from modelyzer.kernel.config import ProfileConfig
from modelyzer.kernel.hookspecs import hookimpl
from modelyzer.kernel.interfaces import RankedConfig
from modelyzer.kernel.models import Result
from modelyzer.kernel.store import Store
from modelyzer.plugins.reporters import plots
from modelyzer.plugins.reporters.data import (
    ModelData,
    first_line,
    fmt,
    instances_phrase,
    label,
    load_text,
    model_data,
    platform,
    run_infos,
    unfinished_note,
    value,
)
from modelyzer.plugins.reporters.groups import report_specs
from modelyzer.plugins.reporters.pages import PageReporter
from modelyzer.plugins.reporters.render import Figure, Page, Table

log = logging.getLogger("modelyzer")

EXPLANATION = (
    "The latency breakdown shows where the average time of one request goes at each load value: the client "
    "sending the request and receiving the response, the request waiting in the server's queue, and the server "
    "preparing inputs, running the model and preparing outputs; the grey remainder is the rest of the average "
    "latency (network and server overhead outside the measured stages). The line is the throughput at that load. "
    "Rising queue time with flat throughput means the config is saturated: more load only adds latency. The table "
    "lists every measurement of the config, slowest first; p99 is the latency 99% of requests stay under."
)
HOST_COLUMNS = ("host_cpu_utilization",)
STEP_SHARE_PREFIX = "step_share/"
LAYER_PREFIX = "layer_time/"
LLM_COLUMNS = ("time_to_first_token_p99", "inter_token_latency_p99", "output_token_throughput")


def report_targets(config: ProfileConfig) -> dict[str, list[plots.PlotSpec] | None]:
    """Config names (and their own plots) from `report_model_configs`: a list of names or a mapping."""
    raw = config.report_model_configs
    out: dict[str, list[plots.PlotSpec] | None] = {}
    if not raw:
        return out
    items: list[Any] = list(raw.items()) if isinstance(raw, Mapping) else [
        item for entry in raw for item in (entry.items() if isinstance(entry, Mapping) else [(entry, None)])]
    for name, body in items:
        own = body.get("plots") if isinstance(body, Mapping) else None
        out[str(name)] = plots.parse_plots(own, f"report_model_configs.{name}.plots") if own else None
    return out


def describe(variant_name: str, results: Sequence[Result], data: ModelData) -> str:
    """Model Analyzer's sentence about one config: instances, batching, measurements, hardware, platform."""
    v = data.variants[variant_name]
    hw = data.hardware
    where = f"on {hw.phrase}"
    if hw.memory_gb is not None:
        where += f" with total memory {hw.memory_text}" if hw.kind == "gpu" else f" with {hw.memory_text} RAM"
    return (f"The model config {variant_name} uses {instances_phrase(v, data.spec.cpu_only)} with a max batch size "
            f"of {v.max_batch_size} and has dynamic batching {'enabled' if v.dynamic_batching else 'disabled'}. "
            f"{len(results)} measurement(s) were obtained for the model config {where}. "
            f"This model uses the platform {platform(v)}.")


def table(results: Sequence[Result], data: ModelData) -> tuple[list[str], list[list[str]]]:
    """Per-load rows, sorted by p99 latency descending."""
    tags = {m.tag for r in results for m in r.measurement.metrics}
    multi_batch = len({r.run_config.load.batch_size for r in results}) > 1
    columns = ([("batch_size", "Client Batch Size")] if multi_batch else []) + [(data.load_tag, label(data.load_tag))]
    columns += [(t, label(t)) for t in ("perf_latency_p99", "perf_client_response_wait", "perf_server_queue",
                                        "perf_server_compute_input", "perf_server_compute_infer",
                                        "perf_server_compute_output", "perf_throughput")]
    if data.cpu_metrics:
        columns.append(("cpu_used_ram", "Max CPU Memory Usage (MB)"))
    columns += [(t, label(t)) for t in HOST_COLUMNS if t in tags]  # the server's own view of its host (Triton)
    # a pipeline's steps (ensemble / BLS composing models): each one's share of the server time — the bottleneck
    columns += [(t, label(t)) for t in sorted(tags) if t.startswith(STEP_SHARE_PREFIX)]
    columns += [(t, label(t)) for t in metrics.shown_tags() if t in tags]  # plugins' `shown` metrics
    if data.gpu_metrics:
        columns += [("gpu_used_memory", "Max GPU Memory Usage (MB)"), ("gpu_utilization", "Average GPU Utilization (%)")]
    columns += [(t, label(t)) for t in LLM_COLUMNS if t in tags]
    ordered = sorted(results, key=lambda r: -(value(r, "perf_latency_p99") or 0.0))
    rows = []
    for r in ordered:
        row = []
        for tag, _ in columns:
            v = value(r, tag)
            if v is not None and tag in ("batch_size", "concurrency", "request_rate", "gpu_used_memory"):
                row.append(str(int(v)))
            else:
                row.append(f"{v:.1f}" if v is not None and tag == "gpu_utilization" else fmt(v))
        rows.append(row)
    return [h for _, h in columns], rows


def layer_table(results: Sequence[Result]) -> Table | None:
    """Layer, time per inference and share of the layers' total, from the highest-throughput measurement's
    `layer_time/` tags (None without any)."""
    best = max(results, key=lambda r: value(r, "perf_throughput") or 0.0, default=None)
    layers = sorted(((m.tag[len(LAYER_PREFIX):], m.value) for m in (best.measurement.metrics if best else ())
                     if m.tag.startswith(LAYER_PREFIX)), key=lambda item: -item[1])
    total = sum(ms for _, ms in layers)
    if not layers or total <= 0:
        return None
    return Table(["Layer [type, kernel]", "Time per Inference (ms)", "Share (%)"],
                 [[name, f"{ms:.4g}", f"{100.0 * ms / total:.1f}"] for name, ms in layers])


def build_page(variant_name: str, data: ModelData, configured: list[plots.PlotSpec] | None, plot_dir: Path,
               note: str | None = None) -> Page:
    """The detailed page of one config (plots are written to `plot_dir`)."""
    results = data.ok_results(variant_name)
    color = data.colors.get(variant_name, plots.OTHER_COLOR)
    breakdown = plots.latency_breakdown(variant_name, results, color, data.load_tag, plot_dir / "latency_breakdown.png")
    figures = []
    for spec in plots.detailed_specs(data, configured):
        path = plots.line_plot(spec, [(variant_name, results)], data.colors, data.spec.constraints,
                               plot_dir / f"{spec.name}.png", plots.GRID_FIGSIZE)
        if path is not None:
            figures.append(Figure(path, spec.title))
    failed = [r for r in data.failed if r.run_config.variant.name == variant_name]
    return Page("detailed.html.j2", "Detailed Report", {
        "variant": variant_name,
        "note": note,
        "breakdown": Figure(breakdown, f"Latency Breakdown for Online Performance of {variant_name}")
        if breakdown is not None else None,
        "figures": figures,
        "measurements": Table(*table(results, data)) if results else None,
        "description": describe(variant_name, results, data),
        "layers": layer_table(results),
        "failed": Table(["Load", "Status", "Reason"],
                        [[load_text(r), r.measurement.status, first_line(r.measurement.error)] for r in failed])
        if failed else None,
        "explanation": EXPLANATION,
    })


class DetailedReporter(PageReporter):
    """Writes a detailed report for each top config, or for each config named in `report_model_configs`."""

    order: ClassVar[int] = 20  # what `report` was asked for comes first

    def skipped(self) -> bool:
        return self.config.skip_detailed_reports

    def pages(self, store: Store, config: ProfileConfig, ranking: dict[str, list[RankedConfig]],
              export: Path) -> Iterator[tuple[Path, Page]]:
        targets = report_targets(config)
        global_plots = plots.parse_plots(config.plots) or None
        note = unfinished_note(run_infos(store))
        for spec in report_specs(store, config):
            if spec.members:
                log.info("no detailed reports for %s: models profiled concurrently get a summary only (as in Model "
                         "Analyzer)", spec.name)
                continue
            data = model_data(store, config, spec, ranking.get(spec.name))
            if targets:
                names = [n for n in targets if n in data.variants]
            else:
                names = [rc.variant_name for rc in data.top]
            for name in names:
                page = build_page(name, data, targets.get(name) or global_plots,
                                  export / "plots" / "detailed" / name, note)
                yield export / "reports" / "detailed" / name / "detailed_report", page


@hookimpl
def register_reporters(register: Any) -> None:
    register("detailed", DetailedReporter)
