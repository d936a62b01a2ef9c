"""The `summary` reporter: one result summary per model, Model Analyzer's content and what it lacks.

`<export_path>/reports/summaries/<model>/result_summary.{html,pdf}` with plots in
`<export_path>/plots/simple/<model>/`. Content, in order: hardware (GPU names and memory, or the CPU and its
RAM for CPU-only runs), constraint targets, the objectives, Model Analyzer's headline sentence ("In N
measurements across M configurations, <best> is X% better than the default configuration …") with the best
config's knobs, the plots of the top configs, the table of the top configs at their best passing
measurement — then the search statistics of every run, and the failed measurements with their errors. A
profile that did not finish is reported as such, on what was stored. Models profiled concurrently get one
summary, Model Analyzer's: "Model: a and b", "the combination of a_config_1 and b_config_2", a bullet per model,
and a table of combined values with each model's in parentheses (`groups`).

This module computes the page's values (and writes its plots); `templates/summary.html.j2` lays them out and
`pages.PageReporter` writes the HTML and PDF.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from markupsafe import Markup, escape

from modelyzer.kernel import metrics
from modelyzer.kernel.config import ProfileConfig
from modelyzer.kernel.hookspecs import hookimpl
from modelyzer.kernel.interfaces import RankedConfig
from modelyzer.kernel.models import RunConfig
from modelyzer.kernel.progress import format_duration
from modelyzer.kernel.ranking import TIE_BREAK_RULE, measurement_values
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
from modelyzer.plugins.reporters.groups import (
    display_name,
    member_spec,
    metric_header,
    names_cell,
    report_specs,
    table_list_cell,
    table_metric_cell,
)
from modelyzer.plugins.reporters.pages import PageReporter
from modelyzer.plugins.reporters.render import Figure, Page, Table

TABLE_CAPTION = ("The following table summarizes each configuration at the measurement that optimizes the desired "
                 "metrics under the given constraints.")
PER_MODEL_CAPTION = "Per model values are parenthetical."


def headline(data: ModelData) -> str:
    """Model Analyzer's summary sentence (plain text, the best config's name unmarked)."""
    best = data.best
    if best is None:
        return f"No successful measurement of {data.spec.name} is stored yet."
    name = best_names(data)
    gain = data.gain()
    rounded = round(gain) if gain is not None else None
    if data.default is None:
        verdict = "was chosen; the default configuration was not measured"
    elif rounded is None:
        verdict = "was chosen; no measurement of the default configuration meets the constraints"
    elif rounded > 0 and not best.best.run_config.variant.is_default:
        tags = list(dict.fromkeys(metrics.split_model_tag(o.tag)[0] for o in data.spec.objectives))
        goal = ("maximizing throughput" if tags == ["perf_throughput"]
                else "maximizing output token throughput" if tags == ["output_token_throughput"]
                else "meeting the objectives")
        verdict = f"is {rounded}% better than the default configuration at {goal}"
    else:
        verdict = "provides no gain over the default configuration"
    sentence = (f"In {data.measurements} measurements across {data.configurations} configurations, {name} {verdict}, "
                f"under the given constraints, on {data.hardware.phrase}.")
    tie = data.tie
    if tie is not None:
        sentence += (f" The measurements cannot tell {', '.join(tie.names)} apart: they are statistically tied "
                     f"within ±{tie.within:.1f}% (95% confidence), and {tie.names[0]} is chosen by the tie-break "
                     f"rule: {TIE_BREAK_RULE}.")
    return sentence


def best_names(data: ModelData) -> str:
    """The best config's name in the headline: a group's "the combination of a_config_1 and b_config_2"."""
    assert data.best is not None
    members = data.best.best.run_config.variant.members
    if not members:
        return data.best.variant_name
    return "the combination of " + " and ".join(m.name for m in members)


def config_bullets(rc: RankedConfig, data: ModelData) -> list[str]:
    """The headline's bullet of the best config; a group's: one per model; an ensemble's or BLS model's: then one
    per composing model, Model Analyzer's "<variant>: 2 CPU instances with a max batch size of 1 on platform
    python" (plain text)."""
    if not rc.best.run_config.members:
        composing = rc.best.run_config.variant.composing
        return [config_bullet(rc, data)] + [
            f"composing model {c.name}: {instances_phrase(c, data.spec.cpu_only or bool(c.config.get('_cpu_only')))} "
            f"with a max batch size of {c.max_batch_size} on platform {platform(c)}" for c in composing]
    return [config_bullet(rc, data, member, member_spec(data.spec, member.model).cpu_only, member.model)
            for member in rc.best.run_config.members]


