"""Entry point of the `modelyzer_mlserver` distribution: registers the `mlserver` launcher."""

from __future__ import annotations

from typing import Any

from modelyzer.kernel.hookspecs import hookimpl


@hookimpl
def register_launchers(register: Any) -> None:
    from modelyzer_mlserver.launcher import MLServerLauncher

    register("mlserver", MLServerLauncher)
