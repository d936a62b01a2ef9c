"""The LLM load generators against a REAL Triton (2.51, CPU; `.tools/bin/tritonserver`) streaming tokens: the
decoupled Python model `tiny_llama_stream` (examples/llm/triton_model_repository) runs the tiny Llama with a real
forward pass per token and sends one response per token on `/v2/models/tiny_llama_stream/generate_stream`.

genai_perf (`--endpoint-type generate`) and aiperf (`--endpoint-type template`) measure it through the plugins,
with the server started by the `local` launcher; then one `modelyzer profile` with `triton_launch_mode: local` and
`model_type: LLM`. Short workloads (8 requests of ≤16 tokens, concurrency 1–2) keep each run to a few seconds.
Skipped when tritonserver, .venv-llm (torch and transformers for the model), the tiny Llama or a tool is missing.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelyzer.kernel.interfaces import RunContext
from modelyzer.kernel.models import ConfigVariant, Endpoints, LoadSpec, RunConfig
from modelyzer.kernel.store import Store
from modelyzer.plugins.codecs.pbtxt import PbtxtCodec
from modelyzer.plugins.launchers.local import LocalLauncher
from modelyzer.plugins.loadgen.aiperf import AiperfLoadGenerator
from modelyzer.plugins.loadgen.genai_perf import GenaiPerfLoadGenerator
from modelyzer.plugins.setup_tools import setup_tool
from tests.conftest import modelyzer_cmd
from tests.plugins.loadgen.llm_support import (
    AIPERF,
    GENAI_PERF,
    MODEL,
    REAL_WORKLOAD,
    REPO,
    ROOT,
    SETUP,
    check_token_stream,
    llm_config,
)
from tests.support.configs import profile_config

TRITON_REPO = ROOT / "examples" / "llm" / "triton_model_repository"
STREAM_MODEL = "tiny_llama_stream"
SITE_PACKAGES = ROOT / ".venv-llm" / "lib" / "python3.11" / "site-packages"
TOKENIZER = REPO / MODEL  # the weights' directory holds the tokenizer the tools count with


def missing() -> str | None:
    """Why the real Triton LLM cannot run here (None when it can)."""
    if setup_tool("tritonserver") is None:
        return "tritonserver missing: run `bash .ci/setup`"
    if not (SITE_PACKAGES / "torch").is_dir() or not (SITE_PACKAGES / "transformers").is_dir():
        return f"no torch/transformers in {SITE_PACKAGES.relative_to(ROOT)}: run `bash .ci/setup.d/llm-target.sh`"
    if not (TOKENIZER / "model.safetensors").is_file() or not (TOKENIZER / "tokenizer.json").is_file():
        return f"no tiny Llama in {TOKENIZER.relative_to(ROOT)}: run `bash .ci/setup.d/llm-target.sh`"
    return None


pytestmark = [pytest.mark.integration, pytest.mark.skipif(missing() is not None, reason=str(missing()))]
needs_genai_perf = pytest.mark.skipif(not GENAI_PERF.exists(), reason=f"genai-perf missing; run `{SETUP}`")
needs_aiperf = pytest.mark.skipif(not AIPERF.exists(), reason=f"aiperf missing; run `{SETUP}`")


def stream_run_config(concurrency: int) -> RunConfig:
    config = {**PbtxtCodec().read(TRITON_REPO / STREAM_MODEL / "config.pbtxt"), "name": STREAM_MODEL}
    variant = ConfigVariant(STREAM_MODEL, config, name=f"{STREAM_MODEL}_config_default")
    return RunConfig(STREAM_MODEL, variant, LoadSpec(concurrency=concurrency))


def measuring_config(**values: Any) -> Any:
    return llm_config(model_repository=TRITON_REPO, profile_models=STREAM_MODEL, tokenizer=TOKENIZER,
                      **REAL_WORKLOAD, **values)


def context(tmp_path: Path) -> RunContext:
    return RunContext(export_path=tmp_path / "export", output_model_repository=tmp_path / "omr")


# The CLI profile comes first: it starts its own server, before the module's server below is up.
@needs_genai_perf
def test_a_cli_profile_on_local_triton_measures_the_token_stream(tmp_path: Path) -> None:
    export = tmp_path / "out"
    config = {
        "model_repository": str(TRITON_REPO), "triton_launch_mode": "local", "model_type": "LLM",
        "load_generator": "genai_perf", "tokenizer": str(TOKENIZER), "export_path": str(export),
        "output_model_repository_path": str(export / "omr"), "client_max_retries": 60,
        "profile_models": {STREAM_MODEL: {"parameters": {"concurrency": [1]}}},
        "run_config_search_max_instance_count": 1, "skip_summary_reports": True, "skip_detailed_reports": True,
        **REAL_WORKLOAD,
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    proc = subprocess.run([*modelyzer_cmd(), "profile", "-f", str(path)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    header = next(line for line in proc.stdout.splitlines() if line.startswith("rank"))
    assert "tokens/s" in header and "TTFT p99 ms" in header
    store = Store.open_existing(export / "results.db")
    try:
        results = store.results(STREAM_MODEL)
    finally:
        store.close()
    assert results and all(r.run_config.load.concurrency == 1 for r in results)
    for result in results:
        assert result.measurement.ok, result.measurement.error
        v = check_token_stream(result.measurement.metrics)
        assert v["output_sequence_length_avg"] >= 12
    log = (export / "tritonserver.log").read_text()
    assert f"successfully loaded '{STREAM_MODEL}'" in log


@pytest.fixture(scope="module")
def triton(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoints]:
    """A real tritonserver (the `local` launcher) with tiny_llama_stream loaded."""
    tmp = tmp_path_factory.mktemp("triton-llm")
    config = profile_config(model_repository=TRITON_REPO, profile_models=STREAM_MODEL, client_max_retries=60)
    launcher = LocalLauncher(config, context(tmp))
    try:
        launcher.start()
        rc = stream_run_config(1)
        endpoints = launcher.ensure(rc.variant, tmp / "omr", rc)
        assert endpoints.api == "kserve" and endpoints.model_name == STREAM_MODEL
        yield endpoints
    finally:
        launcher.stop()


@needs_genai_perf
def test_genai_perf_measures_tritons_generate_stream(tmp_path: Path, triton: Endpoints) -> None:
    lg = GenaiPerfLoadGenerator(measuring_config(), context(tmp_path))
    v = check_token_stream(lg.measure(stream_run_config(2), triton))
    assert v["input_sequence_length_avg"] == 32
    assert v["output_sequence_length_avg"] >= 12  # 16 generated, re-tokenized by the tool
    assert lg.last_window_seconds is not None and 0 < lg.last_window_seconds < 30
    print(f"genai-perf on Triton: {v}")


@needs_aiperf
def test_aiperf_measures_tritons_generate_stream(tmp_path: Path, triton: Endpoints) -> None:
    lg = AiperfLoadGenerator(measuring_config(), context(tmp_path))
    v = check_token_stream(lg.measure(stream_run_config(2), triton))
    # AIPerf 0.13 counts no input tokens for a template endpoint (it does not know which field is the prompt)
    assert v.get("input_sequence_length_avg", 32) == 32
    assert v["output_sequence_length_avg"] >= 12
    assert lg.last_window_seconds is not None and 0 < lg.last_window_seconds < 30
    print(f"aiperf on Triton: {v}")