def config_bullet(rc: RankedConfig, data: ModelData, member: RunConfig | None = None, cpu_only: bool | None = None,
                  model: str | None = None) -> str:
    """`<variant>: 2 CPU instances with a max batch size of 4 on platform onnxruntime_onnx, …` (plain text); of one
    `member` of a group (`model`), with that model's own values."""
    run_config = member or rc.best.run_config
    v = run_config.variant
    cpu_only = data.spec.cpu_only if cpu_only is None else cpu_only
    text = (f"{v.name}: {instances_phrase(v, cpu_only)} with a max batch size of {v.max_batch_size} "
            f"on platform {platform(v)}, dynamic batching {'enabled' if v.dynamic_batching else 'disabled'}")

    def own(tag: str) -> float | None:
        return value(rc.best, tag if model is None else metrics.model_tag(tag, model))

    tput, p99 = own("perf_throughput"), own("perf_latency_p99")
    if tput is not None:
        text += f"; best at {run_config.load.describe()}: {fmt(tput)} infer/sec"
        if p99 is not None:
            text += f", p99 latency {fmt(p99)} ms"
    tokens, ttft = own("output_token_throughput"), own("time_to_first_token_p99")
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


def shown_tags(data: ModelData) -> list[str]:
    """The plugins' `shown` metrics measured at the top configs' best measurements (e.g. bytes per request)."""
    measured = {m.tag for rc in data.top for m in rc.best.measurement.metrics}
    return [t for t in metrics.shown_tags() if t in measured]


def side_by_side(datas: list[ModelData]) -> Table | None:
    """The models of one results DB side by side at their best configs, when two or more of them collected the
    same `shown` metrics (the dali collector: a model fed decoded tensors next to the same model behind a DALI
    decoding step — bytes per request against throughput, latency and the server's preprocessing share)."""
    rows = [d for d in datas if d.best is not None and not d.spec.members and shown_tags(d)]
    if len(rows) < 2:
        return None
    common = [t for t in metrics.shown_tags() if any(t in shown_tags(d) for d in rows)]
    headers = ["Model", "Best Config", "Load", "Throughput (infer/sec)", "p99 Latency (ms)"] + [label(t) for t in common]
    table_rows = []
    for d in rows:
        assert d.best is not None
        r = d.best.best
        table_rows.append([d.spec.name, d.best.variant_name, r.run_config.load.describe(),
                           fmt(value(r, "perf_throughput")), fmt(value(r, "perf_latency_p99"))]
                          + [fmt(value(r, t)) for t in common])
    return Table(headers, table_rows)


def table(data: ModelData) -> tuple[list[str], list[list[Any]]]:
    """The top-configs table: headers and rows (each config at its best measurement, best first)."""
    if data.spec.members:
        return group_table(data)
    headers = ["Model Config Name", "Max Batch Size", "Dynamic Batching", "Total Instance Count"]
    multi_batch = len(data.batch_sizes) > 1
    if multi_batch:
        headers.append("Client Batch Size")
    headers += [label(data.load_tag), "p99 Latency (ms)", "Throughput (infer/sec)"]
    tokens = token_tags(data)
    headers += [label(t) for t in tokens]
    shown = shown_tags(data)
    headers += [label(t) for t in shown]
    if data.cpu_metrics:
        headers.append("Max CPU Memory Usage (MB)")
    if data.gpu_metrics:
        headers += ["Max GPU Memory Usage (MB)", "Average GPU Utilization (%)"]
    headers.append("Satisfies Constraints")
    tie = data.tie
    if tie is not None:
        headers.append("Statistically Tied")
    rows = []
    for rc in data.top:
        r, v = rc.best, rc.best.run_config.variant
        row: list[Any] = [v.name, v.max_batch_size, "Enabled" if v.dynamic_batching else "Disabled",
                          v.instance_group_str()]
        if multi_batch:
            row.append(r.run_config.load.batch_size)
        row += [r.run_config.load.value, fmt(value(r, "perf_latency_p99")), fmt(value(r, "perf_throughput"))]
        row += [fmt(value(r, t)) for t in tokens]
        row += [fmt(value(r, t)) for t in shown]
        if data.cpu_metrics:
            row.append(fmt(value(r, "cpu_used_ram")))
        if data.gpu_metrics:
            mem = value(r, "gpu_used_memory")
            util = value(r, "gpu_utilization")
            row += [int(mem) if mem is not None else "–", f"{util:.1f}" if util is not None else "–"]
        row.append("Yes" if rc.passing else "No")
        if tie is not None:
            row.append(f"±{tie.within:.1f}%" if v.name in tie.names else "")
        rows.append(row)
    return headers, rows


