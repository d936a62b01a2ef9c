"""The real LLM target, started once per session for the genai_perf and aiperf tests (see llm_support)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from modelyzer.kernel.interfaces import RunContext
from modelyzer.kernel.models import Endpoints
from tests.plugins.loadgen.llm_support import LLM_CLI, llm_config, run_config, target_missing


@pytest.fixture(scope="session")
def llm_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoints]:
    """Endpoints of a real `transformers serve` streaming the tiny Llama (skips when it is not set up)."""
    missing = target_missing()
    if missing:
        pytest.skip(missing)
    from modelyzer_transformers_serve.launcher import TransformersServeLauncher

    export = tmp_path_factory.mktemp("llm-target")
    config = llm_config(transformers_serve_path=str(LLM_CLI))
    launcher = TransformersServeLauncher(config, RunContext(export_path=export, output_model_repository=export / "omr"))
    try:
        rc = run_config(1)
        endpoints: Endpoints = launcher.ensure(rc.variant, Path(export / "omr"), rc)
        yield endpoints
    finally:
        launcher.stop()
