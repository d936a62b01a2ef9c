"""What the genai_perf and aiperf tests share: real configs, a context, RunConfigs, the recorded exports, and the
checks that hold for any real token stream.

The real target is `transformers serve` (.venv-llm) serving the tiny random-weight Llama made by
`bash .ci/setup.d/llm-target.sh`, started once per test session by the `transformers_serve` launcher
(`llm_target` fixture in conftest.py). The recorded exports in data/ come from real runs of genai-perf 0.0.16 and
AIPerf 0.13 against it (concurrency 2, 8 requests, 32 input tokens, max_tokens 16; the no_streaming ones without
`--streaming`; server_down_output.txt: the tools' output against a closed port).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelyzer.kernel.config import ProfileConfig
from modelyzer.kernel.interfaces import RunContext
from modelyzer.kernel.models import ConfigVariant, Endpoints, LoadSpec, Metric, RunConfig
from tests.support.configs import profile_config

ROOT = Path(__file__).resolve().parents[3]
DATA = Path(__file__).parent / "data"
REPO = ROOT / "examples" / "llm" / "model_repository"
MODEL = "tiny_llama"
LLM_CLI = ROOT / ".venv-llm" / "bin" / "transformers"
GENAI_PERF = ROOT / ".tools" / "bin" / "genai-perf"
AIPERF = ROOT / ".tools" / "bin" / "aiperf"
SETUP = "bash .ci/setup.d/llm-loadgens.sh"
VARIANT_CONFIG = {"name": MODEL, "backend": "transformers", "max_batch_size": 0}
#: the real runs' workload: short, so a test costs a few seconds
REAL_WORKLOAD = {"llm_input_tokens": 32, "llm_output_tokens": 16, "llm_request_count": 8}


def target_missing() -> str | None:
    """Why the real target cannot run here (None when it can)."""
    if not LLM_CLI.exists():
        return f"no {LLM_CLI.relative_to(ROOT)}: run `bash .ci/setup.d/llm-target.sh`"
    if not (REPO / MODEL / "tokenizer.json").is_file():
        return f"no {(REPO / MODEL).relative_to(ROOT)}: run `bash .ci/setup.d/llm-target.sh`"
    return None


def llm_config(**values: Any) -> ProfileConfig:
    values.setdefault("model_repository", REPO)
    values.setdefault("profile_models", MODEL)
    values.setdefault("model_type", "LLM")
    return profile_config(**values)


def context(tmp_path: Path) -> RunContext:
    return RunContext(export_path=tmp_path / "export", output_model_repository=tmp_path / "omr")


def run_config(concurrency: int | None = 2, request_rate: int | None = None) -> RunConfig:
    load = LoadSpec(concurrency=None if request_rate else concurrency, request_rate=request_rate)
    return RunConfig(model=MODEL, variant=ConfigVariant(MODEL, VARIANT_CONFIG, name=f"{MODEL}_config_default"),
                     load=load)


def openai_endpoints(http: str = "127.0.0.1:8000") -> Endpoints:
    return Endpoints(http=http, api="openai", model_name=MODEL)


def triton_endpoints() -> Endpoints:
    return Endpoints(http="127.0.0.1:8000", grpc="127.0.0.1:8001", api="kserve", model_name=MODEL)


def check_token_stream(metrics: list[Metric]) -> dict[str, float]:
    """What holds for real token streams; returns the values for further checks."""
    v = {m.tag: m.value for m in metrics}
    ttft, itl, latency = v["time_to_first_token_avg"], v["inter_token_latency_avg"], v["request_latency_avg"]
    osl = v["output_sequence_length_avg"]
    assert 0 < ttft < latency
    assert v["time_to_first_token_min"] <= v["time_to_first_token_p50"] <= v["time_to_first_token_max"]
    assert abs(ttft + itl * (osl - 1) - latency) <= 0.15 * latency, v
    assert abs(v["output_token_throughput"] - v["request_throughput"] * osl) <= 0.10 * v["output_token_throughput"]
    assert v["perf_throughput"] == v["request_throughput"]
    assert v["perf_latency_p99"] == v["request_latency_p99"]
    return v


__all__ = ["AIPERF", "DATA", "GENAI_PERF", "MODEL", "REAL_WORKLOAD", "REPO", "SETUP", "check_token_stream",
           "context", "llm_config", "openai_endpoints", "run_config", "target_missing", "triton_endpoints"]


def fake_tool(directory: Path, name: str) -> str:
    """An executable named like a tool, standing in for it where only its command line is looked at."""
    path = directory / name
    path.write_text("#!/bin/sh\nexit 3\n")
    path.chmod(0o755)
    return str(path)
