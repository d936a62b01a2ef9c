"""Entry point of the `modelyzer_transformers_serve` distribution: the `transformers_serve` launcher and its keys."""

from __future__ import annotations

from typing import Any

from modelyzer.kernel.hookspecs import hookimpl


@hookimpl
def register_launchers(register: Any) -> None:
    from modelyzer_transformers_serve.launcher import TransformersServeLauncher

    register("transformers_serve", TransformersServeLauncher)


@hookimpl
def register_settings(register: Any) -> None:
    from modelyzer_transformers_serve.settings import TransformersServeSettings

    register("transformers_serve", TransformersServeSettings)
