"""What the perf_analyzer tests share: a real config, a context, a RunConfig, Triton endpoints, the recorded CSVs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from modelyzer.kernel.config import ProfileConfig, config_from_dict
from modelyzer.kernel.interfaces import RunContext
from modelyzer.kernel.models import ConfigVariant, Endpoints, LoadSpec, RunConfig
from modelyzer.plugins.loadgen import perf_analyzer as pal
from tests.conftest import PERF_ANALYZER

DATA = Path(__file__).parents[1] / "data"
REAL_CSV = (DATA / "pa251_concurrency_gpu.csv").read_text()
needs_pa = pytest.mark.skipif(not PERF_ANALYZER.exists(), reason="perf_analyzer missing; run .ci/setup")


def make_config(**overrides: Any) -> ProfileConfig:
    values: dict[str, Any] = dict(
        profile_models="add_sub",
        perf_analyzer_path="/opt/pa/perf_analyzer",
        triton_install_path="/opt/tritonserver",
        output_model_repository_path="/work/omr",
    )
    values.update(overrides)
    return config_from_dict(values, check_paths=False)


def make_context(tmp_path: Path) -> RunContext:
    return RunContext(export_path=tmp_path / "export", output_model_repository=tmp_path / "omr")


def run_config(
    load: LoadSpec | None = None, flags: dict[str, Any] | None = None, name: str = "add_sub_config_2"
) -> RunConfig:
    variant = ConfigVariant("add_sub", {"max_batch_size": 8}, name=name)
    return RunConfig("add_sub", variant, load or LoadSpec(concurrency=1), perf_analyzer_flags=flags or {})


TRITON = Endpoints(
    http="localhost:8000",
    grpc="localhost:8001",
    metrics_url="http://localhost:8002/metrics",
    protocol="grpc",
    model_name="add_sub",
    triton_metrics=True,  # a Triton server's /metrics (local, docker, remote launchers)
)


def generator(tmp_path: Path, **overrides: Any) -> pal.PerfAnalyzerLoadGenerator:
    return pal.PerfAnalyzerLoadGenerator(make_config(**overrides), make_context(tmp_path))

