"""Report plots with matplotlib (Agg, no pyplot state): metric-vs-metric lines and the latency breakdown.

A `PlotSpec` is Model Analyzer's plot config (`name`, `title`, `x_axis`, `y_axis`, `monotonic`); its axes are
metric tags or the load parameters `batch_size`, `concurrency`, `request_rate`. Every config keeps one
colour in every plot of a model (`ModelData.colors`); constraints on either axis are dashed lines; a
monotonic plot keeps only the points whose y grows strictly along x (the useful frontier). Plots with no
data are not drawn (`None`), so a CPU-only run gets no empty GPU charts.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from modelyzer.kernel import metrics
from modelyzer.kernel.config_checks import check_plots
from modelyzer.kernel.config_values import Where
from modelyzer.kernel.models import Constraint, Result
from modelyzer.plugins.reporters.data import LOAD_TAGS, ModelData, label, value

if TYPE_CHECKING:  # matplotlib is imported when a plot is drawn, not when modelyzer starts
    from matplotlib.figure import Figure

log = logging.getLogger("modelyzer")

FIGSIZE = (8.0, 5.0)
GRID_FIGSIZE = (6.0, 4.0)  # plots shown two to a row: smaller figure, so the same fonts read larger
DPI = 110
BREAKDOWN = (  # (tag, legend, colour): the stacked segments of one request's latency
    ("perf_client_send_recv", "Client send/recv", "#8dd3c7"),
    ("perf_server_queue", "Server queue", "#fb8072"),
    ("perf_server_compute_input", "Server compute input", "#80b1d3"),
    ("perf_server_compute_infer", "Server compute infer", "#fdb462"),
    ("perf_server_compute_output", "Server compute output", "#b3de69"),
)
OTHER_COLOR = "#c7c7c7"


@attrs.frozen
class PlotSpec:
    """One plot: Model Analyzer's `plots` entry."""

    name: str
    title: str
    x_axis: str
    y_axis: str
    monotonic: bool = False


def _p(name: str, title: str, x: str, y: str, monotonic: bool = False) -> PlotSpec:
    return PlotSpec(name, title, x, y, monotonic)


THROUGHPUT_V_LATENCY = _p("throughput_v_latency", "Throughput vs. Latency", "perf_latency_p99", "perf_throughput", True)
GPU_MEM_V_LATENCY = _p("gpu_mem_v_latency", "GPU Memory vs. Latency", "perf_latency_p99", "gpu_used_memory")
GPU_UTIL_V_LATENCY = _p("gpu_util_v_latency", "GPU Utilization vs. Latency", "perf_latency_p99", "gpu_utilization")
GPU_POWER_V_LATENCY = _p("gpu_power_v_latency", "GPU Power vs. Latency", "perf_latency_p99", "gpu_power_usage")
CPU_MEM_V_LATENCY = _p("cpu_mem_v_latency", "RAM Usage vs. Latency", "perf_latency_p99", "cpu_used_ram")
THROUGHPUT_V_BATCH = _p("throughput_v_batch_size", "Throughput vs. Batch Size", "batch_size", "perf_throughput")
LATENCY_V_BATCH = _p("latency_v_batch_size", "p99 Latency vs. Batch Size", "batch_size", "perf_latency_p99")
# Model Analyzer's `report` defaults (online; offline adds the batch-size plots)
DETAILED_DEFAULTS = (GPU_MEM_V_LATENCY, GPU_UTIL_V_LATENCY, CPU_MEM_V_LATENCY, GPU_POWER_V_LATENCY)


def _tags(data: ModelData) -> set[str]:
    return {m.tag for r in data.results if r.measurement.ok for m in r.measurement.metrics}


def llm_specs(data: ModelData) -> list[PlotSpec]:
    """Token plots when genai-perf metrics were measured (p99 when present, else avg)."""
    tags = _tags(data)
    out = []
    ttft = next((t for t in ("time_to_first_token_p99", "time_to_first_token_avg") if t in tags), None)
    itl = next((t for t in ("inter_token_latency_p99", "inter_token_latency_avg") if t in tags), None)
    if ttft and "output_token_throughput" in tags:
        out.append(_p("token_throughput_v_first_token_latency", "Output Token Throughput vs. Time To First Token",
                      ttft, "output_token_throughput", True))
    if ttft:
        out.append(_p(f"first_token_latency_v_{data.load_tag}", f"Time To First Token vs. {label(data.load_tag)}",
                      data.load_tag, ttft))
    if itl:
        out.append(_p(f"inter_token_latency_v_{data.load_tag}", f"Inter Token Latency vs. {label(data.load_tag)}",
                      data.load_tag, itl))
    return out


