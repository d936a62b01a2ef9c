"""The `summary` reporter: one result summary per model, Model Analyzer's content and what it lacks.

`<export_path>/reports/summaries/<model>/result_summary.{html,pdf}` with plots in
`<export_path>/plots/simple/<model>/`. Content, in order: hardware (GPU names and memory, or the CPU and its
RAM for CPU-only runs), constraint targets, the objectives, Model Analyzer's headline sentence ("In N
measurements across M configurations, <best> is X% better than the default configuration …") with the best
config's knobs, the plots of the top configs, the table of the top configs at their best passing
measurement — then the search statistics of every run, and the failed measurements with their errors. A
profile that did not finish is reported as such, on what was stored.

This module computes the page's values (and writes its plots); `templates/summary.html.j2` lays them out and
`pages.PageReporter` writes the HTML and PDF.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from markupsafe import Markup, escape

from modelyzer.kernel.config import ProfileConfig
from modelyzer.kernel.hookspecs import hookimpl
from modelyzer.kernel.interfaces import RankedConfig
from modelyzer.kernel.progress import format_duration
from modelyzer.kernel.store import Store
from modelyzer.plugins.reporters import plots
from modelyzer.plugins.reporters.data import (
    ModelData,
    RunInfo,
    constraint_targets,
    first_line,
    fmt,
    instances_phrase,
    label,
    load_text,
    model_data,
    objectives_text,
    platform,
    run_infos,
    unfinished_note,
    value,
)
from modelyzer.plugins.reporters.pages import PageReporter
from modelyzer.plugins.reporters.render import Figure, Page, Table

TABLE_CAPTION = ("The following table summarizes each configuration at the measurement that optimizes the desired "
                 "metrics under the given constraints.")


def headline(data: ModelData) -> str:
    """Model Analyzer's summary sentence (plain text, the best config's name unmarked)."""
    best = data.best
    if best is None:
        return f"No successful measurement of {data.spec.name} is stored yet."
    name = best.variant_name
    gain = data.gain()
    rounded = round(gain) if gain is not None else None
    if data.default is None:
        verdict = "was chosen; the default configuration was not measured"
    elif rounded is None:
        verdict = "was chosen; no measurement of the default configuration meets the constraints"
    elif rounded > 0 and not best.best.run_config.variant.is_default:
        tags = [o.tag for o in data.spec.objectives]
        goal = ("maximizing throughput" if tags == ["perf_throughput"]
                else "maximizing output token throughput" if tags == ["output_token_throughput"]
                else "meeting the objectives")
        verdict = f"is {rounded}% better than the default configuration at {goal}"
    else:
        verdict = "provides no gain over the default configuration"
    return (f"In {data.measurements} measurements across {data.configurations} configurations, {name} {verdict}, "
            f"under the given constraints, on {data.hardware.phrase}.")


def config_bullet(rc: RankedConfig, data: ModelData) -> str:
    """`<variant>: 2 CPU instances with a max batch size of 4 on platform onnxruntime_onnx, …` (plain text)."""
    v = rc.best.run_config.variant
    text = (f"{v.name}: {instances_phrase(v, data.spec.cpu_only)} with a max batch size of {v.max_batch_size} "
            f"on platform {platform(v)}, dynamic batching {'enabled' if v.dynamic_batching else 'disabled'}")
    tput, p99 = value(rc.best, "perf_throughput"), value(rc.best, "perf_latency_p99")
    if tput is not None:
        text += f"; best at {load_text(rc.best)}: {fmt(tput)} infer/sec"
        if p99 is not None:
            text += f", p99 latency {fmt(p99)} ms"
    tokens, ttft = value(rc.best, "output_token_throughput"), value(rc.best, "time_to_first_token_p99")
    if tokens is not None:
        text += f", {fmt(tokens)} output tokens/sec"
        if ttft is not None:
            text += f", p99 time to first token {fmt(ttft)} ms"
    if not rc.passing:
        text += " (no measurement meets the constraints)"
    return text


#: the token metrics the summary table shows when measured (LLMs)
TOKEN_TAGS = ("output_token_throughput", "time_to_first_token_p99", "inter_token_latency_p99")


def token_tags(data: ModelData) -> list[str]:
    measured = {m.tag for rc in data.top for m in rc.best.measurement.metrics}
    return [t for t in TOKEN_TAGS if t in measured]


def table(data: ModelData) -> tuple[list[str], list[list[Any]]]:
    """The top-configs table: headers and rows (each config at its best measurement, best first)."""
    headers = ["Model Config Name", "Max Batch Size", "Dynamic Batching", "Total Instance Count"]
    multi_batch = len(data.batch_sizes) > 1
    if multi_batch:
        headers.append("Client Batch Size")
    headers += [label(data.load_tag), "p99 Latency (ms)", "Throughput (infer/sec)"]
    tokens = token_tags(data)
    headers += [label(t) for t in tokens]
    if data.cpu_metrics:
        headers.append("Max CPU Memory Usage (MB)")
    if data.gpu_metrics:
        headers += ["Max GPU Memory Usage (MB)", "Average GPU Utilization (%)"]
    headers.append("Satisfies Constraints")
    rows = []
    for rc in data.top:
        r, v = rc.best, rc.best.run_config.variant
        row: list[Any] = [v.name, v.max_batch_size, "Enabled" if v.dynamic_batching else "Disabled",
                          v.instance_group_str()]
        if multi_batch:
            row.append(r.run_config.load.batch_size)
        row += [r.run_config.load.value, fmt(value(r, "perf_latency_p99")), fmt(value(r, "perf_throughput"))]
        row += [fmt(value(r, t)) for t in tokens]
        if data.cpu_metrics:
            row.append(fmt(value(r, "cpu_used_ram")))
        if data.gpu_metrics:
            mem = value(r, "gpu_used_memory")
            util = value(r, "gpu_utilization")
            row += [int(mem) if mem is not None else "–", f"{util:.1f}" if util is not None else "–"]
        row.append("Yes" if rc.passing else "No")
        rows.append(row)
    return headers, rows


def runs_table(runs: list[RunInfo]) -> tuple[list[str], list[list[Any]]]:
    headers = ["Run", "Started", "Status", "Strategy", "Measured", "Resumed (skipped)", "Failed", "Wall Time",
               "Measurement Windows", "Server Starts", "Model Loads"]
    rows = []
    for r in runs:
        started = time.strftime("%Y-%m-%d %H:%M", time.localtime(r.started_at)) if r.started_at else "–"
        rows.append([r.id, started, r.status, r.strategy, r.measured, r.skipped, r.failed,
                     format_duration(r.wall_seconds), format_duration(r.window_seconds), r.server_starts,
                     r.model_loads])
    return headers, rows


def bold_first(text: str, phrase: str, bold: str | None = None) -> Markup:
    """`text` escaped, with `bold` (default: all of `phrase`) in bold where `phrase` first occurs."""
    bold = phrase if bold is None else bold
    marked = escape(phrase).replace(escape(bold), Markup("<strong>{}</strong>").format(bold), 1)
    return escape(text).replace(escape(phrase), marked, 1)


def headline_html(data: ModelData) -> Markup:
    """The headline sentence with the best config's name and its gain in bold."""
    sentence = escape(headline(data))
    if data.best is not None:
        sentence = bold_first(sentence, data.best.variant_name)
        gain = data.gain()
        if gain is not None and round(gain) > 0:
            sentence = bold_first(sentence, f"is {round(gain)}%", f"{round(gain)}%")
    return sentence


