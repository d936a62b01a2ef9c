"""The `detailed` reporter: which configs get a report, the per-load table and sentence against the store, the
configured plots, and the rendered PDF pages."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from modelyzer.kernel.errors import ConfigError
from modelyzer.kernel.profile import Profile
from modelyzer.kernel.store import Store
from modelyzer.plugins.reporters import detailed as detailed_report
from modelyzer.plugins.reporters import plots
from modelyzer.plugins.reporters.data import model_data
from tests.plugins.reporters.test_summary import (  # noqa: F401 - html_only is an autouse fixture
    DATA,
    build_store,
    check_pdf,
    html_only,
    html_text,
    make_config,
    needs_pdf,
    write,
)


@pytest.fixture
def gpu_store(tmp_path: Path) -> Store:
    return build_store(tmp_path / "results.db")


def test_one_report_per_top_config(gpu_store: Store, tmp_path: Path) -> None:
    config = make_config(tmp_path)
    paths = write(gpu_store, config, "detailed")
    reports = sorted(p.parent.name for p in paths if p.suffix == ".html")
    assert reports == ["m_config_0", "m_config_1", "m_config_default"]
    for name in reports:
        assert (tmp_path / "plots" / "detailed" / name / "latency_breakdown.png").is_file()
        assert (tmp_path / "plots" / "detailed" / name / "gpu_mem_v_latency.png").is_file()


def test_table_sorted_by_p99_descending_and_matches_the_store(gpu_store: Store, tmp_path: Path) -> None:
    config = make_config(tmp_path)
    data = model_data(gpu_store, config, config.models[0])
    headers, rows = detailed_report.table(data.ok_results("m_config_1"), data)
    assert headers[:3] == ["Request Concurrency", "p99 Latency (ms)", "Client Response Wait (ms)"]
    assert "Max GPU Memory Usage (MB)" in headers and "Average GPU Utilization (%)" in headers
    expected = sorted(zip((1, 2, 4, 8), DATA["m_config_1"][3], strict=True), key=lambda cp: -cp[1][1])
    assert [int(r[0]) for r in rows] == [c for c, _ in expected]
    tput = headers.index("Throughput (infer/sec)")
    assert [float(r[tput]) for r in rows] == [t for _, (t, _) in expected]
    assert [float(r[1]) for r in rows] == [p for _, (_, p) in expected]
    mem = headers.index("Max GPU Memory Usage (MB)")
    assert {r[mem] for r in rows} == {"1000"}  # 2 GPUs x 500 MB, summed


def test_sentence(gpu_store: Store, tmp_path: Path) -> None:
    config = make_config(tmp_path)
    data = model_data(gpu_store, config, config.models[0])
    assert detailed_report.describe("m_config_0", data.ok_results("m_config_0"), data) == (
        "The model config m_config_0 uses 2 GPU instances with a max batch size of 4 and has dynamic batching "
        "enabled. 4 measurement(s) were obtained for the model config on GPU(s) 2 x Tesla T4 with total memory "
        "30.0 GB. This model uses the platform onnxruntime_onnx.")


def test_report_model_configs_with_their_own_plots(gpu_store: Store, tmp_path: Path) -> None:
    config = attrs.evolve(make_config(tmp_path), report_model_configs={
        "m_config_2": {"plots": {"queue_v_concurrency": {"title": "Queue vs. Concurrency", "x_axis": "concurrency",
                                                         "y_axis": "perf_server_queue", "monotonic": False}}},
        "m_config_default": None})
    paths = write(gpu_store, config, "detailed")
    assert sorted(p.parent.name for p in paths if p.suffix == ".html") == ["m_config_2", "m_config_default"]
    own = tmp_path / "plots" / "detailed" / "m_config_2"
    assert sorted(p.name for p in own.iterdir()) == ["latency_breakdown.png", "queue_v_concurrency.png"]
    text = html_text(tmp_path / "reports" / "detailed" / "m_config_2" / "detailed_report.html")
    assert "Queue vs. Concurrency" in text
    assert "Failed measurements" in text and "perf_analyzer: failed to get model config" in text
    assert (tmp_path / "plots" / "detailed" / "m_config_default" / "gpu_util_v_latency.png").is_file()


def test_report_targets_forms() -> None:
    as_list = attrs.evolve(make_config(Path("/tmp")), report_model_configs=["a", "b"])
    assert detailed_report.report_targets(as_list) == {"a": None, "b": None}
    mixed = attrs.evolve(as_list, report_model_configs=[
        "a", {"b": {"plots": {"p": {"x_axis": "concurrency", "y_axis": "perf_throughput"}}}}])
    targets = detailed_report.report_targets(mixed)
    assert targets["a"] is None and targets["b"] == [
        plots.PlotSpec("p", "Throughput (infer/sec) vs. Request Concurrency", "concurrency", "perf_throughput")]
    bad = attrs.evolve(as_list, report_model_configs={"b": {"plots": {"p": {"x_axis": "x", "y_axis": "y"}}}})
    with pytest.raises(ConfigError, match=r"report_model_configs\.b\.plots\.p\.x_axis: unknown metric 'x'"):
        detailed_report.report_targets(bad)


def test_global_plots_key_applies_to_every_detailed_report(gpu_store: Store, tmp_path: Path) -> None:
    config = attrs.evolve(make_config(tmp_path), plots={
        "util": {"title": "Util", "x_axis": "concurrency", "y_axis": "gpu_utilization"}})
    write(gpu_store, config, "detailed")
    assert sorted(p.name for p in (tmp_path / "plots" / "detailed" / "m_config_0").iterdir()) == [
        "latency_breakdown.png", "util.png"]


def test_skip_detailed_reports(gpu_store: Store, tmp_path: Path) -> None:
    config = make_config(tmp_path, skip_detailed_reports=True)
    paths = Profile(config, store=gpu_store).write_reports(1, Profile(config, store=gpu_store).rank())
    assert not (tmp_path / "reports" / "detailed").exists()
    assert (tmp_path / "reports" / "summaries" / "m" / "result_summary.html") in paths


def test_cpu_only_detailed_report(tmp_path: Path) -> None:
    store = build_store(tmp_path / "results.db", gpu=False)
    config = make_config(tmp_path, gpu=False)
    write(store, config, "detailed")
    text = html_text(tmp_path / "reports" / "detailed" / "m_config_0" / "detailed_report.html")
    assert "2 CPU instances" in text and "on CPU " in text and "RAM" in text and "GPU" not in text
    assert sorted(p.name for p in (tmp_path / "plots" / "detailed" / "m_config_0").iterdir()) == [
        "cpu_mem_v_latency.png", "latency_breakdown.png", "throughput_v_latency.png"]


@needs_pdf
def test_detailed_pdf_pages_and_plots(gpu_store: Store, tmp_path: Path) -> None:
    config = attrs.evolve(make_config(tmp_path), report_model_configs=["m_config_0"])
    write(gpu_store, config, "detailed")
    pdf = tmp_path / "reports" / "detailed" / "m_config_0" / "detailed_report.pdf"
    # latency breakdown + throughput, GPU memory, utilization and power vs latency
    check_pdf(pdf, tmp_path / "check", pages=2, images=5)


def test_layer_table_of_the_highest_throughput_measurement() -> None:
    from modelyzer.kernel.models import ConfigVariant, LoadSpec, Measurement, Metric, Result, RunConfig

    def result(throughput: float, *layers: tuple[str, float]) -> Result:
        metrics = (Metric("perf_throughput", throughput), *(Metric(f"layer_time/{n}", ms) for n, ms in layers))
        return Result(RunConfig("m", ConfigVariant("m", {}, name="m_config_0"), LoadSpec(concurrency=1)),
                      Measurement("k", metrics=metrics))

    table = detailed_report.layer_table([
        result(10.0, ("conv [Convolution, old]", 9.0)),
        result(20.0, ("fc [FullyConnected, brgemm_avx512_amx_bf16]", 0.25), ("conv [Convolution, jit]", 0.75)),
    ])
    assert table is not None
    assert table.rows == [["conv [Convolution, jit]", "0.75", "75.0"],
                          ["fc [FullyConnected, brgemm_avx512_amx_bf16]", "0.25", "25.0"]]
    assert detailed_report.layer_table([result(5.0)]) is None
