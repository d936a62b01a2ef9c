"""`modelyzer report`: named configs from a results DB (a profile's or an imported Model Analyzer checkpoint),
one-line errors with exit code 2, YAML `report_model_configs` with plots, partial results."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from modelyzer.frontends.cli.main import cli
from modelyzer.plugins.reporters import render as report_render
from tests.plugins.reporters.test_summary import build_store, html_text, make_config


@pytest.fixture(autouse=True)
def _html_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report_render, "pdf_available", lambda: False)


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["report", *args], catch_exceptions=False)


def test_report_writes_named_detailed_reports_and_the_summary(tmp_path: Path) -> None:
    build_store(tmp_path / "results.db").close()
    result = run("-n", "m_config_2,m_config_1", "-e", str(tmp_path))
    assert result.exit_code == 0, result.output
    written = [Path(line.removeprefix("wrote ")) for line in result.output.splitlines()]
    assert written == [
        tmp_path / "reports" / "detailed" / "m_config_2" / "detailed_report.html",
        tmp_path / "reports" / "detailed" / "m_config_1" / "detailed_report.html",
        tmp_path / "reports" / "summaries" / "m" / "result_summary.html",
        tmp_path / "best_configs" / "m" / "best_config.json",
        tmp_path / "best_configs" / "m" / "config.pbtxt",
    ]
    summary = html_text(written[2])
    assert "In 16 measurements across 4 configurations, m_config_0 is 67% better" in summary
    assert "Constraint targets: Max p99 Latency: 20 ms" in summary  # the profile's constraints, from the DB


def test_unknown_config_is_one_line_listing_the_known_ones(tmp_path: Path) -> None:
    build_store(tmp_path / "results.db").close()
    result = run("-n", "m_config_1,nope", "-e", str(tmp_path))
    assert result.exit_code == 2
    assert result.output == ("error: report_model_configs: unknown model config 'nope'; known: m_config_default, "
                             "m_config_0, m_config_1, m_config_2\n")
    assert not (tmp_path / "reports").exists()


def test_missing_results_db(tmp_path: Path) -> None:
    result = run("-n", "a", "-e", str(tmp_path))
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and "results_db: " in result.output and "does not exist" in result.output


def test_missing_results_db_with_a_checkpoint_says_how_to_import_it(tmp_path: Path) -> None:
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "0.ckpt").write_text("{}")
    result = run("-n", "a", "-e", str(tmp_path), "-s", str(tmp_path / "ckpt"))
    assert result.exit_code == 2
    assert f"modelyzer import-ma-checkpoint {tmp_path / 'ckpt'} --results-db {tmp_path / 'results.db'}" in result.output


def test_report_model_configs_is_required(tmp_path: Path) -> None:
    result = run("-e", str(tmp_path))
    assert result.exit_code == 2 and "report_model_configs" in result.output


def test_yaml_configs_with_plots_and_objectives(tmp_path: Path) -> None:
    build_store(tmp_path / "results.db").close()
    config = {
        "export_path": str(tmp_path),
        "profile_models": {"m": {"objectives": {"perf_latency_p99": 10}}},
        "report_model_configs": {"m_config_1": {"plots": {"queue": {
            "title": "Queue", "x_axis": "concurrency", "y_axis": "perf_server_queue", "monotonic": True}}}},
    }
    path = tmp_path / "report.yaml"
    path.write_text(yaml.safe_dump(config))
    result = run("-f", str(path), "--skip-summary-reports")
    assert result.exit_code == 0, result.output
    assert [Path(line.removeprefix("wrote ")).name for line in result.output.splitlines()] == ["detailed_report.html"]
    plots = tmp_path / "plots" / "detailed" / "m_config_1"
    assert sorted(p.name for p in plots.iterdir()) == ["latency_breakdown.png", "queue.png"]
    # objectives from the config file re-rank; the summary says which
    result = run("-f", str(path))
    assert result.exit_code == 0, result.output
    summary = html_text(tmp_path / "reports" / "summaries" / "m" / "result_summary.html")
    assert "Objectives: p99 Latency (ms) (lower is better, weight 100%)" in summary
    assert "Constraint targets: None" in summary  # the file's model has none


def test_bad_plot_in_yaml_is_one_line(tmp_path: Path) -> None:
    build_store(tmp_path / "results.db").close()
    path = tmp_path / "report.yaml"
    path.write_text(yaml.safe_dump({"report_model_configs": {"m_config_1": {"plots": {"p": {
        "x_axis": "concurrency", "y_axis": "perf_througput"}}}}}))
    result = run("-f", str(path), "-e", str(tmp_path))
    assert result.exit_code == 2
    assert result.output == ("error: report_model_configs.m_config_1.plots.p.y_axis: unknown metric 'perf_througput'; "
                             f"did you mean 'perf_throughput'? (in {path})\n")


def test_interrupted_profile(tmp_path: Path) -> None:
    build_store(tmp_path / "results.db", status="interrupted").close()
    result = run("-n", "m_config_0", "-e", str(tmp_path))
    assert result.exit_code == 0, result.output
    for page in (tmp_path / "reports" / "summaries" / "m" / "result_summary.html",
                 tmp_path / "reports" / "detailed" / "m_config_0" / "detailed_report.html"):
        assert "(run 1) was interrupted" in html_text(page)


def test_cpu_only_db_and_results_db_option(tmp_path: Path) -> None:
    db = tmp_path / "elsewhere" / "my.db"
    db.parent.mkdir()
    build_store(db, gpu=False, config=make_config(tmp_path, gpu=False)).close()
    result = run("-n", "m_config_0", "-e", str(tmp_path / "out"), "--results-db", str(db))
    assert result.exit_code == 0, result.output
    doc = json.loads((tmp_path / "out" / "best_configs" / "m" / "best_config.json").read_text())
    assert doc["knobs"]["instance_kind"] == "KIND_CPU" and doc["hardware"].startswith("CPU ")


ORACLE = Path(__file__).resolve().parents[2].parent / "shared" / "oracles" / "ma-checkpoints" / "single-model-ckpt"


def test_report_on_an_imported_model_analyzer_checkpoint(tmp_path: Path) -> None:
    if not (ORACLE / "0.ckpt").is_file():
        pytest.skip("oracle checkpoints absent")
    try:
        from modelyzer.plugins.importers.ma_checkpoint import import_checkpoint
    except ImportError:
        pytest.skip("modelyzer.plugins.importers.ma_checkpoint not available yet")
    from modelyzer.kernel.store import Store

    store = Store(tmp_path / "results.db")
    import_checkpoint(ORACLE / "0.ckpt", store)
    store.close()
    result = run("-n", "add_sub_config_3", "-e", str(tmp_path))
    assert result.exit_code == 0, result.output
    expected = json.loads((ORACLE / "ma-summary" / "summary.json").read_text())["reports"]["add_sub"]
    summary = html_text(tmp_path / "reports" / "summaries" / "add_sub" / "result_summary.html")
    sentence = re.sub(r"<[^>]+>", "", expected["summary_sentence"].split("<UL>")[0])
    assert sentence in summary
    assert "Detailed Report" in html_text(tmp_path / "reports" / "detailed" / "add_sub_config_3" / "detailed_report.html")
