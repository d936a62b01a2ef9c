"""`modelyzer export`: CSVs, summaries and best configs of any results DB — an imported Model Analyzer checkpoint
(golden CSVs byte for byte, MA's summary facts) and a replayed profile (its stored settings) — flags winning over
the stored config, the DB left untouched, one-line errors."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from modelyzer.frontends.cli.main import cli
from modelyzer.kernel.store import Store
from modelyzer.plugins.reporters import render as report_render
from tests.plugins.importers.test_ma_checkpoint import CSV_FILES, ORACLES, oracle
from tests.plugins.reporters.test_summary import html_text


@pytest.fixture(autouse=True)
def _html_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report_render, "pdf_available", lambda: False)


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def export(*args: str) -> Result:
    return invoke("export", *args)


def written(result: Result) -> list[Path]:
    assert result.exit_code == 0, result.output
    return [Path(line.removeprefix("wrote ")) for line in result.output.splitlines()]


def imported(tmp_path: Path, name: str, repository: Path | None = None) -> Path:
    db = tmp_path / f"{name}.db"
    args = ["import-ma-checkpoint", str(oracle(name)), "--results-db", str(db)]
    result = invoke(*args, *(["--model-repository", str(repository)] if repository else []))
    assert result.exit_code == 0, result.output
    return db


# --- an imported Model Analyzer checkpoint -----------------------------------------------------------------------
@pytest.mark.parametrize("name", ["single-model-ckpt", "request-rate-ckpt"])
def test_export_of_an_imported_checkpoint_is_model_analyzers(name: str, tmp_path: Path) -> None:
    db = imported(tmp_path, name)
    before = db.read_bytes()
    out = tmp_path / "out"
    paths = written(export("--results-db", str(db), "-e", str(out)))
    assert [p.name for p in paths] == ["metrics-server-only.csv", "metrics-model-inference.csv",
                                       "metrics-model-gpu.csv", "result_summary.html", "best_config.json",
                                       "config.pbtxt"]
    for csv_name in CSV_FILES:
        golden = ORACLES / name / f"golden-{csv_name}"
        assert (out / "results" / csv_name).read_bytes() == golden.read_bytes(), f"{csv_name} differs from {golden}"
    expected = json.loads((ORACLES / name / "ma-summary" / "summary.json").read_text())["reports"]["add_sub"]
    summary = html_text(out / "reports" / "summaries" / "add_sub" / "result_summary.html")
    assert re.sub(r"<[^>]+>", "", expected["summary_sentence"].split("<UL>")[0]) in summary
    table = summary.split("The following table summarizes")[1].split("Search statistics")[0]
    assert re.findall(r"Constraints|(add_sub_config_\w+?)\d+(?:Disabled|Enabled)", table)[1:] == [
        row[0] for row in expected["table_rows"]]  # MA's table order
    best = json.loads((out / "best_configs" / "add_sub" / "best_config.json").read_text())
    assert best["variant"] == expected["best_config"] and best["run_status"] == "imported"
    assert db.read_bytes() == before  # read-only


def test_output_formats_and_models_choose_what_is_written(tmp_path: Path) -> None:
    db = imported(tmp_path, "single-model-ckpt")
    csv_only = written(export("--results-db", str(db), "-e", str(tmp_path / "a"), "-o", "csv", "--model", "add_sub"))
    assert [p.name for p in csv_only] == ["metrics-server-only.csv", "metrics-model-inference.csv",
                                          "metrics-model-gpu.csv", "best_config.json", "config.pbtxt"]
    pdf_only = written(export("--results-db", str(db), "-e", str(tmp_path / "b"), "-o", "pdf"))
    assert [p.name for p in pdf_only] == ["result_summary.html", "best_config.json", "config.pbtxt"]


def test_export_path_defaults_to_the_current_directory_for_an_import(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    db = imported(tmp_path, "single-model-ckpt")
    monkeypatch.chdir(tmp_path)
    written(export("--results-db", str(db), "-o", "csv"))
    assert (tmp_path / "results" / "metrics-model-inference.csv").is_file()


# --- a short real profile (replayed from the imported checkpoint: no server) --------------------------------------
PROFILE_CONFIG = {
    "profile_models": {"add_sub": {"constraints": {"perf_latency_p99": {"max": 0.6}}}},
    "inference_output_fields": ["model_name", "batch_size", "concurrency", "model_config_path",
                                "satisfies_constraints", "perf_throughput", "perf_latency_p99"],
    "num_configs_per_model": 2,
}


@pytest.fixture
def profiled(tmp_path: Path) -> Path:
    """The export path of a replayed profile of add_sub with a latency constraint and its own CSV fields."""
    repo, out = tmp_path / "repo", tmp_path / "profile"
    recorded = imported(tmp_path, "single-model-ckpt", repo)
    config = tmp_path / "profile.yaml"
    config.write_text(yaml.safe_dump(PROFILE_CONFIG))
    result = invoke("profile", "-f", str(config), "-m", str(repo), "--triton-launch-mode", "replay",
                    "--replay-results-db", str(recorded), "-e", str(out), "--output-model-repository-path",
                    str(tmp_path / "omr"), "-b", "1,2", "-c", "1,2", "--run-config-search-max-concurrency", "2",
                    "--run-config-search-max-instance-count", "2", "--run-config-search-max-model-batch-size", "2",
                    "--skip-summary-reports", "--skip-detailed-reports")
    assert result.exit_code == 0, result.output
    return out


def test_export_of_a_profile_uses_its_stored_settings(profiled: Path, tmp_path: Path) -> None:
    db = profiled / "results.db"
    before = db.read_bytes()
    out = tmp_path / "exported"
    paths = written(export("--results-db", str(db), "-e", str(out)))
    assert out / "reports" / "summaries" / "add_sub" / "result_summary.html" in paths  # the profile skipped it
    tables = sorted(p.name for p in (profiled / "results").iterdir())
    assert tables == ["metrics-model-gpu.csv", "metrics-model-inference.csv"]  # a replay samples no idle server
    assert sorted(p.name for p in (out / "results").iterdir()) == tables
    for csv_name in tables:  # the profile's own tables, its fields and constraint included
        assert (out / "results" / csv_name).read_bytes() == (profiled / "results" / csv_name).read_bytes()
    header = (out / "results" / "metrics-model-inference.csv").read_text().splitlines()[0]
    assert header == "Model,Batch,Concurrency,Model Config Path,Satisfies Constraints,Throughput (infer/sec),p99 Latency (ms)"
    summary = html_text(out / "reports" / "summaries" / "add_sub" / "result_summary.html")
    assert "Constraint targets: Max p99 Latency: 0.6 ms" in summary
    assert "Curves corresponding to the 2 best" in summary  # num_configs_per_model from the profile
    assert json.loads((out / "best_configs" / "add_sub" / "best_config.json").read_text()) == json.loads(
        (profiled / "best_configs" / "add_sub" / "best_config.json").read_text())
    assert db.read_bytes() == before


def test_flags_win_over_the_stored_config(profiled: Path, tmp_path: Path) -> None:
    db = profiled / "results.db"
    (profiled / "results" / "metrics-model-inference.csv").unlink()
    written(export("--results-db", str(db), "-o", "csv"))  # the stored export path, which exists here
    assert (profiled / "results" / "metrics-model-inference.csv").is_file()
    written(export("--results-db", str(db), "-e", str(tmp_path / "other"), "--num-configs-per-model", "1"))
    summary = html_text(tmp_path / "other" / "reports" / "summaries" / "add_sub" / "result_summary.html")
    assert "Curves corresponding to the 1 best" in summary
    result = export("--results-db", str(db), "-e", str(tmp_path / "x"), "--ranker", "nope")
    assert result.exit_code == 2 and result.output.startswith("error: ranker: unknown ranker 'nope'")


# --- one-line errors ------------------------------------------------------------------------------------------------
def one_line_error(result: Result) -> str:
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1 and result.output.startswith("error: "), result.output
    return result.output


def test_missing_db(tmp_path: Path) -> None:
    out = one_line_error(export("--results-db", str(tmp_path / "none.db"), "-e", str(tmp_path)))
    assert "does not exist" in out and "import-ma-checkpoint" in out


def test_files_that_are_no_results_db_are_refused_untouched(tmp_path: Path) -> None:
    text = tmp_path / "text.db"
    text.write_text("not a database at all\n" * 50)
    assert "is not a modelyzer results DB (file is not a database)" in one_line_error(
        export("--results-db", str(text), "-e", str(tmp_path)))
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("create table t (x)")
    conn.commit()
    conn.close()
    before = other.read_bytes()
    assert "is not a modelyzer results DB (no modelyzer tables in it)" in one_line_error(
        export("--results-db", str(other), "-e", str(tmp_path)))
    assert other.read_bytes() == before


def test_db_without_a_run(tmp_path: Path) -> None:
    Store(tmp_path / "empty.db").close()
    assert "holds no run" in one_line_error(export("--results-db", str(tmp_path / "empty.db"), "-e", str(tmp_path)))
    assert not (tmp_path / "results").exists()


def test_unknown_model_names_the_known_ones(tmp_path: Path) -> None:
    db = imported(tmp_path, "single-model-ckpt")
    out = one_line_error(export("--results-db", str(db), "-e", str(tmp_path / "o"), "--model", "add_sub,mul"))
    assert out == "error: --model: unknown model 'mul'; the results DB has add_sub\n"
    assert not (tmp_path / "o").exists()


def test_unknown_output_format(tmp_path: Path) -> None:
    db = imported(tmp_path, "single-model-ckpt")
    out = one_line_error(export("--results-db", str(db), "-e", str(tmp_path / "o"), "-o", "csv,docx"))
    assert out == "error: output_formats: unknown format 'docx'; choose from csv, pdf\n"
