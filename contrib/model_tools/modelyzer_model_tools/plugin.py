"""Entry point of the `modelyzer_model_tools` distribution: the `inspect` and `convert` commands, the
`accuracy_tolerance`/`dynamic_dimension_size` keys, and profile's automatic `--shape` for dynamic dimensions."""

from __future__ import annotations

from typing import Any

from modelyzer.kernel.config import ProfileConfig
from modelyzer.kernel.hookspecs import hookimpl
from modelyzer.kernel.models import ModelSpec


@hookimpl
def register_commands(cli: Any) -> None:
    from modelyzer_model_tools.commands import convert, inspect

    cli.add_command(inspect)
    cli.add_command(convert)


@hookimpl
def register_settings(register: Any) -> None:
    from modelyzer_model_tools.settings import ModelToolsSettings

    register("model_tools", ModelToolsSettings)


@hookimpl
def model_perf_analyzer_flags(spec: ModelSpec, config: ProfileConfig) -> dict[str, Any] | None:
    from modelyzer_model_tools.shapes import shape_flags_for

    return shape_flags_for(spec, config)