def group_table(data: ModelData) -> tuple[list[str], list[list[Any]]]:
    """A concurrent group's top-configs table, Model Analyzer's columns (each per-model setting and value listed
    in parentheses after the combined value), then the load and whether the constraints are met."""
    tokens = token_tags(data)
    metric_tags = ["perf_latency_p99", "perf_throughput", *tokens] + (["cpu_used_ram"] if data.cpu_metrics else [])
    headers = ["Model Config Name", "Max Batch Size", "Dynamic Batching", "Total Instance Count",
               metric_header("perf_latency_p99", "p99 Latency (ms)"),
               metric_header("perf_throughput", "Throughput (infer/sec)")]
    headers += [metric_header(t, label(t)) for t in tokens]
    if data.cpu_metrics:
        headers.append("Max CPU Memory Usage (MB)")
    if data.gpu_metrics:
        headers += ["Max GPU Memory Usage (MB)", "Average GPU Utilization (%)"]
    headers += [label(data.load_tag), "Satisfies Constraints"]
    rows = []
    for rc in data.top:
        r, v = rc.best, rc.best.run_config.variant
        members = r.run_config.members
        models = [m.model for m in members]
        values = measurement_values(r.measurement)
        row: list[Any] = [
            names_cell(v),
            table_list_cell([m.variant.max_batch_size for m in members]),
            table_list_cell(["Enabled" if m.variant.dynamic_batching else "Disabled" for m in members]),
            table_list_cell([m.variant.instance_group_str(member_spec(data.spec, m.model).cpu_only) for m in members]),
        ]
        row += [table_metric_cell(values, t, models) for t in metric_tags]
        if data.gpu_metrics:
            mem, util = values.get("gpu_used_memory"), values.get("gpu_utilization")
            row += [int(mem) if mem is not None else "–", f"{util:.1f}" if util is not None else "–"]
        row += [table_list_cell([m.load.value for m in members]), "Yes" if rc.passing else "No"]
        rows.append(row)
    return headers, rows


def runs_table(runs: list[RunInfo]) -> tuple[list[str], list[list[Any]]]:
    headers = ["Run", "Started", "Status", "Strategy", "Measured", "Resumed (skipped)", "Failed", "Wall Time",
               "Measurement Windows", "Retries", "Server Starts", "Model Loads"]
    rows = []
    for r in runs:
        started = time.strftime("%Y-%m-%d %H:%M", time.localtime(r.started_at)) if r.started_at else "–"
        rows.append([r.id, started, r.status, r.strategy, r.measured, r.skipped, r.failed,
                     format_duration(r.wall_seconds), format_duration(r.window_seconds),
                     format_duration(r.retry_seconds), r.server_starts,
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
        variant = data.best.best.run_config.variant
        for name in [m.name for m in variant.members] or [variant.name]:
            sentence = bold_first(sentence, name)
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


def build_page(data: ModelData, runs: list[RunInfo], plot_dir: Path, compared: Table | None = None) -> Page:
    """The summary page of one model (plots are written to `plot_dir`); `compared`: the models side by side."""
    values: dict[str, Any] = {
        "model": display_name(data.spec),
        "note": unfinished_note(runs),
        "hardware": data.hardware,
        "constraint_targets": constraint_targets(data.spec.constraints),
        "objectives": objectives_text(data.spec.objectives),
        "headline": headline_html(data),
        "best_configs": None,
        "measurements": data.measurements,
        "configurations": data.configurations,
        "failed_count": len(data.failed),
        "runs": Table(*runs_table(runs)),
        "failed": None,
        "compared": compared,
    }
    if data.best is not None:
        values.update(
            best_configs=[bold_first(text, text.split(": ", 1)[0]) for text in config_bullets(data.best, data)],
            shown=len(data.top),
            figures=plot_figures(data, plot_dir),
            table_caption=TABLE_CAPTION + (f" {PER_MODEL_CAPTION}" if data.spec.members else ""),
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
        datas = [model_data(store, config, spec, ranking.get(spec.name)) for spec in report_specs(store, config)]
        compared = side_by_side(datas)
        for data in datas:
            name = data.spec.name
            page = build_page(data, runs, export / "plots" / "simple" / name,
                              compared if compared is not None and any(row[0] == name for row in compared.rows) else None)
            yield export / "reports" / "summaries" / name / "result_summary", page


@hookimpl
def register_reporters(register: Any) -> None:
    register("summary", SummaryReporter)
