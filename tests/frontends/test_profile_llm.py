"""End to end for LLMs on real parts: `modelyzer profile --model-type LLM` against the tiny Llama that
`transformers serve` streams on this CPU (the contrib transformers_serve launcher), measured by the real genai-perf
and by the real AIPerf, through the CLI: the ranked table with token columns, the CSV, best_config.json and the
summary report. Short workloads (8 requests of ≤16 tokens) keep each profile to a few seconds of load.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelyzer.kernel.store import Store
from tests.conftest import modelyzer_cmd
from tests.plugins.loadgen.llm_support import AIPERF, GENAI_PERF, MODEL, REAL_WORKLOAD, REPO, target_missing

pytestmark = [pytest.mark.integration]


def profile(tmp_path: Path, load_generator: str, concurrency: list[int], **keys: Any) -> Path:
    """Run the profile through the CLI; returns its export directory."""
    missing = target_missing()
    if missing:
        pytest.skip(missing)
    if not (GENAI_PERF if load_generator == "genai_perf" else AIPERF).exists():
        pytest.skip(f"no {load_generator}: run `bash .ci/setup.d/llm-loadgens.sh`")
    import subprocess

    export = tmp_path / "out"
    config: dict[str, Any] = {
        "model_repository": str(REPO), "triton_launch_mode": "transformers_serve", "model_type": "LLM",
        "load_generator": load_generator, "export_path": str(export),
        "output_model_repository_path": str(export / "omr"),
        "profile_models": {MODEL: {"parameters": {"concurrency": concurrency}}},
        "constraints": {"time_to_first_token_p99": {"max": 60000}},
        "skip_detailed_reports": True, **REAL_WORKLOAD, **keys,
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    proc = subprocess.run([*modelyzer_cmd(), "profile", "-f", str(path)], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    header = next(line for line in proc.stdout.splitlines() if line.startswith("rank"))
    assert "tokens/s" in header and "TTFT p99 ms" in header and "ITL p99 ms" in header
    return export


def token_values(export: Path) -> dict[int, dict[str, float]]:
    """Each measurement's values by concurrency, checked for what holds for real token streams."""
    store = Store.open_existing(export / "results.db")
    try:
        results = store.results(MODEL)
    finally:
        store.close()
    out = {}
    for result in results:
        assert result.measurement.ok, result.measurement.error
        v = result.measurement.values()
        ttft, itl, latency = v["time_to_first_token_avg"], v["inter_token_latency_avg"], v["request_latency_avg"]
        osl = v["output_sequence_length_avg"]
        assert 0 < ttft < latency and osl > 1
        # per request latency = TTFT + ITL × (OSL − 1); of the averages only roughly (ITL and OSL vary together, and
        # a 2-core host under load stretches single requests): 15% was exceeded once (15.1%) in a clean CI run
        assert abs(ttft + itl * (osl - 1) - latency) <= 0.25 * latency, v
        assert abs(v["output_token_throughput"] - v["request_throughput"] * osl) <= 0.10 * v["output_token_throughput"]
        out[int(result.run_config.load.concurrency or 0)] = v
    return out


def test_a_genai_perf_profile_ranks_by_tokens_and_reports_them(tmp_path: Path) -> None:
    export = profile(tmp_path, "genai_perf", [1, 4])
    values = token_values(export)
    assert sorted(values) == [1, 4]
    # one generation at a time on this server: four concurrent requests wait for each other's tokens
    assert values[4]["time_to_first_token_avg"] > values[1]["time_to_first_token_avg"]
    with (export / "results" / "metrics-model-inference.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2 and {r["Instance Group"] for r in rows} == {"1:CPU"}
    for row in rows:
        assert float(row["Output Token Throughput (tokens/sec)"]) > 0
        assert 0 < float(row["Time To First Token (p99) (ms)"]) and 0 < float(row["Inter Token Latency (p99) (ms)"])
    best = json.loads((export / "best_configs" / MODEL / "best_config.json").read_text())
    assert best["objectives"] == [{"tag": "output_token_throughput", "weight": 10.0}]  # the LLM default
    assert best["metrics"]["output_token_throughput"] == max(v["output_token_throughput"] for v in values.values())
    assert best["constraints"][0]["tag"] == "time_to_first_token_p99" and best["constraints_met"] is True
    summary = (export / "reports" / "summaries" / MODEL / "result_summary.html").read_text()
    assert "Output Token Throughput (tokens/sec)" in summary and "Time To First Token (p99) (ms)" in summary
    assert "output tokens/sec" in summary  # the best config's bullet


def test_an_aiperf_profile_measures_each_workload_and_ranks_the_first(tmp_path: Path) -> None:
    """Two prompt lengths: both are measured and in the CSV; the search and the ranking use the first."""
    export = profile(tmp_path, "aiperf", [2], llm_input_tokens=[24, 96])
    store = Store.open_existing(export / "results.db")
    try:
        results = store.results(MODEL)
    finally:
        store.close()
    assert sorted(r.run_config.load.workload["llm_input_tokens"] for r in results) == [24, 96]
    lengths = {r.run_config.load.workload["llm_input_tokens"]: r.measurement.values()["input_sequence_length_avg"]
               for r in results}
    assert lengths[24] < lengths[96]  # the tool's own count of the prompts it sent
    token_values(export)  # both are real token streams
    with (export / "results" / "metrics-model-inference.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert sorted(float(r["Input Sequence Length (avg) (tokens)"]) for r in rows) == sorted(lengths.values())
    best = json.loads((export / "best_configs" / MODEL / "best_config.json").read_text())
    assert best["metrics"]["input_sequence_length_avg"] == lengths[24]  # ranked at the first workload
