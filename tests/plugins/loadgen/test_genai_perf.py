"""The `genai_perf` load generator: its command lines, reading genai-perf 0.0.16's real exports, its one-line
errors, and real measurements of a real token stream (`transformers serve`, tiny Llama; skipped when absent)."""

from __future__ import annotations

import json
from pathlib import Path

import attrs
import pytest

from modelyzer.kernel import assembly
from modelyzer.kernel.errors import ConfigError, LoadGeneratorError
from modelyzer.kernel.metrics import get
from modelyzer.kernel.models import Endpoints
from modelyzer.plugins.loadgen.genai_perf import GenaiPerfLoadGenerator, window_seconds
from modelyzer.plugins.loadgen.llm_common import token_metrics, tool_error_line
from tests.plugins.loadgen.llm_support import (
    DATA,
    GENAI_PERF,
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

EXPORTS = DATA / "genai_perf"
needs_tool = pytest.mark.skipif(not GENAI_PERF.exists(), reason=f"genai-perf missing; run `{SETUP}`")


@pytest.fixture
def fake_binary(tmp_path: Path) -> str:
    return fake_tool(tmp_path, "genai-perf")


def generator(tmp_path: Path, binary: str, **values: object) -> GenaiPerfLoadGenerator:
    return GenaiPerfLoadGenerator(llm_config(genai_perf_path=binary, **values), context(tmp_path))


def test_openai_chat_command_line(tmp_path: Path, fake_binary: str) -> None:
    lg = generator(tmp_path, fake_binary, llm_input_tokens=100, llm_output_tokens=20, llm_request_count=12)
    argv = lg.command(run_config(4), openai_endpoints())
    assert argv == [
        fake_binary, "profile", "--model", "tiny_llama", "--endpoint-type", "chat", "--streaming",
        "--url", "http://127.0.0.1:8000", "--tokenizer", str(REPO / "tiny_llama"), "--request-count", "12",
        "--synthetic-input-tokens-mean", "100", "--synthetic-input-tokens-stddev", "0", "--output-tokens-mean", "20",
        "--random-seed", "0", "--artifact-dir", "<genai-perf-artifacts>", "--profile-export-file",
        "profile_export.json", "--extra-inputs", "max_tokens:20", "--concurrency", "4"]


def test_triton_generate_stream_rate_and_duration(tmp_path: Path, fake_binary: str) -> None:
    lg = generator(tmp_path, fake_binary, llm_measurement_seconds=6)
    argv = lg.command(run_config(request_rate=8), triton_endpoints())
    joined = " ".join(argv)
    assert "--endpoint-type generate --endpoint v2/models/tiny_llama/generate_stream --streaming" in joined
    assert "--measurement-interval 2000" in joined  # genai-perf measures three intervals
    assert argv[-2:] == ["--request-rate", "8"] and "--concurrency" not in argv


def test_user_flags_win_and_ma_names_are_translated(tmp_path: Path, fake_binary: str) -> None:
    flags = {"input-tokens-mean": 64, "measurement-interval": 500, "extra-inputs": "temperature:0",
             "service-kind": "openai"}
    lg = generator(tmp_path, fake_binary, genai_perf_flags=flags)
    argv = lg.command(run_config(1), openai_endpoints())
    joined = " ".join(argv)
    assert "--synthetic-input-tokens-mean 64" in joined and "--synthetic-input-tokens-mean 128" not in joined
    assert "--measurement-interval 500" in joined and "--request-count" not in joined
    assert "--extra-inputs max_tokens:64 --extra-inputs temperature:0" in joined
    assert "service-kind" not in joined


def test_missing_binary_names_the_key_and_the_setup(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^genai_perf_path: .* not an executable file; .*llm-loadgens\.sh"):
        generator(tmp_path, str(tmp_path / "nowhere" / "genai-perf"))
    with pytest.raises(ConfigError, match=r"^genai_perf_path: 'no-such-genai-perf' is not installed"):
        generator(tmp_path, "no-such-genai-perf")


def test_missing_tokenizer_names_the_key(tmp_path: Path, fake_binary: str) -> None:
    with pytest.raises(ConfigError, match=r"^tokenizer: .* is not a directory holding tokenizer files"):
        generator(tmp_path, fake_binary, tokenizer=tmp_path / "absent")
    bare = tmp_path / "repo" / "tiny_llama"
    bare.mkdir(parents=True)
    with pytest.raises(ConfigError, match=r"^tokenizer: not set and .* holds no tokenizer files"):
        generator(tmp_path, fake_binary, model_repository=bare.parent)


def test_bad_flag_is_refused_by_the_whitelist() -> None:
    with pytest.raises(ConfigError, match=r"genai_perf_flags\.warmup-request-count.*not an accepted flag"):
        llm_config(genai_perf_flags={"warmup-request-count": 1})


def test_real_export_becomes_metrics_in_registry_units() -> None:
    export = json.loads((EXPORTS / "profile_export_genai_perf.json").read_text())
    assert export["time_to_first_token"]["unit"] == "ms" and export["request_throughput"]["unit"] == "requests/sec"
    v = {m.tag: m.value for m in token_metrics(export, "genai-perf")}
    assert v["time_to_first_token_avg"] == pytest.approx(export["time_to_first_token"]["avg"])  # ms stays ms
    assert v["inter_token_latency_p99"] == pytest.approx(export["inter_token_latency"]["p99"])
    assert v["request_latency_p25"] == pytest.approx(export["request_latency"]["p25"])
    assert v["output_token_throughput"] == pytest.approx(export["output_token_throughput"]["avg"])
    assert v["output_token_throughput_per_request"] == pytest.approx(export["output_token_throughput_per_user"]["avg"])
    assert v["perf_latency_p99"] == v["request_latency_p99"] and v["perf_throughput"] == v["request_throughput"]
    assert set(v) <= set(GenaiPerfLoadGenerator.produces)
    assert all(get(tag) is not None for tag in v), [t for t in v if get(t) is None]
    check_token_stream(token_metrics(export, "genai-perf"))


def test_nanoseconds_become_milliseconds() -> None:
    export = {"time_to_first_token": {"unit": "ns", "avg": 2_500_000.0},
              "inter_token_latency": {"unit": "ns", "avg": 1_000_000.0}}
    v = {m.tag: m.value for m in token_metrics(export, "genai-perf")}
    assert v == {"time_to_first_token_avg": 2.5, "inter_token_latency_avg": 1.0}


def test_window_is_first_request_to_last_response() -> None:
    seconds = window_seconds(EXPORTS / "profile_export.json")
    export = json.loads((EXPORTS / "profile_export_genai_perf.json").read_text())
    assert seconds == pytest.approx(export["request_count"]["avg"] / export["request_throughput"]["avg"], rel=0.01)


def test_an_endpoint_that_does_not_stream_is_one_line() -> None:
    export = json.loads((EXPORTS / "no_streaming_profile_export_genai_perf.json").read_text())
    with pytest.raises(LoadGeneratorError, match=r"^the endpoint does not stream tokens: genai-perf measured no"):
        token_metrics(export, "genai-perf")


def test_error_line_is_perf_analyzers_own() -> None:
    output = (EXPORTS / "server_down_output.txt").read_text()
    assert tool_error_line(output) == "Thread [0] had error: OpenAI response returns HTTP code 400"


def test_default_when_installed_is_genai_perf() -> None:
    entry = assembly.load_generator_entry(llm_config())
    assert entry.name == "genai_perf"
    assert assembly.load_generator_entry(llm_config(load_generator="aiperf")).name == "aiperf"


# ---- real runs against the real target ------------------------------------------------------------------

@needs_tool
def test_real_measurement_of_a_token_stream(tmp_path: Path, llm_target: Endpoints) -> None:
    lg = GenaiPerfLoadGenerator(llm_config(**REAL_WORKLOAD), context(tmp_path))
    v = check_token_stream(lg.measure(run_config(2), llm_target))
    assert v["input_sequence_length_avg"] == 32
    assert v["output_sequence_length_avg"] >= 12  # 16 generated, re-tokenized by the tool
    assert lg.last_window_seconds is not None and 0 < lg.last_window_seconds < 30
    assert not list((tmp_path / "export").glob(".genai-perf-*"))  # artifacts are cleaned up
    print(f"genai-perf real: {v} window {lg.last_window_seconds:.3f} s")


@needs_tool
def test_real_failure_carries_the_tools_error(tmp_path: Path, llm_target: Endpoints) -> None:
    lg = GenaiPerfLoadGenerator(llm_config(**REAL_WORKLOAD), context(tmp_path))
    closed = Endpoints(http="127.0.0.1:9", api="openai", model_name=llm_target.model_name)
    with pytest.raises(LoadGeneratorError, match=r"genai-perf failed \(exit 1\): Thread \[0\] had error"):
        lg.measure(run_config(1), closed)
    assert "genai-perf profile" in (tmp_path / "export" / "llm_loadgen_error.log").read_text()


def test_token_length_lists_are_workloads_and_each_measurement_uses_its_own(tmp_path: Path, fake_binary: str) -> None:
    config = llm_config(genai_perf_path=fake_binary, llm_input_tokens=[32, 256], llm_output_tokens=16)
    workloads = GenaiPerfLoadGenerator.workloads(config)
    assert workloads == [{"llm_input_tokens": 32, "llm_output_tokens": 16},
                         {"llm_input_tokens": 256, "llm_output_tokens": 16}]
    assert assembly.workloads(config) == workloads  # what the kernel measures every RunConfig under
    lg = GenaiPerfLoadGenerator(config, context(tmp_path))
    rc = run_config(2)
    argv = lg.command(attrs.evolve(rc, load=attrs.evolve(rc.load, workload=workloads[1])), openai_endpoints())
    assert argv[argv.index("--synthetic-input-tokens-mean") + 1] == "256"
    assert argv[argv.index("--output-tokens-mean") + 1] == "16" and "max_tokens:16" in argv
    with pytest.raises(ConfigError, match="llm_input_tokens: must be at least 1"):
        GenaiPerfLoadGenerator(llm_config(genai_perf_path=fake_binary, llm_input_tokens=[8, 0]), context(tmp_path))
