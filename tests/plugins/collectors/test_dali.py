"""The `dali` collector: request bytes from perf_analyzer input data, which steps decode, when it runs, and a real
profile of examples/triton-cpu/dali (JPEG bytes through a DALI CPU step vs decoded tensors) on the real Triton."""

from __future__ import annotations

import base64
import csv
import json
from pathlib import Path

import pytest

from modelyzer.kernel.interfaces import RunContext
from modelyzer.kernel.store import Store
from modelyzer.plugins.collectors.dali import DaliCollector, data_files, decodes, request_bytes, tensor_bytes
from modelyzer.plugins.setup_tools import setup_tool
from tests.conftest import PERF_ANALYZER, ROOT
from tests.support.configs import profile_config
from tests.support.triton_profile import profile_on_triton

EXAMPLE = ROOT / "examples" / "triton-cpu" / "dali"


def test_tensor_bytes_of_b64_content_and_strings() -> None:
    assert tensor_bytes({"b64": base64.b64encode(b"x" * 1234).decode(), "shape": [1234]}, "UINT8") == 1234
    assert tensor_bytes({"content": [[1.0, 2.0], [3.0, 4.0]], "shape": [2, 2]}, "FP32") == 16
    assert tensor_bytes([1, 2, 3], "INT64") == 24
    assert tensor_bytes(["ab", "c"], "BYTES") == 2 + 4 + 1 + 4


def test_request_bytes_is_the_mean_over_entries() -> None:
    data = {"data": [{"A": [1.0] * 4, "B": {"b64": base64.b64encode(b"abc").decode()}}, {"A": [1.0] * 2, "B": []}]}
    assert request_bytes(data, {"A": "FP32", "B": "UINT8"}) == ((16 + 3) + 8) / 2
    assert request_bytes({"data": []}, {}) is None


def test_a_step_decodes_when_it_takes_encoded_bytes_and_returns_tensors() -> None:
    jpeg = {"name": "JPEG", "data_type": "TYPE_UINT8", "dims": ["-1"]}
    image = {"name": "IMAGE", "data_type": "TYPE_FP32", "dims": ["3", "64", "64"]}
    assert decodes({"backend": "python", "input": [jpeg], "output": [image]})
    assert decodes({"backend": "dali"})
    assert not decodes({"backend": "python", "input": [image], "output": [image]})
    assert not decodes({"backend": "python", "input": [jpeg], "output": [jpeg]})  # passes bytes through


def test_data_files_resolve_against_the_config_directory(tmp_path: Path) -> None:
    (tmp_path / "in.json").write_text("{}")
    assert data_files({"input-data": ["random", "in.json"]}, tmp_path) == [tmp_path / "in.json"]
    assert data_files({}, tmp_path) == [] and data_files({"input-data": "zero"}, tmp_path) == []


def test_its_metrics_are_shown_in_reports_when_collected() -> None:
    from modelyzer.kernel import metrics

    assert {"request_bytes", "preprocess_share"} <= set(metrics.shown_tags())
    assert "perf_throughput" not in metrics.shown_tags()


def test_it_runs_only_with_real_input_data(tmp_path: Path) -> None:
    context = RunContext(export_path=tmp_path, output_model_repository=tmp_path / "omr")
    assert not DaliCollector(profile_config(), context).enabled()
    assert DaliCollector(profile_config(perf_analyzer_flags={"input-data": "in.json"}), context).enabled()


@pytest.mark.integration
@pytest.mark.skipif(setup_tool("tritonserver") is None or not PERF_ANALYZER.exists(),
                    reason="tritonserver/perf_analyzer missing; run .ci/setup")
@pytest.mark.skipif(not (EXAMPLE / "data" / "jpeg_input.json").is_file(),
                    reason="DALI not installed (the example's data is made by .ci/setup.d/dali.sh)")
def test_jpeg_through_a_dali_step_vs_decoded_tensors_on_the_real_triton(tmp_path: Path) -> None:
    """Both models profiled one after the other (tiny search): the ensemble's DALI step ran on the server and takes
    a share of its time, the JPEG request is far smaller than the decoded tensor, both are ranked, and the CSV
    carries the comparison."""
    data = EXAMPLE / "data"
    _, export = profile_on_triton(
        tmp_path, model_repository=str(EXAMPLE / "model_repository"),
        profile_models={
            "classifier": {"perf_analyzer_flags": {"input-data": str(data / "tensor_input.json")}},
            "ensemble_dali_classifier": {"perf_analyzer_flags": {"input-data": str(data / "jpeg_input.json")}},
        },
        run_config_search_max_model_batch_size=1, run_config_search_max_instance_count=1,
        run_config_search_max_concurrency=1)
    store = Store.open_existing(export / "results.db")
    try:
        plain, dali = store.results("classifier"), store.results("ensemble_dali_classifier")
    finally:
        store.close()
    assert plain and dali and all(r.measurement.ok for r in plain + dali)
    jpeg_sizes = [len(base64.b64decode(e["JPEG"]["b64"])) for e in json.loads((data / "jpeg_input.json").read_text())["data"]]
    for r in dali:
        values = r.measurement.values()
        assert values["request_bytes"] == pytest.approx(sum(jpeg_sizes) / len(jpeg_sizes))
        assert 0 < values["preprocess_share"] == pytest.approx(values["step_share/dali_preprocess"])
    for r in plain:
        values = r.measurement.values()
        assert values["request_bytes"] == 3 * 64 * 64 * 4 and values["preprocess_share"] == 0.0
    assert "successfully loaded 'dali_preprocess'" in (export / "tritonserver.log").read_text()
    rows = list(csv.DictReader((export / "results" / "metrics-model-inference.csv").open()))
    models = {row["Model"] for row in rows}
    assert {"classifier", "ensemble_dali_classifier"} <= models, models
    assert all(row["Request Bytes (B)"] and row["Preprocessing Share (%)"] for row in rows)
    for model in ("classifier", "ensemble_dali_classifier"):  # each summary sets the two models side by side
        summary = (export / "reports" / "summaries" / model / "result_summary.html").read_text()
        side = summary.split("Models side by side", 1)[1].split("</table>", 1)[0]
        assert "classifier" in side and "ensemble_dali_classifier" in side and "Request Bytes (B)" in side
        assert f"{3 * 64 * 64 * 4}" in side
        assert (export / "best_configs" / model / "config.pbtxt").is_file() or (
            export / "best_configs" / model / "best_config.json").is_file()
