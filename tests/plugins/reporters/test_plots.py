"""Plots: points (sorting, monotonic, best y per load value), plot-spec parsing, which plots a report gets, and
the PNGs themselves (config colours drawn, constraint line dashed, nothing drawn without data)."""

from __future__ import annotations

from pathlib import Path

import attrs
import numpy as np
import pytest
from PIL import Image

from modelyzer.kernel.errors import ConfigError
from modelyzer.kernel.models import (
    ConfigVariant,
    Constraint,
    LoadSpec,
    Measurement,
    Metric,
    Result,
    RunConfig,
)
from modelyzer.plugins.reporters import plots
from modelyzer.plugins.reporters.data import PALETTE, model_data
from tests.plugins.reporters.test_summary import build_store, make_config


def result(conc: int, batch: int = 1, status: str = "ok", **values: float) -> Result:
    rc = RunConfig("m", ConfigVariant("m", {"max_batch_size": 8}, name="m_config_0"),
                   LoadSpec(batch_size=batch, concurrency=conc))
    return Result(rc, Measurement(rc.key, status=status, metrics=tuple(Metric(t, v) for t, v in values.items())))


def hex_rgb(colour: str) -> np.ndarray:
    return np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)], dtype=float)


def pixels_near(png: Path, colour: str, tolerance: float = 30.0) -> int:
    img = np.asarray(Image.open(png).convert("RGB")).astype(float)
    return int((np.abs(img - hex_rgb(colour)).sum(axis=2) < tolerance).sum())


def test_points_sorted_and_monotonic() -> None:
    rs = [result(4, perf_latency_p99=9.0, perf_throughput=300.0), result(1, perf_latency_p99=3.0, perf_throughput=100.0),
          result(2, perf_latency_p99=5.0, perf_throughput=350.0), result(8, status="failed")]
    assert plots.points(attrs.evolve(plots.THROUGHPUT_V_LATENCY, monotonic=False), rs) == [
        (3.0, 100.0), (5.0, 350.0), (9.0, 300.0)]
    assert plots.points(plots.THROUGHPUT_V_LATENCY, rs) == [(3.0, 100.0), (5.0, 350.0)]


def test_points_keep_the_best_y_per_load_value() -> None:
    rs = [result(1, batch=2, perf_throughput=100.0, perf_latency_p99=4.0),
          result(4, batch=2, perf_throughput=250.0, perf_latency_p99=9.0),
          result(1, batch=1, perf_throughput=80.0, perf_latency_p99=3.0)]
    assert plots.points(plots.THROUGHPUT_V_BATCH, rs) == [(1.0, 80.0), (2.0, 250.0)]
    assert plots.points(plots.LATENCY_V_BATCH, rs) == [(1.0, 3.0), (2.0, 4.0)]  # lower is better


def test_parse_plots() -> None:
    specs = plots.parse_plots({"mine": {"title": "Mine", "x_axis": "concurrency", "y_axis": "perf_latency_p99",
                                        "monotonic": True},
                               "untitled": {"x_axis": "perf_latency_p99", "y_axis": "perf_throughput"}})
    assert specs[0] == plots.PlotSpec("mine", "Mine", "concurrency", "perf_latency_p99", True)
    assert specs[1].title == "Throughput (infer/sec) vs. p99 Latency (ms)"
    assert plots.parse_plots(None) == []


@pytest.mark.parametrize(("tree", "message"), [
    ({"p": {"x_axis": "perf_latency_p99", "y_axis": "nope"}}, "plots.p.y_axis: unknown metric 'nope'"),
    ({"p": {"y_axis": "perf_throughput"}}, "plots.p.x_axis: is required"),
    ({"p": {"x_axis": "concurrency", "y_axis": "perf_throughput", "monotonic": "yes"}}, "plots.p.monotonic"),
    ({"p": {"x_axis": "concurrency", "y_axis": "perf_throughput", "colour": "red"}}, "unknown key 'colour'"),
    (["p"], "plots: must be a mapping"),
])
def test_parse_plots_errors_name_the_key(tree: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("(", r"\(")):
        plots.parse_plots(tree)