def summary_specs(data: ModelData) -> list[PlotSpec]:
    """The summary's plots: throughput vs latency, then GPU memory (or RAM for CPU-only runs), batch and LLM."""
    specs = [THROUGHPUT_V_LATENCY]
    if data.gpu_metrics:
        specs.append(GPU_MEM_V_LATENCY)
    elif data.cpu_metrics:
        specs.append(CPU_MEM_V_LATENCY)
    if len(data.batch_sizes) > 1:
        specs.append(attrs.evolve(THROUGHPUT_V_BATCH, monotonic=False))
    return specs + llm_specs(data)


def detailed_specs(data: ModelData, configured: Sequence[PlotSpec] | None) -> list[PlotSpec]:
    """The configured plots of a detailed report, or the defaults (plus throughput vs latency, batch, LLM)."""
    if configured:
        specs = list(configured)
    else:
        specs = [THROUGHPUT_V_LATENCY, *DETAILED_DEFAULTS]
        if len(data.batch_sizes) > 1:
            specs += [THROUGHPUT_V_BATCH, LATENCY_V_BATCH]
        specs += llm_specs(data)
    if not data.gpu_metrics:
        specs = [s for s in specs if not (_is_gpu(s.x_axis) or _is_gpu(s.y_axis))]
    if not data.cpu_metrics:
        specs = [s for s in specs if "cpu_used_ram" not in (s.x_axis, s.y_axis)]
    return specs


def _is_gpu(tag: str) -> bool:
    info = metrics.get(tag)
    return bool(info and info.gpu)


def parse_plots(tree: Any, where: str = "plots") -> list[PlotSpec]:
    """Model Analyzer's `plots` mapping `{name: {title, x_axis, y_axis, monotonic}}` → PlotSpecs.

    Checked by the kernel (`config_checks.check_plots`, also when the config is loaded): a bad entry or an unknown
    tag is a ConfigError naming the key (e.g. `plots.my_plot.y_axis`).
    """
    out = []
    for name, body in check_plots(tree, Where(where)):
        title = str(body.get("title") or f"{label(body['y_axis'])} vs. {label(body['x_axis'])}")
        out.append(PlotSpec(name, title, body["x_axis"], body["y_axis"], bool(body.get("monotonic", False))))
    return out


# ---- drawing ------------------------------------------------------------------------------------------------------


def points(spec: PlotSpec, results: Sequence[Result]) -> list[tuple[float, float]]:
    """The (x, y) points of one config, sorted by x; monotonic plots keep only strictly growing y.

    When x is a load parameter, measurements sharing an x value (other load dimensions) keep the best y.
    """
    pts = []
    for r in results:
        if not r.measurement.ok:
            continue
        x, y = value(r, spec.x_axis), value(r, spec.y_axis)
        if x is not None and y is not None:
            pts.append((x, y))
    if spec.x_axis in LOAD_TAGS:  # several loads share an x (e.g. concurrencies per batch size): the best y
        info = metrics.get(spec.y_axis)
        pick = min if info is not None and info.direction == metrics.LOWER else max
        best: dict[float, float] = {}
        for x, y in pts:
            best[x] = pick(best.get(x, y), y)
        pts = list(best.items())
    pts.sort()
    if not spec.monotonic:
        return pts
    kept: list[tuple[float, float]] = []
    for x, y in pts:
        if not kept or y > kept[-1][1]:
            kept.append((x, y))
    return kept


def _constraint_lines(ax: Any, spec: PlotSpec, constraints: Sequence[Constraint]) -> None:
    aliases = {"perf_latency": "perf_latency_p99"}
    for c in constraints:
        tag = aliases.get(c.tag, c.tag)
        for bound, word in ((c.min, "min"), (c.max, "max")):
            if bound is None:
                continue
            text = f"{word} {label(tag)}: {bound:g}"
            if tag == spec.x_axis:
                ax.axvline(bound, color="#444444", linestyle="--", linewidth=1.2, label=text)
            elif tag == spec.y_axis:
                ax.axhline(bound, color="#444444", linestyle="--", linewidth=1.2, label=text)


