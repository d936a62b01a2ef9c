"""The `aiperf` load generator: its command lines, reading AIPerf 0.13's real exports, its one-line errors, and
real measurements of a real token stream (`transformers serve`, tiny Llama; skipped when absent)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from modelyzer.kernel.errors import ConfigError, LoadGeneratorError
from modelyzer.kernel.metrics import get
from modelyzer.kernel.models import Endpoints
from modelyzer.plugins.loadgen.aiperf import KSERVE_TEMPLATE, TEMPLATE_NAME, AiperfLoadGenerator
from modelyzer.plugins.loadgen.llm_common import token_metrics, tool_error_line
from tests.plugins.loadgen.llm_support import (
    AIPERF,
    DATA,
    REAL_WORKLOAD,
    REPO,
    SETUP,
    check_token_stream,
    context,
    fake_tool,
    llm_config,
    openai_endpoints,
    run_config,
    triton_endpoints,
)

EXPORTS = DATA / "aiperf"
needs_tool = pytest.mark.skipif(not AIPERF.exists(), reason=f"aiperf missing; run `{SETUP}`")


@pytest.fixture
def fake_binary(tmp_path: Path) -> str:
    return fake_tool(tmp_path, "aiperf")


def generator(tmp_path: Path, binary: str, **values: object) -> AiperfLoadGenerator:
    return AiperfLoadGenerator(llm_config(aiperf_path=binary, **values), context(tmp_path))


def test_openai_chat_command_line(tmp_path: Path, fake_binary: str) -> None:
    lg = generator(tmp_path, fake_binary, llm_input_tokens=100, llm_output_tokens=20, llm_request_count=12)
    argv = lg.command(run_config(4), openai_endpoints())
    assert argv == [
        fake_binary, "profile", "--model", "tiny_llama", "--endpoint-type", "chat", "--streaming",
        "--url", "http://127.0.0.1:8000", "--tokenizer", str(REPO / "tiny_llama"), "--request-count", "12",
        "--prompt-input-tokens-mean", "100", "--prompt-input-tokens-stddev", "0", "--prompt-output-tokens-mean",
        "20", "--random-seed", "0", "--ui-type", "none", "--no-server-metrics", "--no-gpu-telemetry",
        "--output-artifact-dir", "<aiperf-artifacts>", "--extra-inputs", "max_tokens:20", "--concurrency", "4"]


def test_triton_template_rate_and_duration(tmp_path: Path, fake_binary: str) -> None:
    lg = generator(tmp_path, fake_binary, llm_measurement_seconds=6)
    artifacts = tmp_path / "run" / "artifacts"
    argv = lg.arguments(run_config(request_rate=8), triton_endpoints(), artifacts)
    joined = " ".join(argv)
    assert "--endpoint-type template --custom-endpoint /v2/models/tiny_llama/generate_stream --streaming" in joined
    assert f"--extra-inputs payload_template:{artifacts.parent / TEMPLATE_NAME}" in joined
    assert "--extra-inputs response_field:text_output" in joined
    assert "--benchmark-duration 6.0" in joined and "--request-count" not in joined
    assert argv[-2:] == ["--request-rate", "8"]
    (tmp_path / "run").mkdir()
    lg.prepare(triton_endpoints(), artifacts)
    assert (tmp_path / "run" / TEMPLATE_NAME).read_text().strip() == KSERVE_TEMPLATE


def test_aiperf_flags_are_whitelisted_and_win(tmp_path: Path, fake_binary: str) -> None:
    lg = generator(tmp_path, fake_binary, aiperf_flags={"benchmark-duration": 3, "extra-inputs": ["top_p:1"]})
    joined = " ".join(lg.command(run_config(1), openai_endpoints()))
    assert "--benchmark-duration 3" in joined and "--request-count" not in joined
    assert "--extra-inputs max_tokens:64 --extra-inputs top_p:1" in joined
    with pytest.raises(ConfigError, match=r"aiperf_flags\.ui-typo.* not an accepted flag of aiperf"):
        llm_config(aiperf_flags={"ui-typo": "x"})


def test_hf_hub_offline_is_not_passed_on(tmp_path: Path, fake_binary: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    env = generator(tmp_path, fake_binary).env(openai_endpoints())
    assert "HF_HUB_OFFLINE" not in env and env["PATH"] == os.environ["PATH"]


def test_missing_binary_names_the_key_and_the_setup(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^aiperf_path: .* not an executable file; .*llm-loadgens\.sh"):
        generator(tmp_path, str(tmp_path / "aiperf-absent" / "aiperf"))


def test_missing_tokenizer_names_the_key(tmp_path: Path, fake_binary: str) -> None:
    with pytest.raises(ConfigError, match=r"^tokenizer: "):
        generator(tmp_path, fake_binary, tokenizer=tmp_path)


def test_real_export_becomes_metrics_in_registry_units() -> None:
    export = json.loads((EXPORTS / "profile_export_aiperf.json").read_text())
    assert export["aiperf_version"] == "0.13.0"
    assert export["inter_token_latency"]["unit"] == "ms" and export["benchmark_duration"]["unit"] == "sec"
    metrics = token_metrics(export, "aiperf")
    v = {m.tag: m.value for m in metrics}
    assert v["time_to_first_token_p90"] == pytest.approx(export["time_to_first_token"]["p90"])
    assert v["request_latency_max"] == pytest.approx(export["request_latency"]["max"])
    assert v["request_throughput"] == pytest.approx(export["request_throughput"]["avg"])
    assert v["output_sequence_length_avg"] == pytest.approx(export["output_sequence_length"]["avg"])
    assert set(v) <= set(AiperfLoadGenerator.produces)
    assert all(get(tag) is not None for tag in v)
    check_token_stream(metrics)


def test_window_is_the_benchmark_duration(tmp_path: Path, fake_binary: str) -> None:
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    (artifacts / "profile_export_aiperf.json").write_text((EXPORTS / "profile_export_aiperf.json").read_text())
    _, seconds = generator(tmp_path, fake_binary).read_export(artifacts)
    assert seconds == pytest.approx(0.620777216)


def test_an_endpoint_that_does_not_stream_is_one_line() -> None:
    export = json.loads((EXPORTS / "no_streaming_profile_export_aiperf.json").read_text())
    with pytest.raises(LoadGeneratorError, match=r"^the endpoint does not stream tokens: aiperf measured no"):
        token_metrics(export, "aiperf")


def test_a_refused_setting_is_pydantics_reason_with_its_field() -> None:
    line = tool_error_line((EXPORTS / "config_error_output.txt").read_text())  # a custom endpoint with no slash
    assert line == "benchmark.endpoint: Value error, endpoint.path must start with a leading slash"


def test_error_line_is_aiperfs_own() -> None:
    line = tool_error_line((EXPORTS / "server_down_output.txt").read_text())
    assert line.startswith("All 4 inference request(s) failed; no successful responses were collected.")
    assert "ConnectionRefusedError" in line and "\n" not in line


# ---- real runs against the real target ------------------------------------------------------------------

@needs_tool
def test_real_measurement_of_a_token_stream(tmp_path: Path, llm_target: Endpoints) -> None:
    lg = AiperfLoadGenerator(llm_config(**REAL_WORKLOAD), context(tmp_path))
    v = check_token_stream(lg.measure(run_config(2), llm_target))
    assert v["input_sequence_length_avg"] == 32
    assert v["output_sequence_length_avg"] >= 12
    assert lg.last_window_seconds is not None and 0 < lg.last_window_seconds < 30
    print(f"aiperf real: {v} window {lg.last_window_seconds:.3f} s")


@needs_tool
def test_real_failure_carries_the_tools_error(tmp_path: Path, llm_target: Endpoints) -> None:
    lg = AiperfLoadGenerator(llm_config(**REAL_WORKLOAD), context(tmp_path))
    closed = Endpoints(http="127.0.0.1:9", api="openai", model_name=llm_target.model_name)
    with pytest.raises(LoadGeneratorError, match=r"aiperf failed \(exit 1\): All 8 inference request\(s\) failed"):
        lg.measure(run_config(1), closed)