def test_line_plot_draws_each_config_in_its_colour_with_dashed_constraint(tmp_path: Path) -> None:
    a = [result(c, perf_latency_p99=2.0 * c, perf_throughput=100.0 * c) for c in (1, 2, 4)]
    b = [result(c, perf_latency_p99=3.0 * c, perf_throughput=80.0 * c) for c in (1, 2, 4)]
    colours = {"a": PALETTE[0], "b": PALETTE[1]}
    path = plots.line_plot(plots.THROUGHPUT_V_LATENCY, [("a", a), ("b", b)], colours,
                           [Constraint("perf_latency_p99", max=10.0)], tmp_path / "p.png")
    assert path == tmp_path / "p.png"
    assert pixels_near(path, PALETTE[0]) > 200 and pixels_near(path, PALETTE[1]) > 200
    fig = plots.line_figure(plots.THROUGHPUT_V_LATENCY, [("a", a), ("b", b)], colours,
                            [Constraint("perf_latency_p99", max=10.0), Constraint("perf_throughput", min=150.0)])
    assert fig is not None
    ax = fig.axes[0]
    data_lines = [line for line in ax.lines if line.get_linestyle() == "-"]
    assert [line.get_color() for line in data_lines] == [PALETTE[0], PALETTE[1]]
    assert list(data_lines[0].get_xdata()) == [2.0, 4.0, 8.0]
    dashed = [line for line in ax.lines if line.get_linestyle() == "--"]
    assert [list(line.get_xdata()) for line in dashed][0] == [10.0, 10.0]  # vertical: latency max
    assert list(dashed[1].get_ydata()) == [150.0, 150.0]  # horizontal: throughput min
    assert [t.get_text() for t in ax.get_legend().get_texts()][-2:] == [
        "max p99 Latency (ms): 10", "min Throughput (infer/sec): 150"]


def test_line_plot_without_data_draws_nothing(tmp_path: Path) -> None:
    rs = [result(1, perf_latency_p99=2.0, perf_throughput=100.0)]
    assert plots.line_plot(plots.GPU_MEM_V_LATENCY, [("a", rs)], {}, [], tmp_path / "g.png") is None
    assert not (tmp_path / "g.png").exists()


def test_latency_breakdown(tmp_path: Path) -> None:
    rs = [result(c, perf_latency_avg=5.0 + c, perf_client_send_recv=0.2, perf_server_queue=1.0 * c,
                 perf_server_compute_input=0.5, perf_server_compute_infer=2.0, perf_server_compute_output=0.4,
                 perf_throughput=100.0 * c) for c in (1, 2, 4)]
    path = plots.latency_breakdown("m_config_0", rs, PALETTE[2], "concurrency", tmp_path / "lb.png")
    assert path is not None
    for _, _, colour in plots.BREAKDOWN:
        assert pixels_near(path, colour) > 100, colour
    assert pixels_near(path, plots.OTHER_COLOR) > 100
    assert pixels_near(path, PALETTE[2]) > 50  # the throughput line
    bare = [result(1, perf_throughput=1.0)]
    assert plots.latency_breakdown("x", bare, PALETTE[0], "concurrency", tmp_path / "none.png") is None


def test_plot_selection_gpu_cpu_batch_llm(tmp_path: Path) -> None:
    gpu_store = build_store(tmp_path / "gpu" / "results.db")
    config = make_config(tmp_path / "gpu")
    gpu = model_data(gpu_store, config, config.models[0])
    assert [s.name for s in plots.summary_specs(gpu)] == ["throughput_v_latency", "gpu_mem_v_latency"]
    assert [s.name for s in plots.detailed_specs(gpu, None)] == [
        "throughput_v_latency", "gpu_mem_v_latency", "gpu_util_v_latency", "gpu_power_v_latency"]
    cpu_store = build_store(tmp_path / "cpu" / "results.db", gpu=False)
    cpu_config = make_config(tmp_path / "cpu", gpu=False)
    cpu = model_data(cpu_store, cpu_config, cpu_config.models[0])
    assert [s.name for s in plots.summary_specs(cpu)] == ["throughput_v_latency", "cpu_mem_v_latency"]
    assert [s.name for s in plots.detailed_specs(cpu, None)] == ["throughput_v_latency", "cpu_mem_v_latency"]
    # batch sizes and LLM metrics
    llm = attrs.evolve(cpu, batch_sizes=(1, 2), results=cpu.results + (
        result(1, perf_throughput=1.0, time_to_first_token_p99=20.0, inter_token_latency_p99=4.0,
               output_token_throughput=500.0),))
    names = [s.name for s in plots.detailed_specs(llm, None)]
    assert {"throughput_v_batch_size", "latency_v_batch_size", "token_throughput_v_first_token_latency",
            "first_token_latency_v_concurrency", "inter_token_latency_v_concurrency"} <= set(names)
    # configured plots replace the defaults; GPU plots are dropped for CPU-only data
    mine = plots.PlotSpec("mine", "Mine", "concurrency", "perf_server_queue")
    assert plots.detailed_specs(cpu, [mine, plots.GPU_UTIL_V_LATENCY]) == [mine]
