"""Registers the `ray` executor and its settings; Ray itself is imported only when the executor is built."""

from __future__ import annotations

from typing import Any

from modelyzer.kernel.config import ProfileConfig
from modelyzer.kernel.executor import Executor
from modelyzer.kernel.hookspecs import hookimpl
from modelyzer.kernel.interfaces import RunContext


def ray_executor(config: ProfileConfig, context: RunContext) -> Executor:
    """`executor: ray`: RunConfigs run on slot actors of a Ray cluster (`plugins/ray/executor.py`)."""
    from modelyzer.plugins.ray.executor import RayExecutor

    return RayExecutor(config, context)


@hookimpl
def register_executors(register: Any) -> None:
    register("ray", ray_executor)


@hookimpl
def register_settings(register: Any) -> None:
    from modelyzer.plugins.ray.settings import RaySettings

    register("ray", RaySettings)
