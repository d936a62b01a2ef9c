"""The typed facade over `pm.hook`: the only place that calls hooks, so call sites are checked by mypy."""

from __future__ import annotations

from typing import Any

from modelyzer.kernel.models import Measurement, ModelSpec, RunConfig
from modelyzer.kernel.plugins import load_plugins, pm


def run_started(run_id: int, config: Any) -> None:
    load_plugins()
    pm.hook.run_started(run_id=run_id, config=config)


def measurement_recorded(run_config: RunConfig, measurement: Measurement) -> None:
    pm.hook.measurement_recorded(run_config=run_config, measurement=measurement)


def run_finished(run_id: int, status: str) -> None:
    pm.hook.run_finished(run_id=run_id, status=status)


def agent_joined(agent: Any) -> None:
    pm.hook.agent_joined(agent=agent)


def agent_lost(agent: Any) -> None:
    pm.hook.agent_lost(agent=agent)


def register_commands(cli: Any) -> None:
    load_plugins()
    pm.hook.register_commands(cli=cli)


def model_perf_analyzer_flags(spec: ModelSpec, config: Any) -> dict[str, Any]:
    """The perf_analyzer flags plugins add for `spec` (`model_perf_analyzer_flags`), merged in plugin call order."""
    load_plugins()
    out: dict[str, Any] = {}
    for flags in reversed(pm.hook.model_perf_analyzer_flags(spec=spec, config=config)):
        out.update(flags or {})
    return out
