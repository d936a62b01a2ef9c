"""End to end on real parts: `modelyzer profile` of the quick-start model on MLServer, where the automatic (quick)
search measures ONNX Runtime and OpenVINO variants (the `accelerator` dimension the mlserver launcher's
`cpu_accelerators` capability brings), the `openvino` collector records the compiled models' properties, and the
variants are ranked together. Small: one instance, max batch size 1, concurrency 2, four measurements.
"""

from __future__ import annotations

import importlib.util
import json
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.conftest import QUICK_START, ROOT, modelyzer_cmd, real_server_available

pytestmark = [pytest.mark.integration]


@pytest.fixture(autouse=True)
def _need_real_server() -> None:
    reason = real_server_available()
    if reason:
        pytest.skip(reason)
    if subprocess.run([str(ROOT / ".venv-mlserver/bin/python"), "-c", "import openvino"],
                      capture_output=True).returncode:
        pytest.skip("openvino is not installed in .venv-mlserver (run .ci/setup)")


def test_quick_search_measures_and_ranks_onnxruntime_and_openvino_variants(tmp_path: Path) -> None:
    export = tmp_path / "out"
    cmd = [
        *modelyzer_cmd(), "profile", "-f", str(QUICK_START / "config.yaml"),
        "--model-repository", str(QUICK_START / "model_repository"),
        "--export-path", str(export), "--output-model-repository-path", str(export / "output_model_repository"),
        "--run-config-search-mode", "quick",
        "--run-config-search-max-instance-count", "1", "--run-config-search-max-model-batch-size", "1",
        "--run-config-search-max-concurrency", "2",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Top configurations for add_sub" in proc.stdout

    conn = sqlite3.connect(export / "results.db")
    try:
        variants = {name: json.loads(config) for name, config in conn.execute("select name, config from variants")}
        rows = conn.execute(
            "select rc.variant, m.status, mv.tag, mv.value from measurements m "
            "join run_configs rc on rc.key = m.run_config_key "
            "left join metric_values mv on mv.measurement_id = m.id "
            "and (mv.tag like 'openvino%' or mv.tag like 'layer_time/%')"
        ).fetchall()
    finally:
        conn.close()

    def accelerator(config: dict[str, object]) -> str:
        entries = (((config.get("optimization") or {}).get("execution_accelerators") or {})  # type: ignore[union-attr]
                   .get("cpu_execution_accelerator") or [])
        return " ".join([entries[0]["name"], *entries[0]["parameters"].values()]) if entries else "none"

    by_accelerator = {accelerator(c): name for name, c in variants.items()}
    assert {"none", "openvino LATENCY", "openvino THROUGHPUT"} <= set(by_accelerator)
    assert all(status == "ok" for _, status, _, _ in rows)
    openvino_tags: dict[str, dict[str, float]] = {}
    for variant, _status, tag, value in rows:
        if tag is not None:
            openvino_tags.setdefault(variant, {})[tag] = value
    latency, throughput = by_accelerator["openvino LATENCY"], by_accelerator["openvino THROUGHPUT"]
    assert set(openvino_tags) == {latency, throughput}  # ONNX Runtime variants get no openvino metrics
    assert openvino_tags[latency]["openvino_streams"] == 1.0
    assert openvino_tags[throughput]["openvino_streams"] >= 1.0
    assert any(t.startswith("layer_time/") for t in openvino_tags[latency])
    # ranked together: the summary table lists variants of both runtimes
    table = proc.stdout.split("Top configurations for add_sub", 1)[1]
    ranked = {name for name in variants if name in table}
    assert ranked & {latency, throughput} and ranked - {latency, throughput}
    assert "accelerator" in table and ("openvino THROUGHPUT" in table or "openvino LATENCY" in table)
    # the detailed report of a ranked OpenVINO variant shows its per-layer time
    shown = sorted(ranked & {latency, throughput})[0]
    html = (export / "reports" / "detailed" / shown / "detailed_report.html").read_text()
    assert "Per-layer time" in html and "Time per Inference (ms)" in html
    if importlib.util.find_spec("modelyzer_model_tools") and importlib.util.find_spec("polygraphy"):
        assert "accuracy of openvino" in proc.stderr  # the accuracy guard compared the runtimes
    else:
        assert "served without comparing their outputs to ONNX Runtime" in proc.stderr