def _save(fig: Figure, path: Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=DPI)
    return path


def line_plot(spec: PlotSpec, series: Sequence[tuple[str, Sequence[Result]]], colors: Mapping[str, str],
              constraints: Sequence[Constraint], path: Path, size: tuple[float, float] = FIGSIZE) -> Path | None:
    """Draw `line_figure` to `path` (PNG); None, writing nothing, when there is no data."""
    fig = line_figure(spec, series, colors, constraints, size)
    return _save(fig, path) if fig is not None else None


def line_figure(spec: PlotSpec, series: Sequence[tuple[str, Sequence[Result]]], colors: Mapping[str, str],
                constraints: Sequence[Constraint], size: tuple[float, float] = FIGSIZE) -> Figure | None:
    """One line per config (`series` = [(config name, its results)]); None when no point has both values."""
    lines = [(name, points(spec, results)) for name, results in series]
    if not any(pts for _, pts in lines):
        return None
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=size, layout="constrained")
    ax = fig.add_subplot()
    for name, pts in lines:
        if pts:
            xs, ys = zip(*pts, strict=True)
            ax.plot(xs, ys, marker="o", markersize=5, linewidth=2, color=colors.get(name, "#1f77b4"), label=name)
    _constraint_lines(ax, spec, constraints)
    ax.set_title(spec.title, fontsize=14, fontweight="bold")
    ax.set_xlabel(label(spec.x_axis), fontsize=12)
    ax.set_ylabel(label(spec.y_axis), fontsize=12)
    ax.tick_params(labelsize=10)
    if spec.x_axis in LOAD_TAGS:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=10, loc="best")
    return fig


def _load_label(r: Result, with_batch: bool) -> str:
    load = r.run_config.load
    text = str(load.value)
    return f"b{load.batch_size}\n{text}" if with_batch else text


def latency_breakdown(name: str, results: Sequence[Result], color: str, load_tag: str, path: Path) -> Path | None:
    """Stacked bars of where a request's average latency goes at each load value, with throughput as a line.

    Segments: client send/recv, server queue, compute input/infer/output, and the rest of the average latency
    (network, server overhead). None when the load generator reported no breakdown.
    """
    ok = [r for r in results if r.measurement.ok]
    ok.sort(key=lambda r: (r.run_config.load.batch_size, value(r, load_tag) or 0.0))
    if not ok or not any(value(r, tag) is not None for r in ok for tag, _, _ in BREAKDOWN):
        return None
    with_batch = len({r.run_config.load.batch_size for r in ok}) > 1
    xs = list(range(len(ok)))
    from matplotlib.figure import Figure

    fig = Figure(figsize=FIGSIZE, layout="constrained")
    ax = fig.add_subplot()
    bottom = [0.0] * len(ok)
    for tag, legend, colour in BREAKDOWN:
        heights = [value(r, tag) or 0.0 for r in ok]
        if any(heights):
            ax.bar(xs, heights, bottom=bottom, color=colour, label=legend, width=0.6)
            bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    rest = [max((value(r, "perf_latency_avg") or 0.0) - b, 0.0) for r, b in zip(ok, bottom, strict=True)]
    if any(rest):
        ax.bar(xs, rest, bottom=bottom, color=OTHER_COLOR, label="Other (network, server overhead)", width=0.6)
    ax.set_xticks(xs, [_load_label(r, with_batch) for r in ok])
    ax.set_xlabel(label(load_tag), fontsize=12)
    ax.set_ylabel("Average latency (ms)", fontsize=12)
    ax.set_title(f"Latency Breakdown of {name}", fontsize=14, fontweight="bold")
    ax.grid(True, axis="y", alpha=0.3)
    throughput = [value(r, "perf_throughput") for r in ok]
    handles, labels = ax.get_legend_handles_labels()
    if any(t is not None for t in throughput):
        ax2 = ax.twinx()
        ax2.plot(xs, [t or 0.0 for t in throughput], color=color, marker="o", linewidth=2, label="Throughput")
        ax2.set_ylabel(label("perf_throughput"), fontsize=12)
        ax2.set_ylim(bottom=0)
        h2, l2 = ax2.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    fig.legend(handles, labels, fontsize=9, loc="outside lower center", ncols=3)
    return _save(fig, path)