def plot_figures(data: ModelData, plot_dir: Path) -> list[Figure]:
    """The summary plots of the top configs, written to `plot_dir` (those with nothing to draw are left out)."""
    series = [(rc.variant_name, data.ok_results(rc.variant_name)) for rc in data.top]
    figures: list[Figure] = []
    for spec in plots.summary_specs(data):
        size = plots.FIGSIZE if len(figures) < 2 else plots.GRID_FIGSIZE
        path = plots.line_plot(spec, series, data.colors, data.spec.constraints, plot_dir / f"{spec.name}.png", size)
        if path is not None:
            figures.append(Figure(path, f"{spec.title} curves for {len(data.top)} best configurations."))
    return figures


def build_page(data: ModelData, runs: list[RunInfo], plot_dir: Path) -> Page:
    """The summary page of one model (plots are written to `plot_dir`)."""
    values: dict[str, Any] = {
        "model": data.spec.name,
        "note": unfinished_note(runs),
        "hardware": data.hardware,
        "constraint_targets": constraint_targets(data.spec.constraints),
        "objectives": objectives_text(data.spec.objectives),
        "headline": headline_html(data),
        "best_config": None,
        "measurements": data.measurements,
        "configurations": data.configurations,
        "failed_count": len(data.failed),
        "runs": Table(*runs_table(runs)),
        "failed": None,
    }
    if data.best is not None:
        values.update(
            best_config=bold_first(config_bullet(data.best, data), data.best.variant_name),
            shown=len(data.top),
            figures=plot_figures(data, plot_dir),
            table_caption=TABLE_CAPTION,
            top_configs=Table(*table(data)),
        )
    if data.failed:
        values["failed"] = Table(
            ["Model Config Name", "Load", "Status", "Reason"],
            [[r.run_config.variant.name, load_text(r), r.measurement.status, first_line(r.measurement.error)]
             for r in data.failed])
    return Page("summary.html.j2", "Online Result Summary", values)


class SummaryReporter(PageReporter):
    """Writes one summary report per profiled model (skipped with `skip_summary_reports`)."""

    commands: ClassVar[frozenset[str]] = frozenset({"profile", "report", "export"})
    order: ClassVar[int] = 30

    def skipped(self) -> bool:
        return self.config.skip_summary_reports

    def pages(self, store: Store, config: ProfileConfig, ranking: dict[str, list[RankedConfig]],
              export: Path) -> Iterator[tuple[Path, Page]]:
        runs = run_infos(store)
        for spec in config.models:
            data = model_data(store, config, spec, ranking.get(spec.name))
            page = build_page(data, runs, export / "plots" / "simple" / spec.name)
            yield export / "reports" / "summaries" / spec.name / "result_summary", page


@hookimpl
def register_reporters(register: Any) -> None:
    register("summary", SummaryReporter)
